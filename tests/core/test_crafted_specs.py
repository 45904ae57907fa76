"""Crafted job specs (what a PNG's metadata can say) are refused by one check, before any
image is decoded: deep nesting, huge lists, wrong types, absurd numbers, huge embedded images,
paths to files that are not images or models outside Easel's folders. In-process each case
stays under 256 MiB; through `easel rerun` each ends in exit 2 and one line, in budget."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import imageio
from core.jobs import ImageRef, JobError, read_spec, spec_from_dict
from core.pipelines.inpaint import InpaintSpec
from core.pipelines.style import StyleSpec
from tests.crafted import claimed_png, embedded, png_with_metadata, run_cli

PARSE_BUDGET = 256 * 2**20


def picture(tmp_path: Path, name: str = "picture.png", size: int = 16) -> Path:
    path = tmp_path / name
    rng = np.random.default_rng(len(name))
    imageio.save_png(path, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return path


def style_spec(tmp_path: Path) -> dict[str, Any]:
    content = picture(tmp_path)
    style = picture(tmp_path, "style.png")
    return StyleSpec(image=ImageRef.of(imageio.load_image(content).rgb, str(content)),
                     styles=(ImageRef.of(imageio.load_image(style).rgb, str(style)),),
                     steps=2).to_dict()


def inpaint_spec(tmp_path: Path) -> dict[str, Any]:
    content = picture(tmp_path)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    return InpaintSpec(image=ImageRef.of(imageio.load_image(content).rgb, str(content)),
                       mask=ImageRef.of(mask, embed=True)).to_dict()


def nested(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    return value


def refused(d: dict[str, Any]) -> str:
    """The message of the JobError ``d`` is refused with, in the parse budget."""
    tracemalloc.start()
    try:
        with pytest.raises(JobError) as info:
            spec_from_dict(json.loads(json.dumps(d)))  # as read back from a file
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PARSE_BUDGET, peak
    return str(info.value)


# --------------------------------------------------------------------------- in-process


CASES = {
    # name: (which spec, change, words of the message)
    "nesting": ("style", {"style_weights": nested(60)}, "nest too deeply"),
    "forty style paths": ("style", "forty", "more than 16 images"),
    "sixty embedded 6000x6000": ("style", {"styles": [
        {"sha256": "", "png": claimed_png(6000, 6000)}] * 60}, "more than 16 images"),
    "embedded 6000x6000 over the total": ("style", {"styles": [
        {"sha256": "", "png": claimed_png(6000, 6000)}] * 5}, "megapixels together"),
    "embedded mask over the limit": ("inpaint", {"mask": {
        "sha256": "", "png": claimed_png(100_000, 100_000)}}, "the limit is"),
    "embedded not a png": ("inpaint", {"mask": {"sha256": "", "png": "aGVsbG8="}},
                           "not a PNG"),
    "path a number": ("inpaint", {"image": {"sha256": "", "path": 5}}, "not a text"),
    "path a list": ("inpaint", {"image": {"sha256": "", "path": ["a", "b"]}}, "not a text"),
    "model an object": ("inpaint", {"model": {"name": "x"}}, "must be a text"),
    "400-digit strength": ("inpaint", {"strength": 10**400}, "out of range"),
    "nan guidance": ("inpaint", {"guidance": float("nan")}, "out of range"),
    "seed a bool": ("inpaint", {"seed": True}, "seed"),
    "seed a string": ("inpaint", {"seed": "7"}, "seed"),
    "steps a float": ("inpaint", {"steps": 2.5}, "whole number"),
    "huge list": ("inpaint", {"styles_unknown": list(range(10_000))}, "10000 entries"),
    "long prompt": ("style", {"optimizer": "x" * 100_000}, "characters"),
    "weights not numbers": ("style", {"style_weights": ["a"]}, "list of numbers"),
    "image refs not a list": ("style", {"styles": {"sha256": ""}}, "not a list"),
    "model file elsewhere": ("inpaint", "model-elsewhere", "outside Easel's model folders"),
    "fast style file elsewhere": ("style", "fast-elsewhere", "outside Easel's model folders"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted_specs_are_refused_before_anything_is_decoded(tmp_path, name):
    which, change, words = CASES[name]
    d = style_spec(tmp_path) if which == "style" else inpaint_spec(tmp_path)
    if change == "forty":
        d["styles"] = d["styles"] * 40
    elif change in ("model-elsewhere", "fast-elsewhere"):
        weights = tmp_path / "elsewhere" / "evil.safetensors"
        weights.parent.mkdir()
        weights.write_bytes(b"\x00" * 64)  # exists: refused for where it is, not for content
        d["model" if change == "model-elsewhere" else "fast"] = str(weights)
    else:
        d.update(change)
    assert words in refused(d)


def test_image_files_over_the_total_pixel_budget_are_refused_from_their_headers(
        tmp_path, monkeypatch):
    d = style_spec(tmp_path)
    monkeypatch.setenv("EASEL_MAX_PIXELS", str(16 * 16))  # each fits, three do not
    d["styles"] = d["styles"] * 2
    decoded = []
    monkeypatch.setattr(imageio, "load_image", lambda *a, **k: decoded.append(a))
    assert "megapixels together" in refused(d)
    assert decoded == []


@pytest.mark.parametrize("spot", ["not an image", "missing", "folder", "fifo", "no suffix"])
def test_a_referenced_path_gives_one_message_whatever_is_there(tmp_path, spot):
    """A spec cannot probe the disk: a path that is not an image file gets the same words
    whether it exists (as a text file, a folder or a pipe) or not."""
    target = tmp_path / "target.png"
    if spot == "not an image":
        target.write_text("secret: 1234\n")
    elif spot == "folder":
        target.mkdir()
    elif spot == "fifo":
        os.mkfifo(target)
    elif spot == "no suffix":
        target = tmp_path / "passwd"
        target.write_text("root:x:0:0\n")
    d = inpaint_spec(tmp_path)
    d["image"]["path"] = str(target)
    message = refused(d).replace(target.name, "NAME")
    assert message == ("The image 'NAME' this job was made from cannot be opened: it is "
                       "missing, unreadable or not an image. Open the picture itself instead.")


def test_a_model_inside_the_user_models_folder_may_be_named_by_path(tmp_path):
    from core import paths

    d = inpaint_spec(tmp_path)
    d["model"] = str(paths.models_dir() / "diffusion" / "mine.safetensors")
    spec = spec_from_dict(d)
    assert spec.model.endswith("mine.safetensors")


def test_a_valid_spec_still_round_trips(tmp_path):
    for d in (style_spec(tmp_path), inpaint_spec(tmp_path)):
        again = spec_from_dict(json.loads(json.dumps(d)))
        assert again.to_dict() == d


def test_settings_only_reads_no_image(tmp_path, monkeypatch):
    d = style_spec(tmp_path)
    monkeypatch.setattr(imageio, "load_image", lambda *a, **k: pytest.fail("decoded"))
    monkeypatch.setattr(imageio, "image_size", lambda *a, **k: pytest.fail("read"))
    spec = StyleSpec.from_dict(d, load_images=False)
    assert spec.image.pixels is None and spec.image.path == d["image"]["path"]


def test_deeply_nested_metadata_is_no_metadata(tmp_path):
    png = png_with_metadata(tmp_path / "deep.png", "[" * 200_000 + "]" * 200_000)
    assert imageio.read_metadata(png) is None
    assert read_spec(png) is None


def test_embedded_images_within_the_budget_still_decode(tmp_path):
    mask = np.zeros((16, 16), np.uint8)
    mask[2:5, 3:9] = 255
    d = inpaint_spec(tmp_path)
    d["mask"] = embedded(mask)
    assert np.array_equal(spec_from_dict(d).mask.array(), mask)


# --------------------------------------------------------------------------- `easel rerun`


def crafted_png(tmp_path: Path, case: str) -> Path:
    if case == "deep json":
        return png_with_metadata(tmp_path / "deep.png", "[" * 100_000 + "]" * 100_000)
    d = style_spec(tmp_path)
    if case == "forty styles":
        d["styles"] = d["styles"] * 40
    elif case == "embedded bombs":
        d["styles"] = [{"sha256": "", "png": claimed_png(6000, 6000)}] * 8
    elif case == "400 digits":
        d["strength"] = 10**400
    text = json.dumps({"spec": d})
    return png_with_metadata(tmp_path / "crafted.png", text)


@pytest.mark.parametrize("case, words", [
    ("deep json", "carries no Easel metadata"),
    ("forty styles", "more than 16 images"),
    ("embedded bombs", "megapixels together"),
    ("400 digits", "out of range"),
])
def test_rerun_of_a_crafted_png_exits_2_in_budget(tmp_path, case, words):
    png = crafted_png(tmp_path, case)
    run = run_cli(["rerun", str(png), "-o", str(tmp_path / "out.png")], tmp_path / "home")
    run.assert_clean_refusal(words)
    assert not (tmp_path / "out.png").exists()
