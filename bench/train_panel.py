"""Train panel benchmark: a VAE trained from the app on a user-style folder, against its peers.

The folder (``--work DIR``/faces-N, reused when complete): N renders of the faces world from
the *validation* seeds (core.data.worlds: no shipped model trained on them, and they are not
the held-out seeds ``easel eval`` measures world models on), each rendered at a random side in
[48, 320] px and then cropped or padded (edge pixels repeated) to a random aspect in [0.6, 1.7]
(a quarter stay square), saved as JPEG quality 90: landscape, portrait and square files of many
sizes, as a user's folder is. Everything is seeded by the file's index, so every machine builds
the same folder.

The run, as a user makes it: a QApplication (offscreen unless QT_QPA_PLATFORM says otherwise)
with the real MainWindow (its own settings file, autosave folder and a fresh ``$EASEL_HOME``
under --work, so no user folder is touched), the folder given to the Train panel (which runs
``easel dataset --json`` and fills the thumbnail grid), then VAE, 64 px, --minutes of budget
(or --steps), device CPU, measured with the faces judge, and Start. The panel starts ``easel
train user_vae ... --eval 500 --judge faces`` as a detached process; the benchmark follows the
run's events.jsonl itself (as the panel does) to tell the phases apart and to know when the
model card has its figures.

Figures of the new model come from the card the run wrote (core.weights.read_card): steps,
wall time, reconstruction PSNR and SSIM (posterior means) and bits/dim (negative ELBO) on the
folder's held-out files (5% of the files, chosen by a hash of the relative path:
core.data.folder.held_out_split), and the FJD of its prior samples against those files, by the
faces judge. Peers, measured in this process on the same held-out files (HeldOut.images) with
the same metric functions and the same FJD (HeldOut.fjd):

- the shipped ``vae_faces`` (the same architecture, trained for 8000 steps on 64 px renders of
  the faces world itself): its reconstructions of the files and its prior samples;
- no learning: each held-out file shrunk to 8x8 (192 numbers, against the VAE's 128 latent
  values) and enlarged back to 64 with Pillow's bicubic filter;
- for scale, the FJD of as many *training* files of the folder against the held-out files:
  the FJD of real pictures at this sample size (the floor a perfect sampler would reach).

The new model is also measured again in this process with the peers' code, as a check that
the peers are measured the way the card's figures were.

GUI responsiveness: a 5 ms QTimer (precise) in the GUI thread records every interval between
its ticks; per phase (dataset view: scan + thumbnail loading; training; evaluation) the table
gives the ticks, the longest interval and the 99th percentile, raw (the 5 ms period is not
subtracted). Target: the longest gap while training < 50 ms.

Run: python bench/train_panel.py [--smoke] [--minutes 10 | --steps N] [--images 2000] [--work DIR]
                                 [--out FILE.md] [--keep]
The full run takes the budget plus a few minutes (folder, scan, evaluation, peers). It exits 0
with MET/MISSED printed (it is a report), or 1 when the run fails, is killed or hangs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SEED_SPLIT = "validation"
SIDES = (48, 320)  # a file's rendered side, px (inclusive)
ASPECTS = (0.6, 1.7)  # width / height of a non-square file
SQUARE_SHARE = 0.25
JPEG_QUALITY = 90
FOLDER_VERSION = 1  # bump when the files change: a folder of another version is rebuilt
TICK_MS = 5
TARGET_GAP_MS = 50.0
SMALL_SIDE = 8  # the no-learning peer's information budget: 8x8x3 values
PHASES = ("dataset view (scan + thumbnails)", "training", "evaluation")
RUN_POLL_MS = 250
MARGIN_S = 20 * 60  # start-up, evaluation and export beyond the budget before giving up


# --------------------------------------------------------------------------- the folder


def shaped(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (square) cropped or padded to a random aspect (or left square)."""
    if rng.random() < SQUARE_SHARE:
        return image
    aspect = float(np.exp(rng.uniform(np.log(ASPECTS[0]), np.log(ASPECTS[1]))))
    s = image.shape[0]
    crop = rng.random() < 0.5
    if aspect >= 1:  # landscape: fewer rows (crop) or more columns (pad)
        if crop:
            h = max(1, round(s / aspect))
            y0 = int(rng.integers(0, s - h + 1))
            return image[y0:y0 + h]
        extra = round(s * aspect) - s
        left = int(rng.integers(0, extra + 1))
        return np.pad(image, ((0, 0), (left, extra - left), (0, 0)), mode="edge")
    if crop:  # portrait: fewer columns (crop) or more rows (pad)
        w = max(1, round(s * aspect))
        x0 = int(rng.integers(0, s - w + 1))
        return image[:, x0:x0 + w]
    extra = round(s / aspect) - s
    top = int(rng.integers(0, extra + 1))
    return np.pad(image, ((top, extra - top), (0, 0), (0, 0)), mode="edge")


def build_folder(folder: Path, n: int) -> tuple[float, bool]:
    """Write the folder (files already there are kept: they are deterministic); returns
    (seconds, whether it was already complete)."""
    from PIL import Image

    from core.data.worlds import get_world, split_seeds

    marker = folder / ".complete"  # hidden: the folder scan ignores it
    want = json.dumps({"images": n, "split": SEED_SPLIT, "version": FOLDER_VERSION})
    if marker.is_file() and marker.read_text(encoding="utf-8") == want:
        return 0.0, True
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    world = get_world("faces")
    for i, seed in enumerate(split_seeds(SEED_SPLIT, n)):
        path = folder / f"face_{i:05d}.jpg"
        if path.is_file():
            continue
        rng = np.random.default_rng([FOLDER_VERSION, i])
        side = int(rng.integers(SIDES[0], SIDES[1] + 1))
        image = shaped(world.render(seed, size=side).image, rng)
        part = folder / f".{path.name}.part"
        Image.fromarray(np.ascontiguousarray(image)).save(part, format="JPEG",
                                                          quality=JPEG_QUALITY)
        os.replace(part, path)
    marker.write_text(want, encoding="utf-8")
    return time.perf_counter() - t0, False


def folder_shapes(folder: Path) -> str:
    """"N files: a% landscape, b% portrait, c% square; sides x-y px" (read from the headers)."""
    from PIL import Image

    land = port = square = 0
    sides: list[int] = []
    files = sorted(folder.glob("*.jpg"))
    for f in files:
        with Image.open(f) as im:
            w, h = im.size
        land, port, square = land + (w > h), port + (h > w), square + (w == h)
        sides += [w, h]
    n = max(len(files), 1)
    return (f"{len(files)} files: {100 * land / n:.0f}% landscape, {100 * port / n:.0f}% "
            f"portrait, {100 * square / n:.0f}% square; sides {min(sides, default=0)}-"
            f"{max(sides, default=0)} px")


# --------------------------------------------------------------------------- the GUI probe


class GapProbe:
    """A 5 ms timer in the GUI thread; every interval between ticks is charged to the phase
    the later tick falls in."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.phase: str | None = None
        self.gaps: dict[str, list[float]] = {}
        self._last = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def start(self, phase: str) -> None:
        self.set_phase(phase)
        self._last = time.perf_counter()
        self.timer.start()

    def set_phase(self, phase: str | None) -> None:
        self.phase = phase
        if phase is not None:
            self.gaps.setdefault(phase, [])

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.phase is not None:
            self.gaps[self.phase].append((now - self._last) * 1000.0)
        self._last = now

    def row(self, phase: str) -> tuple[int, float, float]:
        """(ticks, longest gap ms, p99 gap ms) of a phase."""
        g = np.array(self.gaps.get(phase) or [np.nan])
        return len(self.gaps.get(phase) or []), float(np.max(g)), float(np.percentile(g, 99))


def wait_until(cond: Callable[[], bool], timeout_s: float, poll_ms: int = 50) -> bool:
    """Run the event loop until ``cond()`` (checked every ``poll_ms``) or the timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return True
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if cond() or time.monotonic() > deadline:
            loop.quit()

    timer = QTimer()
    timer.setInterval(poll_ms)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    return cond()


# --------------------------------------------------------------------------- following the run


class RunWatch:
    """The run's events, read as they come (the panel's own fold, core.training.runs)."""

    def __init__(self, out: Path) -> None:
        from core.training.runs import EventReader, RunState

        self.out = out
        self.reader = EventReader(out)
        self.state = RunState(out, "new")
        self.events: list[dict[str, Any]] = []
        self.ended = False  # the process is gone
        self.started = time.monotonic()

    def poll(self) -> None:
        from core.training import runs

        for event in self.reader.read():
            self.events.append(event)
            runs.fold(self.state, event)
        if not self.ended:
            pid = runs.read_pid(self.out)
            if pid is not None and not runs.pid_alive(pid):
                self.ended = True
                for event in self.reader.read():  # its last words
                    self.events.append(event)
                    runs.fold(self.state, event)

    def kinds(self) -> set[str]:
        return {str(e.get("event")) for e in self.events}

    def first(self, kind: str) -> dict[str, Any]:
        return next((e for e in self.events if e.get("event") == kind), {})

    def phase(self) -> str:
        kinds = self.kinds()
        return PHASES[2] if "done" in kinds or "evaluating" in kinds else PHASES[1]

    def finished(self) -> bool:
        """Measured (an eval event), failed, or the process ended."""
        return "eval" in self.kinds() or "error" in self.kinds() or self.ended


# --------------------------------------------------------------------------- peers


def measure_vae(path: Path, held: Any, real: np.ndarray, device: Any) -> dict[str, float]:
    """evaluate_vae's figures (core.evaluation.evaluate.vae_figures) of the VAE at ``path`` on
    ``real`` (held-out files at its size), with the generator seeded as ``easel eval`` seeds
    it, so the new model's figures come out as its card has them."""
    import torch

    from core.evaluation.evaluate import vae_figures
    from core.weights import load_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = vae_figures(load_model(path, device), real, held, device,
                          torch.Generator().manual_seed(0))
    return {k: out.get(k, float("nan")) for k in ("recon_psnr", "recon_ssim",
                                                   "bits_per_dim_elbo", "fjd")}


def small_then_bicubic(real: np.ndarray) -> np.ndarray:
    from PIL import Image

    size = real.shape[1]
    return np.stack([np.asarray(Image.fromarray(im)
                                .resize((SMALL_SIDE, SMALL_SIDE), Image.Resampling.BICUBIC)
                                .resize((size, size), Image.Resampling.BICUBIC))
                     for im in real])


def training_files(held: Any, n: int, size: int) -> np.ndarray:
    """The first ``n`` files of the folder's training split at ``size``, squared as training
    and evaluation square them."""
    from core.data.folder import held_out_split, square_image
    from core.imageio import load_image

    root = Path(held.source)
    files = sorted(root.rglob("*.jpg"))
    out = held_out_split([f.relative_to(root).as_posix() for f in files], held.fraction)
    picks = [f for i, f in enumerate(files) if i not in out][:n]
    return np.stack([square_image(load_image(f), size, held.fit) for f in picks])


# --------------------------------------------------------------------------- tables
# (the table writer is bench/report.py's)


def clock(seconds: float) -> str:
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def fmt(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return format(value, spec)
    return "-"


def adopt_detached() -> bool:
    """Make this process the reaper of the processes its children detach (Linux): the Train
    panel starts ``easel train`` detached, and only its reaper can read what it used."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_child_subreaper = 36  # <linux/prctl.h>
    return ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0


def reap(pid: int | None, timeout_s: float = 60.0) -> float:
    """CPU seconds (user + system, with the processes it waited for) of adopted process
    ``pid`` once it exits; NaN if it is not this process's to reap or does not exit."""
    end = time.monotonic() + timeout_s
    while pid and time.monotonic() < end:
        try:
            done, _, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:  # not adopted (another OS, or it was reaped elsewhere)
            break
        if done:
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.05)
    return float("nan")


def fail(watch: RunWatch | None, why: str) -> int:
    from core.training import runs

    print(f"\nThe training run {why}.", file=sys.stderr)
    if watch is not None:
        if watch.state.message:
            print(f"message: {watch.state.message}", file=sys.stderr)
        print(f"last lines of {watch.out / runs.LOG}:", file=sys.stderr)
        for line in runs.log_tail(watch.out, 30) or ["(the log is empty)"]:
            print(f"  {line}", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- main


SMOKE_STEPS, SMOKE_IMAGES = 3, 100


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=10.0,
                        help="the training budget in minutes, as set in the panel (default 10; "
                        "the panel accepts 0.5 and more)")
    budget.add_argument("--steps", type=int, default=0,
                        help="a budget in steps instead of minutes (smoke runs)")
    ap.add_argument("--images", type=int, default=2000, help="files in the folder (default 2000)")
    ap.add_argument("--work", type=Path,
                    default=Path(tempfile.gettempdir()) / "easel-bench-train-panel",
                    help="where the folder and the run's EASEL_HOME go (default: a folder in "
                    "the temp dir; the folder is reused when complete)")
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    ap.add_argument("--keep", action="store_true",
                    help="keep the EASEL_HOME with the run folder and the new model")
    ap.add_argument("--smoke", action="store_true",
                    help=f"{SMOKE_STEPS} steps on {SMOKE_IMAGES} files in a fresh temporary "
                    "folder: checks that the benchmark runs (its figures mean nothing)")
    args = ap.parse_args(argv)
    smoke_work = None
    if args.smoke:
        args.steps, args.images = SMOKE_STEPS, SMOKE_IMAGES
        smoke_work = args.work = Path(tempfile.mkdtemp(prefix="easel-bench-train-panel-"))
    try:
        return _main(ap, args)
    finally:
        if smoke_work is not None:
            shutil.rmtree(smoke_work, ignore_errors=True)


def _main(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.steps <= 0 and args.minutes < 0.5:
        ap.error("the panel's budget is at least 0.5 minutes; use --steps N for a shorter run")
    if args.images < 100:
        ap.error("--images must be at least 100 (5% are held out; evaluation needs 2 or more)")

    work = args.work.expanduser().resolve()
    work.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    os.environ["EASEL_HOME"] = str(home)  # before anything asks core.paths for a folder

    import torch
    from report import load_average  # after EASEL_HOME: it imports core

    from desktop.panels.train import cpu_threads

    load = load_average()
    budget_text = f"{args.steps} steps" if args.steps > 0 else f"{args.minutes:g} minutes"
    header = (f"# Train panel benchmark (VAE, 64 px, {budget_text}, {args.images} JPEG files)\n"
              f"{platform.platform()}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__}, load average {load:.1f} at "
              f"start; the panel trains on the CPU with {cpu_threads()} torch thread(s)")
    print(header, flush=True)

    folder = work / f"faces-{args.images}"
    seconds, reused = build_folder(folder, args.images)
    shapes = folder_shapes(folder)
    print(f"\nfolder {folder}: {'reused' if reused else f'built in {seconds:.1f} s'}; {shapes}",
          flush=True)
    try:
        return run(args, header, folder, shapes, home)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept EASEL_HOME {home}")


def run(args: argparse.Namespace, header: str, folder: Path, shapes: str, home: Path) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    adopt_detached()  # before the panel starts its training process
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Easel")
    app.setOrganizationName("Easel")

    from desktop.autosave import Autosave
    from desktop.inference import InferenceService
    from desktop.window import MainWindow

    settings = QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(service=InferenceService(device="cpu"), settings=settings,
                     autosave=Autosave(folder=home / "autosave"))
    win.ask = lambda *_: "Discard"
    win.inform = lambda *_: None
    win.resize(1400, 900)
    win.show()
    win.panel_tabs.setCurrentWidget(win.train_panel)
    app.processEvents()
    try:
        return session(args, header, folder, shapes, win)
    finally:
        win.close()  # saves its settings into home, stops the inference thread
        app.processEvents()


def session(args: argparse.Namespace, header: str, folder: Path, shapes: str, win: Any) -> int:
    """Drive the window's Train panel through the run; measure and report."""
    from core.training import runs
    from core.weights import read_card
    from desktop.panels.train import POLL_MS

    panel = win.train_panel

    probe = GapProbe()
    watch: RunWatch | None = None
    try:
        # ---- the folder: easel dataset --json in a QProcess, then the thumbnails
        probe.start(PHASES[0])
        t0 = time.perf_counter()
        panel.set_folder(str(folder))

        def scanned() -> bool:
            return panel._scan is None and (panel.report is None
                                             or not panel.dataset.is_loading())

        wait_until(scanned, 15 * 60)
        scan_s = time.perf_counter() - t0
        if panel.report is None:
            print(f"the panel could not read the folder: {panel.message.text()}",
                  file=sys.stderr)
            return 1
        print(f"dataset view: {panel.report.get('count')} usable images, "
              f"{len(panel.report.get('skipped', []))} skipped, "
              f"{panel.dataset.thumbnails_loaded()} thumbnails, {scan_s:.1f} s "
              f"({panel.dataset.summary.text()})", flush=True)
        probe.set_phase(None)
        report = panel.report

        # ---- the settings, as a user picks them, and Start
        for box, value in ((panel.family, "vae"), (panel.picture_size, 64), (panel.device, "cpu"),
                           (panel.judge, "faces"),
                           (panel.budget_unit, "steps" if args.steps > 0 else "minutes")):
            i = box.findData(value)
            if i < 0:
                print(f"the panel offers no {value!r} setting", file=sys.stderr)
                return 1
            box.setCurrentIndex(i)
        panel.budget.setValue(args.steps if args.steps > 0 else args.minutes)
        if not panel.start_button.isEnabled():
            print(f"Start is disabled: {panel.message.text()}", file=sys.stderr)
            return 1
        probe.set_phase(PHASES[1])
        panel.start_button.click()
        if panel.out is None or not panel.is_running():
            print(f"the run did not start: {panel.message.text()}", file=sys.stderr)
            return 1
        watch = RunWatch(panel.out)
        print(f"run {panel.out} started: {' '.join(runs.read_launch(panel.out)['arguments'])}",
              flush=True)

        budget_s = args.minutes * 60 if args.steps <= 0 else 30 * 60
        last_note = [time.monotonic()]

        def done() -> bool:
            watch.poll()
            probe.set_phase(watch.phase())
            if time.monotonic() - last_note[0] > 60:
                last_note[0] = time.monotonic()
                s = watch.state
                print(f"  {clock(time.monotonic() - watch.started)}: {s.state}, step "
                      f"{s.step}", flush=True)
            return watch.finished()

        wait_until(done, budget_s + MARGIN_S, RUN_POLL_MS)
        train_end = watch.first("done")
        probe.set_phase(None)
        wait_until(lambda: False, 2 * POLL_MS / 1000, 100)  # the panel's last read
    finally:
        probe.stop()
        if watch is not None and not watch.finished():  # timed out, or an exception
            pid = runs.read_pid(watch.out)
            if pid is not None and runs.pid_alive(pid):
                os.kill(pid, signal.SIGTERM)  # the training process this benchmark started

    if not watch.finished():
        return fail(watch, f"did not finish within {clock(budget_s + MARGIN_S)} (stopped)")
    train_cpu = reap(runs.read_pid(watch.out))  # the whole process: training and evaluation
    train_wall = time.monotonic() - watch.started
    if "error" in watch.kinds() or not train_end or train_end.get("interrupted"):
        return fail(watch, "failed" if "error" in watch.kinds() else "was killed or stopped")
    if "eval" not in watch.kinds():
        return fail(watch, "ended without measuring the model")
    if not watch.state.metrics:
        return fail(watch, "ended, but its model could not be measured")

    shown = panel.state
    panel_note = ""
    if shown is None or shown.state != "finished" or not shown.metrics:
        panel_note = (f"NOTE: the panel shows the run as {shown.state if shown else None!r} "
                      f"{'with' if shown and shown.metrics else 'without'} metrics, while the "
                      "run's events have them.")
    # ---- figures
    weights = Path(str(train_end.get("weights") or watch.state.weights))
    card = read_card(weights)
    m = card.metrics
    start = watch.first("start")
    batch = int(start.get("batch_size") or 32)
    rate = card.steps * batch / card.wall_time_s if card.wall_time_s else float("nan")
    held_n = int(m.get("images") or 0)

    import torch
    from report import markdown_table

    from core.evaluation import metrics
    from core.evaluation.common import held_out_of
    from core.weights import find_model

    device = torch.device("cpu")
    # The run measured with --judge faces; the card does not keep the judge's name.
    held = dataclasses.replace(held_out_of(card), judge="faces")
    size = int(card.config.get("image_size", 64))
    t0, c0 = time.perf_counter(), time.process_time()
    real = held.images(runs.EVAL_IMAGES, size)
    again = measure_vae(weights, held, real, device)
    shipped = find_model("vae_faces", ("vae",))
    shipped_card = read_card(shipped.path) if shipped else None
    peer = measure_vae(shipped.path, held, real, device) if shipped else None
    small = small_then_bicubic(real)
    floor_files = training_files(held, len(real), size)
    floor = held.fjd(floor_files, real, device).get("fjd", float("nan"))
    peers_s, peers_cpu = time.perf_counter() - t0, time.process_time() - c0

    n_train = int(report.get("count", args.images)) - held_n
    rows = [[f"{card.name} (Train panel, new)",
             f"this folder: {n_train} training files", str(card.steps),
             clock(card.wall_time_s), fmt(m.get("recon_psnr"), ".2f"),
             fmt(m.get("recon_ssim"), ".3f"), fmt(m.get("bits_per_dim_elbo"), ".3f"),
             fmt(m.get("fjd"), ".2f")]]
    if peer is not None and shipped_card is not None:
        rows.append(["vae_faces (shipped)", "faces world renders, 64 px",
                     str(shipped_card.steps), clock(shipped_card.wall_time_s),
                     fmt(peer["recon_psnr"], ".2f"), fmt(peer["recon_ssim"], ".3f"),
                     fmt(peer["bits_per_dim_elbo"], ".3f"), fmt(peer["fjd"], ".2f")])
    rows.append([f"{SMALL_SIDE}x{SMALL_SIDE} then bicubic (no learning)", "-", "-", "-",
                 fmt(metrics.psnr(real, small), ".2f"), fmt(metrics.ssim(real, small), ".3f"),
                 "-", "-"])
    rows.append([f"real: {len(floor_files)} training files of the folder", "-", "-", "-", "-",
                 "-", "-", fmt(floor, ".2f")])
    q_headers = ["model", "trained on", "steps", "train time", "recon PSNR dB", "SSIM",
                 "bits/dim (ELBO)", "sample FJD (faces judge)"]
    summary = (f"Train panel run: {card.steps} steps x batch {batch} in "
               f"{card.wall_time_s:.0f} s = {rate:.1f} images/s; measured on {held_n} held-out "
               f"files of {args.images} ({held.fraction:.0%} by path hash), FJD against the same "
               f"files (n = {len(real)}: FJD is biased upwards at small n; compare rows, not "
               f"other tables). The training process, start to exit (evaluation "
               f"included): {train_wall:.1f} s, CPU {train_cpu:.1f} s. Peers measured in this "
               f"process in {peers_s:.1f} s, CPU {peers_cpu:.1f} s. Folder: {shapes}.")
    check = (f"Check: the new model re-measured in this process: PSNR "
             f"{again['recon_psnr']:.2f} dB, SSIM {again['recon_ssim']:.3f}, bits/dim "
             f"{again['bits_per_dim_elbo']:.3f}, FJD {again['fjd']:.2f} (card: "
             f"{fmt(m.get('recon_psnr'), '.2f')}, {fmt(m.get('recon_ssim'), '.3f')}, "
             f"{fmt(m.get('bits_per_dim_elbo'), '.3f')}, {fmt(m.get('fjd'), '.2f')}).")

    g_rows = []
    verdicts = []
    for phase in PHASES:
        ticks, longest, p99 = probe.row(phase)
        met = longest < TARGET_GAP_MS
        verdict = ("MET" if met else "MISSED") if ticks else "-"
        if phase == PHASES[1]:
            verdicts.append(verdict)
        g_rows.append([phase, str(ticks), fmt(longest, ".1f"), fmt(p99, ".1f"),
                       f"{verdict} (< {TARGET_GAP_MS:.0f} ms)"])
    g_headers = ["phase", "ticks", "longest gap ms", "p99 gap ms", "target"]
    verdict_line = (f"GUI target (longest event-loop gap while training < {TARGET_GAP_MS:.0f} "
                    f"ms): {verdicts[0]}")

    q_title = "## The new model and its peers on the folder's held-out files (64 px)"
    g_title = f"## GUI event loop ({TICK_MS} ms QTimer in the GUI thread, raw intervals)"
    print(f"\n{q_title}\n\n{markdown_table(q_headers, rows, left=2)}\n\n{summary}\n{check}")
    print(f"\n{g_title}\n\n{markdown_table(g_headers, g_rows)}\n\n{verdict_line}")
    if panel_note:
        print(panel_note)
    if args.out:
        from core.imageio import atomic_write

        md = "\n\n".join([header, q_title, markdown_table(q_headers, rows, left=2), summary, check,
                          g_title, markdown_table(g_headers, g_rows), verdict_line,
                          *([panel_note] if panel_note else [])]) + "\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, md.encode("utf-8"))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
