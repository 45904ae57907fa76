"""The Scene panel through a real MainWindow and InferenceService, with the tiny random-weight
scene models of tests/scene_models.py (16 px pictures, 4x4 codes): the prompt box, generating,
sending to the canvas, region editing, cancelling and restoring."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import scene_models
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QTextCharFormat
from shipped_weights import copy_judges
from window_helpers import count_submits, open_window

from core.jobs import Context, run_job
from core.nets.text import words
from core.pipelines import scene
from core.specs.scene import CAPTION_PRIOR
from desktop.panels.scene import ScenePanel
from desktop.widgets.prompt_box import WORD

WAIT = 20_000
PROMPT = "a red star to the left of a blue circle"


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    # Of the shipped models only the judges (the scenes judge gives the verdicts): the tests
    # see the tiny models alone, and no upscaler.
    copy_judges(tmp_path / "shipped")
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    scene_models.install(home)
    w = open_window(qtbot, tmp_path)
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def open_panel(win) -> ScenePanel:
    panel = next(p for p in win.panels if isinstance(p, ScenePanel))
    win.panel_tabs.setCurrentWidget(panel)
    return panel


def generate(qtbot, panel: ScenePanel, n: int = 3, prompt: str = PROMPT) -> None:
    panel.prompt.set_text(prompt)
    panel.count.setValue(n)
    panel.generate()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)



def cancel_each_way(qtbot, win, panel: ScenePanel, running: str) -> Iterator[None]:
    """Generate and cancel while the progress bar reads ``running``...: by the Cancel button,
    then by Esc (the window's); yields after each cancel."""
    for cancel in (panel.cancel_button.click, win.cancel_job):
        panel.generate()
        qtbot.waitUntil(lambda: panel.progress.format().startswith(running), timeout=WAIT)
        assert not panel.generate_button.isEnabled()
        cancel()
        qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)
        assert panel.message.text() == "Cancelled." and panel.generate_button.isEnabled()
        yield


def underlined(panel: ScenePanel) -> list[str]:
    """The words of the prompt box drawn with a wavy underline."""
    block = panel.prompt.edit.document().firstBlock()
    return [block.text()[r.start:r.start + r.length] for r in block.layout().formats()
            if r.format.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline]


def test_generate_fills_the_grid_best_first(qtbot, win):
    panel = open_panel(win)
    assert panel.current_model() == scene.DEFAULT_PRIOR
    panel.prompt.set_text(PROMPT)
    panel.count.setValue(4)
    qtbot.keyClick(panel.prompt.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert panel.is_running()  # Ctrl+Return ran the panel: a job of its own, not the strip's
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)
    assert panel.grid.count() == 4 and not win.doc.results
    scores = [c.score for c in panel.candidates]
    assert scores == sorted(scores, reverse=True)
    first = panel.candidates[0]
    assert panel.grid.item(0).toolTip().startswith(f"#1 · score {scores[0]:.3f}")
    assert "satisfied" in first.check and first.check in panel.caption.text()
    assert len(first.codes) == 16
    # The same spec run directly gives the same pictures, in the same order.
    direct = run_job(first.spec, Context.for_spec(first.spec, device="cpu"))
    for c, image in zip(panel.candidates, direct.images, strict=True):
        np.testing.assert_array_equal(c.image, image)
    assert panel.reading.text().startswith("Read as: ")
    assert "Not upscaled" in panel.reading.text()  # no upscaler in the test home: a notice


def test_unknown_words_are_underlined_with_suggestions(qtbot, win):
    panel = open_panel(win)
    assert panel.set_model(CAPTION_PRIOR)  # it draws around unknown words; a layout refuses
    box = panel.prompt
    box.set_text("a red Stra left of a blue cirle")
    assert underlined(panel) == ["Stra", "cirle"]
    assert "circle" in box.suggestions()["cirle"]
    assert box.hints.isVisible() and 'href="cirle:circle"' in box.hints.text()
    box.hints.linkActivated.emit("cirle:circle")  # a click on the suggestion
    assert box.text() == "a red Stra left of a blue circle"
    assert underlined(panel) == ["Stra"]

    # The ignored words reach the run's notices too, and the rest is drawn.
    generate(qtbot, panel, n=2, prompt=box.text())
    assert "Ignored words" in panel.reading.text() and "stra" in panel.reading.text()
    assert panel.grid.count() == 2

    # The box splits words exactly as the engine does.
    tricky = "Two_big, RED-stars; über 3x!"
    assert [w.lower() for w in WORD.findall(tricky)] == words(tricky)


def test_typing_completes_the_word_and_enter_generates(qtbot, win):
    panel = open_panel(win)
    edit = panel.prompt.edit
    qtbot.keyClicks(edit, "a red cir")
    popup = edit.completer.popup()
    assert popup.isVisible() and edit.completer.currentCompletion().startswith("cir")
    qtbot.keyClick(popup, Qt.Key.Key_Return)  # picks the highlighted completion
    assert panel.prompt.text() == f"a red {edit.completer.currentCompletion()} "
    assert not popup.isVisible()
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.is_running()
    qtbot.waitUntil(lambda: panel.grid.count() == 8, timeout=WAIT)  # the default count


def test_enter_generates_when_the_completion_adds_nothing(qtbot, win):
    panel = open_panel(win)
    edit = panel.prompt.edit
    qtbot.keyClicks(edit, "a red circle")
    popup = edit.completer.popup()
    assert popup.isVisible() and edit.completer.currentCompletion() == "circle"
    qtbot.keyClick(popup, Qt.Key.Key_Return)  # the first Enter generates
    assert panel.is_running() and not popup.isVisible()
    assert panel.prompt.text() == "a red circle"
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)


def test_an_empty_prompt_gives_a_message_and_no_job(qtbot, win, monkeypatch):
    panel = open_panel(win)
    specs = count_submits(win, monkeypatch)
    panel.prompt.set_text("   ")
    panel.generate()
    assert "Type a prompt" in panel.message.text() and panel.message.isVisible()
    assert win.run_current_panel() is None
    assert not specs and not panel.is_running()


def test_send_to_canvas_is_undoable(qtbot, win):
    panel = open_panel(win)
    generate(qtbot, panel, n=2)
    first, second = (c.image for c in panel.candidates)
    panel.grid.itemDoubleClicked.emit(panel.grid.item(0))  # no picture yet: it becomes one
    np.testing.assert_array_equal(win.doc.image_array(), first)
    panel.grid.setCurrentRow(1)
    panel.send_to_canvas()
    np.testing.assert_array_equal(win.doc.image_array(), second)
    assert win.doc.applied_spec()["kind"] == "scene"
    assert len(win.doc.results) == 2
    win.doc.undo_stack.undo()
    np.testing.assert_array_equal(win.doc.image_array(), first)


def test_a_scene_sent_to_the_empty_canvas_exports_with_its_spec(qtbot, win, tmp_path,
                                                                 monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from core import imageio

    panel = open_panel(win)
    generate(qtbot, panel, n=2)
    panel.grid.setCurrentRow(1)
    panel.send_to_canvas()  # no picture yet: it becomes the picture
    out = tmp_path / "scene.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    win.export_png()  # File > Export PNG
    spec = imageio.read_metadata(str(out))["spec"]
    # The candidate's spec with its own layout: the default layout prior redraws it exactly.
    chosen = panel.candidates[1]
    assert chosen.layout is not None and json.loads(spec["layout"]) == chosen.layout
    assert spec == json.loads(json.dumps(chosen.sent_spec()))
    np.testing.assert_array_equal(imageio.load_image(str(out)).rgb, panel.candidates[1].image)


def test_region_edit_needs_a_picture_and_a_selection(qtbot, win, monkeypatch):
    panel = open_panel(win)
    specs = count_submits(win, monkeypatch)
    panel.prompt.set_text(PROMPT)
    panel.edit_region()
    assert "no picture to edit" in panel.message.text()
    win.doc.set_image(np.full((16, 16, 3), 100, np.uint8))
    panel.edit_region()
    assert "Select the region" in panel.message.text()
    assert not specs and not panel.is_running()


def test_region_edit_changes_only_the_selected_region(qtbot, win, monkeypatch):
    panel = open_panel(win)
    generate(qtbot, panel, n=2)
    sent = panel.candidates[0]
    panel.send_to_canvas()
    before = win.doc.image_array()
    mask = np.zeros((16, 16), np.uint8)
    mask[:8, :8] = 255  # the top-left 2x2 of the 4x4 code cells
    win.doc.set_mask(mask)
    specs = count_submits(win, monkeypatch)
    panel.count.setValue(4)
    panel.prompt.set_text("a green square")
    panel.edit_region()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)
    edit = specs[-1]
    assert edit.kind == "scene_edit" and edit.box == (0.0, 0.0, 0.5, 0.5)
    assert edit.codes == sent.codes  # the canvas shows the sent candidate: its own codes
    assert panel.grid.count() == 2  # the better half of 4

    panel.send_to_canvas()  # replaces the whole picture, the selection stays
    after = win.doc.image_array()
    assert not np.array_equal(after[:8, :8], before[:8, :8])
    # Beyond the box and its feathered seam (a quarter of a 4 px cell) nothing moved.
    np.testing.assert_array_equal(after[10:], before[10:])
    np.testing.assert_array_equal(after[:, 10:], before[:, 10:])
    assert (win.doc.mask_array() == mask).all()
    assert win.doc.applied_spec()["kind"] == "scene_edit"
    win.doc.undo_stack.undo()
    np.testing.assert_array_equal(win.doc.image_array(), before)

    # A picture that is no longer the sent candidate is encoded by the job instead.
    win.doc.set_image(np.full((16, 16, 3), 80, np.uint8))
    win.doc.set_mask(mask)
    panel.edit_region()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)
    assert specs[-1].codes == ()


def test_cancel_by_button_and_by_esc(qtbot, win, monkeypatch):
    steps = scene.sample_steps

    def slow_steps(*args, **kw):  # a job long enough to be cancelled halfway
        gen = steps(*args, **kw)
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            time.sleep(0.1)
            yield item

    monkeypatch.setattr(scene, "sample_steps", slow_steps)
    panel = open_panel(win)
    panel.prompt.set_text(PROMPT)
    for _ in cancel_each_way(qtbot, win, panel, "Drawing code"):
        assert panel.grid.count() == 0 and not panel.progress.isVisible()


def test_an_easel_png_restores_the_prompt_and_settings(qtbot, win, tmp_path):
    panel = open_panel(win)
    panel.seed.setValue(42)
    panel.temperature.setValue(0.8)
    panel.top_k.setValue(5)
    panel.rerank.setChecked(False)
    generate(qtbot, panel, n=2)
    assert all(c.score is None for c in panel.candidates)  # not reranked: no scores
    panel.send_to_canvas()  # it became the picture, and a result in the strip
    png = str(tmp_path / "scene.png")
    assert win.write_png(png, win.doc.image_array(), None, win.doc.results[-1].spec)
    saved = panel.current_spec()

    panel.prompt.set_text("a yellow triangle")
    panel.seed.setValue(7)
    panel.rerank.setChecked(True)
    win.panel_tabs.setCurrentIndex(0)
    win.open_paths([png])
    assert win.current_panel() is panel and not win.messages
    assert panel.current_spec() == saved
    assert "Restored" in panel.message.text()

    problems = panel.restore(dict(saved.to_dict(), model="no_such_prior"))
    assert problems and "no_such_prior" in problems[0]


def test_no_model_installed_says_how_to_get_one(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    panel = ScenePanel()
    qtbot.addWidget(panel)
    assert "No scene model is installed" in panel.message.text()
    panel.prompt.set_text("anything at all")
    assert underlined(panel) == []  # no vocabulary: nothing to check against
    panel.generate()
    assert "No scene model" in panel.message.text() and not panel.is_running()


def test_settings_round_trip(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    panel = ScenePanel()
    qtbot.addWidget(panel)
    panel.prompt.set_text(PROMPT)
    panel.seed.setValue(77)
    panel.count.setValue(5)
    panel.guidance.setValue(2.5)
    panel.upscale.setChecked(False)
    panel.advanced_toggle.setChecked(True)
    panel.save_settings(settings)
    again = ScenePanel()
    qtbot.addWidget(again)
    again.load_settings(settings)
    assert (again.prompt.text(), again.seed.value(), again.count.value()) == (PROMPT, 77, 5)
    assert again.guidance.value() == 2.5 and not again.upscale.isChecked()
    assert again.advanced_toggle.isChecked()
