"""Composition the artist controls: a layout model's candidates show their layout as boxes
over the picture (desktop/widgets/layout_editor.py); moving, resizing, drawing, relabelling and
deleting boxes, then Redraw from layout, which draws that layout again with the same seed. The
layout travels with a picture sent to the canvas into its PNG and shows again on drop. Through a
real MainWindow and InferenceService with the tiny models of tests/scene_models.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scene_models
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from window_helpers import count_submits, open_window

from core import imageio
from core.data.layouts import BINS, layout_from_dict, layout_json
from core.specs.scene import CAPTION_PRIOR, DEFAULT_PRIOR
from desktop.panels.scene import ScenePanel
from desktop.widgets.layout_editor import LayoutEditor

WAIT = 20_000
PROMPT = "a red star to the left of a blue circle on a black background"
LAYOUT = {"background": "black", "objects": [
    {"shape": "star", "colour": "red", "size": "small", "box": [0.1, 0.4, 0.3, 0.6]},
    {"shape": "circle", "colour": "blue", "size": "big", "box": [0.5, 0.3, 0.86, 0.66]}]}


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    scene_models.install(home)
    scene_models.install_layout_prior(home)
    w = open_window(qtbot, tmp_path)
    yield w
    w.close()


@pytest.fixture
def editor(qtbot):
    e = LayoutEditor()
    qtbot.addWidget(e)
    e.resize(200, 200)
    e.show()
    e.set_picture(np.zeros((64, 64, 3), np.uint8))
    e.set_layout(LAYOUT)
    return e


def at(editor: LayoutEditor, x: float, y: float) -> QPoint:
    """The widget point of picture fractions (x, y)."""
    r = editor.picture_rect()
    return QPoint(round(r.x() + x * r.width()), round(r.y() + y * r.height()))


def drag(editor: LayoutEditor, start: tuple[float, float], end: tuple[float, float]) -> None:
    QTest.mousePress(editor, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     at(editor, *start))
    QTest.mouseMove(editor, at(editor, (start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    QTest.mouseMove(editor, at(editor, *end))
    QTest.mouseRelease(editor, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       at(editor, *end))


def boxes(editor: LayoutEditor) -> list[list[float]]:
    return [o["box"] for o in editor.layout()["objects"]]


# --------------------------------------------------------------------------- the editor


def test_dragging_a_box_moves_it_and_a_corner_resizes_it(editor):
    changes = []
    editor.changed.connect(lambda: changes.append(1))
    drag(editor, (0.2, 0.5), (0.2, 0.2))  # the star's middle, up by 0.3
    star = boxes(editor)[0]
    assert star == pytest.approx([0.1, 0.1, 0.3, 0.3], abs=0.01) and editor.selected == 0
    drag(editor, (0.86, 0.66), (0.96, 0.96))  # the circle's bottom-right corner
    circle = boxes(editor)[1]
    assert circle == pytest.approx([0.5, 0.3, 0.96, 0.96], abs=0.01)
    assert editor.layout()["objects"][1]["size"] == "big" and len(changes) == 2
    drag(editor, (0.2, 0.2), (0.2, -0.5))  # dragged past the top: it stops at the edge
    assert boxes(editor)[0][1] == pytest.approx(0.0) and boxes(editor)[0][3] == pytest.approx(0.2)


def test_drawing_on_free_ground_adds_a_labelled_box_up_to_three(editor):
    refused = []
    editor.refused.connect(refused.append)
    editor.new_label = {"shape": "heart", "colour": "yellow"}
    drag(editor, (0.1, 0.75), (0.3, 0.95))
    added = editor.layout()["objects"][2]
    assert added["shape"] == "heart" and added["colour"] == "yellow" and added["size"] == "small"
    assert added["box"] == pytest.approx([0.1, 0.75, 0.3, 0.95], abs=0.01)
    assert editor.selected == 2
    drag(editor, (0.6, 0.8), (0.75, 0.95))  # a fourth: refused, saying why
    assert len(editor.objects) == 3 and "at most 3 objects" in refused[0]
    drag(editor, (0.01, 0.01), (0.02, 0.02))  # too small to be a box: nothing
    assert len(editor.objects) == 3 and len(refused) == 1


def test_delete_relabel_and_undo(editor):
    editor.setFocus()
    QTest.mouseClick(editor, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     at(editor, 0.2, 0.5))
    assert editor.selected == 0
    editor.relabel(colour="green", shape="triangle")
    assert editor.objects[0]["colour"] == "green" and editor.objects[0]["shape"] == "triangle"
    QTest.keyClick(editor, Qt.Key.Key_Delete)
    assert [o["shape"] for o in editor.objects] == ["circle"] and editor.selected == -1
    QTest.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editor.objects[0]["shape"] == "triangle"
    QTest.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editor.layout() == layout_from_dict_json(LAYOUT)
    assert not editor.undo()  # nothing left to undo
    editor.relabel(shape="square")  # nothing selected: the next drawn box's label
    assert editor.new_label["shape"] == "square" and editor.objects[0]["shape"] == "star"


def layout_from_dict_json(d):
    return json.loads(json.dumps(d))


# --------------------------------------------------------------------------- the panel


def open_panel(win) -> ScenePanel:
    panel = next(p for p in win.panels if isinstance(p, ScenePanel))
    win.panel_tabs.setCurrentWidget(panel)
    return panel


def generate(qtbot, panel: ScenePanel, run) -> None:
    run()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)


def test_layout_shows_only_for_a_layout_model(qtbot, win):
    panel = open_panel(win)
    assert panel.current_model() == DEFAULT_PRIOR and panel.layout_box.isVisibleTo(panel)
    assert panel.set_model(CAPTION_PRIOR)
    assert not panel.layout_box.isVisibleTo(panel)  # the caption prior draws no layout
    assert panel.set_model(scene_models.LAYOUT_NAME)
    assert panel.layout_box.isVisibleTo(panel) and not panel.redraw_button.isEnabled()
    panel.redraw_from_layout()
    assert "no layout to redraw" in panel.message.text() and not panel.is_running()


def test_redraw_from_an_edited_layout_keeps_the_seed(qtbot, win, monkeypatch):
    panel = open_panel(win)
    panel.set_model(scene_models.LAYOUT_NAME)
    panel.prompt.set_text(PROMPT)
    panel.count.setValue(2)
    panel.seed.setValue(11)
    generate(qtbot, panel, panel.generate)
    first = panel.candidates[0]
    assert first.layout is not None and panel.layout_editor.layout() == first.layout
    shapes = sorted(o["shape"] for o in first.layout["objects"])
    assert shapes == ["circle", "star"] and first.layout["background"] == "black"

    editor = panel.layout_editor
    star = next(i for i, o in enumerate(editor.objects) if o["shape"] == "star")
    editor._select(star)
    panel.box_colour.setCurrentText("green")  # relabel the selected box
    x0, y0, x1, y1 = editor.objects[star]["box"]
    drag(editor, ((x0 + x1) / 2, (y0 + y1) / 2), ((x0 + x1) / 2, (y0 + y1) / 2 + 0.1))
    panel.background.setCurrentText("white")
    panel.seed.setValue(99)  # the dice after the run: the redraw keeps the run's seed
    wanted = editor.layout()
    specs = count_submits(win, monkeypatch)
    generate(qtbot, panel, panel.redraw_button.click)
    (spec,) = specs
    assert spec.seed == 11 and spec.n == 2
    assert layout_from_dict(json.loads(spec.layout)) == layout_from_dict(wanted)
    for c in panel.candidates:  # every candidate drew the edited layout (within a bin)
        assert c.layout["background"] == "white"
        green = next(o for o in c.layout["objects"] if o["colour"] == "green")
        assert green["shape"] == "star"
        assert green["box"] == pytest.approx(wanted["objects"][star]["box"], abs=1 / BINS)
    assert "Read as:" in panel.reading.text() and "green star" in panel.reading.text()


def test_a_layout_that_cannot_be_drawn_is_refused_naming_why(qtbot, win, monkeypatch):
    panel = open_panel(win)
    panel.set_model(scene_models.LAYOUT_NAME)
    panel.prompt.set_text(PROMPT)
    panel.count.setValue(1)
    generate(qtbot, panel, panel.generate)
    specs = count_submits(win, monkeypatch)
    panel.background.setCurrentText("red")  # the red star would vanish
    panel.redraw_from_layout()
    assert "invisible on the red background" in panel.message.text() and not specs
    panel.layout_editor.undo()
    for _ in range(2):
        panel.layout_editor._select(0)
        panel.delete_box_button.click()
    panel.redraw_from_layout()
    assert "objects" in panel.message.text() and not specs


def test_the_layout_travels_in_the_png_and_shows_again_on_drop(qtbot, win, tmp_path):
    panel = open_panel(win)
    panel.set_model(scene_models.LAYOUT_NAME)
    panel.prompt.set_text(PROMPT)
    panel.count.setValue(2)
    panel.seed.setValue(5)
    generate(qtbot, panel, panel.generate)
    panel.grid.setCurrentRow(1)
    chosen = panel.candidates[1]
    panel.send_to_canvas()
    png = str(tmp_path / "scene.png")
    assert win.write_png(png, win.doc.image_array(), None, win.doc.results[-1].spec)
    spec = imageio.read_metadata(png)["spec"]
    assert spec["layout"] == layout_json(layout_from_dict(chosen.layout)) and spec["seed"] == 5

    panel.layout_editor.set_layout(None)
    panel.seed.setValue(1)
    win.open_paths([png])
    assert win.current_panel() is panel and not win.messages
    assert layout_from_dict(panel.layout_editor.layout()) == layout_from_dict(chosen.layout)
    assert "Redraw from layout" in panel.message.text() and panel.redraw_button.isEnabled()
    assert panel.layout_spec().seed == 5

    spec["layout"] = json.dumps({"background": "black", "objects": []})  # crafted
    problems = panel.restore(spec)
    assert problems and "layout saved in this image cannot be used" in problems[0]


def test_a_png_from_the_command_line_shows_its_candidates_layout_on_drop(qtbot, win, tmp_path):
    from core import cli

    out = tmp_path / "cli.png"
    assert cli.main(["scene", PROMPT, "--model", scene_models.LAYOUT_NAME, "--n", "2",
                     "--seed", "3", "-o", str(out)]) == 0
    meta = imageio.read_metadata(out)
    assert "layout" not in meta["spec"] or not meta["spec"]["layout"]  # the job's own spec
    panel = open_panel(win)
    win.open_paths([str(out)])
    assert win.current_panel() is panel and not win.messages
    assert layout_from_dict(panel.layout_editor.layout()) == layout_from_dict(meta["layout"])
    assert panel.layout_spec().seed == 3 and panel.redraw_button.isEnabled()
