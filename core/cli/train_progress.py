"""How training events (core/training/trainer.py) reach a person or a program (``easel train``).

``JsonlSink`` prints each event as one JSON line on stdout (``easel train --progress jsonl``,
read by the desktop Train panel); ``BarSink`` draws a progress bar on a terminal and prints the
occasional line (a folder's scan summary, checkpoints, the final weights) otherwise.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, TextIO

from core.cli.common import ProgressBar


def _finite(v: Any) -> Any:
    """JSON has no NaN/Infinity; a non-finite number becomes null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return v


class JsonlSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.errored = False
        self.closed = False

    def __call__(self, event: dict[str, Any]) -> None:
        self.errored |= event.get("event") == "error"
        if self.closed:
            return
        try:
            self.stream.write(json.dumps(_finite(event)) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            # The reader went away (the app closed, a full disk under a redirected stdout):
            # training goes on; its checkpoints and losses.csv still tell how it went.
            self.closed = True


class BarSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar = ProgressBar(self.stream) if self.tty else None
        self.errored = False

    def __call__(self, event: dict[str, Any]) -> None:
        from core.jobs import Progress

        kind = event.get("event")
        if kind == "step" and self.bar is not None:
            losses = "  ".join(f"{k} {v:.4g}" for k, v in event["losses"].items())
            msg = f"step {event['step']}/{event['total']}  {losses}  " \
                  f"{event['images_per_s']:.0f} img/s"
            self.bar(Progress(event["step"], event["total"], msg))
        elif kind == "start":
            self._line(f"Training {event['recipe']} on {event['device']}"
                       + (f" x {event['processes']}" if event["processes"] > 1 else "")
                       + f" from step {event['step']} of {event['total']} into {event['out']}")
        elif kind == "data":  # a folder scan: say what is used and what was left out
            self._line(f"Data: {event['used']} images from {event['source']}"
                       + (f"; {event['summary']}" if event.get("summary") else ""))
        elif kind == "checkpoint" and not self.tty:
            self._line(f"step {event['step']}: checkpoint {event['path']}")
        elif kind == "done":
            if self.bar is not None:
                self.bar.close()
            if event.get("weights"):
                self._line(f"Wrote {event['weights']} ({event['step']} steps, "
                           f"{event['wall_time_s']:.0f} s)")
        elif kind == "error":
            self.errored = True  # the CLI prints the one-line error itself
            if self.bar is not None:
                self.bar.close()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
