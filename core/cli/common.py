"""What the ``easel`` subcommands share: bad-input errors, running a job with a progress bar,
checking and writing the output PNG, the report printed after it, and the common options.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

PROG = "easel"


class CliError(Exception):
    """Bad input noticed by the command line itself (exit code 2)."""


def error(message: str) -> None:
    """Print ``message`` as the command's one-line error on stderr."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line ``\\r`` progress bar with percent, ETA and the step's message."""

    def __init__(self, stream: TextIO, width: int = 24, label: str = "") -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_len = 0

    def __call__(self, p: Any) -> None:  # p: core.jobs.Progress
        now = time.monotonic()
        if now - self._last_draw < 0.1 and p.step < p.total:
            return  # redrawing more than ten times a second only costs time
        self._last_draw = now
        frac = p.fraction
        filled = round(frac * self.width)
        elapsed = now - self.t0
        eta = _clock(elapsed * (1 - frac) / frac) if frac > 0 else "--:--"
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:3.0f}%  ETA {eta}"
        message = " ".join(t for t in (self.label, p.message) if t)
        if message:
            line += f"  {message}"
        line = line[: max(20, shutil.get_terminal_size().columns - 1)]
        self.stream.write("\r" + line.ljust(self._last_len))
        self.stream.flush()
        self._last_len = len(line)

    def close(self) -> None:
        if self._last_len:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@contextlib.contextmanager
def _sigint_cancels(event: threading.Event) -> Iterator[None]:
    """Ctrl-C asks the job to stop at its next step; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_spec(spec: Any, device: str | None, models: Any = None, label: str = "") -> Any:
    """Run ``spec`` to its Result on ``device``, with a progress bar when stderr is a terminal.

    ``models``: a core.weights.ModelCache to share between runs (a batch's); ``label``: put
    before each step's message on the bar.
    """
    import core.pipelines  # noqa: F401  (registers every pipeline: `rerun` names none itself)
    from core.device import GIVEN_THREADS, pick_device, use_cpu_threads
    from core.jobs import Context, run_job
    from core.weights import ModelCache

    models = ModelCache() if models is None else models
    ctx = Context.for_spec(spec, device=pick_device(device), models=models)
    use_cpu_threads(GIVEN_THREADS)
    ctx.preview_wanted = lambda: False  # a progress bar shows no pictures
    bar = ProgressBar(sys.stderr, label=label) if sys.stderr.isatty() else None
    with _sigint_cancels(ctx.cancel_event):
        try:
            return run_job(spec, ctx, bar)
        finally:
            if bar is not None:
                bar.close()


# --------------------------------------------------------------------------- output


def check_output(out: str, inputs: list[Path], overwrite: bool) -> Path:
    """Refuse outputs that would replace an input or, without --overwrite, any existing file."""
    path = Path(out).expanduser().resolve()
    if path.suffix.lower() != ".png":
        raise CliError(f"{out}: the output must be a .png file (it carries the job's metadata).")
    if not path.parent.is_dir():
        what = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise CliError(f"{out}: {path.parent} {what}.")
    for inp in inputs:
        same = path == inp.resolve() or (
            path.exists() and inp.exists() and os.path.samefile(path, inp))
        if same:
            raise CliError(f"{out} is an input of this job; results never overwrite an input.")
    if path.exists() and not overwrite:
        raise CliError(f"{out} already exists; pass --overwrite to replace it.")
    return path


def write_result(out: Path, result: Any, alpha: Any, edited: bool, overwrite: bool) -> None:
    from core.imageio import save_png

    save_png(out, result.images[0], alpha=alpha, spec=result.spec.to_dict(),
             extra={"models": result.info.get("models", {})}, edited=edited,
             overwrite=overwrite)


def fit_alpha(alpha: Any, image: Any) -> Any:
    """``alpha`` (HxW uint8 or None) resized bicubic to ``image``'s size when it differs."""
    if alpha is None or alpha.shape == image.shape[:2]:
        return alpha
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(alpha, "L").resize((w, h), Image.Resampling.BICUBIC))


def report(args: argparse.Namespace, out: Path, result: Any) -> None:
    seconds = result.info.get("seconds")
    if args.json:
        print(json.dumps({"output": str(out), "spec": result.spec.to_dict(), "seconds": seconds}))
    else:
        print(f"Wrote {out} ({seconds:.2f} s)" if seconds is not None else f"Wrote {out}")


# --------------------------------------------------------------------------- options


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
        return value

    return parse


def number_between(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # NaN too
            raise argparse.ArgumentTypeError(f"must lie in [{low:g}, {high:g}], not {text}")
        return value

    return parse


def add_run_options(p: argparse.ArgumentParser, output_help: str = "the PNG to write",
                    json_help: str = "print one JSON object on stdout") -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=output_help)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help=json_help)
    # SUPPRESS: without it the subcommand's default would hide a global --device.
    p.add_argument("--device", default=argparse.SUPPRESS, help="auto, cuda, mps or cpu")
