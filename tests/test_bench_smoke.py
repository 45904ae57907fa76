"""Every benchmark in bench/ runs: its --smoke mode (imports, one tiny case per peer) exits 0
and prints its table, within its budget. A benchmark that cannot import or crashes on its first
case fails here instead of on the day someone needs its figures.

Budgets are CPU seconds of the script's process and of the processes it waited for
(RUSAGE_CHILDREN): on a shared 2-core machine wall time says as much about the neighbours as
about the script. Wall seconds are printed beside them. Threads that wait for a sibling the
busy machine has descheduled must not burn CPU seconds while they wait (under load that
doubled some scripts' CPU seconds): the scripts run with OMP_WAIT_POLICY=PASSIVE (torch's
OpenMP threads sleep at a barrier instead of spinning) and numpy's OpenBLAS on one thread
(its threads spin-wait whatever the policy). torch keeps its threads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
HELPERS = {"report.py", "scene_reader.py", "faces_reader.py",  # shared code, not benchmarks
           "inpaint_photos.py"}
SMOKE_CPU_S = 30.0  # each --smoke
TOTAL_CPU_S = 180.0  # all of them together
HANG_S = 300  # wall seconds after which a --smoke run is taken for hung
# Arguments a script's smoke run gets here. The scene benchmark's default, the shipped layout
# prior, draws 16x16 codes and takes about twice the smoke budget; the shipped caption prior
# (8x8 codes) goes through the same figures, and test_scene_smoke_runs_with_a_layout_prior
# takes the layout path with a tiny layout prior.
SMOKE_ARGS = {"scene.py": ("--model", "prior_scenes")}

# script -> a line of its table's header that the smoke run must print
HEADERS = {
    "cancel.py": "stop after cancel ms",
    "device_syncs.py": "syncs  wall s   CPU s  where",
    "gui_probe.py": "| job | job s | CPU s | longest GUI gap (ms) |",
    "inpaint.py": "## Photos: means over every mask",
    "judge.py": "| figure | value | peer / control |",
    "latent.py": "| figure | VAE | DCGAN | peer / floor |",
    "load.py": "style s/step",
    "scene.py": "| figure | N = 1 | N = 8 | peers / bounds |",
    "sd.py": "UNet step s (CPU s)",
    "startup.py": "| command | first start (s) | warm median (s) |",
    "style.py": "## Time to a finished 64 px picture on this CPU",
    "train_panel.py": "| model | trained on | steps | train time |",
    "training.py": "| what | Easel | reference | ratio |",
    "upscale_thirdparty.py": "| upscaler | parameters | s per output MP |",
}


@dataclass(frozen=True)
class SmokeRun:
    script: str
    returncode: int
    stdout: str
    output: str  # stdout and stderr
    wall: float
    cpu: float  # user + system seconds of the script and the children it waited for


def run_smoke(script: str, tmp_path: Path, args: tuple[str, ...] = (),
              install: Callable[[Path], object] | None = None, name: str = "") -> SmokeRun:
    """``bench/<script> --smoke [ARGS]`` in its own process, with a fresh user folder and temp
    dir (folder ``name``, default the script's); ``install`` fills the user folder first."""
    resource = pytest.importorskip("resource")  # POSIX: CPU seconds of finished children
    home = tmp_path / (name or script.removesuffix(".py"))
    env = dict(os.environ, EASEL_HOME=str(home / "home"), QT_QPA_PLATFORM="offscreen",
               OMP_WAIT_POLICY="PASSIVE", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])),
               TMPDIR=str(home))
    home.mkdir(parents=True)
    if install is not None:
        install(home / "home")

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    run = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=HANG_S, check=False)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return SmokeRun(script, run.returncode, run.stdout, run.stdout + run.stderr, wall, used)


def benchmark_scripts() -> set[str]:
    return {p.name for p in BENCH.glob("*.py")} - HELPERS


def test_readme_lists_exactly_the_benchmarks() -> None:
    scripts = benchmark_scripts()
    assert scripts == set(HEADERS), "bench/ scripts and this test's list differ"
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    tables = re.split(r"^## ", readme, flags=re.M)
    main_table = tables[0]
    smoke_table = next(t for t in tables if t.startswith("Smoke runs"))
    for table, what in ((main_table, "benchmark table"), (smoke_table, "Smoke runs table")):
        named = set(re.findall(r"^\| `(\w+\.py)", table, flags=re.M))
        assert named == scripts, f"bench/README.md {what}: {sorted(named ^ scripts)} differ"
    for name in scripts:
        rows = [line for line in main_table.splitlines() if line.startswith(f"| `{name}")]
        assert any("--smoke" in row for row in rows), f"bench/README.md: no --smoke for {name}"


@pytest.mark.slow
@pytest.mark.timeout(len(HEADERS) * HANG_S)  # each run has its own hang guard; CPU is the budget
def test_every_smoke_mode_runs_within_its_budget(tmp_path: Path) -> None:
    runs = []
    for script in sorted(HEADERS):
        runs.append(run := run_smoke(script, tmp_path, SMOKE_ARGS.get(script, ())))
        print(f"{script} --smoke: {run.cpu:.1f} CPU s, {run.wall:.1f} wall s", flush=True)
    total = sum(r.cpu for r in runs)
    print(f"all --smoke: {total:.1f} CPU s, {sum(r.wall for r in runs):.1f} wall s, "
          f"load average now {os.getloadavg()[0]:.2f}")
    for run in runs:
        assert run.returncode == 0, \
            f"{run.script} --smoke exited {run.returncode}:\n{run.output[-3000:]}"
        assert HEADERS[run.script] in run.stdout, \
            f"{run.script} --smoke printed no table:\n{run.output[-3000:]}"
        # timings on a shared machine are read with CPU seconds and the load beside them
        assert re.search(r"\bCPU (?:s\b|ms\b|median|\d)", run.stdout), \
            f"{run.script} --smoke prints no CPU seconds:\n{run.stdout[-3000:]}"
        assert "load average" in run.stdout, f"{run.script} --smoke prints no load average"
    slow = [f"{r.script} {r.cpu:.1f} s" for r in runs if r.cpu > SMOKE_CPU_S]
    assert not slow, f"--smoke over {SMOKE_CPU_S:.0f} CPU s: {', '.join(slow)}"
    assert total <= TOTAL_CPU_S, f"all --smoke modes took {total:.1f} CPU s"


@pytest.mark.slow
@pytest.mark.timeout(HANG_S)
def test_scene_smoke_runs_with_a_layout_prior(tmp_path: Path) -> None:
    """``bench/scene.py --smoke --model tiny_layout_prior_scenes``: a tiny random layout prior
    over the shipped VQ-VAE (installed as a user model) goes through every figure of the scene
    benchmark, prompts drawn through the layout stage."""
    from scene_models import LAYOUT_NAME, install_layout_prior

    vq = ROOT / "weights" / "vqvae" / "vqvae_scenes.safetensors"
    run = run_smoke("scene.py", tmp_path, ("--model", LAYOUT_NAME),
                    lambda home: install_layout_prior(home, vq), name="scene-layout")
    print(f"scene.py --smoke --model {LAYOUT_NAME}: {run.cpu:.1f} CPU s, {run.wall:.1f} wall s")
    assert run.returncode == 0, f"exited {run.returncode}:\n{run.output[-3000:]}"
    assert HEADERS["scene.py"] in run.stdout and f"model {LAYOUT_NAME}," in run.stdout
    assert re.search(r"Prompts refused by the layout stage \(prompts outside the world's "
                     r"grammar\), each counted as a failure: 0 of \d+ drawn\.", run.stdout)
    assert run.cpu <= SMOKE_CPU_S, f"--smoke took {run.cpu:.1f} CPU s"
