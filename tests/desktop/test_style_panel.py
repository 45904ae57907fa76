"""The Style panel in a real window: the style tray (files added or dropped, weights, alpha, bad
files, the limit), the spec it builds, its refusals, fast styles, restoring a spec (style
images and weights included), settings, and one real run through the service whose result is
applied as an undoable edit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from window_helpers import count_submits, open_window

from core import imageio
from core.jobs import JobError, pixel_hash, spec_from_dict
from core.nets.transform import TransformConfig, TransformNet
from core.pipelines.style import MAX_STYLES, StyleSpec
from core.weights import ModelCard, save_model
from desktop.panels.style import ONE_PASS, StylePanel
from tests.style_models import install_one_pass


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    w = open_window(qtbot, tmp_path)
    path = tmp_path / "photo.png"
    imageio.save_png(str(path), picture())
    w.open_paths([str(path)])
    w.panel_tabs.setCurrentWidget(panel_of(w))
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def panel_of(w) -> StylePanel:
    return next(p for p in w.panels if p.name == "style")


def picture(h: int = 40, w: int = 56) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)


def write_style(tmp_path, name: str, seed: int, alpha: bool = False) -> str:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    a = np.full((24, 24), 255, np.uint8)
    if alpha:
        a[:, :12] = 0
    path = tmp_path / name
    imageio.save_png(str(path), rgb, a if alpha else None)
    return str(path)


def drop_files(widget, paths: list[str]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def install_fast_style(home, name: str = "tiny_mosaic") -> None:
    torch.manual_seed(0)
    cfg = TransformConfig(base=4, res_blocks=1, style="procedural:mosaic")
    card = ModelCard(name=name, family="style_fast", architecture="transform",
                     config=dataclasses.asdict(cfg), data="mosaic")
    save_model(home / "models" / "style_fast", name, TransformNet(cfg).eval(), card)


def test_the_tray_takes_dropped_and_added_files_with_weights_and_alpha(win, tmp_path):
    panel = panel_of(win)
    assert panel.title == "Style" and panel.fast.currentData() == ""
    plain = write_style(tmp_path, "plain.png", 1)
    cut_out = write_style(tmp_path, "cutout.png", 2, alpha=True)
    drop_files(panel.tray, [plain])
    assert panel.add_style_files([cut_out]) == 1
    assert panel.tray.count() == 2 and not panel.message.isVisibleTo(panel)
    panel.tray.rows[0].weight.setValue(2.5)
    panel.colour.setCurrentIndex(panel.colour.findData("histogram"))
    panel.picture_size.setValue(256)
    panel.steps.setValue(40)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    panel.strength.setValue(35)  # 3.5
    spec = panel.build_spec(win.doc)
    assert isinstance(spec, StyleSpec) and spec.fast == "" and spec.mask is None
    assert [s.path for s in spec.styles] == [plain, cut_out]
    assert spec.styles[0].array().shape == (24, 24, 3)
    assert spec.styles[1].array().shape == (24, 24, 4)  # alpha kept for the pipeline
    assert spec.style_weights == (2.5, 1.0) and spec.strength == 3.5
    assert (spec.preserve_color, spec.size, spec.steps, spec.optimizer) == \
        ("histogram", 256, 40, "adam")
    assert np.array_equal(spec.image.array(), picture())
    d = spec.to_dict()
    assert d["styles"][1]["path"] == cut_out and "png" not in d["styles"][1]
    panel.tray.rows[0].remove_button.click()
    assert [i.path for i in panel.tray.images()] == [cut_out]
    panel.clear_button.click()
    assert panel.tray.count() == 0 and panel.tray.placeholder.isVisibleTo(panel)


def test_a_bad_file_is_explained_and_the_others_kept(win, tmp_path):
    panel = panel_of(win)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = write_style(tmp_path, "good.png", 3)
    assert panel.add_style_files([str(bad), good, good]) == 1
    text = panel.message.text()
    assert panel.message.isVisibleTo(panel)
    assert "broken.png" in text and "already in the tray" in text
    assert [i.path for i in panel.tray.images()] == [good]
    paths = [write_style(tmp_path, f"s{k}.png", 10 + k) for k in range(MAX_STYLES + 1)]
    panel.add_style_files(paths)
    assert panel.tray.count() == MAX_STYLES
    assert f"at most {MAX_STYLES}" in panel.message.text()
    assert not panel.add_button.isEnabled()


def test_refusals_reach_the_artist_and_submit_nothing(win, tmp_path, monkeypatch):
    panel = panel_of(win)
    submitted = count_submits(win, monkeypatch)
    assert win.run_current_panel() is None
    assert submitted == [] and any("Add a style image" in m for m in win.messages)
    panel.add_style_files([write_style(tmp_path, "tray.png", 7)])
    panel.tray.rows[0].weight.setValue(0)
    with pytest.raises(JobError, match="weight 0"):
        panel.build_spec(win.doc)
    panel.tray.rows[0].weight.setValue(1)
    panel.only_mask.setChecked(True)
    assert panel.feather.isEnabled()
    with pytest.raises(JobError, match="Paint the area to restyle first, or untick"):
        panel.build_spec(win.doc)
    assert win.run_current_panel() is None and submitted == []
    mask = np.zeros((40, 56), np.uint8)
    mask[10:30, 20:40] = 255
    win.doc.set_mask(mask)
    panel.feather.setValue(5)
    spec = panel.build_spec(win.doc)
    assert np.array_equal(spec.mask.array(), mask) and spec.feather == 5
    assert "png" in spec.to_dict()["mask"]  # embedded, so the run can be replayed
    panel.only_mask.setChecked(False)
    assert panel.build_spec(win.doc).mask is None


def test_a_fast_style_is_listed_and_runs_in_one_pass(qtbot, win, tmp_path):
    panel = panel_of(win)
    install_fast_style(tmp_path / "home")
    panel.refresh_fast_styles()
    index = panel.fast.findData("tiny_mosaic")
    assert index > 1 and "mosaic" in panel.fast.itemText(index)  # after "None", "One pass"
    panel.add_style_files([write_style(tmp_path, "ignored.png", 4)])
    panel.colour.setCurrentIndex(panel.colour.findData("histogram"))
    panel.fast.setCurrentIndex(index)
    assert not panel.tray.isEnabled() and not panel.steps.isEnabled()
    assert panel.colour.currentData() == "luminance"  # histogram matching needs style images
    spec = panel.build_spec(win.doc)
    assert spec.fast == "tiny_mosaic" and spec.styles == () and spec.style_weights == ()
    panel.run_button.click()
    with qtbot.waitSignal(win._job.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(win.doc.results) == 1, timeout=5000)
    assert win.doc.results[0].spec["fast"] == "tiny_mosaic"
    assert win.doc.results[0].rgb.shape[:2] == (40, 56)


def test_the_one_pass_choice_paints_the_tray_in_one_pass_with_its_strength(qtbot, win,
                                                                          tmp_path):
    panel = panel_of(win)
    choice = ONE_PASS + "style_onepass"
    index = panel.fast.findData(choice)
    model = panel.fast.model()
    assert index == 1 and "not installed" in panel.fast.itemText(index)
    assert not model.item(index).isEnabled()  # listed, but not chosen until it is trained
    install_one_pass(tmp_path / "home")
    panel.refresh_fast_styles()
    index = panel.fast.findData(choice)
    assert "One pass (any painting)" in panel.fast.itemText(index)
    assert model.item(index).isEnabled()
    panel.add_style_files([write_style(tmp_path, "paint.png", 9)])
    panel.fast.setCurrentIndex(index)
    # The tray is painted from; the one pass has its own strength, and no steps or optimiser.
    assert panel.tray.isEnabled() and not panel.steps.isEnabled()
    assert not panel.optimizer.isEnabled()
    assert not panel.alpha.isHidden() and panel.strength.isHidden()
    panel.alpha.set_number(0.5)
    assert panel.strength_label.text() == "0.5"
    spec = panel.build_spec(win.doc)
    assert spec.one_pass == "style_onepass" and spec.fast == "" and spec.alpha == 0.5
    assert len(spec.styles) == 1
    original = win.doc.image_array().copy()
    panel.run_button.click()
    with qtbot.waitSignal(win._job.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(win.doc.results) == 1, timeout=5000)
    entry = win.doc.results[0]
    assert entry.spec["one_pass"] == "style_onepass" and entry.spec["alpha"] == 0.5
    assert entry.rgb.shape[:2] == original.shape[:2] and not np.array_equal(entry.rgb, original)
    # Restoring the run chooses the one pass and its strength again.
    panel.fast.setCurrentIndex(0)
    panel.alpha.set_number(1.0)
    assert panel.restore(entry.spec) == []
    assert panel.fast.currentData() == choice and panel.alpha.number() == 0.5
    qtbot.waitUntil(lambda: panel.tray.count() == 1, timeout=5000)
    problems = panel.restore({**entry.spec, "one_pass": "gone"})
    assert problems == ["The one-pass net 'gone' is not installed; optimising instead (train "
                        "it with easel train style_onepass)."]
    assert panel.fast.currentData() == "" and panel.steps.isEnabled()


def test_restore_brings_back_settings_style_images_and_weights(qtbot, win, tmp_path):
    panel = panel_of(win)
    plain = write_style(tmp_path, "plain.png", 5)
    cut_out = write_style(tmp_path, "cutout.png", 6, alpha=True)
    panel.add_style_files([plain, cut_out])
    panel.tray.rows[0].weight.setValue(0.5)
    panel.tray.rows[1].weight.setValue(3.0)
    panel.strength.setValue(73)
    panel.picture_size.setValue(320)
    panel.steps.setValue(12)
    panel.seed.setValue(99)
    panel.feature_seed.setValue(4)
    panel.tv_weight.setValue(20)
    panel.moments.setChecked(False)
    panel.colour.setCurrentIndex(panel.colour.findData("luminance"))
    spec = panel.build_spec(win.doc).to_dict()
    assert spec_from_dict(spec).style_weights == (0.5, 3.0)  # the dict is a real spec

    fresh = StylePanel()
    qtbot.addWidget(fresh)
    fresh.set_document(win.doc)
    assert fresh.restore(spec) == []
    qtbot.waitUntil(lambda: not fresh.reader.busy(), timeout=10_000)  # read off the GUI thread
    assert [i.path for i in fresh.tray.images()] == [plain, cut_out]
    assert fresh.tray.weights() == [0.5, 3.0]
    restored = fresh.tray.images()[1]
    assert restored.pixels.shape == (24, 24, 4) and restored.sha256 == spec["styles"][1]["sha256"]
    assert fresh._strength() == pytest.approx(7.3)
    assert (fresh.picture_size.value(), fresh.steps.value(), fresh.seed.value()) == (320, 12, 99)
    assert fresh.feature_seed.value() == 4 and fresh.tv_weight.value() == 20
    assert not fresh.moments.isChecked() and fresh.colour.currentData() == "luminance"
    assert fresh.build_spec(win.doc).to_dict() == spec

    (tmp_path / "plain.png").unlink()
    spec["styles"].append({"sha256": "0" * 64})  # a dropped image: no file to find
    spec["style_weights"].append(1.0)
    spec["fast"] = "gone"
    spec["size"] = 5
    problems = fresh.restore(spec)
    qtbot.waitUntil(lambda: not fresh.reader.busy(), timeout=10_000)
    assert "plain.png" in fresh.message.text()
    assert "not saved with the run" in fresh.message.text()
    assert any("'gone' is not installed" in p for p in problems)
    assert any("Resolution 5" in p for p in problems)
    assert [i.path for i in fresh.tray.images()] == [cut_out]
    assert fresh.tray.weights() == [3.0] and fresh.picture_size.value() == 320


def test_restoring_a_region_run_puts_its_area_back_on_an_unpainted_picture(qtbot, win,
                                                                           tmp_path):
    panel = panel_of(win)
    panel.add_style_files([write_style(tmp_path, "s.png", 8)])
    mask = np.zeros((40, 56), np.uint8)
    mask[5:15, 5:25] = 255
    win.doc.set_mask(mask)
    panel.only_mask.setChecked(True)
    spec = panel.build_spec(win.doc).to_dict()
    win.doc.clear_mask()
    panel.only_mask.setChecked(False)
    assert panel.restore(spec) == []
    qtbot.waitUntil(lambda: not panel.reader.busy(), timeout=10_000)
    assert panel.only_mask.isChecked()
    assert np.array_equal(win.doc.mask_array() >= 128, mask > 0)
    win.doc.undo_stack.undo()  # an ordinary, undoable edit
    assert win.doc.mask_is_empty()


def test_the_estimate_grows_with_the_work_and_a_tile_is_the_whole_picture(win, tmp_path):
    panel = panel_of(win)
    assert panel.size().width() > 0  # QWidget.size() is not shadowed by the resolution box
    panel.picture_size.setValue(64)
    panel.steps.setValue(50)
    few = panel.estimated_cpu_seconds()
    panel.steps.setValue(500)
    assert panel.estimated_cpu_seconds() > 5 * few and "About" in panel.estimate.text()
    panel.tile.setChecked(True)
    assert not panel.only_mask.isEnabled()
    panel.add_style_files([write_style(tmp_path, "s.png", 3)])
    assert panel.build_spec(win.doc).tile


def test_settings_are_kept_between_sessions(qtbot, win, tmp_path):
    panel = panel_of(win)
    panel.strength.setValue(120)
    panel.colour.setCurrentIndex(panel.colour.findData("histogram"))
    panel.only_mask.setChecked(True)
    panel.feather.setValue(20)
    panel.picture_size.setValue(768)
    panel.steps.setValue(300)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    panel.content_weight.setValue(2.5)
    settings = QSettings(str(tmp_path / "style.ini"), QSettings.Format.IniFormat)
    panel.save_settings(settings)
    settings.sync()
    fresh = StylePanel()
    qtbot.addWidget(fresh)
    fresh.load_settings(QSettings(str(tmp_path / "style.ini"), QSettings.Format.IniFormat))
    assert fresh._strength() == 12.0 and fresh.colour.currentData() == "histogram"
    assert fresh.only_mask.isChecked() and fresh.feather.value() == 20
    assert (fresh.picture_size.value(), fresh.steps.value()) == (768, 300)
    assert fresh.optimizer.currentData() == "adam" and fresh.content_weight.value() == 2.5


def test_a_real_run_lands_in_the_strip_and_applies_undoably(qtbot, win, tmp_path):
    panel = panel_of(win)
    panel.add_style_files([write_style(tmp_path, "paint.png", 9)])
    panel.picture_size.setValue(64)
    panel.steps.setValue(2)
    assert panel.estimate.text().startswith("About ")  # said before it runs
    estimate = panel.estimated_cpu_seconds()
    original = win.doc.image_array().copy()
    panel.run_button.click()
    assert not panel.run_button.isEnabled()  # busy while it runs
    shown = []  # the panel's preview when each step's picture arrives
    win._job.preview.connect(lambda rgb: shown.append(
        (panel.preview.isVisible(), panel.preview.pixmap().isNull(), panel.step_label.text())))
    with qtbot.waitSignal(win._job.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(win.doc.results) == 1, timeout=5000)
    assert panel.run_button.isEnabled()
    assert shown and all(visible and not null for visible, null, _ in shown)
    assert all(text.startswith(("Starting", "Step ")) for _, _, text in shown)
    assert "Level 1 of 1" in shown[-1][2]
    assert not panel.preview.isVisible()  # the result is in the strip now
    assert panel.estimated_cpu_seconds() != estimate  # scaled by what this run took
    entry = win.doc.results[0]
    assert entry.spec["kind"] == "style" and entry.spec["steps"] == 2
    assert entry.label.startswith("Style")
    assert entry.rgb.shape[:2] == original.shape[:2] and not np.array_equal(entry.rgb, original)
    assert entry.spec["styles"][0]["sha256"] == pixel_hash(panel.tray.images()[0].pixels)
    win.apply_result(0)
    assert np.array_equal(win.doc.image_array(), entry.rgb[..., :3])
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.image_array(), original)
