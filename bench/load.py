"""Jobs on a busy machine: Easel's thread rule (core.device.cpu_threads) against every core.

Two competing CPU-bound processes (Python busy loops) make the machine busy. Rows alternate
quiet and busy, repeated, and on the busy machine the rule is compared with torch on every
core (what jobs did before the rule):

- style: the optimisation of a 384 px picture (Easel's random-feature style loss, L-BFGS), its
  seconds per step (wall and CPU); the run is cut after ``--cap`` seconds.
- training: the ``vae_faces`` recipe (64 px, its own batch size), steps/s over ``--cap``
  seconds (rendering in the loop).
- GUI: the longest gap of a 5 ms QTimer in the GUI thread while the InferenceService runs a
  512 px PatchMatch fill (bench/gui_probe.py).

Targets: busy style wall at most 3x quiet; GUI gap under 100 ms. Each row records the 1-minute
load average and the thread count the rule chose. On a shared machine compare rows of one run.

Run: python bench/load.py [--smoke] [--repeats N] [--cap S] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
from report import add_smoke, emit, load_average, text_table

from core import device
from core.jobs import Cancelled, Context, ImageRef, run_job


@contextmanager
def busy(n: int, settle: float = 1.0) -> Iterator[None]:
    """``n`` other programs each keeping a core busy while the block runs (after ``settle``
    seconds to get going)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(settle)
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@contextmanager
def every_core(on: bool) -> Iterator[None]:
    """With ``on``, jobs get every core whatever the load (the behaviour before the rule)."""
    rule = device.cpu_threads
    if on:
        device.cpu_threads = device.usable_cores
    try:
        yield
    finally:
        device.cpu_threads = rule


SMOKE_STYLE_PX = SMOKE_GUI_PX = 128
SMOKE_CAP_S = 0.5  # --smoke: seconds per style and training run (style still takes 3 steps)
SMOKE_SETTLE_S = 0.2  # --smoke: seconds for the busy loop to get going
MIN_STEPS = 3  # style steps timed at the least, whatever the cap


def style(cap: float, size: int = 384) -> dict[str, float]:
    from core.data.styles import render_style
    from core.pipelines.style import StyleSpec

    content = render_style("mosaic", seed=1, size=size)
    spec = StyleSpec(seed=0, image=ImageRef.of(content),
                     styles=(ImageRef.of(render_style("brush", seed=0, size=size)),),
                     size=size, steps=300)
    ctx = Context.for_spec(spec, device="cpu")
    threads = device.use_cpu_threads(device.GIVEN_THREADS)  # as the worker starts a job
    marks: list[tuple[int, float, float]] = []

    start = time.perf_counter()

    def step(p: Any) -> None:
        marks.append((p.step, time.perf_counter(), time.process_time()))
        # Stopped after ``cap`` seconds, but never before MIN_STEPS steps: on a loaded machine
        # set-up alone can take the whole cap, and one step gives no time per step.
        if len(marks) >= MIN_STEPS and marks[-1][1] - start >= cap:
            ctx.cancel_event.set()

    with suppress(Cancelled):
        run_job(spec, ctx, step)
    (s0, w0, c0), (s1, w1, c1) = marks[1], marks[-1]  # from the first step: set-up excluded
    n = max(1, s1 - s0)
    return {"threads": threads, "wall": (w1 - w0) / n, "cpu": (c1 - c0) / n}


def training(cap: float) -> dict[str, float]:
    from core.training.recipe import load_recipe
    from core.training.trainer import Trainer

    recipe = load_recipe("vae_faces", ["train.steps=100000", "train.checkpoint_every=100000",
                                       "train.sample_every=100000", "train.minutes=0",
                                       "data.workers=0", "train.log_every=1"])
    starts: list[tuple[float, float]] = []
    threads: list[int] = []
    import torch

    def note(event: dict[str, Any]) -> None:
        if event.get("event") == "start":
            starts.append((time.perf_counter(), time.process_time()))
        elif event.get("event") == "step":  # the threads the run fitted to the load
            threads.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(device.GIVEN_THREADS)  # a training process starts with every core
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(recipe, out, device="cpu", emit=note)
        timer = threading.Timer(cap, trainer.request_stop)
        timer.start()
        try:
            result = trainer.run()
        finally:
            timer.cancel()
            torch.set_num_threads(before)
    w0, c0 = starts[0]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"threads": threads[0] if threads else 0, "steps_s": result.step / wall, "cpu_per_step":
            cpu / max(1, result.step)}


def gui(size: int = 512) -> dict[str, float]:
    from gui_probe import longest_gui_gap

    rng = np.random.default_rng(0)
    img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    lo, hi = size * 200 // 512, size * 325 // 512  # at 512 px: rows and columns 200-324
    mask[lo:hi, lo:hi] = 255
    return longest_gui_gap(img, mask)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cap", type=float, default=6.0, help="seconds per style / training run")
    ap.add_argument("--others", type=int, default=2, help="competing busy processes")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    add_smoke(ap)
    args = ap.parse_args(argv)
    if args.smoke:  # every row once, each job cut short and small, one busy loop
        args.repeats, args.cap, args.others = 1, min(args.cap, SMOKE_CAP_S), min(args.others, 1)
    style_px, gui_px = (SMOKE_STYLE_PX, SMOKE_GUI_PX) if args.smoke else (384, 512)
    settle = SMOKE_SETTLE_S if args.smoke else 1.0

    import torch

    print(f"# Jobs on a busy machine ({args.others} busy loops, {args.repeats} repeats)\n"
          f"{platform.platform()}, {device.usable_cores()} usable CPUs, torch "
          f"{torch.__version__} with {device.GIVEN_THREADS} threads at start, load average "
          f"{load_average():.1f} at start", flush=True)
    gui(gui_px)  # warm-up: torch and Qt imports, the first job's one-time costs
    headers = ["rep", "machine", "threads by", "load", "style thr", "style s/step",
               "style CPU s/step", "train thr", "train steps/s", "train CPU s/step",
               "GUI gap ms", "GUI p99 ms", "fill s"]
    rows: list[list[str]] = []
    plan = [("quiet", False), ("busy", False), ("busy", True)]
    for rep in range(1, args.repeats + 1):
        for machine, all_cores in plan:
            with busy(args.others if machine == "busy" else 0, settle), every_core(all_cores):
                s, t, g = style(args.cap, style_px), training(args.cap), gui(gui_px)
                load = load_average()
            rows.append([str(rep), machine, "every core" if all_cores else "rule", f"{load:.1f}",
                         str(s["threads"]), f"{s['wall']:.3f}", f"{s['cpu']:.3f}",
                         str(t["threads"]), f"{t['steps_s']:.2f}", f"{t['cpu_per_step']:.3f}",
                         f"{g['max_gap_ms']:.0f}", f"{g['p99_gap_ms']:.0f}", f"{g['job_s']:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    emit("\n" + text_table(headers, rows, left=3), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
