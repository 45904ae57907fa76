"""The latent benchmark's second faces reader (bench/faces_reader.py): its committed weights
load only when their sha256 matches, read every attribute of fresh held-out renders, sharp and
blurred, read what a picture shows rather than what its seed's pose suggests, give chance on
shuffled labels, span a feature space where precision and recall tell a collapsed set from the
world, never saw a seed of any other split, and stay out of core/ and desktop/ (it scores
models, so nothing that trains, selects or steers one may use it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data.faces import ATTRIBUTES
from core.data.worlds import SPLITS, get_world, split_seeds
from core.evaluation.metrics import precision_recall

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import faces_reader as reader  # noqa: E402  (bench/ is a folder of scripts, not a package)

# Held-out seeds of this test: a block apart from the validation table's (from 0) and from
# the blocks the evaluations use (FJD real renders at 10M, scene-reader blocks at 60M/70M).
TEST_OFFSET = 80_000_000
N = 300


@pytest.fixture(scope="module")
def net() -> reader.FacesReader:
    return reader.load_reader()


def test_committed_weights_are_small_and_refused_when_changed(tmp_path: Path) -> None:
    assert reader.WEIGHTS.stat().st_size < 5 * 2**20
    assert reader.TABLE.is_file()
    copy = tmp_path / reader.WEIGHTS.name
    shutil.copy(reader.WEIGHTS, copy)
    shutil.copy(reader.WEIGHTS.with_suffix(".json"), copy.with_suffix(".json"))
    reader.load_reader(copy)  # an intact copy loads
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    copy.write_bytes(bytes(data))
    with pytest.raises(reader.ReaderError, match="sha256"):
        reader.load_reader(copy)
    with pytest.raises(reader.ReaderError, match="not found"):
        reader.load_reader(tmp_path / "none.safetensors")


def test_reads_every_attribute_of_fresh_held_out_renders_sharp_and_blurred(net) -> None:
    result = reader.validation(net, N, TEST_OFFSET, sigmas=(0.0, 1.5))
    assert reader.failures(result) == [], reader.table(result, N)
    # Negative control: the same readings against other renders' labels are chance.
    for attr, classes in ATTRIBUTES.items():
        assert result["shuffled"][attr] < 1 / len(classes) + 0.1, (attr, result["shuffled"])


def test_reads_the_attribute_drawn_not_the_seed() -> None:
    """The same seeds (pose, colours and every other class fixed) drawn with and without each
    arithmetic attribute: the reader follows the drawing."""
    net = reader.load_reader()
    world = get_world("faces")
    seeds = split_seeds("held_out", 30, TEST_OFFSET + N)
    for attr in ("smiling", "glasses", "hat", "beard"):
        for cls in ATTRIBUTES[attr]:
            images = np.stack([world.render(s, 64, **{attr: cls}).image for s in seeds])
            reads = reader.read(net, reader.blurred(images, 1.0))
            assert np.mean([r[attr] == cls for r in reads]) >= 0.95, (attr, cls)


def test_precision_and_recall_in_its_features_tell_a_collapsed_set_from_the_world(net) -> None:
    world = get_world("faces")
    real = reader.features(net, world.render_batch(split_seeds("held_out", 200, TEST_OFFSET)))
    other = reader.features(net, world.render_batch(
        split_seeds("held_out", 200, TEST_OFFSET + 1000)))
    fair = precision_recall(real, other)
    assert fair["precision"] > 0.7 and fair["recall"] > 0.7, fair
    # One face, drawn at slightly different blurs: faithful, but it covers almost nothing.
    face = world.render(split_seeds("held_out", 1, TEST_OFFSET + 2000)[0], 64).image
    same = np.stack([reader.blurred(face[None], s)[0] for s in np.linspace(0, 0.6, 200)])
    collapsed = precision_recall(real, reader.features(net, same))
    assert collapsed["recall"] < 0.05, collapsed


def test_blur_augmentation_matches_a_gaussian_blur() -> None:
    """The training blur is a Gaussian blur (checked against OpenCV's) and sigma 0 is none."""
    import torch

    from core.tensors import to_tensor

    image = get_world("faces").render(5, 64).image
    x = to_tensor(np.stack([image, image]))
    y = reader.blur(x, torch.tensor([0.0, 1.5]))
    assert torch.allclose(y[0], x[0], atol=1e-6)
    want = to_tensor(reader.blurred(image[None], 1.5))[0]
    assert float((y[1] - want).abs().max()) < 2.5 / 127.5  # rounding to uint8 and kernel ends


def test_training_seeds_are_no_split_of_the_world() -> None:
    train = reader.TRAIN_SEEDS
    for name, seeds in SPLITS.items():
        assert train.start >= seeds.stop or train.stop <= seeds.start, name


def test_nothing_in_the_product_uses_the_reader() -> None:
    users = [str(p.relative_to(ROOT)) for folder in ("core", "desktop")
             for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".toml", ".json")
             and "faces_reader" in p.read_text(encoding="utf-8", errors="replace")]
    assert users == []
