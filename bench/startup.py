"""Start-up time of the desktop app: from launching the process to its main window on screen.

Each command runs with ``EASEL_STARTUP_PROBE=1``: desktop/app.py prints ``easel: window shown``
once the shown window is exposed and painted, then closes. The time is measured from starting
the process to that line. Rows, measured in the same run:

- the PyInstaller bundle's GUI executable (``dist/Easel/easel-gui``; build it with
  ``bash installer/build_linux.sh``), when it exists;
- the source checkout, ``python -m desktop.app`` with this interpreter (the peer).

Cold start is the first run after dropping the page cache (``sync; echo 3 >
/proc/sys/vm/drop_caches``, root only; the header says whether it worked, and without it the
first run is only "first"); warm is the median of the runs after it. All runs share one empty
``EASEL_HOME`` (and, on Linux, ``XDG_CONFIG_HOME`` for Qt's settings), so the user's own
folders and window settings are never touched. Needs a display: ``DISPLAY=:99`` with Xvfb,
or ``--offscreen``.

    python bench/startup.py [--smoke] [--runs 5] [--bundle PATH | --no-bundle] [--no-source]
                            [--cmd "COMMAND ..."] [--no-drop-caches] [--offscreen]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import machine_line

ROOT = Path(__file__).resolve().parent.parent
SHOWN = "easel: window shown"
TIMEOUT_S = 120.0


def default_bundle() -> Path:
    """Where installer/easel.spec puts the GUI executable on this platform."""
    if sys.platform == "darwin":
        return ROOT / "dist" / "Easel.app" / "Contents" / "MacOS" / "easel-gui"
    return ROOT / "dist" / "Easel" / ("easel-gui.exe" if sys.platform == "win32" else "easel-gui")


def drop_caches() -> bool:
    """Empty the page cache so the next start reads its files from disk (Linux, root)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def time_to_window(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting ``cmd`` to its ``easel: window shown`` line, and the CPU seconds
    (user + system) the process used from start to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    shown = None
    try:
        for line in proc.stdout:
            if line.strip() == SHOWN:
                shown = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > TIMEOUT_S:
                break
        proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if shown is None:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{shlex.join(cmd)} never showed its window (exit code "
                           f"{proc.returncode}):\n{err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return shown, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(targets: list[tuple[str, list[str]]], runs: int, env: dict[str, str], cold: bool
            ) -> list[tuple[str, dict[str, Any]]]:
    """Each command's first run (after dropping the page cache, with ``cold``), then ``runs``
    warm rounds, the commands interleaved within each round."""
    out: dict[str, dict[str, Any]] = {}
    for label, cmd in targets:
        first_dropped = drop_caches() if cold else False
        out[label] = {"first": time_to_window(cmd, env), "cold": first_dropped, "warm": []}
    for _ in range(runs):
        for label, cmd in targets:
            out[label]["warm"].append(time_to_window(cmd, env))
    return list(out.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="warm runs per command (default 5)")
    ap.add_argument("--bundle", type=Path, default=None,
                    help=f"the bundle's GUI executable (default {default_bundle()})")
    ap.add_argument("--no-bundle", action="store_true", help="skip the bundle")
    ap.add_argument("--no-source", action="store_true", help="skip python -m desktop.app")
    ap.add_argument("--source", action="store_true",
                    help="only the source checkout (same as --no-bundle)")
    ap.add_argument("--cmd", action="append", default=[],
                    help="another command to time (a shell-quoted string; repeatable)")
    ap.add_argument("--no-drop-caches", action="store_true",
                    help="do not drop the page cache before each command's first run")
    ap.add_argument("--offscreen", action="store_true",
                    help="QT_QPA_PLATFORM=offscreen instead of a display")
    ap.add_argument("--smoke", action="store_true",
                    help="the source checkout only, offscreen, one first and one warm run, page "
                    "cache kept: checks that the benchmark runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.source = args.offscreen = args.no_drop_caches = True
        args.runs = 1

    env = dict(os.environ, EASEL_STARTUP_PROBE="1", PYTHONUNBUFFERED="1")
    if args.offscreen:
        env["QT_QPA_PLATFORM"] = "offscreen"
    elif not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY") and \
            sys.platform.startswith("linux"):
        print("startup.py: no DISPLAY: run it under Xvfb (DISPLAY=:99) or pass --offscreen",
              file=sys.stderr)
        return 2

    targets: list[tuple[str, list[str]]] = []
    if not (args.no_bundle or args.source):
        bundle = args.bundle or default_bundle()
        if bundle.exists():
            shown = bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle
            targets.append((f"bundle ({shown})", [str(bundle)]))
        else:
            print(f"startup.py: no bundle at {bundle} (bash installer/build_linux.sh builds "
                  "it); measuring the others", file=sys.stderr)
    if not args.no_source:
        targets.append(("source (python -m desktop.app)",
                        [sys.executable, "-m", "desktop.app"]))
    targets += [(c, shlex.split(c)) for c in args.cmd]
    if not targets:
        print("startup.py: nothing to measure", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="easel-startup-") as home:
        env["EASEL_HOME"] = home  # the app's settings too: the user's own are left alone
        results = measure(targets, args.runs, env, cold=not args.no_drop_caches)

    dropped = any(r["cold"] for _, r in results)
    print(f"# Easel start-up to a shown window ({machine_line()}, "
          f"display {env.get('QT_QPA_PLATFORM') or env.get('DISPLAY') or 'native'}; "
          f"page cache dropped before each first run: {'yes' if dropped else 'no'})")
    print()
    first_col = "cold start (s)" if dropped else "first start (s)"
    print(f"| command | {first_col} | warm median (s) | warm min-max (s) | warm CPU median (s, "
          "start to exit) | warm runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in results:
        warm = [w for w, _ in r["warm"]]
        med = f"{statistics.median(warm):.2f}" if warm else "-"
        span = f"{min(warm):.2f}-{max(warm):.2f}" if warm else "-"
        cpu = f"{statistics.median(c for _, c in r['warm']):.2f}" if warm else "-"
        print(f"| {label} | {r['first'][0]:.2f} | {med} | {span} | {cpu} | {len(warm)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
