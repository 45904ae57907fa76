"""What every benchmark shares: the machine line of its header, timing peers fairly (wall and
CPU seconds, interleaved and repeated, medians), the --smoke switch, and the finished table
(printed, and written as markdown)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.imageio import atomic_write

REPEATS = 5  # timed runs per peer where a run is short (the median is reported)
SHORT_S = 2.0  # seconds: a run longer than this is timed once (report.interleaved's long_s)
SMOKE_HELP = ("imports and one tiny case per peer, a few seconds each: checks that the "
              "benchmark runs (its figures mean nothing)")


def emit(text: str, out: str | os.PathLike | None) -> None:
    """Print ``text``; with ``out``, also write it there (folders made, written atomically)."""
    print(text, flush=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, (text + "\n").encode("utf-8"))


def add_smoke(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


def load_average() -> float:
    """The one-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MiB. On Linux VmHWM, the high-water mark of
    its address space since exec: ru_maxrss also counts the memory of the process it was forked
    from (exec keeps the old address space's high-water mark), so a child of a large process
    would look as large. Elsewhere ru_maxrss (bytes on macOS, KiB on other systems)."""
    import resource
    import sys

    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (2**20 if sys.platform == "darwin" else 2**10)


def machine_line() -> str:
    """CPU count, torch version and threads, and the load average now: what makes timings of
    two runs comparable or not. Reads torch only when the benchmark has imported it."""
    import sys

    torch = sys.modules.get("torch")
    threads = (f", torch {torch.__version__} with {torch.get_num_threads()} threads"
               if torch is not None else "")
    return (f"{platform.machine()}, {os.cpu_count()} CPUs{threads}, "
            f"load average {load_average():.2f}")


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds and this process's CPU seconds (all its threads)."""

    wall: float
    cpu: float
    load: float  # one-minute load average when the run ended


def timed(fn: Callable[[], Any]) -> tuple[Any, Sample]:
    """``fn()``'s result and its :class:`Sample`."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return out, Sample(t1 - t0, c1 - c0, load_average())


def interleaved(peers: dict[Any, Callable[[int], Any]], repeats: int, warm: bool = True,
                long_s: float | None = None) -> dict[Any, list[Sample]]:
    """Time each peer ``repeats`` times, round-robin (peer A, peer B, ..., then again), so a
    burst of load elsewhere on the machine falls on all peers alike rather than on whichever
    ran during it. Each peer is called with the repeat index (a seed); with ``warm``, each is
    first run once untimed (model loading, kernel choice) with index -1. With ``long_s``, a
    peer whose first timed run took longer than that is not repeated (one long run is its own
    average; repeats are for runs short enough for a scheduler hiccup to dominate)."""
    if warm:
        for fn in peers.values():
            fn(-1)
    out: dict[Any, list[Sample]] = {name: [] for name in peers}
    for r in range(repeats):
        for name, fn in peers.items():
            if r and long_s is not None and out[name][0].wall > long_s:
                continue
            out[name].append(timed(lambda fn=fn, r=r: fn(r))[1])
    return out


def median_wall(samples: list[Sample]) -> float:
    return statistics.median(s.wall for s in samples)


def median_cpu(samples: list[Sample]) -> float:
    return statistics.median(s.cpu for s in samples)


def seconds_cell(samples: list[Sample], scale: float = 1.0, digits: int = 3) -> str:
    """"median wall (CPU median cpu, n runs)" in seconds times ``scale`` (1000 for ms)."""
    w, c = median_wall(samples) * scale, median_cpu(samples) * scale
    return f"{w:.{digits}f} (CPU {c:.{digits}f}, {len(samples)} runs)"


def load_range(samples: list[Sample]) -> str:
    loads = [s.load for s in samples]
    return f"{min(loads):.2f}-{max(loads):.2f}"


def text_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A plain-text table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
