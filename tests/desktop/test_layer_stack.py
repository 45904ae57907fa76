"""The document's layer stack in the app: results applied as layers, every layer change one
undo step, the Layers dock and the scene following the stack, .easel files and autosaves that
keep the layers, and layered files opened and exported from the window."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from window_helpers import open_window

from core.document import Layer, LayerStack, files, read_layered, write_layered
from desktop.canvas import CanvasScene, Document, DocumentError, array_from_qimage
from desktop.widgets.layers_dock import LayersDock


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def doc_with_result(qapp) -> tuple[Document, np.ndarray, np.ndarray]:
    """A 30x40 picture with a mask, and a result that changed the box x 10..25, y 5..20."""
    doc = Document()
    original = picture(30, 40)
    doc.set_image(original)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:20, 10:25] = 255
    doc.set_mask(mask)
    result = original.copy()
    result[5:20, 10:25] = picture(15, 15, seed=1)
    doc.apply_result(result, text="Apply Inpaint seed 1", spec={"kind": "inpaint", "seed": 1},
                     name="Inpaint seed 1")
    return doc, original, result


def test_a_result_is_applied_as_a_layer_at_its_box(qapp):
    doc, original, result = doc_with_result(qapp)
    assert [la.name for la in doc.layers] == ["Picture", "Inpaint seed 1"]
    layer = doc.layers[1]
    assert (layer.kind, layer.x, layer.y) == ("result", 10, 5)
    assert (layer.image.width(), layer.image.height()) == (15, 15)
    assert layer.spec == {"kind": "inpaint", "seed": 1}
    np.testing.assert_array_equal(doc.image_array(), result)  # what jobs see next
    np.testing.assert_array_equal(array_from_qimage(doc.image)[..., :3], original)
    assert doc.mask_is_empty() and doc.applied_spec()["seed"] == 1
    doc.undo_stack.undo()  # one step: the layer and the mask both come back
    assert len(doc.layers) == 1 and doc.mask_array()[10, 15] == 255
    np.testing.assert_array_equal(doc.image_array(), original)
    doc.undo_stack.redo()
    np.testing.assert_array_equal(doc.image_array(), result)


def test_every_layer_change_is_one_undo_step(qapp):
    doc, original, result = doc_with_result(qapp)
    steps = doc.undo_stack.count()
    doc.set_layer_visible(1, False)
    np.testing.assert_array_equal(doc.image_array(), original)
    for value in (0.9, 0.7, 0.5):  # a slider dragged: one step
        doc.set_layer_opacity(1, value)
    doc.rename_layer(1, "Kept")
    doc.set_layer_visible(1, True)
    doc.move_layer(1, 0)  # under the opaque picture: hidden by it
    np.testing.assert_array_equal(doc.image_array(), original)
    with pytest.raises(DocumentError, match="picture layer cannot be deleted"):
        doc.remove_layer(1)
    doc.remove_layer(0)
    assert doc.undo_stack.count() == steps + 6
    for _ in range(6):
        doc.undo_stack.undo()
    assert [(la.name, la.visible, la.opacity) for la in doc.layers] == [
        ("Picture", True, 1.0), ("Inpaint seed 1", True, 1.0)]
    np.testing.assert_array_equal(doc.image_array(), result)
    doc.undo_stack.redo()
    doc.undo_stack.redo()
    assert doc.layers[1].opacity == 0.5  # the whole drag came back in one step


def test_flatten_merges_the_visible_layers_into_the_picture(qapp):
    doc, original, result = doc_with_result(qapp)
    doc.add_layer(np.zeros((4, 4, 4), np.uint8) + 255, "Hidden note", 0, 0)
    doc.set_layer_visible(2, False)
    assert doc.flatten()
    assert [(la.name, la.kind) for la in doc.layers] == [("Picture", "picture")]
    np.testing.assert_array_equal(array_from_qimage(doc.image)[..., :3], result)
    assert not doc.flatten()  # nothing left to merge: no undo step
    doc.undo_stack.undo()
    assert len(doc.layers) == 3


def test_the_setting_paints_results_into_the_picture(qapp):
    doc = Document()
    doc.results_as_layers = False
    doc.set_image(picture(10, 12))
    doc.apply_result(picture(10, 12, seed=2))
    assert len(doc.layers) == 1
    np.testing.assert_array_equal(array_from_qimage(doc.image)[..., :3], picture(10, 12, 2))


def test_an_upscaled_result_replaces_the_stack(qapp):
    doc, _, result = doc_with_result(qapp)
    big = np.repeat(np.repeat(result, 2, axis=0), 2, axis=1)
    doc.apply_result(big, text="Apply x2", clear_mask=False)
    assert len(doc.layers) == 1 and doc.size().width() == 80
    doc.undo_stack.undo()
    assert len(doc.layers) == 2 and doc.size().width() == 40


def test_layers_survive_save_load_and_autosave_bytes(tmp_path, qapp):
    doc, _, result = doc_with_result(qapp)
    doc.set_layer_opacity(1, 0.4)
    doc.add_layer(np.full((6, 7, 4), 120, np.uint8), "Material map", -2, 3)
    doc.set_layer_visible(2, False)
    doc.save(tmp_path / "art.easel")
    for back in (Document.load(tmp_path / "art.easel"), Document.from_bytes(doc.snapshot_bytes())):
        assert [(la.name, la.kind, la.x, la.y, la.visible, la.opacity) for la in back.layers] \
            == [(la.name, la.kind, la.x, la.y, la.visible, la.opacity) for la in doc.layers]
        for a, b in zip(doc.layers, back.layers, strict=True):
            np.testing.assert_array_equal(array_from_qimage(a.image), array_from_qimage(b.image))
        np.testing.assert_array_equal(back.image_array(), doc.image_array())
        assert not back.is_dirty() and back.undo_stack.count() == 0


def test_the_scene_shows_each_layer_where_and_how_the_stack_says(qapp):
    doc, _, _ = doc_with_result(qapp)
    scene = CanvasScene()
    scene.set_document(doc)
    items = scene.layer_items()
    assert len(items) == 2 and items[1].pos().toTuple() == (10, 5)
    picture_item = items[0]
    doc.set_layer_opacity(1, 0.25)
    items = scene.layer_items()
    assert items[0] is picture_item and items[1].opacity() == pytest.approx(0.25)
    doc.move_layer(1, 0)
    assert scene.layer_items()[1] is picture_item
    assert scene.layer_items()[0].zValue() < picture_item.zValue()
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert scene.layer_items()[1].opacity() == 1.0


def test_the_layers_dock_edits_through_undoable_commands(qtbot):
    doc, original, _ = doc_with_result(None)
    dock = LayersDock()
    qtbot.addWidget(dock)
    dock.set_document(doc)
    assert [dock.list.item(i).text() for i in range(dock.list.count())] == [
        "Mask", "Inpaint seed 1", "Picture"]
    assert dock.selected_layer() == 1 and dock.lower_button.isEnabled()
    assert not dock.raise_button.isEnabled()  # the top layer
    steps = doc.undo_stack.count()
    dock.list.item(dock.layer_row(1)).setCheckState(Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not doc.layers[1].visible, timeout=1000)
    assert doc.undo_stack.count() == steps + 1
    np.testing.assert_array_equal(doc.image_array(), original)
    dock.list.setCurrentRow(dock.layer_row(1))
    dock.opacity.setValue(30)
    dock.opacity.setValue(20)
    assert doc.layers[1].opacity == pytest.approx(0.2) and doc.undo_stack.count() == steps + 2
    dock.list.item(dock.layer_row(1)).setText("Renamed")
    qtbot.waitUntil(lambda: doc.layers[1].name == "Renamed", timeout=1000)
    dock.list.setCurrentRow(dock.layer_row(0))
    assert not dock.delete_button.isEnabled()  # the picture
    assert not dock.lower_button.isEnabled() and dock.raise_button.isEnabled()
    dock.raise_button.click()
    assert [la.name for la in doc.layers] == ["Renamed", "Picture"]
    assert dock.selected_layer() == 1  # the selection follows the moved layer
    doc.undo_stack.undo()
    dock.list.setCurrentRow(dock.layer_row(1))
    dock.delete_button.click()
    assert len(doc.layers) == 1 and dock.list.count() == 2
    doc.undo_stack.undo()
    assert [dock.list.item(i).text() for i in range(dock.list.count())] == [
        "Mask", "Renamed", "Picture"]
    masks = []
    dock.maskVisibleChanged.connect(masks.append)
    dock.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert masks == [False] and len(doc.layers) == 2


def test_window_opens_layered_files_and_exports_them(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(3)
    stack = LayerStack(40, 30, [
        Layer("Background", rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)),
        Layer("Ink", rng.integers(0, 256, (8, 9, 4), dtype=np.uint8), 5, 6, True, 0.6)])
    ora = tmp_path / "art.ora"
    write_layered(ora, stack)
    win = open_window(qtbot, tmp_path)
    try:
        win.open_paths([str(ora)])
        assert [la.name for la in win.doc.layers] == ["Background", "Ink"]
        assert win.doc.imported_from == str(ora) and win.doc.path is None
        assert "art.ora" in win.windowTitle() and win.layers.list.count() == 3
        assert len(win.scene.layer_items()) == 2
        assert not win.write_layered(str(ora))  # never over the file it came from
        assert ora.read_bytes() and win.messages
        win.doc.set_layer_visible(1, False)
        psd = tmp_path / "out.psd"
        assert win.write_layered(str(psd))
        qtbot.waitUntil(lambda: not win.exporting())
        back = read_layered(psd)
        assert [(la.name, la.visible) for la in back.layers] == [("Background", True),
                                                                 ("Ink", False)]
        np.testing.assert_array_equal(back.layers[1].pixels, stack.layers[1].pixels)
        win.settings.setValue("results_as_layers", "false")
        win.set_results_as_layers(False)
        assert win.doc.results_as_layers is False
        win.flatten_layers()
        assert len(win.doc.layers) == 1
    finally:
        win.close()


def held_writer(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Hold the export thread before it encodes the .psd until ``release`` is set, so that a
    test sees the window while an export is under way; returns (started, release)."""
    started, release = threading.Event(), threading.Event()
    real = files.write_psd

    def write_psd(stack):
        started.set()
        assert release.wait(20), "the test never let the export go on"
        return real(stack)

    monkeypatch.setattr(files, "write_psd", write_psd)
    return started, release


def window_with_layers(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    win = open_window(qtbot, tmp_path)
    doc, _, _ = doc_with_result(qtbot)
    win._replace_document(doc)
    return win


def test_export_is_written_off_the_gui_thread_whole(qtbot, tmp_path, monkeypatch):
    started, release = held_writer(monkeypatch)
    win = window_with_layers(qtbot, tmp_path, monkeypatch)
    expected = win.doc.snapshot().stack
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(started.is_set()))
    timer.start(5)
    out = tmp_path / "out" / "layers.psd"
    out.parent.mkdir()
    try:
        assert win.write_layered(str(out))
        assert win.exporting() and win.export_progress.isVisible()
        assert "layers.psd" in win.export_progress.message.text()
        # The event loop keeps running while the export thread writes.
        qtbot.waitUntil(lambda: ticks.count(True) >= 5, timeout=10_000)
        assert win.exporting() and not out.exists()
        win.doc.set_layer_visible(1, False)  # an edit meanwhile does not reach the file
        release.set()
        qtbot.waitUntil(lambda: not win.exporting(), timeout=20_000)
        assert not win.export_progress.isVisible()
        assert "Exported layers.psd (2 layers)" in win.statusBar().currentMessage()
        assert [p.name for p in out.parent.iterdir()] == ["layers.psd"]  # no temp left
        back = read_layered(out)
        assert [(la.name, la.visible, la.x, la.y) for la in back.layers] == [
            (la.name, la.visible, la.x, la.y) for la in expected.layers]
        for got, want in zip(back.layers, expected.layers, strict=True):
            np.testing.assert_array_equal(got.pixels, want.pixels)
        assert not win.messages
    finally:
        timer.stop()
        release.set()
        win.close()


def test_closing_during_an_export_finishes_it_first(qtbot, tmp_path, monkeypatch):
    started, release = held_writer(monkeypatch)
    win = window_with_layers(qtbot, tmp_path, monkeypatch)
    asked = []
    win.ask = lambda title, text, buttons: asked.append(title) or "Discard"
    out = tmp_path / "layers.psd"
    try:
        assert win.write_layered(str(out))
        qtbot.waitUntil(started.is_set)
        assert not win.close()  # the export holds the close
        assert win.isVisible() and "Finishing the export of layers.psd" in (
            win.statusBar().currentMessage())
        release.set()
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=20_000)
        assert asked == ["Unsaved changes"]  # asked once, not again when the export ended
        assert len(read_layered(out).layers) == 2
    finally:
        release.set()
        win.close()


def test_a_failed_export_is_shown_and_keeps_the_window_open(qtbot, tmp_path, monkeypatch):
    started, release = held_writer(monkeypatch)
    win = window_with_layers(qtbot, tmp_path, monkeypatch)
    out = tmp_path / "gone" / "layers.psd"
    try:
        assert win.write_layered(str(out))
        assert not win.close()
        release.set()
        qtbot.waitUntil(lambda: bool(win.messages), timeout=20_000)
        assert "layers.psd was not written" in win.messages[0]
        assert "stays open" in win.messages[0]
        assert win.isVisible() and not win.exporting() and not out.parent.exists()
        assert not win.export_progress.isVisible()
    finally:
        release.set()
        win.close()
