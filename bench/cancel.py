"""How promptly every pipeline sees a cancel: the longest stretch of work between two
``ctx.check()`` calls, at a large size.

Each job runs in this process with a context whose ``check()`` notes the time; after
``--cancel-after`` seconds (or at its end, if sooner) another thread cancels it. Reported per
pipeline: checks seen, the longest interval between two of them (counting the job's start
and end as checks), the time from the cancel to the job stopping, wall and CPU seconds. The
header records CPU count, torch threads and the load average; on a shared machine compare rows
of one run, not runs.

Run: python bench/cancel.py [--smoke] [--quick] [--cancel-after S] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from report import add_smoke, emit, load_average, text_table

from core.device import use_cpu_threads
from core.imageio import max_pixels_setting
from core.jobs import Cancelled, Context, ImageRef, JobSpec, run_job
from core.weights import ModelCache


class TimedContext(Context):
    """Notes the time of every check."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.device, ctx.generator, ctx.rng, ctx.models, ctx.cancel_event)
        self.times: list[float] = []

    def check(self) -> None:
        self.times.append(time.perf_counter())
        super().check()


SMOKE_PIXELS = 256 * 256
SMOKE_CANCEL_AFTER_S = 0.3


def measure(spec: JobSpec, cancel_after: float, models: ModelCache) -> dict[str, Any]:
    ctx = TimedContext(Context.for_spec(spec, device="cpu", models=models))
    asked: list[float] = []

    def cancel() -> None:
        asked.append(time.perf_counter())
        ctx.cancel_event.set()

    timer = threading.Timer(cancel_after, cancel)
    c0, t0 = time.process_time(), time.perf_counter()
    timer.start()
    try:
        run_job(spec, ctx)
        outcome = "finished"
    except Cancelled:
        outcome = "cancelled"
    finally:
        timer.cancel()
    t1, c1 = time.perf_counter(), time.process_time()
    marks = np.array([t0, *ctx.times, t1])
    return {"outcome": outcome, "checks": len(ctx.times),
            "longest_ms": float(np.diff(marks).max() * 1000),
            "stop_ms": (t1 - asked[0]) * 1000 if asked else float("nan"),
            "wall_s": t1 - t0, "cpu_s": c1 - c0}


def noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def cases(pixels: int) -> list[tuple[str, str, Callable[[], JobSpec]]]:
    """(pipeline, what, spec factory) at ``pixels`` for the picture-sized ones."""
    from core.pipelines.inpaint import InpaintSpec, OutpaintSpec
    from core.pipelines.latent import LatentSampleSpec
    from core.pipelines.scene import SceneSpec
    from core.pipelines.style import MAX_SIZE, StyleSpec
    from core.pipelines.upscale import UpscaleSpec

    side = int(pixels ** 0.5)

    def box_fill(engine: str) -> JobSpec:
        mask = np.zeros((side, side), np.uint8)
        mask[side // 3:2 * side // 3, side // 3:2 * side // 3] = 255  # a ninth of the picture
        return InpaintSpec(seed=0, image=ImageRef.of(noise(side, side)),
                           mask=ImageRef.of(mask, embed=True), engine=engine, steps=20)

    def strokes() -> JobSpec:
        mask = np.zeros((side, side), np.uint8)
        mask[side // 16::side // 8, side // 16:-side // 16] = 255  # long thin strokes
        return InpaintSpec(seed=0, image=ImageRef.of(noise(side, side)),
                           mask=ImageRef.of(mask, embed=True))

    def outpaint() -> JobSpec:
        inner = int(side * 0.9)
        return OutpaintSpec(seed=0, image=ImageRef.of(noise(inner, inner)),
                            right=side - inner, bottom=side - inner)

    def style(fast: str) -> JobSpec:
        from core.data.styles import render_style

        return StyleSpec(seed=0, image=ImageRef.of(noise(side, side)), size=MAX_SIZE,
                         styles=() if fast else (ImageRef.of(render_style("brush", 0, 512)),),
                         fast=fast, steps=200)

    small = max(16, side // 4)  # x4 output at the pixel limit
    return [
        ("inpaint", f"PatchMatch, {side}x{side}, box 1/9", lambda: box_fill("patchmatch")),
        ("inpaint", f"PatchMatch, {side}x{side}, thin strokes", strokes),
        ("inpaint", f"diffusion, {side}x{side}, box 1/9, 20 steps",
         lambda: box_fill("diffusion")),
        ("outpaint", f"PatchMatch, to {side}x{side}", outpaint),
        ("latent", "vae_faces, 64 samples", lambda: LatentSampleSpec(seed=0, model="vae_faces",
                                                                     count=64)),
        ("scene", "layout_prior_scenes, 8 candidates, upscaled",
         lambda: SceneSpec(seed=0, prompt="a red circle above a blue square", n=8)),
        ("style", f"optimisation, {side}x{side} at {MAX_SIZE} px", lambda: style("")),
        ("style", f"fast (style_fast_brush), {side}x{side} at {MAX_SIZE} px",
         lambda: style("style_fast_brush")),
        ("upscale", f"upscale_faces, {small}x{small} -> {4 * small}x{4 * small}",
         lambda: UpscaleSpec(seed=0, image=ImageRef.of(noise(small, small)),
                             model="upscale_faces")),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4-megapixel pictures")
    add_smoke(ap)
    ap.add_argument("--cancel-after", type=float, default=10.0,
                    help="seconds after which each job is cancelled (default 10)")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    args = ap.parse_args(argv)

    import torch

    if args.smoke:  # small pictures, cancelled early: every pipeline runs and sees a cancel
        args.cancel_after = min(args.cancel_after, SMOKE_CANCEL_AFTER_S)
    pixels = (SMOKE_PIXELS if args.smoke else 4_000_000 if args.quick
              else max_pixels_setting())
    threads = use_cpu_threads(torch.get_num_threads())  # as the app starts a job
    print(f"# Cancel promptness ({pixels / 1e6:.0f} Mpx pictures, cancel after "
          f"{args.cancel_after:g} s)\n{platform.platform()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} with {threads} threads, load average {load_average():.1f} at start",
          flush=True)
    models = ModelCache()
    headers = ["pipeline", "job", "outcome", "checks", "longest gap ms", "stop after cancel ms",
               "wall s", "CPU s", "load"]
    rows = []
    for pipeline, what, make in cases(pixels):
        r = measure(make(), args.cancel_after, models)
        load = load_average()
        rows.append([pipeline, what, r["outcome"], str(r["checks"]), f"{r['longest_ms']:.0f}",
                     f"{r['stop_ms']:.0f}", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
                     f"{load:.1f}"])
        print(" | ".join(rows[-1]), flush=True)
    emit("\n" + text_table(headers, rows, left=2), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
