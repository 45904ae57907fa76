"""Device choice (cuda > mps > cpu), dtype, and the out-of-memory fallback.

The choice can be overridden, in order of precedence, by an explicit argument (the CLI's
``--device``, the app's setting) and the ``EASEL_DEVICE`` environment variable.

Importing this module does not import torch (each function that needs it imports it): the
desktop app imports it on the GUI thread, and torch loads in the inference worker at the
first job. :func:`device_name` and :func:`choose` check a name without torch.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
VALID = ("auto", "cuda", "mps", "cpu")


def __getattr__(name: str) -> Any:
    """``GIVEN_THREADS``: torch's intra-op thread count when Easel started (all cores, or what
    OMP_NUM_THREADS says), the most a job is given. Read at its first use, which comes before
    Easel sets the count (a job's start, the CLI's run), so that importing this module does
    not import torch."""
    if name == "GIVEN_THREADS":
        import torch

        globals()[name] = given = torch.get_num_threads()
        return given
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DeviceError(ValueError):
    """An unknown or unavailable device was asked for."""


def available_devices() -> list[str]:
    """The devices torch can run on here, best first (CUDA GPUs, Apple MPS, the CPU)."""
    import torch

    devs = []
    if torch.cuda.is_available():
        devs += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    devs.append("cpu")
    return devs


def device_name(requested: str | None = None) -> str:
    """The device asked for: ``requested``, else ``$EASEL_DEVICE``, else "auto", in lower case;
    DeviceError for a name that is none of auto, cuda, mps, cpu (with an index or not)."""
    name = (requested or os.environ.get("EASEL_DEVICE") or "auto").strip().lower()
    if name.split(":")[0] not in VALID:
        raise DeviceError(f"Unknown device {name!r}; choose one of auto, cuda, mps, cpu.")
    return name


def choose(name: str, available: list[str]) -> str:
    """The device that :func:`device_name` ``name`` runs on, given the ``available`` ones
    (best first, as :func:`available_devices` lists them); DeviceError when it is not there."""
    if name == "auto":
        return available[0]
    base = name.split(":")[0]
    if base == "cuda" and not any(d.startswith("cuda") for d in available):
        raise DeviceError("CUDA was asked for but no CUDA GPU is available here.")
    if base == "mps" and "mps" not in available:
        raise DeviceError("MPS was asked for but Apple's Metal backend is not available here.")
    return name


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on: ``requested``, else ``$EASEL_DEVICE``, else the best one."""
    import torch

    return torch.device(choose(device_name(requested), available_devices()))


def found_devices() -> dict[str, str]:
    """Every available device, best first, with what :func:`describe` says of it (what the
    app's device menu and status bar show)."""
    import torch

    return {d: describe(torch.device(d)) for d in available_devices()}


def describe(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def default_dtype(device: torch.device) -> torch.dtype:
    """float32 everywhere: the models are small, and it keeps CPU and GPU results close."""
    import torch

    return torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's out-of-memory error, or a job's message about one (core.jobs.OutOfMemory)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError) or getattr(exc, "out_of_memory", False):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def reproducible(device: torch.device) -> None:
    """Settings under which the same spec on the same device gives the same pixels
    (docs/determinism.md): no TF32, no cuDNN autotuning, cuDNN's deterministic kernels and,
    on CUDA, torch's deterministic algorithms (warning, not failing, for an op that has none:
    such jobs are reproducible to rounding, not bit for bit)."""
    import torch

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
    import torch

    gc.collect()  # tensors only a dead frame or a cycle still holds
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def with_oom_fallback(fn: Callable[[torch.device], T], device: torch.device) -> T:
    """Run ``fn(device)``; on out-of-memory on an accelerator, free the cache and retry on CPU."""
    import torch

    try:
        return fn(device)
    except Exception as exc:
        if device.type == "cpu" or not is_out_of_memory(exc):
            raise
    free_memory(device)  # outside the handler: the traceback no longer holds the tensors
    return fn(torch.device("cpu"))


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def machine_load(samples: int = 4, interval_s: float = 0.002) -> float | None:
    """How many CPUs other programs want now; None where the OS does not say.

    On Linux, the runnable tasks of /proc/loadavg (its fourth field, an instantaneous count)
    less this process's own runnable threads, averaged over a few samples: the one-minute
    load average would still count the previous job's own threads for a minute after it
    ended, and torch's threads spin for a while after each op. Elsewhere, the one-minute load
    average (os.getloadavg).
    """
    counts = []
    for i in range(samples):
        running = _runnable_now()
        if running is None:
            break
        counts.append(max(0, running - _own_running_threads()))
        if i + 1 < samples:
            time.sleep(interval_s)
    if counts:
        return sum(counts) / len(counts)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _runnable_now() -> int | None:
    """Tasks running or runnable on the whole machine now (Linux); None elsewhere."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_running_threads() -> int:
    """This process's threads that are running or runnable (Linux /proc; at least 1, the
    caller)."""
    n = 0
    for name in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{name}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        n += text[text.rindex(")") + 2:text.rindex(")") + 3] == "R"
    return max(1, n)


def threads_for_load(load: float | None, cores: int) -> int:
    """Intra-op threads for a CPU job: every core on a quiet machine; on a busy one, the cores
    the other work leaves, less one so the GUI (and the rest of the desktop) keeps a core.

    More threads than free cores is what makes a busy machine collapse: torch's threads
    spin-wait at every parallel op for the slowest of them, and a thread that shares its core
    with another program is slow. bench/load.py measures it. Unknown load: every core.
    """
    cores = max(1, int(cores))
    if load is None or load < 0.5:
        return cores
    return max(1, min(cores - 1, cores - math.ceil(load - 0.25) - 1))


def cpu_threads() -> int:
    """:func:`threads_for_load` for this machine now."""
    return threads_for_load(machine_load(), usable_cores())


def use_cpu_threads(most: int) -> int:
    """Set torch's intra-op thread count by :func:`cpu_threads`, at most ``most`` (the count
    the process was given, e.g. by OMP_NUM_THREADS), and return it. Called when a job starts
    (the inference worker, the CLI) and every few seconds by training."""
    import torch

    n = max(1, min(int(most), cpu_threads()))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
