"""Host syncs per job on a simulated CUDA device (tests/device_harness.py), by line of core/.

    PYTHONPATH=. python bench/device_syncs.py [--smoke] [--steps N] [RECIPE ...]

Prints the syncs of a 20-step diffusion inpaint with every preview wanted (the CLI before
previews became lazy) and with none (between the app's throttled previews), then of 100
training steps of each tiny RECIPE named (default: tiny_diffusion tiny_vqvae), logged,
checkpointed and exported once at the end. Each row has its wall and CPU seconds (syncs are
the figure; the times say what the run cost on this machine, load average in the header).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import Sample, machine_line, timed


def main(recipes: list[str], steps: int = 100, inpaint_steps: int = 20) -> None:
    home = Path(tempfile.mkdtemp())
    os.environ.update(EASEL_HOME=str(home), EASEL_WEIGHTS=str(home / "none"))
    torch.set_num_threads(1)
    from core.data.worlds import get_world
    from core.jobs import Context, ImageRef, run_job
    from core.pipelines.inpaint import InpaintSpec
    from core.training.recipe import load_recipe
    from core.training.trainer import train
    from tests import diffusion_models
    from tests.device_harness import simulated_device

    diffusion_models.install(home)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:24] = 255
    spec = InpaintSpec(image=ImageRef.of(get_world("faces").render(5, size=32).image),
                       mask=ImageRef.of(mask, embed=True), engine="diffusion",
                       steps=inpaint_steps)
    print(f"Host syncs on a simulated CUDA device: {machine_line()}; times are wall (CPU: "
          "this process, all threads)\n")
    print(f"{'run':<40} {'syncs':>6}  {'wall s':>6}  {'CPU s':>6}  where")

    def row(label: str, dev: Any, took: Sample) -> None:
        print(f"{label:<40} {sum(dev.syncs.values()):>6}  {took.wall:>6.2f}  {took.cpu:>6.2f}  "
              f"{dict(dev.sync_sites)}")

    for wanted in (True, False):
        with simulated_device("cuda") as dev:
            ctx = Context.for_spec(spec, device="cuda")
            ctx.preview_wanted = lambda w=wanted: w
            took = timed(lambda ctx=ctx: run_job(spec, ctx))[1]
        row(f"inpaint, {inpaint_steps} steps, previews {'always' if wanted else 'never'}", dev,
            took)
    for name in recipes:
        recipe = load_recipe(name, [f"train.steps={steps}", "train.checkpoint_every=1000",
                                    "train.sample_every=1000", f"train.log_every={steps}",
                                    "data.workers=0"])
        with simulated_device("cuda") as dev:
            took = timed(lambda recipe=recipe: train(recipe, tempfile.mkdtemp(),
                                                     device="cuda"))[1]
        row(f"{name}, {steps} steps", dev, took)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipes", nargs="*", default=["tiny_diffusion", "tiny_vqvae"],
                    help="tiny recipes to train (default tiny_diffusion tiny_vqvae)")
    ap.add_argument("--steps", type=int, default=100, help="training steps per recipe")
    ap.add_argument("--smoke", action="store_true",
                    help="a 4-step inpaint and 3 steps of tiny_vqvae: checks that it runs")
    args = ap.parse_args()
    if args.smoke:
        main(["tiny_vqvae"], steps=3, inpaint_steps=4)
    else:
        main(args.recipes, steps=args.steps)
