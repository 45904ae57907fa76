"""The training loop shared by every model family (see core/training/task.py for families).

``train(recipe, out)`` builds the recipe's Task, then for each step renders the step's batch
(ahead, in a worker when it has a core of its own), calls ``task.training_step``, updates EMA
weights, and every N steps logs losses (``<out>/losses.csv`` and a ``step`` event), writes a
sample grid PNG (``<out>/samples/step_NNNNNN.png``) and an atomic checkpoint
(``<out>/checkpoint.safetensors``).
SIGTERM or Ctrl-C stop the run after the current step with a checkpoint (a second Ctrl-C stops
at once and keeps the previous one). At the end the family's export goes through
core.weights.save_model with a full model card.

Progress is a stream of dict events passed to ``emit``: ``start``, ``data`` (a folder's scan:
source, files, used, skipped [{path, reason}], summary), ``step`` (step, total, losses,
images_per_s, eta_s), ``sample``, ``checkpoint``, ``done``, ``error``; the CLI prints them as
JSON lines (``--progress jsonl``) or draws a bar.

Under torchrun every rank runs this loop on its share of each batch (DistributedDataParallel);
rank 0 alone writes files and emits events.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.device import describe, is_out_of_memory, pick_device, reproducible, use_cpu_threads
from core.imageio import atomic_write, save_png
from core.training import checkpoint as ckpt
from core.training import distributed
from core.training.data import WORKER_LOG, FolderSource, StepBatches, batches, to_batch
from core.training.recipe import Recipe
from core.training.runs import CONTROL, FINISH, PAUSE
from core.training.task import Task, TrainingError, get_task

Emit = Callable[[dict[str, Any]], None]
LOG = "losses.csv"
# On the CPU, how often torch's thread count is fitted to the machine's load again (other
# programs come and go during a run of minutes to hours).
THREADS_EVERY_S = 5.0
STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on a stop under torchrun


@dataclass
class TrainResult:
    out: Path
    step: int  # steps completed
    total: int
    weights: Path | None  # None when interrupted (or on ranks other than 0)
    interrupted: bool
    wall_time_s: float
    last_losses: dict[str, float]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from the recipe seed."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class Trainer:
    def __init__(self, recipe: Recipe, out: str | os.PathLike, *, resume: bool = False,
                 device: str | None = None, command: str = "", name: str | None = None,
                 weights_dir: str | os.PathLike | None = None, emit: Emit | None = None) -> None:
        self.recipe = recipe
        self.out = Path(out).expanduser().resolve()
        self.resume = resume
        self.requested_device = device
        self.command = command
        self.name = name or recipe.name
        self.weights_dir = Path(weights_dir).expanduser().resolve() if weights_dir else self.out
        self._emit = emit
        self.dist = distributed.from_env()
        self._stop = threading.Event()
        self._rows: list[dict[str, Any]] = []
        self._wall_before = 0.0  # wall time of earlier sessions of a resumed run
        self._device = torch.device("cpu")  # the device picked in _run (for error messages)
        self._data: dict[str, Any] | None = None  # a folder source's scan summary
        self._saved_step = 0  # the step of the last checkpoint written (or resumed from)

    # ------------------------------------------------------------------ events and files

    def emit(self, event: dict[str, Any]) -> None:
        if self._emit is not None and self.dist.is_main:
            self._emit(event)

    def request_stop(self) -> None:
        """Stop after the current step with a checkpoint (what SIGTERM and Ctrl-C do)."""
        self._stop.set()

    def _requested(self) -> str:
        """What ``<out>/control`` asks for (:data:`PAUSE` or :data:`FINISH`), read and removed;
        "" when nothing. A file, not a signal: the Train panel pauses and stops runs the
        same way on every system, also runs it started in an earlier session."""
        path = self.out / CONTROL
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # none yet (or unreadable): carry on
            return ""
        with contextlib.suppress(OSError):
            path.unlink()
        return text if text in (PAUSE, FINISH) else ""

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if signum == signal.SIGINT and self._stop.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C: stop now, keep the last checkpoint
            self._stop.set()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _write_log(self) -> None:
        if not self._rows:
            return
        keys = list(self._rows[0])
        for row in self._rows:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write(self.out / LOG, buf.getvalue().encode("utf-8"))

    def _read_log(self, upto: int) -> None:
        """Keep the rows of a resumed run up to its checkpoint (later ones are redone)."""
        try:
            text = (self.out / LOG).read_text(encoding="utf-8")
        except OSError:
            return
        for row in csv.DictReader(io.StringIO(text)):
            with contextlib.suppress(KeyError, ValueError):
                if int(row["step"]) <= upto:
                    self._rows.append({k: (float(v) if k != "step" else int(v))
                                       for k, v in row.items() if v not in (None, "")})

    def _sample(self, task: Task, step: int) -> None:
        grid = task.sample_grid(self.recipe.train.sample_count)
        if grid is None:
            return
        path = self.out / "samples" / f"step_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(path, grid, extra={"training": {"recipe": self.recipe.name, "step": step}})
        self.emit({"event": "sample", "step": step, "path": str(path)})

    def _checkpoint(self, task: Task, optimizers: dict[str, torch.optim.Optimizer], step: int,
                    wall: float) -> None:
        if self.dist.is_main:
            data = {"source": self.recipe.data.source, "position": step * self.recipe.train.
                    batch_size, "wall_time_s": wall}
            path = ckpt.save_checkpoint(self.out, task, optimizers, step, self.recipe.to_dict(),
                                        data)
            self._saved_step = step
            self._write_log()
            self.emit({"event": "checkpoint", "step": step, "path": str(path)})
        distributed.barrier(self.dist)

    # ------------------------------------------------------------------ the run

    def run(self) -> TrainResult:
        threads = torch.get_num_threads()  # the run fits it to the machine's load; restored
        try:
            try:
                return self._run()
            except Exception as exc:
                # Anywhere in the run: moving the model, the DDP wrap, the EMA copies, a step.
                if is_out_of_memory(exc):
                    t = self.recipe.train
                    raise TrainingError(
                        f"out of memory on {describe(self._device)} at batch size "
                        f"{t.batch_size}; try a smaller batch (--batch-size "
                        f"{max(1, t.batch_size // 2)}).") from None
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    kept = (f"the last good checkpoint (step {self._saved_step}) is kept in "
                            f"{self.out}; free some space, then resume the run"
                            if self._saved_step else "no checkpoint was written yet")
                    raise TrainingError(f"the disk is full (writing {exc.filename or 'a file'})"
                                        f": {kept}.") from None
                raise
        except BaseException as exc:
            message = str(exc) or type(exc).__name__
            if isinstance(exc, KeyboardInterrupt):
                message = "interrupted; the last checkpoint is kept."
            self.emit({"event": "error", "message": " ".join(message.split())})
            raise
        finally:
            torch.set_num_threads(threads)
            distributed.teardown(self.dist)

    def _prepare_out(self) -> None:
        data = Path(self.recipe.data.source).expanduser()
        if data.is_dir() and self.out.is_relative_to(data.resolve()):  # checked on every rank
            # Sample PNGs written there would become training images of the next scan.
            raise TrainingError(f"the run folder {self.out} is inside the data folder "
                                f"{data.resolve()}; choose an --out folder outside it.")
        if self.dist.is_main:
            has_ckpt = (self.out / ckpt.NAME).exists()
            if has_ckpt and not self.resume:
                raise TrainingError(f"{self.out} already holds a training run; pass --resume to "
                                    "continue it or choose another --out folder.")
            if self.resume and not has_ckpt:
                raise TrainingError(f"nothing to resume: {self.out} has no {ckpt.NAME}.")
            self.out.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # a request the last session left
                (self.out / CONTROL).unlink()

    def _run(self) -> TrainResult:
        r, t = self.recipe, self.recipe.train
        device = distributed.setup(self.dist, pick_device(self.requested_device))
        self._device = device
        reproducible(device)
        self._prepare_out()
        generator = seed_everything(r.seed)
        task = get_task(r.family)(r, device, generator)
        task.runtime.rank, task.runtime.world_size = self.dist.rank, self.dist.world_size
        cuda = device.type == "cuda"
        # NHWC convolutions: faster on CUDA tensor cores and, measured, ~10% faster on the
        # CPU too (oneDNN's native layout; bench/training.py); MPS keeps NCHW.
        channels_last = t.channels_last and device.type in ("cuda", "cpu")
        for m in task.modules().values():
            m.to(device)
            if channels_last:
                m.to(memory_format=torch.channels_last)
            m.train()
        task.runtime.wrapped = {k: distributed.wrap(m, self.dist, device)
                                for k, m in task.modules().items()}
        task.make_ema(t.ema)
        optimizers = task.optimizers()
        task.bind_optimizers(optimizers)
        if cuda and t.amp:  # float16 autocast + dynamic loss scaling (Micikevicius et al. 2018)
            task.runtime.amp_dtype = torch.float16
            task.runtime.scalers = {k: torch.amp.GradScaler("cuda") for k in optimizers}
        task.runtime.grad_clip = t.grad_clip

        start = 0
        if self.resume:
            path = self.out / ckpt.NAME
            meta, tensors = ckpt.read_checkpoint(path)
            ckpt.check_compatible(meta, task, r.to_dict(), path)
            start = ckpt.restore(meta, tensors, task, optimizers, path)
            self._saved_step = start
            self._wall_before = float(meta.get("data", {}).get("wall_time_s", 0.0))
            if self.dist.is_main:
                self._read_log(start)

        dataset = StepBatches(r.data, r.seed, t.batch_size, self.dist.rank, self.dist.world_size)
        dataset.open()
        self.emit({"event": "start", "recipe": r.name, "family": r.family, "out": str(self.out),
                   "step": start, "total": t.steps, "device": str(device),
                   "processes": self.dist.world_size, "resumed": self.resume,
                   "minutes": t.minutes, "elapsed_s": self._wall_before,
                   "batch_size": t.batch_size})
        self._data = data_summary(dataset)
        if self._data is not None:
            self.emit({"event": "data", **self._data})
        most_threads = torch.get_num_threads()
        fit_threads = device.type == "cpu"
        if fit_threads:
            use_cpu_threads(most_threads)
        t0 = time.monotonic()
        next_fit = t0 + THREADS_EVERY_S
        budget_s = t.minutes * 60.0
        window = (t0, start)
        losses: dict[str, float] = {}
        step = start
        last_write = t0
        interrupted = False
        with self._signals():
            it = batches(dataset, start, t.steps, render_workers(r, device, start),
                         r.data.prefetch, pin=cuda, worker_log=self.out / WORKER_LOG)
            for step in range(start, t.steps):
                if fit_threads and time.monotonic() >= next_fit:
                    use_cpu_threads(most_threads)
                    next_fit = time.monotonic() + THREADS_EVERY_S
                batch = to_batch(next(it), device, channels_last)
                raw_losses = task.training_step(batch, step)
                if task.runtime.ema:
                    task.update_ema(t.ema, step)
                done = step + 1
                finish = stop = False
                # Requests (pause, finish, Ctrl+C, the time budget) are read on agreed steps:
                # every step alone, every STOP_CHECK_EVERY under torchrun, where agreeing
                # costs a collective and a wait for the device.
                if not self.dist.enabled or done % STOP_CHECK_EVERY == 0 or done == t.steps:
                    request = self._requested() if self.dist.is_main else ""
                    if budget_s and self._wall_before + time.monotonic() - t0 >= budget_s:
                        request = request or FINISH  # the time budget is spent: export now
                    finish, stop = distributed.any_flags(
                        (request == FINISH, self._stop.is_set() or request == PAUSE),
                        self.dist, device)
                    stop = stop and not finish
                last = done == t.steps or finish
                log = done % t.log_every == 0 or last
                save = done % t.checkpoint_every == 0 or last or stop
                if log or save:  # the same steps on every rank: mean_losses is collective
                    losses = distributed.mean_losses(
                        {k: float(v) for k, v in raw_losses.items()}, self.dist, device)
                    bad = [k for k, v in losses.items() if not math.isfinite(v)]
                    if bad:  # before any save: a broken model never replaces a good one
                        raise TrainingError(f"loss {', '.join(bad)} became {losses[bad[0]]} "
                                            f"at step {done}; try a lower train.lr.")
                # An interrupted step that is not a log step gets no row: the CSV of a
                # stopped-and-resumed run equals an uninterrupted one (``done`` reports it).
                if log:
                    now = time.monotonic()
                    rate = (done - window[1]) * t.batch_size / max(now - window[0], 1e-9)
                    window = (now, done)
                    wall = self._wall_before + now - t0
                    self._rows.append({"step": done, "wall_time_s": round(wall, 3),
                                       "images_per_s": round(rate, 2), **losses})
                    eta = (t.steps - done) * t.batch_size / max(rate, 1e-9)
                    if budget_s:
                        eta = min(eta, max(0.0, budget_s - wall))
                    self.emit({"event": "step", "step": done, "total": t.steps,
                               "losses": losses, "images_per_s": rate, "eta_s": eta,
                               "elapsed_s": wall})
                    if self.dist.is_main and now - last_write > 5:
                        self._write_log()
                        last_write = now
                if self.dist.is_main and (done % t.sample_every == 0 or last):
                    self._sample(task, done)
                if save:
                    wall = self._wall_before + time.monotonic() - t0
                    self._checkpoint(task, optimizers, done, wall)
                step = done
                if stop:
                    interrupted = True
                    break
                if finish:
                    break
            else:
                step = max(start, t.steps)
            it.close()  # stops the render workers now rather than at garbage collection
        wall = self._wall_before + time.monotonic() - t0
        weights = None
        if not interrupted and self.dist.is_main:
            weights = self._export(task, device, step, wall)
            self._write_log()
        distributed.barrier(self.dist)
        self.emit({"event": "done", "step": step, "total": t.steps, "interrupted": interrupted,
                   "weights": str(weights) if weights else None, "wall_time_s": wall,
                   "losses": losses})
        return TrainResult(self.out, step, t.steps, weights, interrupted, wall, losses)

    def _export(self, task: Task, device: torch.device, step: int, wall: float) -> Path:
        from core.weights import ModelCard, save_model

        module, architecture, config = task.export()
        r = self.recipe
        procs = f" x {self.dist.world_size} processes" if self.dist.enabled else ""
        card = ModelCard(
            name=self.name, family=r.family, architecture=architecture, config=config,
            recipe=r.name, command=self.command, data=describe_data(r, self._data), steps=step,
            wall_time_s=round(wall, 2), device=describe(device) + procs, metrics={},
            notes=r.description, extra={"recipe_resolved": r.to_dict()})
        return save_model(self.weights_dir, self.name, module, card)


def render_workers(r: Recipe, device: torch.device, start: int) -> int:
    """How many render worker processes to start: ``data.workers``, except on the CPU when
    the cores are all taken by torch's threads. A worker then shares a core with one of them,
    and every parallel op waits for the slowed thread: measured on 2 cores, a VAE step grows
    from 165 to 255 ms while the worker renders its 90 ms batch, no faster than rendering in
    the loop and worse on a busy machine. Batches are the same either way."""
    workers = r.data.workers if start < r.train.steps else 0
    if device.type == "cpu":
        return max(0, min(workers, (os.cpu_count() or 1) - torch.get_num_threads()))
    return workers


def data_summary(dataset: StepBatches) -> dict[str, Any] | None:
    """What a folder scan found: the ``data`` event and the card's data text (None: a world)."""
    source = dataset.source
    if not isinstance(source, FolderSource):
        return None
    scan = source.folder.scan
    return {"source": str(scan.root), "files": len(scan.files), "used": dataset.finite(),
            "held_out": source.held_out, "skipped": scan.skipped_report(),
            "summary": scan.summary()}


def describe_data(r: Recipe, scan: dict[str, Any] | None = None) -> str:
    """The model card's data text; ``scan`` is :func:`data_summary` of a folder source."""
    d = r.data
    flip = ", horizontal flips" if d.flip else ""
    if scan is not None:
        n = len(scan["skipped"])
        skipped = f", {n} file{'s' if n != 1 else ''} skipped" if n else ""
        held = scan.get("held_out", 0)
        of = (f" (of {scan['files']} usable, {held} held out for evaluation)" if held
              else f" (of {scan['files']} usable)" if scan["used"] != scan["files"] else "")
        return (f"{scan['used']} images{of} from {scan['source']}, cycled in seeded epochs "
                f"({d.fit}){skipped}, {d.size} px{flip}, seed {r.seed}")
    from core.data.worlds import world_names

    what = f"{d.source} world" if d.source in world_names() else f"folder {d.source}"
    count = f"{d.images} fixed training images" if d.images else "fresh training-seed renders"
    return f"{what}, {d.size} px, {count}{flip}, seed {r.seed}"


def train(recipe: Recipe, out: str | os.PathLike, **kwargs: Any) -> TrainResult:
    """Run (or with ``resume=True`` continue) a recipe into ``out``; see :class:`Trainer`."""
    return Trainer(recipe, out, **kwargs).run()


def default_out(recipe: Recipe) -> Path:
    from core import paths

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return paths.data_dir() / "runs" / f"{recipe.name}-{stamp}"
