"""Training runs started from the Train panel: what to run, and what became of each run.

A run is a folder under ``<data dir>/runs``. The panel starts ``easel train ... --progress
jsonl`` as a detached process whose stdout goes to ``events.jsonl`` and whose stderr goes to
``train.log`` in that folder, and records the request and the process id in ``launch.json``.
Everything the panel shows is read back from those files, so a run outlives the app that
started it: a new session finds it running, paused, finished, failed or killed, and a
paused or killed run resumes from its last checkpoint (``easel train --resume``).

Pause and Stop are requests written to the run's ``control`` file (core.training.trainer):
"pause" checkpoints and exits, "finish" exports the model as it is. No signals, so they work
the same on Windows, macOS and Linux, and for a run an earlier session started.

No Qt here: the panel (desktop/panels/train.py) starts processes and polls these files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.imageio import atomic_write

LAUNCH = "launch.json"
PID = "pid"  # the training process writes its id here first thing (record_process)
EVENTS = "events.jsonl"
LOG = "train.log"
CHECKPOINT = "checkpoint.safetensors"
CONTROL = "control"  # a request to the trainer: PAUSE or FINISH (core.training.trainer)
PAUSE, FINISH = "pause", "finish"

# family -> (what the panel calls it, the bundled recipe it runs, the sizes it offers)
FAMILIES: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "vae": ("VAE", "user_vae", (32, 64, 128)),
    "dcgan": ("DCGAN", "user_dcgan", (32, 64, 128)),
    "vqvae": ("VQ-VAE", "user_vqvae", (32, 64, 128)),
    "diffusion": ("Diffusion (latent, 64 px)", "user_diffusion", (64,)),
    "style_fast": ("Fast style", "user_style_fast", (128,)),
}
EVAL_IMAGES = 500  # at most this many held-out files are measured after training


class RunError(ValueError):
    """A run request that cannot be started; the message is for the user."""


@dataclass
class TrainRequest:
    """What the Train panel asks for. ``steps`` or ``minutes`` is the budget (0: unused)."""

    family: str
    folder: str
    size: int = 64
    steps: int = 0
    minutes: float = 0.0
    device: str = "auto"
    name: str = ""
    style: str = ""  # the painting a fast style learns
    judge: str | None = None  # a world whose judge computes FJD (pictures like that world's)

    def check(self) -> None:
        if self.family not in FAMILIES:
            raise RunError(f"Unknown model family {self.family!r}; Easel trains "
                           f"{', '.join(FAMILIES)}.")
        sizes = FAMILIES[self.family][2]
        if self.size not in sizes:
            raise RunError(f"{FAMILIES[self.family][0]} trains at "
                           f"{' or '.join(map(str, sizes))} px, not {self.size}.")
        if (self.steps > 0) == (self.minutes > 0):
            raise RunError("Give the run a budget: a number of steps or of minutes.")
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name):
            raise RunError(f"{self.name!r} cannot name a model: use letters, digits, '_', "
                           "'-' or '.' (at most 64).")
        if not Path(self.folder).is_dir():
            raise RunError(f"The folder {self.folder} does not exist.")
        if self.family == "style_fast" and not self.style:
            raise RunError("A fast style learns one painting: choose its image.")


def recipe_of(family: str) -> str:
    return FAMILIES[family][1]


@functools.cache
def min_images(family: str) -> int:
    """The fewest usable images the family's recipe trains on, read from its TOML alone: the
    Train panel asks on the GUI thread, and validating a recipe imports the training code."""
    import tomllib

    from core.training.recipe import find_recipe

    raw = tomllib.loads(find_recipe(recipe_of(family)).read_text(encoding="utf-8"))
    return max(1, int(raw.get("data", {}).get("min_images", 0)))


def default_name(family: str, folder: str) -> str:
    """``<family>_<folder name>`` in the characters a model name allows."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(folder).name).strip("_.-") or "folder"
    return f"{family}_{stem}"[:64]


def runs_dir() -> Path:
    return paths.data_dir() / "runs"


def weights_dir(family: str) -> Path:
    """Where a finished run puts its model: the user models folder, by family."""
    return paths.models_dir() / family


def program() -> list[str]:
    """How to call ``easel``: this interpreter with ``-m core``, or in a frozen (PyInstaller)
    app the console ``easel`` executable beside this one, so the windowed GUI executable
    starts training with the CLI one (installer/easel.spec builds both into one folder)."""
    if getattr(sys, "frozen", False):
        here = Path(sys.executable).resolve().parent
        cli = here / ("easel.exe" if sys.platform == "win32" else "easel")
        return [str(cli)] if cli.is_file() else [sys.executable]
    return [sys.executable, "-m", "core"]


def train_arguments(req: TrainRequest, out: Path) -> list[str]:
    """The ``easel train`` arguments of a new run of ``req`` into ``out``."""
    req.check()
    args = ["train", recipe_of(req.family), "--data", str(Path(req.folder).resolve()),
            "--size", str(req.size), "--name", req.name, "--out", str(out),
            "--weights-dir", str(weights_dir(req.family)), "--progress", "jsonl",
            "--device", req.device or "auto"]
    args += ["--steps", str(req.steps)] if req.steps else ["--minutes", f"{req.minutes:g}"]
    if req.style:
        args += ["--style", str(Path(req.style).resolve())]
    if req.family != "style_fast":  # a fast style's card is measured by easel eval on demand
        args += ["--eval", str(EVAL_IMAGES)]
        if req.judge:
            args += ["--judge", req.judge]
    return args


def new_run(req: TrainRequest) -> tuple[Path, list[str]]:
    """A fresh run folder for ``req`` (with its ``launch.json``) and the ``easel train``
    arguments to start it; RunError when the request cannot run."""
    req.check()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = runs_dir() / f"{req.name}-{stamp}"
    n = 2
    while out.exists():
        out = runs_dir() / f"{req.name}-{stamp}-{n}"
        n += 1
    out.mkdir(parents=True)
    args = train_arguments(req, out)
    _write_launch(out, {"request": asdict(req), "arguments": args, "started": time.time()})
    return out, args


def resume_arguments(out: Path) -> list[str]:
    """The arguments that continue the run in ``out`` from its checkpoint."""
    launch = read_launch(out)
    if not (out / CHECKPOINT).is_file():
        raise RunError(f"The run in {out} has no checkpoint to resume from.")
    args = [a for a in launch.get("arguments", []) if a != "--resume"]
    if not args:
        raise RunError(f"{out / LAUNCH} does not say how the run was started.")
    return [*args, "--resume"]


def record_process(out: Path) -> None:
    """Called by ``easel train --out DIR`` as it starts: the process id, so the panel can
    tell a run that is alive from one that was killed (a detached process has no exit
    status to read). Only into a run folder that exists: the trainer checks new ones."""
    if out.is_dir():
        with contextlib.suppress(OSError):
            atomic_write(out / PID, str(os.getpid()).encode("ascii"))


def read_pid(out: Path) -> int | None:
    try:
        return int((out / PID).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def request(out: Path, what: str) -> None:
    """Ask the run in ``out`` to pause (checkpoint and exit) or finish (export as it is)."""
    if what not in (PAUSE, FINISH):
        raise ValueError(f"a run can be asked to {PAUSE!r} or {FINISH!r}, not {what!r}")
    atomic_write(out / CONTROL, what.encode("utf-8"))


def read_launch(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / LAUNCH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_launch(out: Path, data: dict[str, Any]) -> None:
    atomic_write(out / LAUNCH, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------- reading a run


class EventReader:
    """Reads ``events.jsonl`` as it grows: each call returns the whole lines added since the
    last (a line still being written waits for the next call; a garbled one is skipped)."""

    def __init__(self, out: Path) -> None:
        self.path = out / EVENTS
        self.offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and "event" in event:
                    events.append(event)
        return events


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` still runs (False for None)."""
    if not pid or pid <= 0:
        return False
    if os.name == "nt":
        import ctypes

        kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            ok = kernel.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    with contextlib.suppress(OSError):  # a zombie child has exited; it only awaits its reaper
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def log_tail(out: Path, lines: int = 12) -> list[str]:
    """The last lines of the run's ``train.log`` (its stderr)."""
    try:
        with (out / LOG).open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


@dataclass
class RunState:
    """What became of a run, from its files. ``state`` is one of: running, evaluating,
    paused, finished, failed, killed (the process ended without a word), new."""

    out: Path
    state: str
    request: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    total: int = 0
    minutes: float = 0.0
    elapsed_s: float = 0.0
    message: str = ""
    weights: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None

    @property
    def resumable(self) -> bool:
        return self.state in ("paused", "killed", "failed") and (self.out / CHECKPOINT).is_file()

    @property
    def name(self) -> str:
        return str(self.request.get("name") or self.out.name)


def fold(state: RunState, event: dict[str, Any]) -> None:
    """Update ``state`` with one event of the run (the same fold the panel applies live)."""
    kind = event.get("event")
    if kind == "start":
        state.state, state.message = "running", ""
        state.step, state.total = int(event.get("step", 0)), int(event.get("total", 0))
        state.minutes = float(event.get("minutes") or 0.0)
        state.elapsed_s = float(event.get("elapsed_s") or 0.0)
    elif kind == "step":
        state.step, state.total = int(event["step"]), int(event.get("total", state.total))
        state.elapsed_s = float(event.get("elapsed_s") or state.elapsed_s)
    elif kind == "done":
        state.step = int(event.get("step", state.step))
        if event.get("interrupted"):
            state.state = "paused"
        else:
            state.state, state.weights = "finished", event.get("weights")
    elif kind == "evaluating":
        state.state = "evaluating"
    elif kind == "eval":
        state.state = "finished"
        state.metrics = dict(event.get("metrics") or {})
        state.message = str(event.get("message") or "")
    elif kind == "error":
        state.state, state.message = "failed", str(event.get("message", ""))


def run_state(out: Path) -> RunState:
    """Read a run folder: its launch record, every event, and whether its process lives."""
    launch = read_launch(out)
    state = RunState(out, "new", dict(launch.get("request") or {}), pid=read_pid(out))
    for event in EventReader(out).read():
        fold(state, event)
    settle(state, pid_alive(state.pid))
    return state


def settle(state: RunState, alive: bool) -> None:
    """What a run is once its process is known dead (``alive`` False) without a last word:
    killed, or finished when it died measuring a model it had already written. An alive
    process after "paused" or "failed" is that process on its way out: nothing changes."""
    if alive or state.state not in ("running", "evaluating", "new"):
        return
    if state.state == "evaluating":
        state.state = "finished"
    elif state.pid is not None:
        state.state = "killed"
        state.message = "The training process ended without finishing or pausing."


def list_runs() -> list[RunState]:
    """Every run folder the panel started, newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = [run_state(p) for p in root.iterdir() if (p / LAUNCH).is_file()]
    return sorted(found, key=lambda r: r.out.stat().st_mtime, reverse=True)


free_bytes = paths.free_bytes  # the Train panel's free-space line for a run folder
