"""Training benchmark: Easel's trainer against plain reference loops, world render speed, DDP.

Rows of the one table:

- Training throughput (images/s) of the ``dcgan_faces`` and ``vae_faces`` recipes (64 px,
  batch 64) run by Easel's trainer (core/training: batches rendered ahead by a worker process,
  fused Adam and channels_last on CUDA and the CPU, float16 autocast on CUDA), beside a plain
  reference loop in the style of the public pytorch/examples ``dcgan/main.py`` and
  ``vae/main.py``: the same networks (core/nets), batch, losses and data, but a plain loop:
  ``torch.optim.Adam`` with default arguments, default memory format, full precision, and the
  batch rendered inside the loop. Throughput is measured after warm-up steps, over the same
  number of steps.
- Data throughput: images/s rendered by each world at 64 px in one process (what a render
  worker delivers), against the trainer's need (its measured images/s).
- DDP on 2 CPU processes (gloo, one thread each) against 1 process with one and with two
  threads: steps/s on the same recipe and global batch. On a 2-core machine this is a
  correctness feature, not a speed-up; the numbers are reported as measured.
- Judge accuracy and checker accuracy: rows added by the evaluation work (marked below).

Run: python bench/training.py [--smoke] [--quick] [--device cpu|cuda] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from report import add_smoke, emit, machine_line

from core.data.worlds import get_world, world_names
from core.device import describe, pick_device
from core.evaluation.evaluate import evaluate, resolve_model
from core.nets.dcgan import DCGANConfig, Discriminator, Generator
from core.nets.vae import VAE, VAEConfig, kl_divergence
from core.training.recipe import load_recipe
from core.training.trainer import train

Row = tuple[str, str, str, str]


# --------------------------------------------------------------------------- reference loops


def _render_batch(world: Any, seeds: range, size: int, device: torch.device) -> torch.Tensor:
    """The batch rendered in the loop, as a plain data pipeline would hand it over."""
    imgs = np.stack([world.render(s, size=size).image for s in seeds])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    return x.to(device)


def _timed_loop(recipe: Any, device: torch.device, warm: int, steps: int,
                step: Callable[[torch.Tensor], torch.Tensor]) -> Rate:
    """Images/s (and CPU ms per image) of ``step(batch) -> loss`` over ``steps`` steps after
    ``warm`` untimed ones, rendering each batch in the loop as the reference examples' data
    loaders hand it over."""
    world, b = get_world(recipe.data.source), recipe.train.batch_size
    start = cpu0 = 0.0
    for i in range(warm + steps):
        if i == warm:
            _sync(device)
            start, cpu0 = time.perf_counter(), time.process_time()
        loss = step(_render_batch(world, range(i * b, (i + 1) * b), recipe.data.size, device))
        if i % 10 == 0:
            float(loss.detach())  # the examples print their losses; a sync now and then
    _sync(device)
    return Rate(steps * b / (time.perf_counter() - start),
                1000 * (time.process_time() - cpu0) / (steps * b))


@dataclass(frozen=True)
class Rate:
    images_per_s: float
    cpu_ms_per_image: float  # this process's CPU time (all threads) over the same steps


def reference_dcgan(recipe: Any, device: torch.device, warm: int, steps: int) -> Rate:
    """pytorch/examples dcgan/main.py's loop on our generator/discriminator; images/s."""
    torch.manual_seed(0)
    cfg = DCGANConfig(**recipe.model)
    g, d = Generator(cfg).to(device), Discriminator(cfg).to(device)
    t = recipe.train
    opt_d = torch.optim.Adam(d.parameters(), lr=t.lr, betas=tuple(t.betas))
    opt_g = torch.optim.Adam(g.parameters(), lr=t.lr, betas=tuple(t.betas))

    def step(real: torch.Tensor) -> torch.Tensor:
        d.zero_grad()
        out = d(real)
        err_real = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        err_real.backward()
        fake = g(torch.randn(real.shape[0], cfg.z_dim, 1, 1, device=device))
        out = d(fake.detach())
        err_fake = F.binary_cross_entropy_with_logits(out, torch.zeros_like(out))
        err_fake.backward()
        opt_d.step()
        g.zero_grad()
        out = d(fake)
        err_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        err_g.backward()
        opt_g.step()
        return err_g

    return _timed_loop(recipe, device, warm, steps, step)


def reference_vae(recipe: Any, device: torch.device, warm: int, steps: int) -> Rate:
    """pytorch/examples vae/main.py's loop (reparameterise, recon + KL) on our VAE; images/s."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(**recipe.model)).to(device)
    t = recipe.train
    opt = torch.optim.Adam(vae.parameters(), lr=t.lr, betas=tuple(t.betas))

    def step(x: torch.Tensor) -> torch.Tensor:
        opt.zero_grad()
        mu, logvar = vae.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = vae.decode(z)
        loss = (vae.nll(x, recon).mean() + kl_divergence(mu, logvar).mean()) / x[0].numel()
        loss.backward()
        opt.step()
        return loss

    return _timed_loop(recipe, device, warm, steps, step)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def easel_throughput(name: str, device: torch.device, warm: int, steps: int) -> Rate:
    """The trainer on the recipe; images/s between the step events at ``warm`` and
    ``warm + steps``. The run goes on for a few steps after the window: the render worker works
    ``data.prefetch`` batches ahead, and steps timed after it has rendered the last batch would
    run without it competing for the cores (a short run would look faster than a long one)."""
    base = load_recipe(name)
    tail = base.data.prefetch * max(base.data.workers, 1) + 1
    total = warm + steps + tail
    recipe = load_recipe(name, [f"train.steps={total}", "train.log_every=1",
                                f"train.checkpoint_every={total}",
                                f"train.sample_every={total}"])
    stamps: dict[int, tuple[float, float]] = {}

    def on_event(e: dict[str, Any]) -> None:
        if e["event"] == "step":  # losses were read: the GPU is in sync
            stamps[e["step"]] = (time.perf_counter(), time.process_time())

    with tempfile.TemporaryDirectory() as tmp:
        train(recipe, Path(tmp) / "run", device=str(device), emit=on_event)
    images = steps * recipe.train.batch_size
    (w0, c0), (w1, c1) = stamps[warm], stamps[warm + steps]
    return Rate(images / (w1 - w0), 1000 * (c1 - c0) / images)


# --------------------------------------------------------------------------- data and DDP


def world_rate(name: str, size: int, n: int) -> float:
    world = get_world(name)
    world.render(10 ** 6, size=size)  # first-call set-up out of the timing
    start = time.perf_counter()
    for s in range(n):
        world.render(s, size=size)
    return n / (time.perf_counter() - start)


def ddp_steps_per_s(processes: int, threads: int, steps: int) -> float:
    """steps/s of a small VAE recipe (32 px, global batch 32) under torchrun or one process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop("WORLD_SIZE", None)
    with tempfile.TemporaryDirectory() as tmp:
        env["EASEL_HOME"] = tmp
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc_per_node", str(processes), "-m", "core"] if processes > 1
                    else [sys.executable, "-m", "core"])
        cmd = [*launcher, "train", "tiny_vae", "--device", "cpu", "--steps", str(steps),
               "--out", str(Path(tmp) / "run"), "--progress", "jsonl", "--batch-size", "32",
               "--set", "data.size=32", "--set", "model.image_size=32",
               "--set", "model.base=16", "--set", f"train.checkpoint_every={steps}",
               "--set", f"train.sample_every={steps}", "--set", "train.log_every=5",
               "--set", "data.workers=0"]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if run.returncode:
            raise RuntimeError(run.stderr[-1500:])
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    # Each step event's images_per_s covers the 5 steps since the previous one; the first
    # window (set-up, first iterations) is left out.
    rates = [e["images_per_s"] for e in events if e["event"] == "step"][1:]
    seconds = sum(5 * 32 / r for r in rates)
    return 5 * len(rates) / seconds


# --------------------------------------------------------------------------- table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps, a few minutes")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of Easel's trainer and the plain loop, alternating (default 3)")
    add_smoke(ap)
    ap.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    device = pick_device(args.device)
    # Warm-up covers more steps than the render worker prefetches (data.prefetch = 4), so the
    # batches it rendered while the trainer was starting are used up before the timing starts:
    # the figure is the steady state, not the prefetched backlog.
    # With --smoke, the tiny recipes (16 px) and a few steps: the table's shape, not figures.
    warm, steps = ((1, 2) if args.smoke else (6, 6) if args.quick
                   else (8, 20 if device.type == "cpu" else 100))
    repeats = 1 if args.smoke or args.quick else max(args.repeats, 1)
    recipes = ((("tiny_dcgan", reference_dcgan), ("tiny_vae", reference_vae)) if args.smoke
               else (("dcgan_faces", reference_dcgan), ("vae_faces", reference_vae)))
    rows: list[Row] = []

    for recipe_name, reference in recipes:
        recipe = load_recipe(recipe_name)
        ours_runs, ref_runs = [], []
        for _ in range(repeats):  # alternating, so load elsewhere falls on both alike
            ref_runs.append(reference(recipe, device, warm, steps))
            ours_runs.append(easel_throughput(recipe_name, device, warm, steps))
        ours = statistics.median(r.images_per_s for r in ours_runs)
        ref = statistics.median(r.images_per_s for r in ref_runs)
        cpu_ours = statistics.median(r.cpu_ms_per_image for r in ours_runs)
        cpu_ref = statistics.median(r.cpu_ms_per_image for r in ref_runs)
        what = (f"train {recipe_name} ({recipe.data.size} px, batch "
                f"{recipe.train.batch_size}), median of {repeats}")
        rows.append((what,
                     f"{ours:.1f} img/s (CPU {cpu_ours:.1f} ms/img)",
                     f"{ref:.1f} img/s (plain loop; CPU {cpu_ref:.1f} ms/img)",
                     f"{ours / ref:.2f}x"))

    n = 5 if args.smoke else 50 if args.quick else 400
    for name in world_names():
        if name.startswith("test_"):
            continue
        rows.append((f"render world {name!r} at 64 px (1 process)",
                     f"{world_rate(name, 64, n):.0f} img/s", "", ""))

    ddp_steps = 10 if args.quick or args.smoke else 40
    two = ddp_steps_per_s(2, 1, ddp_steps)
    if args.smoke:  # the launcher is what can break; the one-process runs are the same command
        rows.append(("DDP 2 CPU processes x 1 thread (VAE 32 px, batch 32)",
                     f"{two:.2f} steps/s", "1 process: not run with --smoke", ""))
    else:
        one_1 = ddp_steps_per_s(1, 1, ddp_steps)
        one_2 = ddp_steps_per_s(1, 2, ddp_steps)
        rows.append(("DDP 2 CPU processes x 1 thread (VAE 32 px, batch 32)",
                     f"{two:.2f} steps/s",
                     f"1 process: {one_1:.2f} (1 thread), {one_2:.2f} (2 threads) steps/s",
                     f"{two / one_1:.2f}x / {two / one_2:.2f}x"))

    n_judge = 16 if args.smoke else 200 if args.quick else 2000
    for name in ("judge_faces", "judge_scenes"):
        result = evaluate(resolve_model(name), n=n_judge, device=device)
        m = result["metrics"]
        acc = {k: v for k, v in m["held_out_accuracy"].items() if not k.endswith("_px")}
        worst = min(acc, key=acc.get)
        rows.append((f"{name}: held-out accuracy, {n_judge} renders (target >= 98% each)",
                     f"lowest {100 * acc[worst]:.2f}% ({worst})",
                     f"mean {100 * sum(acc.values()) / len(acc):.2f}% over {len(acc)} labels",
                     ""))
        if "checker_accuracy" in m:
            c = m["checker_accuracy"]
            per = ", ".join(f"{k} {100 * v:.1f}" for k, v in c.items() if k != "overall")
            rows.append(("scenes checker on real renders with true captions (target >= 97%)",
                         f"{100 * c['overall']:.2f}%", per, ""))

    header = f"{machine_line()} at the end, device {describe(device)}"
    mode = "smoke: figures mean nothing" if args.smoke else "quick" if args.quick else "full"
    lines = [f"Training benchmark ({mode}): {header}", "",
             "| what | Easel | reference | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(lines)
    emit(text, args.out)


if __name__ == "__main__":
    main()
