"""Upscaler time per megapixel: the users' nets Easel opens (Real-ESRGAN x4plus's full-size
RRDB, realesr-general-x4v3's SRVGG compact, SPAN) beside Easel's own x4 (the shipped
``upscale_faces``).

Each net runs as the upscale job runs it (core.pipelines.upscale.upscale_tensor: tiles of
TILE input pixels, extended by the net's reach up to MAX_CONTEXT) on the same random picture,
interleaved and repeated where a run is short (bench/report.py); the table gives the median
wall and CPU seconds per output megapixel, the input megapixels per second, parameters, and
the load average over the runs. The third-party nets have random weights at their released
sizes: time does not depend on the weights. On a shared machine compare rows of one run.

Run: python bench/upscale_thirdparty.py [--size PX] [--device cpu|cuda|mps] [--smoke]
     [--out FILE.md]
"""

from __future__ import annotations

import argparse
import math

import torch
from report import (
    REPEATS,
    SHORT_S,
    add_smoke,
    emit,
    interleaved,
    load_range,
    machine_line,
    markdown_table,
    median_cpu,
    median_wall,
)

from core import registry
from core.device import use_cpu_threads
from core.pipelines.upscale import TILE, load_upscaler, upscale_tensor

SIZE = 192  # input pixels per side: one tile of the job
SMOKE_SIZE = 24
# The released configs (Real-ESRGAN's inference_realesrgan.py; SPAN's paper, x4)
PEERS = {
    "RRDB x4 (Real-ESRGAN x4plus, 23 blocks)": ("esrgan", {"num_feat": 64, "num_block": 23,
                                                         "num_grow_ch": 32, "scale": 4}),
    "SRVGG compact x4 (realesr-general-x4v3)": ("compact", {"num_feat": 64, "num_conv": 32,
                                                           "scale": 4}),
    "SPAN x4 (48 features)": ("span", {"feature_channels": 48, "scale": 4}),
}
EASEL = "upscale_faces"


def random_net(architecture: str, config: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = registry.build(architecture, config)
    with torch.no_grad():
        for p in net.parameters():  # a trained net's scale, so no activation overflows
            p.normal_(0, 0.02)
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=SIZE, help=f"input side in px (default {SIZE})")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    add_smoke(ap)
    args = ap.parse_args(argv)
    size = SMOKE_SIZE if args.smoke else args.size
    device = torch.device(args.device)
    use_cpu_threads(torch.get_num_threads())  # as the app starts a job

    nets = {name: random_net(arch, cfg).to(device) for name, (arch, cfg) in PEERS.items()}
    try:
        nets[f"Easel's own x4 ({EASEL})"] = load_upscaler(EASEL).to(device)
    except Exception as exc:  # noqa: BLE001 - a JobError or WeightsError names the problem
        print(f"note: Easel's {EASEL} is not measured: {exc}")
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = x.to(device)

    def peer(net: torch.nn.Module):
        def run(_: int) -> None:
            upscale_tensor(net, x)
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    times = interleaved({name: peer(net) for name, net in nets.items()},
                        1 if args.smoke else REPEATS, warm=not args.smoke, long_s=SHORT_S)
    headers = ["upscaler", "parameters", "s per output MP", "CPU s per output MP",
               "input MP/s", "runs"]
    rows = []
    for name, samples in times.items():
        net = nets[name]
        out_mp = (size * net.config.scale) ** 2 / 1e6
        wall, cpu = median_wall(samples), median_cpu(samples)
        rows.append([name, f"{sum(p.numel() for p in net.parameters()):,}",
                     f"{wall / out_mp:.2f}", f"{cpu / out_mp:.2f}",
                     f"{size * size / 1e6 / wall:.4f}", str(len(samples))])
    loads = load_range([s for v in times.values() for s in v])
    smoke = ", smoke: the figures mean nothing" if args.smoke else ""
    title = (f"# Upscalers per megapixel ({size}x{size} input, {math.ceil(size / TILE) ** 2} "
             f"tile(s) of {TILE} px, {device.type}{smoke})")
    header = f"{machine_line()} at the start; load average {loads} over the runs"
    emit("\n\n".join([title, header, markdown_table(headers, rows)]), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
