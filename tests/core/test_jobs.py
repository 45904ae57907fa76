"""The job protocol: specs round-trip through JSON, bad specs are refused with a readable
message, pipelines are driven step by step and cancel within one step."""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import pytest

from core import imageio
from core.jobs import (
    MAX_SEED,
    Cancelled,
    Context,
    ImageRef,
    JobError,
    JobSpec,
    Progress,
    Result,
    pipeline,
    run_job,
    spec_class,
    spec_from_dict,
)
from core.pipelines.inpaint import InpaintSpec


@dataclass(frozen=True)
class CountSpec(JobSpec):
    kind = "test-jobs-count"
    steps: int = 5


@pipeline("test-jobs-count")
def count(spec: CountSpec, ctx: Context) -> Generator[Progress, None, Result]:
    noise = ctx.rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for i in range(spec.steps):
        ctx.check()
        yield Progress(i + 1, spec.steps, f"step {i + 1}")
    return Result(images=[noise], spec=spec)


def inpaint_spec(tmp_path, seed=3) -> InpaintSpec:
    img = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    path = tmp_path / "in.png"
    imageio.save_png(str(path), img)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 3:6] = 255
    return InpaintSpec(seed=seed, image=ImageRef.of(img, path=str(path)),
                       mask=ImageRef.of(mask, embed=True), patch_size=5)


def test_spec_round_trips_through_json(tmp_path):
    spec = inpaint_spec(tmp_path)
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert isinstance(again, InpaintSpec)
    assert again.to_dict() == spec.to_dict()
    assert np.array_equal(again.mask.array(), spec.mask.array())  # embedded in the dict
    assert np.array_equal(again.image.array(), spec.image.array())  # reloaded from its file


def test_a_changed_source_image_is_refused(tmp_path):
    d = inpaint_spec(tmp_path).to_dict()
    imageio.save_png(d["image"]["path"], np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(JobError, match="changed since the run was recorded"):
        spec_from_dict(d)


@pytest.mark.parametrize("change, message", [
    ({"seed": -5}, "seed must be a whole number"),
    ({"seed": MAX_SEED + 1}, "seed must be a whole number"),
    ({"seed": "7"}, "seed.? must be a whole number"),
    ({"mask": "hello"}, "not an image reference"),
    ({"mask": {"sha256": "0" * 64, "png": "not base64!"}}, "cannot be read"),
    ({"kind": 5}, "not in Easel's format"),
    ({"kind": "teleport"}, "Unknown job kind"),
])
def test_bad_specs_are_refused_with_a_readable_message(tmp_path, change, message):
    d = {**inpaint_spec(tmp_path).to_dict(), **change}
    with pytest.raises(JobError, match=message):
        spec_from_dict(d)


def test_embedded_image_with_a_wrong_hash_is_refused(tmp_path):
    d = inpaint_spec(tmp_path).to_dict()
    d["mask"]["sha256"] = "0" * 64
    with pytest.raises(JobError, match="damaged"):
        spec_from_dict(d)


def test_spec_class_and_panel():
    assert spec_class("inpaint") is InpaintSpec and InpaintSpec.panel == "inpaint"
    assert spec_class("nope") is None and spec_class(None) is None


def test_run_job_reports_every_step_and_is_deterministic():
    seen: list[Progress] = []
    spec = CountSpec(seed=11, steps=4)
    a = run_job(spec, Context.for_spec(spec, device="cpu"), seen.append)
    b = run_job(spec, Context.for_spec(spec, device="cpu"))
    assert [p.step for p in seen] == [1, 2, 3, 4] and seen[-1].fraction == 1.0
    assert np.array_equal(a.images[0], b.images[0])  # same spec, same device: same pixels
    c = run_job(CountSpec(seed=12, steps=4), Context.for_spec(spec.replace(seed=12), "cpu"))
    assert not np.array_equal(a.images[0], c.images[0])


def test_cancel_takes_effect_within_one_step():
    spec = CountSpec(steps=100)
    ctx = Context.for_spec(spec, device="cpu")
    seen: list[int] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.step)
        if p.step == 3:
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run_job(spec, ctx, on_progress)
    assert seen == [1, 2, 3]
