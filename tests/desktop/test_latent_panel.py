"""The Latent panel through a real MainWindow and InferenceService, with the tiny random-weight
models of tests/latent_models.py: grid, slots, live sliders, restore, encode, directions, walk,
send to canvas."""

from __future__ import annotations

from pathlib import Path

import latent_models
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from shipped_weights import copy_judges
from window_helpers import count_submits, open_window

from core import imageio
from core.algorithms.directions import MIN_SET
from core.jobs import Context, run_job
from core.pipelines import latent
from desktop.panels.latent import LatentPanel
from desktop.window import MainWindow

WAIT = 20_000


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    # Of the shipped models only the judges (DCGAN directions need the faces judge): the
    # tests see the tiny models alone, and no upscaler.
    copy_judges(tmp_path / "shipped")
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    monkeypatch.setattr(latent, "DIRECTION_SAMPLES", 200)
    latent_models.install(home)
    w = open_window(qtbot, tmp_path, {"latent/model": latent_models.VAE_NAME})
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def open_panel(qtbot, win: MainWindow) -> LatentPanel:
    panel = next(p for p in win.panels if isinstance(p, LatentPanel))
    win.panel_tabs.setCurrentWidget(panel)  # first shown: lists models, loads one, samples
    qtbot.waitUntil(lambda: panel.state.info is not None and panel.grid.count() == 16, timeout=WAIT)
    return panel


def grid_picks(panel: LatentPanel, *rows: int):
    return [panel.state.picks[panel.grid.key(r)] for r in rows]


def drop(widget, mime: QMimeData) -> None:
    widget.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))



def wait_result(qtbot, panel: LatentPanel) -> None:
    qtbot.waitUntil(lambda: panel.is_idle() and panel.state.result_spec is not None
                    and panel.state.result_spec == panel.current_spec(), timeout=WAIT)


def run_direct(spec) -> np.ndarray:
    return run_job(spec, Context.for_spec(spec, device="cpu")).images[0]


def test_grid_appears_with_the_requested_count(qtbot, win):
    panel = open_panel(qtbot, win)
    assert panel.current_model() == latent_models.VAE_NAME
    assert panel.model.findData(latent_models.DCGAN_NAME) >= 0  # the picker lists both
    assert "smiling" in panel.sliders.names()
    panel.count.setValue(9)
    panel.sample_grid(seed=3)
    qtbot.waitUntil(lambda: panel.grid.count() == 9, timeout=WAIT)
    assert panel.seed.value() == 3
    assert all(p.image.shape == (16, 16, 3) and len(p.latent) == 8
               for p in grid_picks(panel, *range(9)))


def test_no_model_installed_then_the_first_listed_one(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("EASEL_HOME", str(home))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    monkeypatch.setattr(latent, "DIRECTION_SAMPLES", 200)
    w = open_window(qtbot, tmp_path)
    try:
        panel = next(p for p in w.panels if isinstance(p, LatentPanel))
        w.panel_tabs.setCurrentWidget(panel)
        assert "No latent model is installed" in panel.message.text()
        latent_models.install(home)
        panel.refresh_models()
        assert panel.current_model() == latent_models.VAE_NAME
        assert f"{latent.DEFAULT_MODEL!r} is not installed" in panel.message.text()
        qtbot.waitUntil(lambda: panel.grid.count() == 16, timeout=WAIT)
    finally:
        w.close()


def test_a_alone_gives_a_result_and_click_fills_the_selected_slot(qtbot, win, tmp_path):
    panel = open_panel(qtbot, win)
    item = panel.grid.item(0)
    panel.grid.itemClicked.emit(item)  # a click puts the face into the selected slot (A)
    wait_result(qtbot, panel)
    assert panel.slots["A"].latents() == (grid_picks(panel, 0)[0].latent,)
    assert panel.state.result_image is not None
    # No upscaler is installed in the test home: the result says so instead of failing.
    assert "Not upscaled" in panel.note.text()
    np.testing.assert_array_equal(panel.state.result_image, run_direct(panel.state.result_spec))

    # A saved result dropped on a slot brings its exact latent, not an encoding of its pixels.
    panel.sliders.set_amounts({"beard": 1.0})
    wait_result(qtbot, panel)
    png = tmp_path / "saved.png"
    imageio.save_png(str(png), panel.state.result_image, spec=panel.state.result_spec)
    expected = panel.state.result_latent
    panel.encode_files("C", [str(png)])
    qtbot.waitUntil(lambda: len(panel.slots["C"].picks()) == 1, timeout=WAIT)
    assert panel.slots["C"].latents() == (expected,)


def test_a_minus_b_plus_c_goes_to_the_strip_with_three_slots(qtbot, win):
    panel = open_panel(qtbot, win)
    a, a2, b, c = grid_picks(panel, 0, 1, 2, 3)
    panel.put("A", [a, a2])
    panel.select_slot("B")
    panel._grid_clicked(2)
    drop(panel.slots["C"], panel.grid.mimeData([panel.grid.item(3)]))  # dragged from the grid
    wait_result(qtbot, panel)
    assert win.run_current_panel() is not None  # Ctrl+Return
    qtbot.waitUntil(lambda: len(win.doc.results) == 1, timeout=WAIT)
    spec = win.doc.results[0].spec
    assert spec["kind"] == "latent_edit"
    assert spec["a"] == [list(a.latent), list(a2.latent)]
    assert spec["b"] == [list(b.latent)] and spec["c"] == [list(c.latent)]


def test_slider_drag_is_coalesced_and_ends_on_the_final_state(qtbot, win, monkeypatch):
    panel = open_panel(qtbot, win)
    panel.put("A", grid_picks(panel, 0))
    wait_result(qtbot, panel)
    specs = count_submits(win, monkeypatch)
    slider = panel.sliders.sliders["smiling"]
    for value in range(0, 151, 5):  # 31 moves while the first job is still running
        slider.setValue(value)
    panel.sliders.sliders["glasses"].setValue(-40)
    wait_result(qtbot, panel)
    edits = [s for s in specs if s.kind == "latent_edit"]
    assert len(edits) == 2  # the first move's job, then the newest state once it returned
    assert dict(panel.state.result_spec.directions) == {"smiling": 1.5, "glasses": -0.4}
    np.testing.assert_array_equal(panel.state.result_image, run_direct(panel.state.result_spec))

    for value in (1.2, 0.9, 0.5, 0.1):  # a slower drag: the event loop turns between moves
        slider.setValue(round(value * 100))
        qtbot.wait(5)
    wait_result(qtbot, panel)
    assert dict(panel.state.result_spec.directions) == {"smiling": 0.1, "glasses": -0.4}
    np.testing.assert_array_equal(panel.state.result_image, run_direct(panel.state.result_spec))


def test_restore_round_trip_and_what_cannot_be_restored(qtbot, win, tmp_path):
    panel = open_panel(qtbot, win)
    a, b, c = grid_picks(panel, 4, 5, 6)
    panel.put("A", [a])
    panel.put("B", [b])
    panel.put("C", [c])
    panel.method.setCurrentIndex(panel.method.findData("classifier"))
    panel.sliders.set_amounts({"hat": 0.75, "hair_colour:blond": -1.25})
    wait_result(qtbot, panel)
    saved = panel.current_spec().to_dict()
    png = str(tmp_path / "result.png")
    assert win.write_png(png, panel.state.result_image, None, saved)

    assert panel.set_model(latent_models.DCGAN_NAME)  # clears every pick of the VAE
    assert panel.slots["A"].is_empty()
    win.open_paths([png])  # an Easel PNG: the picture, and the panel as it made it
    assert not win.messages
    qtbot.waitUntil(lambda: panel.state.info is not None and bool(panel.sliders.amounts()),
                    timeout=WAIT)
    wait_result(qtbot, panel)
    assert panel.current_spec().to_dict() == saved
    assert panel.slots["A"].picks()[0].image is not None  # decoded for its thumbnail

    other = dict(saved, directions=[["smiling", 0.5], ["freckles", 1.0]])
    assert panel.restore(other) == ["This model has no direction 'freckles'."]
    assert dict(panel.sliders.amounts()) == {"smiling": 0.5}
    problems = panel.restore(dict(saved, model="no_such_model"))
    assert problems and "no_such_model" in problems[0]


def test_empty_slot_a_gives_a_clear_message_and_no_job(qtbot, win, monkeypatch):
    panel = open_panel(qtbot, win)
    specs = count_submits(win, monkeypatch)
    assert win.run_current_panel() is None
    assert win.messages and "Slot A is empty" in win.messages[-1]
    assert "Slot A is empty" in panel.result_view.text()
    panel.put("A", grid_picks(panel, 0))
    panel.put("B", grid_picks(panel, 1))  # B without C
    assert "Fill both B and C" in panel.result_view.text()
    assert not [s for s in specs if s.kind == "latent_edit" and s.b]


def test_dropping_an_odd_size_file_encodes_it_and_shows_the_crop(qtbot, win, tmp_path):
    panel = open_panel(qtbot, win)
    path = tmp_path / "wide.png"
    rgb = np.zeros((40, 90, 3), np.uint8)
    rgb[:, 25:65] = (200, 150, 120)
    imageio.save_png(str(path), rgb)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    slot = panel.slots["C"]
    drop(slot, mime)
    qtbot.waitUntil(lambda: len(slot.picks()) == 1, timeout=WAIT)
    assert slot.source_box == (25, 0, 65, 40)  # the centred square of a 90x40 image
    assert slot.source.isVisible()
    # no figures like "dB"; a flat block on black is no face, and the slot says so
    assert slot.status.text() == "Encoded by the model's encoder; far from the model's world"

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    panel.encode_files("A", [str(bad)])
    assert "bad.png" in panel.message.text()


def test_a_gan_slot_encodes_by_inversion_with_progress(qtbot, win):
    panel = open_panel(qtbot, win)
    assert panel.set_model(latent_models.DCGAN_NAME)
    qtbot.waitUntil(lambda: panel.state.info is not None, timeout=WAIT)
    assert "no encoder" in panel.model_info.text()
    panel.steps.setValue(20)
    picture = np.full((30, 20, 3), 128, np.uint8)
    win.doc.set_image(picture)
    mask = np.zeros((30, 20), np.uint8)
    mask[5:25, 2:18] = 255
    win.doc.set_mask(mask)
    panel.use_canvas_selection("A")
    slot = panel.slots["A"]
    qtbot.waitUntil(lambda: len(slot.picks()) == 1, timeout=WAIT)
    assert slot.status.text() == "Encoded by inversion; far from the model's world"  # flat grey
    assert slot.source_box == (2, 7, 18, 23)  # the selection's box, squared about its centre
    wait_result(qtbot, panel)


def test_an_inversion_shows_progress_and_cancels(qtbot, win):
    panel = open_panel(qtbot, win)
    assert panel.set_model(latent_models.DCGAN_NAME)
    panel.steps.setValue(2000)
    slot = panel.slots["B"]
    panel.encode_into("B", np.full((20, 20, 3), 90, np.uint8), (), "grey")
    qtbot.waitUntil(lambda: slot.status.text().startswith("Inverting"), timeout=WAIT)
    assert win.job_progress.isVisible()  # the status bar shows it, with Cancel (Esc)
    win.cancel_job()
    qtbot.waitUntil(lambda: slot.status.text() == "Cancelled.", timeout=WAIT)
    assert slot.is_empty()
    qtbot.waitUntil(lambda: not win.job_progress.isVisible(), timeout=WAIT)


def test_user_direction_needs_the_minimum_and_then_gets_a_slider(qtbot, win, monkeypatch):
    panel = open_panel(qtbot, win)
    specs = count_submits(win, monkeypatch)
    panel.direction_sets.name.setText("freckles")
    panel.direction_sets.add("these", grid_picks(panel, 0, 1, 2))
    panel.direction_sets.add("those", grid_picks(panel, *range(5, 10)))
    assert "2 more needed" in panel.direction_sets.counts["these"].text()
    panel.make_direction()
    assert f"at least {MIN_SET}" in panel.message.text()
    assert not [s for s in specs if s.kind == "latent_direction"]

    panel.direction_sets.add("these", grid_picks(panel, 3, 4))
    # the pipeline refuses it: its text reaches the user
    panel.direction_sets.name.setText("smiling")
    panel.make_direction()
    qtbot.waitUntil(lambda: "attribute direction" in panel.message.text(), timeout=WAIT)

    panel.direction_sets.name.setText("freckles")
    panel.make_direction()
    qtbot.waitUntil(lambda: "freckles" in panel.sliders.names(), timeout=WAIT)
    assert "Saved the direction" in panel.message.text()


def test_walk_exports_gif_webp_and_frames(qtbot, win, tmp_path):
    panel = open_panel(qtbot, win)
    start, end = grid_picks(panel, 0, 1)
    panel.walk()
    assert "start and end" in panel.message.text()
    panel.set_walk_end(0, start)
    panel.set_walk_end(1, end)
    panel.walk_box.frames.setValue(5)
    panel.walk()
    qtbot.waitUntil(lambda: len(panel.state.walk_frames) == 5, timeout=WAIT)
    np.testing.assert_array_equal(panel.state.walk_frames[0], start.image)

    assert panel.export_animation(str(tmp_path / "walk.gif"), "gif")
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.format == "GIF" and im.n_frames == 5 and im.size == (16, 16)
    assert panel.export_animation(str(tmp_path / "walk"), "webp")
    with Image.open(tmp_path / "walk.webp") as im:
        assert im.format == "WEBP" and im.n_frames == 5
    written = panel.export_frames(str(tmp_path))
    assert [Path(p).name for p in written] == [f"walk-{i:03d}.png" for i in range(1, 6)]
    meta = imageio.read_metadata(written[2])
    assert meta["spec"]["kind"] == "latent_walk" and meta["frame"] == 3
    np.testing.assert_array_equal(imageio.load_image(written[4]).rgb, panel.state.walk_frames[4])


def test_send_to_canvas_makes_or_pastes_into_the_picture_undoably(qtbot, win):
    panel = open_panel(qtbot, win)
    panel.put("A", grid_picks(panel, 0))
    wait_result(qtbot, panel)
    result = panel.state.result_image
    panel.send_to_canvas()  # no picture yet: the result becomes it
    np.testing.assert_array_equal(win.doc.image_array(), result)
    assert len(win.doc.results) == 1

    picture = np.full((60, 80, 3), 30, np.uint8)
    win.doc.set_image(picture)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:42, 40:72] = 255  # a 32 px selection: the 16 px result is scaled to fill it
    win.doc.set_mask(mask)
    panel.send_to_canvas()
    after = win.doc.image_array()
    assert (after[:10] == 30).all() and (after[:, :40] == 30).all()
    assert not (after[10:42, 40:72] == 30).all()
    assert (win.doc.mask_array() == mask).all()  # the selection stays
    assert win.doc.applied_spec()["kind"] == "latent_edit"
    win.doc.undo_stack.undo()
    np.testing.assert_array_equal(win.doc.image_array(), picture)


def test_settings_round_trip(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    panel = LatentPanel()
    qtbot.addWidget(panel)
    panel.seed.setValue(77)
    panel.count.setValue(25)
    panel.method.setCurrentIndex(panel.method.findData("classifier"))
    panel.walk_box.frames.setValue(30)
    panel.walk_box.mode.setCurrentIndex(panel.walk_box.mode.findData("linear"))
    panel.walk_box.upscale.setChecked(True)
    panel.truncation.setValue(0.65)
    panel.save_settings(settings)
    again = LatentPanel()
    qtbot.addWidget(again)
    again.load_settings(settings)
    assert (again.seed.value(), again.count.value(), again.method.currentData()) \
        == (77, 25, "classifier")
    assert again.walk_box.frames.value() == 30 and again.walk_box.mode.currentData() == "linear"
    assert again.walk_box.upscale.isChecked()
    assert again.truncation.value() == pytest.approx(0.65)


def test_variety_fidelity_reaches_grid_result_and_walk_and_comes_back_from_a_png(
        qtbot, win, tmp_path, monkeypatch):
    panel = open_panel(qtbot, win)
    assert panel.truncation.value() == 1.0 and "less variety" in panel.truncation.toolTip()
    seed = panel.seed.value()
    full = np.array([p.latent for p in grid_picks(panel, *range(16))])
    specs = count_submits(win, monkeypatch)
    panel.truncation.setValue(0.5)  # the grid is drawn again, with the same seed
    before = [p.image for p in grid_picks(panel, *range(16))]
    qtbot.waitUntil(lambda: panel.grid.count() == 16 and not np.array_equal(
        grid_picks(panel, 0)[0].image, before[0]), timeout=WAIT)
    grid = [s for s in specs if s.kind == "latent_sample"]
    assert [(s.seed, s.truncation) for s in grid] == [(seed, 0.5)]
    # the picks keep their draws (the same seed's), the pictures are drawn pulled by half
    np.testing.assert_allclose([p.latent for p in grid_picks(panel, *range(16))], full)

    panel.put("A", grid_picks(panel, 0))
    wait_result(qtbot, panel)
    assert panel.state.result_spec.truncation == 0.5
    # the slot holds the face's own latent; the result draws it as the grid showed it
    np.testing.assert_allclose(panel.state.result_latent, full[0])
    np.testing.assert_array_equal(panel.state.result_image, run_direct(panel.state.result_spec))
    panel.set_walk_end(0, grid_picks(panel, 0)[0])
    panel.set_walk_end(1, grid_picks(panel, 1)[0])
    panel.walk_box.frames.setValue(3)
    panel.walk()
    qtbot.waitUntil(lambda: len(panel.state.walk_frames) == 3, timeout=WAIT)
    assert panel.state.walk_spec.truncation == 0.5

    png = str(tmp_path / "result.png")
    saved = panel.current_spec().to_dict()
    assert win.write_png(png, panel.state.result_image, None, saved)
    panel.truncation.setValue(1.0)
    wait_result(qtbot, panel)
    assert panel.state.result_spec.truncation == 1.0
    del specs[:]
    win.open_paths([png])  # dropped back: the truncation with the slots
    assert not win.messages
    assert panel.truncation.value() == 0.5
    wait_result(qtbot, panel)
    assert panel.current_spec().to_dict() == saved
    # the grid follows the restored truncation, drawn once
    assert [s.truncation for s in specs if s.kind == "latent_sample"] == [0.5]


def test_the_panel_fits_a_narrow_dock_without_scrolling_sideways(qtbot):
    """At the default window's dock width every control and message is in view (the slots
    wrap onto more rows where they do not fit side by side); a wide dock puts them in a row."""
    from PySide6.QtWidgets import QScrollArea

    panel = LatentPanel()
    qtbot.addWidget(panel)
    panel.model_info.setText("Loading vae_faces... (the first time, its attribute directions "
                             "are computed: about a minute)")
    panel.resize(340, 700)  # its width in the first window (1200 px wide)
    panel.show()
    qtbot.waitExposed(panel)
    scroll = panel.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.widget().width() <= scroll.viewport().width())
    assert scroll.horizontalScrollBar().maximum() == 0
    view = scroll.viewport()
    for slot in panel.slots.values():  # each slot whole in view (they wrap where need be)
        left = slot.mapTo(view, slot.rect().topLeft()).x()
        assert left >= 0 and left + slot.width() <= view.width()
    panel.resize(720, 700)
    qtbot.waitUntil(lambda: len({panel.slots[n].y() for n in "ABC"}) == 1)
    assert scroll.horizontalScrollBar().maximum() == 0
