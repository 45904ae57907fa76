"""Device choice (cuda > mps > cpu), dtype, and the out-of-memory fallback.

The choice can be overridden, in order of precedence, by an explicit argument (the CLI's
``--device``, the app's setting) and the ``EASEL_DEVICE`` environment variable.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

import torch

T = TypeVar("T")
VALID = ("auto", "cuda", "mps", "cpu")


class DeviceError(ValueError):
    """An unknown or unavailable device was asked for."""


def available_devices() -> list[str]:
    devs = []
    if torch.cuda.is_available():
        devs += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    devs.append("cpu")
    return devs


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on: ``requested``, else ``$EASEL_DEVICE``, else the best one."""
    name = (requested or os.environ.get("EASEL_DEVICE") or "auto").strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    base = name.split(":")[0]
    if base not in VALID:
        raise DeviceError(f"Unknown device {name!r}; choose one of auto, cuda, mps, cpu.")
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for but no CUDA GPU is available here.")
    if base == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise DeviceError("MPS was asked for but Apple's Metal backend is not available here.")
    return torch.device(name)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def default_dtype(device: torch.device) -> torch.dtype:
    """float32 everywhere: the models are small, and it keeps CPU and GPU results close."""
    return torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def reproducible(device: torch.device) -> None:
    """Settings under which the same spec on the same device gives the same pixels
    (docs/determinism.md): no TF32, no cuDNN autotuning, cuDNN's deterministic kernels and,
    on CUDA, torch's deterministic algorithms (warning, not failing, for an op that has none:
    such jobs are reproducible to rounding, not bit for bit)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if device.type == "cuda":
        # cuBLAS needs a fixed workspace for deterministic matrix products (CUDA >= 10.2).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def free_memory(device: torch.device) -> None:
    """Hand the blocks torch's allocator keeps cached on ``device`` back to the system (after
    an out-of-memory, or once models have left the device)."""
    gc.collect()  # tensors only a dead frame or a cycle still holds
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def with_oom_fallback(fn: Callable[[torch.device], T], device: torch.device) -> T:
    """Run ``fn(device)``; on out-of-memory on an accelerator, free the cache and retry on CPU."""
    try:
        return fn(device)
    except Exception as exc:
        if device.type == "cpu" or not is_out_of_memory(exc):
            raise
    free_memory(device)  # outside the handler: the traceback no longer holds the tensors
    return fn(torch.device("cpu"))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads, then restore the previous count.

    For many small tensor operations (PatchMatch's gathers) extra threads gain little on a
    quiet machine and lose badly on a busy one: their spin-waiting threads fight whatever else
    runs. bench/inpaint.py measured a 512 px fill at 0.44 s with 2 threads and 0.53 s with 1 on
    a quiet 2-core machine, but 1.8-2.0 s against 0.5-0.6 s with one other busy process.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def small_net_threads(device: torch.device) -> AbstractContextManager:
    """One intra-op thread on the CPU for the small nets of a job (see :func:`torch_threads`:
    a second thread mostly fights other work); no change on other devices."""
    return torch_threads(1) if device.type == "cpu" else nullcontext()
