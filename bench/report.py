"""What every benchmark does with its finished table: print it, and write it as markdown."""

from __future__ import annotations

from pathlib import Path

from core.imageio import atomic_write


def emit(text: str, out: str | None) -> None:
    """Print ``text``; with ``out``, also write it there (folders made, written atomically)."""
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, (text + "\n").encode("utf-8"))
