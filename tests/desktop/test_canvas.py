"""The canvas: QImage/numpy exchange, Document edits and undo, tools driven by real mouse
events on a shown CanvasView, zoom and pan, and .easel files."""

from __future__ import annotations

import io
import itertools
import json
import zipfile

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPainter, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop.canvas import (
    CanvasScene,
    CanvasView,
    Document,
    DocumentError,
    array_from_qimage,
    qimage_from_array,
)

LEFT, MIDDLE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton
NOMOD, ALT = Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.AltModifier


def picture(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


@pytest.fixture
def canvas(qtbot):
    """A shown 400x300 view on a document holding a 200x100 picture."""
    doc = Document()
    doc.set_image(picture(100, 200))
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return doc, view


def drag(view: CanvasView, points: list[tuple[float, float]], button=LEFT, mods=NOMOD,
         steps: int = 6) -> None:
    """Press at the first image point, move through the others (with steps in between),
    release at the last: real mouse events on the viewport. The path is mapped to the viewport
    before the press, as a hand moves the mouse on screen, even if the view pans meanwhile."""
    vp = view.viewport()
    path = [view.mapFromScene(QPointF(*points[0]))]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for i in range(1, steps + 1):
            t = i / steps
            path.append(view.mapFromScene(QPointF(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)))
    QTest.mousePress(vp, button, mods, path[0])
    for p in path[1:]:
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, button, mods, path[-1])


# ---- QImage <-> numpy ------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 3, 5, 7, 10])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_qimage_round_trip_with_row_padding(qapp, width, channels):
    a = picture(4, width, channels, seed=width)
    if channels == 1:
        a = a[..., 0]
    img = qimage_from_array(a)
    a_before = a.copy()
    a[...] = 0  # the image must own its pixels, not borrow a's
    back = array_from_qimage(img)
    if channels == 1:
        assert img.format() == QImage.Format.Format_Grayscale8
        assert img.bytesPerLine() % 4 == 0  # odd widths really are padded
        np.testing.assert_array_equal(back, a_before)
    else:
        assert img.format() == QImage.Format.Format_RGBA8888
        np.testing.assert_array_equal(back[..., :channels], a_before)
        if channels == 3:
            assert (back[..., 3] == 255).all()
    assert img.pixelColor(width - 1, 3).red() == int(a_before[3, width - 1].flat[0])


def test_array_from_other_formats_and_bad_input(qapp):
    img = QImage(3, 2, QImage.Format.Format_RGB32)
    img.fill(0xFF102030)
    np.testing.assert_array_equal(array_from_qimage(img)[1, 2], [0x10, 0x20, 0x30, 255])
    with pytest.raises(ValueError, match="uint8"):
        qimage_from_array(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        qimage_from_array(np.zeros((2, 2, 2), np.uint8))


# ---- painting with the mouse -----------------------------------------------------------------


def test_brush_stroke_is_one_undo_step(canvas):
    doc, view = canvas
    view.set_tool("brush")
    view.brush_size = 10
    drag(view, [(20, 50), (180, 50)])
    mask = doc.mask_array()
    assert (mask[50, 22:178] >= 128).all()
    assert not mask[:40].any() and not mask[61:].any()
    assert doc.undo_stack.count() == 1
    # The undo step holds the stroke's rect only, not the whole mask.
    (patch,) = doc.undo_stack.command(0).patches
    assert patch.rect.height() <= 12 and patch.before.size < mask.size / 4
    doc.undo_stack.undo()
    assert doc.mask_is_empty()
    doc.undo_stack.redo()
    np.testing.assert_array_equal(doc.mask_array(), mask)


def test_soft_brush_writes_coverage_and_hard_brush_is_sharp(canvas):
    doc, view = canvas
    view.brush_size, view.brush_hardness = 20, 0.0
    drag(view, [(50, 50), (60, 50)])
    soft = doc.mask_array()
    assert ((soft > 0) & (soft < 255)).sum() > 50
    doc.clear_mask()
    view.brush_hardness = 1.0
    drag(view, [(50, 50), (60, 50)])
    hard = doc.mask_array()
    assert ((hard > 0) & (hard < 255)).sum() < ((soft > 0) & (soft < 255)).sum() / 3


def test_eraser(canvas):
    doc, view = canvas
    view.brush_size = 16
    drag(view, [(20, 50), (180, 50)])
    view.set_tool("eraser")
    drag(view, [(80, 50), (120, 50)])
    mask = doc.mask_array()
    assert not mask[42:59, 90:111].any()
    assert (mask[50, 25:60] == 255).all() and (mask[50, 140:175] == 255).all()
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    assert (doc.mask_array()[50, 25:175] == 255).all()


def test_undo_during_a_stroke_drops_the_stroke(canvas):
    doc, _ = canvas
    doc.set_mask(np.full((100, 200), 255, np.uint8))
    stroke = doc.begin_stroke(10, 1.0, erase=True)
    stroke.to(QPointF(50, 50))
    assert not doc.mask_array()[50, 50]
    doc.undo_stack.undo()  # undoes set_mask; the half stroke is gone, not left behind
    assert doc.mask_is_empty()
    stroke.to(QPointF(60, 50))
    assert not stroke.finish() and doc.undo_stack.index() == 0


def test_brackets_change_brush_size(canvas, qtbot):
    _, view = canvas
    view.brush_size = 20
    with qtbot.waitSignal(view.brushChanged, timeout=1000) as blocker:
        QTest.keyClick(view, Qt.Key.Key_BracketRight)
    assert view.brush_size > 20 and blocker.args == [view.brush_size, view.brush_hardness]
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    assert view.brush_size < 20
    view.brush_size = 2
    view.change_brush_size(-5)
    assert view.brush_size == 1
    view.change_brush_size(1)
    assert view.brush_size == 2


def test_rect_tool_fills_and_alt_subtracts(canvas):
    doc, view = canvas
    view.set_tool("rect")
    drag(view, [(10, 10), (50, 40)])
    mask = doc.mask_array()
    assert (mask[10:40, 10:50] == 255).all()
    assert mask.sum() == 255 * 30 * 40  # crisp pixel-aligned edges, nothing outside
    assert doc.undo_stack.count() == 1
    drag(view, [(20, 20), (30, 30)], mods=ALT)
    assert not doc.mask_array()[20:30, 20:30].any()
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    np.testing.assert_array_equal(doc.mask_array(), mask)


def test_lasso_tool_fills_the_outline(canvas):
    doc, view = canvas
    view.set_tool("lasso")
    drag(view, [(100, 10), (160, 90), (40, 90), (100, 10)])
    mask = doc.mask_array()
    assert mask[60, 100] == 255 and mask[85, 50] > 0
    assert not mask[20, 40] and not mask[20, 160] and not mask[95].any()
    assert doc.undo_stack.count() == 1


def test_mouse_on_empty_document_does_nothing(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(200, 200)
    doc = Document()
    view.set_document(doc)
    view.show()
    drag(view, [(0, 0), (50, 50)])
    assert doc.is_empty() and doc.undo_stack.count() == 0


def test_big_picture_stroke(qtbot):
    """A 2048 px picture: a long stroke repaints only what it touches (sanity, not timing)."""
    doc = Document()
    doc.set_image(np.full((2048, 2048, 3), 90, np.uint8))
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.brush_size = 40
    drag(view, [(100, 100), (1900, 1500), (300, 1900)], steps=40)
    mask = doc.mask_array()
    assert mask[100, 100] == 255 and mask[1500, 1900] == 255 and mask[1900, 300] == 255
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.mask_is_empty()


def render(view: CanvasView) -> np.ndarray:
    """The scene's picture area rendered at scale 1, as HxWx4 RGBA."""
    scene = view.canvas_scene()
    rect = scene.image_rect()
    out = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_RGBA8888)
    out.fill(0)
    painter = QPainter(out)
    scene.render(painter, QRectF(out.rect()), rect)
    painter.end()
    return array_from_qimage(out)


def test_scene_follows_the_document(qtbot):
    doc = Document()
    grey = np.full((40, 60, 4), 128, np.uint8)
    grey[..., 3] = 255
    grey[:, 50:, 3] = 0  # a transparent strip
    doc.set_image(grey)
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(doc)
    shown = render(view)
    assert (shown[:, :50, :3] == 128).all()
    assert set(np.unique(shown[:, 50:, 0])) == {153, 204}  # checkerboard under transparency
    doc.fill_polygon([QPointF(10, 10), QPointF(20, 10), QPointF(20, 20), QPointF(10, 20)])
    tinted = render(view)
    assert tinted[15, 15, 0] > 180 and tinted[15, 15, 1] < 100  # red mask tint, that rect only
    np.testing.assert_array_equal(tinted[25:, :50], shown[25:, :50])
    view.canvas_scene().set_mask_visible(False)
    np.testing.assert_array_equal(render(view), shown)
    view.canvas_scene().set_mask_visible(True)
    doc.undo_stack.undo()
    np.testing.assert_array_equal(render(view), shown)
    view.canvas_scene().set_compare_image(np.zeros((20, 30, 3), np.uint8))
    assert (render(view)[..., :3] == 0).all()
    view.canvas_scene().set_compare_image(None)
    np.testing.assert_array_equal(render(view), shown)


# ---- document edits --------------------------------------------------------------------------


def test_apply_result_undo_restores_image_and_mask_exactly(qapp):
    doc = Document()
    doc.results_as_layers = False  # the setting that paints results into the picture
    original = picture(30, 40, 4, seed=1)
    doc.set_image(original)
    soft = np.random.default_rng(2).integers(0, 256, (30, 40), dtype=np.uint8)
    doc.set_mask(soft)
    result = picture(30, 40, 3, seed=3)
    doc.apply_result(result)
    img = array_from_qimage(doc.image)
    np.testing.assert_array_equal(img[..., :3], result)
    np.testing.assert_array_equal(img[..., 3], original[..., 3])  # RGB result keeps alpha
    assert doc.mask_is_empty()
    doc.undo_stack.undo()
    np.testing.assert_array_equal(array_from_qimage(doc.image), original)
    np.testing.assert_array_equal(doc.mask_array(), soft)
    doc.undo_stack.redo()
    np.testing.assert_array_equal(doc.image_array(), result)
    assert doc.mask_is_empty()


def test_the_spec_of_the_result_the_picture_shows(tmp_path, qapp):
    """A generated picture (a result sent to an empty canvas) keeps the spec that made it,
    under edits, undo and a save; an applied result's spec goes over it while applied."""
    made = {"kind": "scene", "prompt": "a red star", "seed": 3}
    doc = Document()
    doc.set_image(picture(20, 30), spec=made)
    assert doc.applied_spec() == made
    doc.set_mask(np.eye(20, 30, dtype=bool))
    assert doc.applied_spec() == made
    doc.apply_result(picture(20, 30, seed=4), spec={"kind": "inpaint", "seed": 4})
    assert doc.applied_spec()["kind"] == "inpaint"
    doc.undo_stack.undo()
    assert doc.applied_spec() == made
    doc.save(tmp_path / "made.easel")
    assert Document.load(tmp_path / "made.easel").applied_spec() == made
    doc.set_image(picture(20, 30))  # the user's own picture: no spec
    assert doc.applied_spec() is None


def test_apply_result_of_another_size(qtbot):
    doc = Document()
    doc.set_image(picture(10, 12))
    doc.set_mask(np.eye(10, 12, dtype=bool))
    with qtbot.waitSignal(doc.sizeChanged, timeout=1000):
        doc.apply_result(picture(40, 48, seed=4), clear_mask=False)
    assert doc.size().width() == 48 and doc.mask_array()[39, 39] == 255
    assert doc.alpha_array() is None
    doc.undo_stack.undo()
    assert doc.size().width() == 12
    np.testing.assert_array_equal(doc.mask_array(), np.eye(10, 12, dtype=np.uint8) * 255)


def test_mask_edits_and_bad_input(qapp):
    doc = Document()
    with pytest.raises(DocumentError, match="open an image"):
        doc.mask_array()
    doc.set_image(picture(8, 8))
    doc.set_mask(np.tri(8, dtype=bool))
    doc.invert_mask()
    np.testing.assert_array_equal(doc.mask_array(), 255 - np.tri(8, dtype=np.uint8) * 255)
    doc.clear_mask()
    assert doc.mask_is_empty() and doc.undo_stack.count() == 3
    doc.clear_mask()  # no change: no undo step
    assert doc.undo_stack.count() == 3
    with pytest.raises(DocumentError, match="8x8"):
        doc.set_mask(np.zeros((4, 4), np.uint8))
    with pytest.raises(DocumentError):
        doc.apply_result(np.zeros((8, 8), np.float32))


def test_set_image_is_open(qtbot):
    doc = Document()
    doc.set_image(picture(5, 5))
    doc.set_mask(np.ones((5, 5), bool))
    doc.add_result(picture(5, 5), {"seed": 1}, "r")
    with qtbot.waitSignal(doc.resultsChanged, timeout=1000):
        doc.set_image(picture(6, 7, 4), source_path="/pictures/a.png")
    assert doc.mask_is_empty() and not doc.results and doc.undo_stack.count() == 0
    assert doc.source_path == "/pictures/a.png" and doc.source_sha256
    assert not doc.is_dirty()


# ---- files -----------------------------------------------------------------------------------


def test_easel_round_trip(tmp_path, qtbot):
    doc = Document()
    doc.set_image(picture(20, 30, 4, seed=5), source_path="/pictures/cat.png")
    doc.set_mask(np.random.default_rng(6).integers(0, 256, (20, 30), dtype=np.uint8))
    doc.add_result(picture(20, 30, 3, seed=7), {"panel": "inpaint", "seed": 7}, "seed 7")
    doc.add_result(picture(80, 120, 4, seed=8), {"panel": "upscale"}, "x4")
    assert doc.is_dirty()
    path = tmp_path / "cat.easel"
    with qtbot.waitSignal(doc.dirtyChanged, timeout=1000) as blocker:
        doc.save(path)
    assert blocker.args == [False] and doc.undo_stack.isClean() and doc.path == str(path)
    assert [p.name for p in tmp_path.iterdir()] == ["cat.easel"]  # no temp file left

    back = Document.load(path)
    np.testing.assert_array_equal(array_from_qimage(back.image), array_from_qimage(doc.image))
    np.testing.assert_array_equal(back.mask_array(), doc.mask_array())
    assert [(r.label, r.spec) for r in back.results] == [(r.label, r.spec) for r in doc.results]
    for a, b in zip(back.results, doc.results, strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    assert back.results[1].thumbnail.width() <= 128
    assert back.source_path == "/pictures/cat.png" and back.source_sha256 == doc.source_sha256
    assert back.path == str(path) and not back.is_dirty()
    back.invert_mask()
    assert back.is_dirty()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_corrupt_easel_files_raise_document_error(tmp_path, qapp):
    doc = Document()
    doc.set_image(picture(6, 6))
    good = doc.snapshot_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["document.json"])
    bad = {
        "garbage": b"\x89PNG not a zip at all",
        "truncated": good[: len(good) // 2],
        "empty zip": _zip({}),
        "foreign json": _zip({**members, "document.json": b'{"format": "other"}'}),
        "newer": _zip({**members, "document.json": json.dumps({**meta, "version": 99}).encode()}),
        "broken png": _zip({**members, "image.png": b"\x89PNG\r\n\x1a\n broken"}),
        "bad results": _zip({**members, "document.json": json.dumps(
            {**meta, "results": [{"label": "x", "spec": {}}]}).encode()}),
    }
    for name, data in bad.items():
        path = tmp_path / f"{name}.easel"
        path.write_bytes(data)
        with pytest.raises(DocumentError) as info:
            Document.load(path)
        assert path.name in str(info.value) or "Easel" in str(info.value), name
    with pytest.raises(DocumentError, match="Could not open"):
        Document.load(tmp_path / "missing.easel")
    assert Document.from_bytes(good).size() == doc.size()


# ---- zoom, pan, drops ------------------------------------------------------------------------


def test_fit_and_zoom(canvas, qtbot):
    _, view = canvas
    vp = view.viewport().rect()
    shown = view.mapFromScene(view.canvas_scene().image_rect()).boundingRect()
    assert vp.contains(shown) and shown.width() >= vp.width() - 8
    with qtbot.waitSignal(view.zoomChanged, timeout=1000) as blocker:
        view.zoom_100()
    assert view.zoom() == 1.0 and blocker.args == [1.0]
    view.zoom_in()
    assert view.zoom() > 1.0
    view.zoom_out()
    view.zoom_out()
    assert view.zoom() < 1.0
    view.fit()
    assert (view.mapFromScene(QPointF(100, 50)) - vp.center()).manhattanLength() <= 2


def test_wheel_zooms_around_the_cursor(canvas):
    _, view = canvas
    view.zoom_100()
    pos = QPointF(view.mapFromScene(QPointF(150, 30)))
    before = view.map_to_image(pos)
    event = QWheelEvent(pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, NOMOD,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom() > 1.2
    after = view.map_to_image(pos)
    assert abs(after.x() - before.x()) < 1 and abs(after.y() - before.y()) < 1


@pytest.mark.parametrize("how", ["middle", "space", "move tool"])
def test_pan(canvas, how):
    doc, view = canvas
    view.set_zoom(4.0)
    centre = QPointF(view.viewport().rect().center())
    before = view.map_to_image(centre)
    if how == "space":
        QTest.keyPress(view, Qt.Key.Key_Space)
    if how == "move tool":
        view.set_tool("move")
    button = MIDDLE if how == "middle" else LEFT
    drag(view, [(before.x(), before.y()), (before.x() - 10, before.y())], button=button)
    if how == "space":
        QTest.keyRelease(view, Qt.Key.Key_Space)
    after = view.map_to_image(centre)
    assert after.x() - before.x() == pytest.approx(10, abs=1)
    assert doc.mask_is_empty() and doc.undo_stack.count() == 0  # panning never paints


def test_unknown_tool(canvas):
    with pytest.raises(ValueError, match="lasso"):
        canvas[1].set_tool("spray")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # QPoint event constructors, 6.12
def test_dropped_files_are_signalled_not_opened(canvas, qtbot):
    doc, view = canvas
    files = QMimeData()
    files.setUrls([QUrl.fromLocalFile("/tmp/a.png"), QUrl.fromLocalFile("/tmp/b.easel")])
    text = QMimeData()
    text.setText("not a file")
    vp = view.viewport()
    refused = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, text, LEFT, NOMOD)
    QApplication.sendEvent(vp, refused)
    assert not refused.isAccepted()
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, files, LEFT, NOMOD)
    QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, files, LEFT, NOMOD)
    with qtbot.waitSignal(view.filesDropped, timeout=1000) as blocker:
        QApplication.sendEvent(vp, drop)
    assert blocker.args == [["/tmp/a.png", "/tmp/b.easel"]]
    assert doc.undo_stack.count() == 0


def test_view_on_a_shared_scene_refits_when_the_picture_changes(qtbot):
    """The window may set documents on the scene directly; the view still follows."""
    scene = CanvasScene()
    view = CanvasView(scene)
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    doc = Document()
    doc.set_image(picture(100, 100))
    with qtbot.waitSignal(view.zoomChanged, timeout=1000):
        scene.set_document(doc)
    assert view.document() is doc and view.zoom() == pytest.approx(2.96, abs=0.05)
    view.zoom_100()
    with qtbot.waitSignal(view.zoomChanged, timeout=1000):
        doc.set_image(picture(1000, 1000))
    assert view.zoom() == pytest.approx(0.296, abs=0.01)
