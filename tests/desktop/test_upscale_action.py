"""Image > Upscale: the user picks an upscaler (Easel's or one imported from their files, each
with its scale); the picture goes through the service to the result strip; applying the
result replaces the picture (one undo step); refusals come before any job is queued."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtGui import QAction
from safetensors.torch import save_file
from upscaler_models import SRVGGCompact, randomise
from window_helpers import open_window

from core import paths
from core.model_manager import import_model
from core.nets.upscale import UpscaleConfig, Upscaler
from core.weights import ModelCard, save_model
from desktop.widgets.upscale_dialog import UpscaleDialog
from desktop.window import MainWindow


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))  # no shipped models
    monkeypatch.delenv("EASEL_MAX_PIXELS", raising=False)
    w = open_window(qtbot, tmp_path)
    w.asked = []  # what the Upscale dialog was shown each time; it answers the first model

    def choose(models, width, height, current, tile):
        w.asked.append((models, width, height, current, tile))
        return models[0]["name"], 96

    w.ask_upscaler = choose
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def install_upscaler() -> None:
    net = Upscaler(UpscaleConfig(scale=4, channels=4, blocks=1))
    card = ModelCard(name="upscale_faces", family="upscale", architecture="upscale",
                     config={"scale": 4, "channels": 4, "blocks": 1})
    save_model(paths.models_dir() / "upscale", "upscale_faces", net, card)


def menu_action(win: MainWindow, text: str) -> QAction:
    found = [a for a in win.findChildren(QAction) if a.text().replace("&", "") == text]
    assert len(found) == 1, text
    return found[0]


def test_upscale_action_fills_the_strip_and_apply_replaces_the_picture(qtbot, win):
    install_upscaler()
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (10, 14, 4), dtype=np.uint8)
    rgba[..., 3] = 128  # a half-transparent picture: its alpha must survive the upscale
    win.doc.set_image(rgba)
    action = menu_action(win, "Upscale…")
    assert action.shortcut().toString() == "Ctrl+Shift+U"
    action.trigger()
    [(models, width, height, current, tile)] = win.asked
    assert (width, height, current, tile) == (14, 10, "upscale_faces", 192)
    assert [(m["name"], m["scale"], m["kind"]) for m in models] == [
        ("upscale_faces", 4, "Easel's own")]
    qtbot.waitUntil(lambda: len(win.doc.results) == 1 and win._job is None, timeout=30_000)
    entry = win.doc.results[0]
    assert entry.rgb.shape == (40, 56, 4) and entry.label.startswith("Upscale")
    assert np.all(entry.rgb[..., 3] == 128)
    assert entry.spec["kind"] == "upscale" and entry.spec["model"] == "upscale_faces"
    assert entry.spec["tile"] == 96
    # An untrained upscaler is exactly bicubic upsampling of the picture.
    x = torch.from_numpy(rgba[..., :3]).permute(2, 0, 1)[None].float() / 127.5 - 1
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    expected = bicubic.clamp(-1, 1).add(1).mul(127.5).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(entry.rgb[..., :3].astype(int) - expected.astype(int)).max() <= 1

    win.apply_result(0)
    assert win.doc.image_array().shape == (40, 56, 3)
    assert np.all(win.doc.alpha_array() == 128)
    win.doc.undo_stack.undo()
    assert win.doc.image_array().shape == (10, 14, 3)
    assert np.array_equal(win.doc.image_array(), rgba[..., :3])


def test_upscale_without_a_picture_or_a_model_queues_nothing(win):
    assert win.upscale_picture() is None and win._job is None  # no picture
    win.doc.set_image(np.zeros((8, 8, 3), np.uint8))
    assert win.upscale_picture() is None and win._job is None  # no model installed
    assert "No upscaler is installed" in win.messages[-1] and not win.asked
    assert win.upscale_picture("upscale_faces") is None
    assert "Unknown upscale model 'upscale_faces'" in win.messages[-1]
    install_upscaler()
    win.ask_upscaler = lambda *args: None  # the dialog cancelled
    assert win.upscale_picture() is None and win._job is None
    assert win.service.pending() == 0


def test_upscale_over_the_pixel_limit_is_refused_up_front(win, monkeypatch):
    install_upscaler()
    monkeypatch.setenv("EASEL_MAX_PIXELS", "1000")
    win.doc.set_image(np.zeros((9, 10, 3), np.uint8))
    assert win.upscale_picture() is None
    assert "Upscaling 10x9 by 4 gives 40x36" in win.messages[-1]


def test_an_imported_upscaler_runs_at_its_own_scale_and_is_remembered(qtbot, win, tmp_path):
    install_upscaler()
    net = randomise(SRVGGCompact(num_feat=6, num_conv=1, upscale=2), 0.1)
    src = tmp_path / "files" / "realesr-general-x2.safetensors"
    src.parent.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(src))
    import_model(src)
    win.doc.set_image(np.full((6, 8, 3), 90, np.uint8))
    win.ask_upscaler = lambda models, w, h, current, tile: (
        win.asked.append(models) or ("realesr-general-x2", 4))
    assert win.upscale_picture() is not None
    assert win.job_progress.message.text() == "Upscale x2 (realesr-general-x2)…"
    kinds = {m["name"]: (m["scale"], m["kind"], m["source"]) for m in win.asked[0]}
    assert kinds == {"upscale_faces": (4, "Easel's own", "user"),
                     "realesr-general-x2": (2, "Real-ESRGAN compact (SRVGG)", "user")}
    qtbot.waitUntil(lambda: len(win.doc.results) == 1 and win._job is None, timeout=30_000)
    assert win.doc.results[0].rgb.shape == (12, 16, 3)
    assert win.doc.results[0].spec["model"] == "realesr-general-x2"
    assert win.doc.results[0].spec["tile"] == 4
    # The next Upscale offers the last choices first.
    seen = []
    win.ask_upscaler = lambda models, w, h, current, tile: seen.append((current, tile))
    win.upscale_picture()
    assert seen == [("realesr-general-x2", 4)]


def test_the_dialog_shows_each_scale_and_the_size_it_gives(qtbot):
    models = [{"name": "upscale_faces", "source": "shipped", "scale": 4, "kind": "Easel's own"},
              {"name": "x2plus", "source": "user", "scale": 2,
               "kind": "ESRGAN / Real-ESRGAN (RRDB)"}]
    dialog = UpscaleDialog(models, 300, 200, current="x2plus", tile=64)
    qtbot.addWidget(dialog)
    assert dialog.tile.value() == 64
    assert dialog.chosen()["name"] == "x2plus"
    assert dialog.model.currentText() == "x2plus: x2, ESRGAN / Real-ESRGAN (RRDB), yours"
    assert dialog.size_label.text() == "300 × 200 px → 600 × 400 px"
    dialog.model.setCurrentIndex(0)
    assert dialog.model.currentText() == "upscale_faces: x4, Easel's own, shipped"
    assert dialog.size_label.text() == "300 × 200 px → 1200 × 800 px"
    assert UpscaleDialog(models, 1, 1, current="gone").chosen()["name"] == "upscale_faces"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
