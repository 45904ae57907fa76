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
PEAK_FILE_ENV = "EASEL_TEST_PEAK_FILE"
# `python -m core ARGS` under that ceiling (set in the child itself: no preexec_fn), writing its
# own peak RSS in KiB to $EASEL_TEST_PEAK_FILE as it exits. The child must measure it: on Linux
# the ru_maxrss that wait4 (or RUSAGE_CHILDREN) reports for a child includes the memory of the
# process it was forked from (exec keeps the old address space's high-water mark, and the
# subprocess module's vfork shares the parent's), so after a test that grew this process to
# 1.4 GB every child looked that big. VmHWM is the high-water mark of the child's own address
# space, fresh at exec.
GUARDED_CLI = f"""
import os, resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({GUARD_BYTES}, {GUARD_BYTES}))
sys.argv = ['easel', *sys.argv[1:]]
try:
    runpy.run_module('core', run_name='__main__', alter_sys=True)
finally:
    try:
        with open('/proc/self/status') as f:
            kib = int(next(ln for ln in f if ln.startswith('VmHWM:')).split()[1])
    except (OSError, StopIteration):  # no procfs: ru_maxrss is this process's own there
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (
            1024 if sys.platform == 'darwin' else 1)
    with open(os.environ['{PEAK_FILE_ENV}'], 'w') as f:
        f.write(str(kib))
"""


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
    """``easel ARGS`` in its own process with EASEL_HOME=home; the peak RSS is the child's own
    (as it reports it; if it died before it could, wait4's figure, which can only be higher)."""

    stamp = time.monotonic_ns()
    err_path, peak_path = home / f"stderr-{stamp}.txt", home / f"peak-{stamp}.txt"
    full_env = {**os.environ, "EASEL_HOME": str(home), "PYTHONPATH": str(REPO),
                PEAK_FILE_ENV: str(peak_path), **env}
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
    try:
        peak_kib = float(peak_path.read_text())
    except (OSError, ValueError):
        peak_kib = usage.ru_maxrss
    return Run(proc.returncode, text, peak_kib / 1024, seconds)


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
