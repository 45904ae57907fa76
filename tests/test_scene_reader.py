"""The scene benchmark's analytic reader (bench/scene_reader.py): it must read the world's true
renders as their prompts say, reject renders of a prompt changed in one thing, read nothing
into blank pictures or noise, and stay out of core/ (it scores models, so nothing that trains,
selects or reranks a model may use it)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.captions import parse_prompt, render_layout, sample_scene
from core.data.worlds import split_seeds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import scene_reader as reader  # noqa: E402  (bench/ is a folder of scripts, not a package)

ACCEPT, REJECT = 0.97, 0.95


def check(result: dict, least: int) -> None:
    """Every category accepted and every perturbation kind rejected, with and without shape
    (without shape a changed shape is no change, so that kind has no cases there)."""
    for category in reader.CATEGORIES:
        without, with_shape = result["accept"][category]
        assert without >= ACCEPT and with_shape >= ACCEPT, (category, result["accept"])
    for kind, (without, with_shape, n_without, n_with) in result["reject"].items():
        assert n_with >= least and with_shape >= REJECT, (kind, result["reject"])
        if kind != "shape":
            assert n_without >= least and without >= REJECT, (kind, result["reject"])


def test_true_renders_are_accepted_and_perturbed_ones_rejected_at_64_px() -> None:
    check(reader.validation(30), least=10)


@pytest.mark.parametrize(("size", "upscale_from", "n"), [(128, None, 6), (256, 64, 3)])
def test_larger_pictures_read_the_same(size: int, upscale_from: int | None, n: int) -> None:
    check(reader.validation(n, size=size, upscale_from=upscale_from), least=2)


def test_each_object_is_read_with_its_colour_shape_size_and_box() -> None:
    two_tone = 0
    for seed in split_seeds("held_out", 25, reader.VALIDATION_OFFSET + 20_000_000):
        layout = sample_scene(seed)
        reading = reader.read_scene(render_layout(layout, 64, seed).image)
        assert (reading.background, reading.background2) == (layout.background,
                                                             layout.background2)
        two_tone += layout.background2 is not None
        assert len(reading.objects) == len(layout.objects), (layout.labels(), reading)
        for true in layout.objects:
            # Within 1.5 px: a point (a star's, a heart's bottom) covers little of its last pixel.
            found = [o for o in reading.objects
                     if np.abs(np.subtract(o["bbox"], true.bbox)).max() <= 1.5 / 64]
            assert len(found) == 1, (true, reading)
            assert (found[0]["shape"], found[0]["colour"], found[0]["size"]) == (
                true.shape, true.colour, true.size)
    assert two_tone >= 3  # two-tone backgrounds were among the scenes read


def test_blank_pictures_and_noise_match_no_prompt() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    blotches = np.asarray(Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
                          .resize((64, 64), Image.BICUBIC))
    blanks = [np.full((64, 64, 3), c, np.uint8) for c in [*reader.PALETTE, (128, 128, 128)]]
    assert reader.read_scene(noise) == reader.Reading((), None, None)
    assert all(reader.read_scene(b).objects == () for b in blanks)
    readings = [reader.read_scene(p) for p in [noise, blotches, *blanks]]
    for _, prompt, _, _ in reader.true_cases(3):
        for reading in readings:
            assert not reader.matches(prompt, reading, shape=False), (prompt, reading)


def obj(shape: str | None, colour: str, x: float, y: float = 0.5) -> dict:
    return {"shape": shape, "colour": colour, "size": "small",
            "bbox": (x - 0.1, y - 0.1, x + 0.1, y + 0.1)}


def test_matching_with_and_without_shape() -> None:
    rel = parse_prompt("a red star to the left of a blue circle")
    swapped_shapes = reader.Reading((obj("square", "red", 0.2), obj("heart", "blue", 0.7)),
                                    "black")
    assert reader.matches(rel, swapped_shapes, shape=False)
    assert not reader.matches(rel, swapped_shapes)
    wrong_side = reader.Reading((obj("circle", "blue", 0.2), obj("star", "red", 0.7)), "black")
    assert not reader.matches(rel, wrong_side, shape=False)

    two = parse_prompt("two blue circles")
    extra = reader.Reading((obj("circle", "blue", 0.2), obj("circle", "blue", 0.5),
                            obj("square", "blue", 0.8)), "black")
    # GenEval counts circles (two); without shapes there are three blue things.
    assert reader.matches(two, extra) and not reader.matches(two, extra, shape=False)

    star = parse_prompt("a red star on a black background")
    assert reader.stars_drawn(star, reader.Reading((obj("star", "red", 0.5),), "white"))
    assert not reader.stars_drawn(star, reader.Reading((obj(None, "red", 0.5),), "black"))
    assert reader.stars_drawn(two, extra) is None


def test_perturbations_change_what_they_say() -> None:
    prompt = parse_prompt("two red stars above a blue circle on a black background")
    rng = random.Random(0)
    for kind in reader.PERTURBATIONS:
        other = reader.perturb(prompt, kind, rng)
        if kind == "size":  # the prompt names no size
            assert other is None
            continue
        assert other is not None and other.key() != prompt.key(), kind
    assert reader.perturb(prompt, "relation", rng).relation == (0, "below", 1)
    with pytest.raises(ValueError, match="unknown perturbation"):
        reader.perturb(prompt, "mood", rng)


def test_nothing_in_the_product_uses_the_reader() -> None:
    users = [str(p.relative_to(ROOT)) for folder in ("core", "desktop")
             for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".toml", ".json")
             and "scene_reader" in p.read_text(encoding="utf-8", errors="replace")]
    assert users == []
