"""The Judge panel through a real MainWindow and InferenceService, with the tiny random-weight
classifier of tests/judge_models.py: fool, invert and dream run as jobs and show the picture,
the result, the magnified change and the figures; cancel; bad input; restore from a PNG."""

from __future__ import annotations

import judge_models
import numpy as np
import pytest
from window_helpers import open_window

from core import imageio
from desktop.panels.judge import JudgePanel

WAIT = 20_000


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    (tmp_path / "shipped").mkdir()
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))  # the tiny judge alone
    judge_models.install(home)
    w = open_window(qtbot, tmp_path)
    w.doc.set_image(judge_models.picture(1))
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def open_panel(win) -> JudgePanel:
    panel = next(p for p in win.panels if isinstance(p, JudgePanel))
    win.panel_tabs.setCurrentWidget(panel)
    return panel


def finish(qtbot, panel: JudgePanel) -> None:
    panel.run()
    assert panel.job is not None
    qtbot.waitUntil(lambda: panel.job is None, timeout=WAIT)


def test_fool_shows_picture_result_change_and_figures(qtbot, win):
    panel = open_panel(win)
    assert panel.model.currentData() == judge_models.NAME
    assert panel.attribute.findData("mood") >= 0 and panel.attribute.findData("mood=sad") >= 0
    panel.attribute.setCurrentIndex(panel.attribute.findData("mood"))
    panel.budget.setValue(32)
    finish(qtbot, panel)
    assert panel.status.text() == "Done.", panel.status.text()
    for key in ("original", "result", "perturbation"):
        assert not panel.views[key].pixmap().isNull(), key
    text = panel.figures.text()
    assert "fools tiny_judge only" in text and "L-inf" in text and "PSNR" in text
    adv, change = panel.result_images
    assert adv.shape == change.shape == judge_models.picture(1).shape
    assert panel.result_spec["kind"] == "judge_fool" and panel.result_spec["budget"] == 32
    # To canvas: the result becomes the picture, undoably
    panel.send_to_canvas()
    qtbot.waitUntil(lambda: np.array_equal(win.doc.image_array()[..., :3], adv), timeout=WAIT)


def test_invert_and_dream_show_their_figures(qtbot, win):
    panel = open_panel(win)
    panel.set_mode("invert")
    assert not panel.attribute.isEnabled() and not panel.views["perturbation"].isVisible()
    panel.layer.setCurrentIndex(panel.layer.findData("conv3"))
    panel.invert_steps.setValue(5)
    finish(qtbot, panel)
    assert "layer conv3: PSNR" in panel.figures.text()
    assert panel.result_images[0].shape == (16, 16, 3)
    panel.set_mode("dream")
    assert panel.attribute.itemData(0) == "" and panel.attribute.findData("mood") < 0
    panel.attribute.setCurrentIndex(panel.attribute.findData("glasses=glasses"))
    panel.dream_steps.setValue(3)
    panel.from_grey.setChecked(True)
    finish(qtbot, panel)
    assert "P(glasses=glasses)" in panel.figures.text()
    assert panel.result_spec["start"] == "grey"


def test_cancel_stops_the_job(qtbot, win):
    panel = open_panel(win)
    panel.set_mode("invert")
    panel.invert_steps.setValue(2000)
    panel.run()
    qtbot.waitUntil(lambda: "Inverting" in panel.status.text(), timeout=WAIT)
    assert panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
    panel.cancel()
    qtbot.waitUntil(lambda: panel.status.text() == "Cancelled.", timeout=WAIT)
    assert panel.job is None and panel.run_button.isEnabled()


def test_bad_input_shows_a_message_and_runs_nothing(qtbot, win):
    from desktop.canvas import Document

    panel = open_panel(win)
    panel.set_mode("dream")  # a class and a layer: the class is amplified, no layer is asked
    panel.attribute.setCurrentIndex(panel.attribute.findData("mood=sad"))
    panel.layer.setCurrentIndex(panel.layer.findData("conv2"))
    panel.dream_steps.setValue(2)
    finish(qtbot, panel)
    assert panel.status.text() == "Done." and panel.result_spec["layer"] == ""
    alone = JudgePanel()  # no picture open
    qtbot.addWidget(alone)
    alone.set_document(Document())
    alone.run()
    assert alone.job is None and "Open a picture first" in alone.message.text()


def test_restore_from_a_png_sets_mode_and_settings(qtbot, win, tmp_path):
    panel = open_panel(win)
    panel.set_mode("dream")
    panel.attribute.setCurrentIndex(panel.attribute.findData("mood=happy"))
    panel.dream_steps.setValue(3)
    panel.octaves.setValue(2)
    finish(qtbot, panel)
    png = tmp_path / "dream.png"
    imageio.save_png(png, panel.result_images[0], spec=panel.result_spec)
    panel.set_mode("fool")
    panel.octaves.setValue(4)
    win.open_image(str(png))
    assert panel.current_mode() == "dream" and panel.octaves.value() == 2
    assert panel.attribute.currentData() == "mood=happy" and panel.dream_steps.value() == 3


def test_the_panel_fits_the_first_windows_dock(qtbot):
    """Every mode's controls and the three pictures side by side fit the Panels dock of the
    first window (340 px wide) without a sideways scroll bar."""
    panel = JudgePanel()
    qtbot.addWidget(panel)
    for mode in ("fool", "invert", "dream"):
        panel.set_mode(mode)
        assert panel.minimumSizeHint().width() <= 340, mode
