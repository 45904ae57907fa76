"""Crafted inputs for the hardening tests, and a runner that holds one CLI run to the budget:
exit 2, one line on stderr, peak memory under 1 GiB and under 20 s, in a fresh process."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

REPO = Path(__file__).resolve().parents[1]
BUDGET_MB = 1024
BUDGET_S = 20
GUARD_BYTES = 3 * 2**30  # address-space ceiling so a regression fails fast, not the machine
# `python -m core ARGS` under that ceiling (set in the child itself: no preexec_fn)
GUARDED_CLI = (f"import resource, runpy, sys; "
               f"resource.setrlimit(resource.RLIMIT_AS, ({GUARD_BYTES}, {GUARD_BYTES})); "
               "sys.argv = ['easel', *sys.argv[1:]]; runpy.run_module('core', "
               "run_name='__main__', alter_sys=True)")


@dataclass
class Run:
    code: int
    stderr: str
    peak_mb: float
    seconds: float

    def assert_clean_refusal(self, *words: str) -> None:
        """Exit 2, one stderr line (containing ``words``), within the budget."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert self.code == 2, (self.code, self.stderr[-2000:])
        assert len(lines) == 1, self.stderr[-2000:]
        for word in words:
            assert word in lines[0], lines[0]
        assert self.peak_mb < BUDGET_MB, self.peak_mb
        assert self.seconds < BUDGET_S, self.seconds


def run_cli(args: list[str], home: Path, **env: str) -> Run:
    """``easel ARGS`` in its own process with EASEL_HOME=home; its own peak RSS (wait4)."""

    full_env = {**os.environ, "EASEL_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    err_path = home / f"stderr-{time.monotonic_ns()}.txt"
    home.mkdir(parents=True, exist_ok=True)
    with open(err_path, "w+b") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", GUARDED_CLI, *args], cwd=REPO,
                                env=full_env, stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(3 * BUDGET_S, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return Run(proc.returncode, text, usage.ru_maxrss / 1024, seconds)


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def embedded(a: np.ndarray) -> dict[str, Any]:
    """An image reference with the picture embedded, as masks are saved."""
    from core.jobs import pixel_hash

    return {"sha256": pixel_hash(a), "shape": list(a.shape),
            "png": base64.b64encode(png_bytes(a)).decode("ascii")}


def claimed_png(width: int, height: int) -> str:
    """A tiny base64 PNG whose header claims ``width`` x ``height`` (a decompression bomb's
    header: it would inflate to width * height bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))
    return base64.b64encode(data).decode("ascii")


def png_with_metadata(path: Path, text: str, size: int = 8) -> Path:
    """A small valid PNG whose ``easel`` iTXt chunk holds ``text`` (compressed) as it is."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("easel", text, zip=True)
    Image.new("RGB", (size, size), (90, 120, 150)).save(path, pnginfo=info)
    return path
