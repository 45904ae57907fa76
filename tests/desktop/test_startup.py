"""The window shows without torch: torch (and diffusers, transformers) load in the inference
worker at the first job, never on the GUI thread while the window is built and shown.

The window runs in a fresh Python process, so what other tests imported does not count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers")

SCRIPT = r"""
import importlib.abc
import json
import sys
import threading
import time

HEAVY = %(heavy)r
first_import = {}  # module -> whether the GUI (main) thread imported it


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and name not in first_import:
            first_import[name] = threading.current_thread() is threading.main_thread()
        return None


sys.meta_path.insert(0, Watch())

import numpy as np
from PySide6.QtWidgets import QApplication

app = QApplication(["easel"])
from desktop.window import MainWindow


def spin(until, seconds):
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


window = MainWindow()
window.show()
spin(lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), 30)
spin(lambda: False, 1.0)  # timers and queued signals of the first second
out = {"panels": [p.name for p in window.panels],
       "shown": window.windowHandle().isExposed(),
       "loaded_when_shown": [m for m in HEAVY if m in sys.modules],
       "label_before": window.device_label.text()}

from PySide6.QtWidgets import QMessageBox

about = []  # Help > About Easel's text (QMessageBox.about would wait for a click)
QMessageBox.about = staticmethod(lambda parent, title, text: about.append(text))
window.about()
out["about"] = about
out["loaded_by_about"] = [m for m in HEAVY if m in sys.modules]

from core.jobs import ImageRef
from core.specs.inpaint import InpaintSpec
from core.specs.upscale import UpscaleSpec, validate

image = np.full((32, 32, 3), 120, np.uint8)
image[:, ::4] = 30
validate(UpscaleSpec(image=ImageRef.of(image)))  # what Image > Upscale checks before submitting
out["loaded_by_upscale_check"] = [m for m in HEAVY if m in sys.modules]
mask = np.zeros((32, 32), np.uint8)
mask[12:20, 12:20] = 255
handle = window.service.submit(InpaintSpec(image=ImageRef.of(image), mask=ImageRef.of(mask)))
ended = []
handle.finished.connect(lambda result: ended.append("finished"))
handle.failed.connect(lambda message, tb: ended.append("failed: " + message))
spin(lambda: ended, 120)
spin(lambda: window.device_label.text() != out["label_before"], 5)  # reported before the job
out.update(ended=ended, loaded_after_job=[m for m in HEAVY if m in sys.modules],
           imported_on_gui_thread=[m for m, gui in first_import.items() if gui],
           label_after=window.device_label.text(),
           remembered=json.loads(window.settings.value("devices", "{}")))
window.close()
print("RESULT " + json.dumps(out))
"""


def run_window(tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", EASEL_HOME=str(tmp_path / "home"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SCRIPT % {"heavy": HEAVY}], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_torch_loads_in_the_worker_at_the_first_job_not_before_the_window(tmp_path):
    out = run_window(tmp_path)
    assert out["shown"]
    assert out["panels"] == ["inpaint", "latent", "scene", "style", "judge", "train"]
    assert out["loaded_when_shown"] == [], "imported while the window was built and shown"
    # The About box names the licence of the CLIP vocabulary Easel ships, without torch.
    assert len(out["about"]) == 1 and "resources/clip/LICENSE" in out["about"][0]
    assert out["loaded_by_about"] == [], "Help > About Easel would load torch"
    assert out["loaded_by_upscale_check"] == [], "Image > Upscale's check would load torch"
    assert out["ended"] == ["finished"]
    assert "torch" in out["loaded_after_job"]
    assert out["imported_on_gui_thread"] == []
    # The worker's device list reaches the status bar and is remembered for the next start.
    assert out["label_before"] == "Device: Automatic (best available)"
    assert out["label_after"] == f"Device: {next(iter(out['remembered'].values()))}"
    assert "cpu" in out["remembered"]


def test_a_device_the_app_cannot_use_is_refused_before_the_window(monkeypatch, capsys):
    from core import device
    from desktop.app import main

    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    assert main(["--device", "tpu"]) == 2
    assert "Unknown device 'tpu'" in capsys.readouterr().err
    assert main(["--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
