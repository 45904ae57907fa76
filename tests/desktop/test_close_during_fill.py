"""Closing the window while a large PatchMatch fill runs: the job is cancelled, its thread is
waited for, and the process exits cleanly every time (never "QThread: Destroyed while thread
is still running", which aborts the process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import gc, sys, time
import numpy as np
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
from core.jobs import ImageRef
from core.pipelines.inpaint import InpaintSpec
from desktop.autosave import Autosave
from desktop.inference import InferenceService
from desktop.window import MainWindow

side, times, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
app = QApplication([])
picture = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
mask = np.zeros((side, side), np.uint8)
mask[side // 8::side // 4, side // 16:-side // 16] = 255  # long strokes: a long fill


def spin(ms):
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


for i in range(times):
    win = MainWindow(service=InferenceService(device="cpu"),
                     settings=QSettings(folder + "/settings.ini", QSettings.Format.IniFormat),
                     autosave=Autosave(folder=folder + "/autosave"))
    win.ask = lambda *args: "Discard"
    win.inform = lambda *args: None
    win.show()
    win.doc.set_image(picture)
    started = []
    job = win.service.submit(InpaintSpec(seed=i, image=ImageRef.of(picture),
                                         mask=ImageRef.of(mask, embed=True)))
    job.started.connect(lambda *args: started.append(time.perf_counter()))
    while not started:
        spin(10)
    spin(150 + 150 * i)  # close at a different point of the fill each time
    thread = win.service._thread
    assert thread.isRunning(), "the fill ended before the window closed"
    t0 = time.perf_counter()
    win.close()
    assert thread.isFinished(), "closing returned with the inference thread running"
    print(f"closed {i + 1}: {time.perf_counter() - t0:.2f} s", flush=True)
    win.deleteLater()
    del win, thread, job
    spin(0)
    gc.collect()
print("clean exit", flush=True)
"""


def test_closing_the_window_during_a_large_fill_exits_cleanly_every_time(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EASEL_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "3000", "10", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QThread: Destroyed" not in proc.stderr
    assert proc.stdout.count("closed ") == 10 and "clean exit" in proc.stdout, proc.stdout
