"""The main window end to end: open, paint a mask, inpaint through the real service, apply,
undo/redo, cancel and close mid-job, autosave and recovery, Easel PNG round trip."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from window_helpers import open_window

from core import imageio
from desktop.app import offer_recovery
from desktop.inference import JobHandle
from desktop.window import MainWindow


def stripes(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.where((x // 6) % 2 == 0, 200, 40)
    img[..., 1] = np.where((y // 8) % 2 == 0, 180, 60)
    img[..., 2] = 90
    return img


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    made = []

    def make(autosave_dir=None) -> MainWindow:
        win = open_window(qtbot, tmp_path, autosave_dir=autosave_dir,
                          name=f"settings{len(made)}.ini")
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()
        assert not win.service.thread().isRunning()


def write_image(tmp_path, size=96) -> str:
    path = tmp_path / "photo.png"
    imageio.save_png(str(path), stripes(size, size))
    return str(path)


def masked_window(make_window, tmp_path) -> MainWindow:
    """A window showing a 96 px picture with a 20 px square masked in its middle."""
    win = make_window()
    win.open_paths([write_image(tmp_path)])
    mask = np.zeros((96, 96), np.uint8)
    mask[40:60, 40:60] = 255
    win.doc.set_mask(mask)
    return win


def paint_stroke(qtbot, win: MainWindow, points: list[tuple[float, float]]) -> None:
    """Drag the brush across image coordinates with real mouse events on the view."""
    win.set_tool("brush")
    win.view.set_brush_size(10)
    vp = win.view.viewport()

    def at(p):
        return win.view.mapFromScene(*p)

    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(points[0]))
    for p in points[1:]:
        QTest.mouseMove(vp, at(p))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       at(points[-1]))


def run_inpaint(qtbot, win: MainWindow, seed: int = 5) -> None:
    panel = win.panels[0]
    panel.random_seed.setChecked(False)
    panel.seed.setValue(seed)
    count = len(win.doc.results)
    assert win.run_current_panel() is not None
    qtbot.waitUntil(lambda: len(win.doc.results) > count, timeout=60_000)


def test_open_paint_inpaint_apply_undo_redo(qtbot, make_window, tmp_path):
    win = make_window()
    path = write_image(tmp_path)
    win.open_paths([path])
    original = win.doc.image_array().copy()
    assert original.shape == (96, 96, 3)

    paint_stroke(qtbot, win, [(30, 40), (45, 42), (60, 44)])
    mask = win.doc.mask_array() >= 128
    assert 0 < mask.sum() < mask.size // 4
    assert win.doc.undo_stack.count() == 1

    run_inpaint(qtbot, win)
    assert len(win.doc.results) == 1
    result = win.doc.results[0].rgb
    assert np.array_equal(result[~mask], original[~mask])  # outside the mask: untouched

    win.apply_result(0)
    assert np.array_equal(win.doc.image_array(), result)
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.image_array(), original)
    assert np.array_equal(win.doc.mask_array() >= 128, mask)  # the mask comes back too
    win.doc.undo_stack.redo()
    assert np.array_equal(win.doc.image_array(), result)


def test_bad_image_gives_a_message_and_keeps_the_canvas(make_window, tmp_path):
    win = make_window()
    win.open_paths([write_image(tmp_path)])
    before = win.doc.image_array().copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    win.open_paths([str(bad)])
    assert win.messages and "broken.png" in win.messages[-1]
    assert np.array_equal(win.doc.image_array(), before)


def test_empty_mask_is_refused_without_a_job(make_window, tmp_path):
    win = make_window()
    win.open_paths([write_image(tmp_path)])
    assert win.run_current_panel() is None
    assert "mask is empty" in win.messages[-1]
    assert win.service.pending() == 0


def big_masked_window(make_window, tmp_path) -> MainWindow:
    win = make_window()
    win.open_paths([write_image(tmp_path, size=512)])
    mask = np.zeros((512, 512), np.uint8)
    mask[100:400, 120:420] = 255
    win.doc.set_mask(mask)
    win.panels[0].iterations.setValue(12)
    win.panels[0].random_seed.setChecked(False)
    return win


def start_big_job(qtbot, win: MainWindow) -> JobHandle:
    """Submit the panel's job and wait (in the GUI thread) until its first step is shown."""
    job = win.run_current_panel()
    assert job is not None
    qtbot.waitUntil(lambda: win.job_progress.bar.maximum() > 0, timeout=30_000)
    return job


def test_cancel_mid_job(qtbot, make_window, tmp_path):
    win = big_masked_window(make_window, tmp_path)
    start_big_job(qtbot, win)
    win.cancel_job()
    qtbot.waitUntil(lambda: win._job is None, timeout=30_000)
    assert win.statusBar().currentMessage() == "Cancelled."
    assert len(win.doc.results) == 0
    assert win._job is None and win.panels[0].run_button.isEnabled()


def test_close_mid_job_leaves_no_thread(qtbot, make_window, tmp_path):
    win = big_masked_window(make_window, tmp_path)
    start_big_job(qtbot, win)
    thread = win.service.thread()
    win.close()
    assert not thread.isRunning()


def test_autosave_then_recovery_after_a_crash(qtbot, make_window, tmp_path):
    folder = tmp_path / "autosave"
    crashed = make_window(folder)
    crashed.open_paths([write_image(tmp_path)])
    mask = np.zeros((96, 96), np.uint8)
    mask[10:30, 10:50] = 255
    crashed.doc.set_mask(mask)
    assert crashed.autosave.save_now()
    # A crash leaves the autosave behind with a lock nobody holds any more.
    leftover = folder / "autosave-crashed.easel"
    leftover.write_bytes(crashed.autosave.file.read_bytes())

    win = make_window(folder)
    win.ask = lambda title, text, buttons: "Recover"
    assert offer_recovery(win)
    assert np.array_equal(win.doc.mask_array() >= 128, mask > 0)
    assert np.array_equal(win.doc.image_array(), crashed.doc.image_array())
    assert not leftover.exists()  # recovered once, then cleaned up
    assert not offer_recovery(win)
    # The recovered picture is saved nowhere yet: closing must ask, not drop it again.
    assert win.doc.is_dirty()
    asked = []
    win.ask = lambda title, text, buttons: asked.append(title) or "Cancel"
    win.close()
    assert asked and win.isVisible()
    win.ask = lambda title, text, buttons: "Discard"


def test_easel_png_round_trip_restores_panel(qtbot, make_window, tmp_path):
    win = masked_window(make_window, tmp_path)
    win.panels[0].patch.setValue(9)
    win.panels[0].grow.setValue(3)
    run_inpaint(qtbot, win, seed=1234)
    out = tmp_path / "result.png"
    assert win.write_png(str(out), win.doc.results[0].rgb, None, win.doc.results[0].spec)
    meta = imageio.read_metadata(str(out))
    assert meta["spec"]["seed"] == 1234 and meta["spec"]["patch_size"] == 9

    other = make_window()
    other.panel_tabs.setCurrentIndex(2)
    other.open_paths([str(out)])
    panel = other.panels[0]
    assert other.current_panel() is panel
    assert (panel.seed.value(), panel.patch.value(), panel.grow.value()) == (1234, 9, 3)
    assert not panel.random_seed.isChecked()


def test_results_never_overwrite_the_input(make_window, tmp_path):
    win = make_window()
    path = write_image(tmp_path)
    win.open_paths([path])
    before = Path(path).read_bytes()
    assert not win.write_png(path, np.zeros((96, 96, 3), np.uint8), None, None)
    assert Path(path).read_bytes() == before
    assert "never overwrites" in win.messages[-1]


def test_brush_size_shortcuts_follow_the_slider(qtbot, make_window):
    win = make_window()
    win.view.set_brush_size(20)
    QTest.keyClick(win.view, Qt.Key.Key_BracketRight)
    assert win.view.brush_size > 20
    assert win.size_slider.value() == win.view.brush_size


def test_device_setting_persists_and_reaches_the_service(make_window):
    win = make_window()
    win.set_device("cpu")
    assert win.service.device() == "cpu"
    assert win.settings.value("device") == "cpu"
    assert "CPU" in win.device_label.text()
    win.set_device("auto")
    assert win.service.device() is None


def device_menu(win: MainWindow) -> dict[str, bool]:
    return {act.data(): act.isEnabled() for act in win.device_actions.actions()}


def train_devices(win: MainWindow) -> list[str]:
    box = win.train_panel.device
    return [box.itemData(i) for i in range(box.count())]


def test_the_device_menu_shows_what_the_worker_found_and_remembers_it(qtbot, make_window,
                                                                       tmp_path):
    win = make_window()
    win.set_device("auto")
    # Nothing found yet (no job ran, so no torch): the CPU, and the best one, automatically.
    assert device_menu(win) == {"auto": True, "cuda": False, "mps": False, "cpu": True}
    assert win.device_label.text() == "Device: Automatic (best available)"
    assert train_devices(win) == ["auto", "cpu"]
    win.service.devicesFound.emit({"cuda:0": "CUDA (Test GPU)", "cpu": "CPU (2 threads)"})
    assert device_menu(win) == {"auto": True, "cuda": True, "mps": False, "cpu": True}
    assert win.device_label.text() == "Device: CUDA (Test GPU)"
    assert train_devices(win) == ["auto", "cuda:0", "cpu"]
    win.set_device("cpu")
    assert win.device_label.text() == "Device: CPU (2 threads)"
    # The next start shows them before its worker has looked.
    again = open_window(qtbot, tmp_path, {"devices": win.settings.value("devices")},
                        name="again.ini")
    try:
        assert device_menu(again)["cuda"] and train_devices(again) == ["auto", "cuda:0", "cpu"]
        again.set_device("cuda")
        assert again.device_label.text() == "Device: CUDA (Test GPU)"
        again.service.devicesFound.emit({"cpu": "CPU (2 threads)"})  # the GPU is gone
        assert not device_menu(again)["cuda"] and train_devices(again) == ["auto", "cpu"]
        assert again.device_label.text() == ("Device: CUDA was asked for but no CUDA GPU is "
                                              "available here.")
    finally:
        again.close()


def test_opening_another_picture_mid_job_drops_the_old_job(qtbot, make_window, tmp_path):
    win = big_masked_window(make_window, tmp_path)
    start_big_job(qtbot, win)
    other = tmp_path / "other.png"
    imageio.save_png(str(other), stripes(64, 80))
    win.open_paths([str(other)])
    qtbot.waitUntil(lambda: win.service.pending() == 0, timeout=30_000)
    qtbot.wait(50)  # let any late signal of the old job arrive
    assert win.doc.image_array().shape == (64, 80, 3)
    assert len(win.doc.results) == 0 and win._job is None


def test_a_result_that_beats_the_cancel_is_dropped(qtbot, make_window, tmp_path):
    win = masked_window(make_window, tmp_path)
    assert win.run_current_panel() is not None
    deadline = time.monotonic() + 60
    while win.service.pending() and time.monotonic() < deadline:
        time.sleep(0.01)  # no event processing: the result waits, undelivered, in the queue
    win.cancel_job()
    qtbot.waitUntil(lambda: win._job is None, timeout=10_000)
    assert len(win.doc.results) == 0


def test_export_after_undo_does_not_claim_the_undone_result(qtbot, make_window, tmp_path):
    win = masked_window(make_window, tmp_path)
    run_inpaint(qtbot, win)
    win.apply_result(0)
    assert win.doc.applied_spec()["kind"] == "inpaint"
    win.doc.undo_stack.undo()
    assert win.doc.applied_spec() is None
    win.doc.undo_stack.redo()
    assert win.doc.applied_spec()["kind"] == "inpaint"


def test_settings_outside_the_panel_range_are_reported(make_window, tmp_path):
    win = make_window()
    win.restore_spec({"kind": "inpaint", "seed": 2**40, "iterations": 7, "patch_size": 99})
    panel = win.panels[0]
    assert panel.iterations.value() == 7
    assert "Seed" in win.messages[-1] and "Patch size" in win.messages[-1]


def bound_keys(win: MainWindow) -> list[str]:
    """Every key sequence the window's actions and shortcuts answer to, once per binding."""
    from PySide6.QtGui import QAction, QShortcut

    keys = [k.toString() for a in win.findChildren(QAction) for k in a.shortcuts()]
    keys += [s.key().toString() for s in win.findChildren(QShortcut) if not s.key().isEmpty()]
    return keys


@pytest.mark.parametrize("key", [
    (Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier),
    (Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)])
def test_both_redo_keys_redo(qtbot, make_window, key):
    win = make_window()
    win.doc.set_image(stripes(32, 32))
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    win.doc.set_mask(mask)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)  # shortcuts reach the active window
    QTest.keyClick(win.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.doc.mask_is_empty()
    QTest.keyClick(win.view, *key)
    assert np.array_equal(win.doc.mask_array(), mask)
    keys = bound_keys(win)
    assert keys.count("Ctrl+Y") == 1 and keys.count("Ctrl+Shift+Z") == 1
    assert len(keys) == len(set(keys)), "a key bound twice does nothing (ambiguous shortcut)"


@pytest.fixture
def native_settings(tmp_path):
    """The platform's own settings store, moved into tmp_path for the test (Linux, where
    QSettings' native store is a file), so no test writes the real one."""
    from PySide6.QtCore import QSettings, QStandardPaths

    fmt, scope = QSettings.Format.NativeFormat, QSettings.Scope.UserScope
    QSettings.setPath(fmt, scope, str(tmp_path / "native"))
    yield tmp_path / "native"
    QSettings.setPath(fmt, scope, QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.GenericConfigLocation))


def test_settings_live_under_easel_home(qtbot, tmp_path, monkeypatch, native_settings):
    from desktop.autosave import Autosave
    from desktop.inference import InferenceService

    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    win = MainWindow(service=InferenceService(device="cpu"), autosave=Autosave())
    qtbot.addWidget(win)
    win.set_device("cpu")
    win.close()  # saves the window's settings too
    files = list(home.rglob("*.ini"))
    assert files and all(f.is_relative_to(home / "config") for f in files)
    text = "".join(f.read_text() for f in files)
    assert "device=cpu" in text and "geometry" in text
    assert not native_settings.exists()


def test_first_window_fits_the_screen_and_the_canvas_has_most_of_it(qtbot, make_window):
    win = make_window()  # fresh settings: no saved geometry
    qtbot.waitExposed(win)
    screen = win.screen().availableGeometry()
    assert win.size().toTuple() == (min(1200, int(screen.width() * 0.9)),
                                    min(800, int(screen.height() * 0.9)))
    assert screen.contains(win.frameGeometry().topLeft())
    assert win.view.width() >= 0.6 * win.width()


def test_recovery_names_the_picture_and_when_it_was_autosaved(make_window, tmp_path):
    import os
    from datetime import datetime, timedelta

    from desktop.canvas import Document

    folder = tmp_path / "autosave"
    folder.mkdir()
    doc = Document()
    doc.set_image(stripes(30, 40), source_path=str(tmp_path / "photo.png"))
    (folder / "autosave-crashed.easel").write_bytes(doc.snapshot_bytes())
    asked = []
    win = make_window(folder)
    win.ask = lambda title, text, buttons: asked.append(text) or "Discard"
    offer_recovery(win)
    assert "Recover photo.png, autosaved today at " in asked[-1]
    assert "autosave-" not in asked[-1]

    doc.set_image(stripes(24, 32))  # pasted: no file of its own
    pasted = folder / "autosave-pasted.easel"
    pasted.write_bytes(doc.snapshot_bytes())
    then = datetime.now() - timedelta(days=3)
    os.utime(pasted, (then.timestamp(), then.timestamp()))
    offer_recovery(win)
    assert (f"Recover an untitled picture (32x24), autosaved on {then:%d %B %Y} at "
            f"{then:%H:%M}?") in asked[-1]
