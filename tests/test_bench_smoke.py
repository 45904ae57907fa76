"""Every benchmark in bench/ runs: its --smoke mode (imports, one tiny case per peer) exits 0
and prints its table. A benchmark that cannot import or crashes on its first case fails here
instead of on the day someone needs its figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
HELPERS = {"report.py"}  # shared code, not a benchmark
SMOKE_LIMIT_S = 120  # each smoke mode aims at 30 s; the limit leaves room for a busy machine

# script -> a line of its table's header that the smoke run must print
HEADERS = {
    "cancel.py": "stop after cancel ms",
    "device_syncs.py": "syncs  where",
    "gui_probe.py": "| job | job s | CPU s | longest GUI gap (ms) |",
    "inpaint.py": "## Quality and time per image",
    "latent.py": "| figure | VAE | DCGAN | peer / floor |",
    "load.py": "style s/step",
    "scene.py": "| figure | N = 1 | N = 8 | peers / bounds |",
    "startup.py": "| command | first start (s) | warm median (s) |",
    "style.py": "## Time to a finished 64 px picture on this CPU",
    "train_panel.py": "| model | trained on | steps | train time |",
    "training.py": "| what | Easel | reference | ratio |",
}


def test_every_benchmark_has_a_smoke_case() -> None:
    scripts = {p.name for p in BENCH.glob("*.py")} - HELPERS
    assert scripts == set(HEADERS), "bench/ scripts and this test's list differ"
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    for name in scripts:
        rows = [line for line in readme.splitlines() if line.startswith(f"| `{name}")]
        assert rows, f"bench/README.md does not list {name}"
        assert any("--smoke" in row for row in rows), f"bench/README.md: no --smoke for {name}"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(HEADERS))
def test_smoke_mode_runs(script: str, tmp_path: Path) -> None:
    env = dict(os.environ, EASEL_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])),
               TMPDIR=str(tmp_path))
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=SMOKE_LIMIT_S, check=False)
    seconds = time.perf_counter() - t0
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"{script} --smoke exited {run.returncode}:\n{out[-3000:]}"
    assert HEADERS[script] in run.stdout, f"{script} --smoke printed no table:\n{out[-3000:]}"
    print(f"{script} --smoke: {seconds:.1f} s")
