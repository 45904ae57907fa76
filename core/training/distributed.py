"""torchrun support: process group set-up, rank helpers, and loss averaging across ranks.

``torchrun --nproc_per_node N -m core train RECIPE`` (or ``python -m torch.distributed.run``)
sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; :func:`setup` turns them into a
process group (nccl on CUDA, gloo on the CPU) and the device of this rank. Without them
everything is a single process and these helpers do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> Dist:
    """The rank layout torchrun put in the environment (a single process without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(d: Dist, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each local rank gets its own GPU. Returns the device."""
    if not d.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", d.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=d.rank, world_size=d.world_size)
    return device


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``module`` when distributed (gradients averaged)."""
    if not d.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def mean_losses(losses: dict[str, float], d: Dist, device: torch.device) -> dict[str, float]:
    """Average each loss over the ranks (every rank calls this on the same steps)."""
    if not d.enabled or not losses:
        return losses
    keys = list(losses)  # the same order on every rank (one family, one code path)
    t = torch.tensor([losses[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / d.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def any_flags(flags: tuple[bool, ...], d: Dist, device: torch.device) -> tuple[bool, ...]:
    """Each flag True on every rank when any rank raised it (a stop request must stop all
    ranks at the same step, or the next collective would hang): one collective, one wait."""
    if not d.enabled:
        return flags
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(v > 0 for v in t.tolist())


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()
