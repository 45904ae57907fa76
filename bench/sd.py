"""Stable Diffusion 1.5 on the CPU: seconds per UNet step at 512 px and peak memory.

An SD-1.5-size UNet and VAE (the shipped config folder ``core/thirdparty/sd/configs/sd1``)
with random weights, float32 on the CPU, as Easel runs a user's checkpoint there. Each row
runs in a fresh process, so its peak RSS is its own:

- plain: one denoising step as a job takes it (classifier-free guidance: a batch of 2 at
  64x64 latents), then the VAE decode of a 512 px picture;
- attention slicing + VAE tiling: the same with Easel's two memory options on
  (``--attention-slicing --vae-tiling`` on ``easel scene``).

Columns: seconds per UNet step (wall and this process's CPU seconds, median of ``--steps``
timed steps after one untimed), VAE decode seconds, peak resident memory. GPU memory
(``torch.cuda.max_memory_allocated`` at 512 px, float16; target: under 4 GB) is measured only
where CUDA is available, else the table says "not measured".

Run: python bench/sd.py [--steps N] [--size PX] [--out FILE.md]; --smoke runs tiny random
models at 64 px, both rows in one child process (about 10 CPU s, most of it importing torch
and diffusers: checks that the script runs, its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import add_smoke, emit, machine_line, markdown_table, peak_rss_mb, text_table

ROOT = Path(__file__).resolve().parent.parent
ROWS = {"plain": (False, False), "attention slicing + VAE tiling": (True, True)}


def build(smoke: bool, device: str, dtype: str):
    """(unet, vae, text width) with random weights: SD 1.5's size, or tiny for --smoke."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from core.thirdparty.sd import VARIANTS, offline

    offline()
    if smoke:
        sys.path.insert(0, str(ROOT))
        from tests.sd_models import unet_config, vae_config

        unet_cfg, vae_cfg = unet_config("v1"), vae_config()
    else:
        folder = VARIANTS["sd1"].config_dir
        unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
        vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_cfg)
        vae = AutoencoderKL.from_config(vae_cfg)
    gen = torch.Generator().manual_seed(0)
    for model in (unet, vae):
        model.to_empty(device="cpu")
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    kind = getattr(torch, dtype)
    return unet.to(device, kind).eval(), vae.to(device, kind).eval(), \
        int(unet.config.cross_attention_dim)


def child(row: str, size: int, steps: int, smoke: bool, device: str) -> dict:
    """Measure one row in this process (the parent starts a fresh one per row)."""
    import torch

    slicing, tiling = ROWS[row]
    if smoke:
        torch.set_num_threads(1)  # tiny models: more threads only spin
    dtype = "float16" if device == "cuda" else "float32"
    unet, vae, width = build(smoke, device, dtype)
    if slicing:
        unet.set_attention_slice("auto")
    if tiling:
        vae.enable_tiling()
    kind = getattr(torch, dtype)
    latents = torch.randn(2, 4, size // 8, size // 8).to(device, kind)
    text = torch.randn(2, 77, width).to(device, kind)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    walls, cpus = [], []
    with torch.no_grad():
        for i in range(steps + 1):
            c0, t0 = time.process_time(), time.perf_counter()
            unet(latents, 500, encoder_hidden_states=text)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step is untimed: kernel choice, first touches of memory
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
        t0 = time.perf_counter()
        vae.decode(latents[:1] / 0.18215)
        decode = time.perf_counter() - t0
    gpu = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    rss_gib = peak_rss_mb() / 1024  # this child's own peak (report.peak_rss_mb)
    return {"row": row, "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "decode": decode, "rss_gib": rss_gib, "gpu_gib": gpu,
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="timed UNet steps per row (default 2)")
    ap.add_argument("--size", type=int, default=512, help="picture side in pixels (512)")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # rows, comma-separated
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    add_smoke(ap)
    args = ap.parse_args()
    size, steps = (64, 1) if args.smoke else (args.size, args.steps)
    if args.child:
        for row in args.child.split(","):
            print(json.dumps(child(row, size, steps, args.smoke, args.device)))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for device in devices:
        rows = list(ROWS) if device == "cpu" else ["plain"]
        # --smoke: one process for all rows (their figures mean nothing; imports dominate)
        for group in [rows] if args.smoke else [[row] for row in rows]:
            cmd = [sys.executable, __file__, "--child", ",".join(group), "--size", str(size),
                   "--steps", str(steps), "--device", device] + (["--smoke"] * args.smoke)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode:
                sys.exit(f"bench/sd.py: measuring {', '.join(map(repr, group))} failed:\n"
                         f"{proc.stderr[-3000:]}")
            lines = proc.stdout.strip().splitlines()[-len(group):]
            results += [(device, json.loads(line)) for line in lines]
    what = "tiny random SD (--smoke)" if args.smoke else "SD 1.5 size, random weights"
    headers = ["device", "memory options", "UNet step s (CPU s)", "VAE decode s",
               "peak RSS GiB", "GPU max allocated GiB"]
    rows = [[d, r["row"], f"{r['wall']:.2f} ({r['cpu']:.2f})", f"{r['decode']:.2f}",
             f"{r['rss_gib']:.2f}", "not measured" if r["gpu_gib"] is None
             else f"{r['gpu_gib']:.2f}"] for d, r in results]
    if "cuda" not in devices:
        rows.append(["cuda", "plain", "not measured", "not measured", "not measured",
                     "not measured (no CUDA here)"])
    title = (f"Stable Diffusion UNet step and memory at {size} px ({what}; CFG batch 2; "
             f"{results[0][1]['threads']} torch threads; {machine_line()})")
    print(title + "\n\n" + text_table(headers, rows, left=2))
    if args.out:
        emit(f"{title}\n\n{markdown_table(headers, rows, left=2)}", args.out)


if __name__ == "__main__":
    main()
