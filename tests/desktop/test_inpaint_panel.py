"""The Inpaint panel with both engines through the real service: diffusion variations and step
previews, mask tools as undoable edits, "hold to see original", outpainting, settings."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from window_helpers import open_window

from core import imageio
from core.data.worlds import get_world
from core.jobs import JobError, spec_from_dict
from desktop.window import MainWindow
from tests.core.test_thirdparty_sd import (  # noqa: F401  (fixtures: tiny imported SD models)
    built,
    installed,
    network,
    no_network,
    tiny_configs,
)


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    from tests import diffusion_models

    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped-weights"))
    diffusion_models.install(tmp_path / "home")
    w = open_window(qtbot, tmp_path)
    path = tmp_path / "face.png"
    imageio.save_png(str(path), get_world("faces").render(3, size=48).image)
    w.open_paths([str(path)])
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def mouth_mask() -> np.ndarray:
    m = np.zeros((48, 48), np.uint8)
    m[30:40, 14:34] = 255
    return m


def run_panel(qtbot, w: MainWindow, outpaint: bool = False, previews: list | None = None
              ) -> None:
    """Run the panel's fill (or outpaint) to its end; ``previews`` collects the job's previews."""
    panel = w.panels[0]
    panel.random_seed.setChecked(False)
    count = len(w.doc.results)
    if outpaint:
        panel.outpaint_button.click()
    else:
        panel.run_button.click()
    job = w._job
    assert job is not None
    if previews is not None:
        job.preview.connect(previews.append)
    with qtbot.waitSignal(job.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(w.doc.results) > count, timeout=5000)


def test_diffusion_variations_previews_apply_and_undo(qtbot, win):
    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    assert panel.diffusion_box.isVisibleTo(panel) and not panel.patchmatch_box.isVisibleTo(panel)
    names = [panel.model.itemData(i) for i in range(panel.model.count())]
    assert names == ["diffusion_faces", "tiny_pixel_diffusion"]
    panel.steps.setValue(5)
    panel.variations.setValue(3)
    win.doc.set_mask(mouth_mask())
    original = win.doc.image_array().copy()
    previews = []
    run_panel(qtbot, win, previews=previews)
    assert len(win.doc.results) == 3 and previews  # rate-limited: at least one arrives
    hole = mouth_mask() > 0
    for entry in win.doc.results:
        assert np.array_equal(entry.rgb[~hole], original[~hole])
        assert entry.spec["engine"] == "diffusion" and entry.spec["variations"] == 3
    win.apply_result(1)
    assert np.array_equal(win.doc.image_array(), win.doc.results[1].rgb)
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.image_array(), original)


def test_mask_tools_are_undoable_edits(win):
    panel = win.panels[0]
    win.doc.set_mask(mouth_mask())
    before = win.doc.mask_array() >= 128
    panel.mask_px.setValue(3)
    panel.edit_mask("grow")
    grown = win.doc.mask_array() >= 128
    assert grown.sum() > before.sum() and grown[before].all()
    panel.edit_mask("shrink")
    panel.edit_mask("shrink")
    assert (win.doc.mask_array() >= 128).sum() < before.sum()
    panel.edit_mask("invert")
    inverted = win.doc.mask_array() >= 128
    assert inverted[0, 0] and not inverted[35, 24]
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.mask_array() >= 128, grown)
    panel.edit_mask("clear")
    assert win.doc.mask_is_empty()
    panel.edit_mask("grow")
    assert "mask is empty" in panel.message.text()


def test_hold_to_see_original_hides_the_compared_result(qtbot, win):
    panel = win.panels[0]
    win.doc.set_mask(mouth_mask())
    run_panel(qtbot, win)
    win.results.setCurrentRow(0)
    compare = win.scene._compare
    assert compare.isVisible()
    panel.original_button.pressed.emit()
    assert not compare.isVisible()
    panel.original_button.released.emit()
    assert compare.isVisible()
    QTest.keyPress(win, Qt.Key.Key_Backslash)  # the backslash key is held
    assert not compare.isVisible()
    QTest.keyRelease(win, Qt.Key.Key_Backslash)
    assert compare.isVisible()


def test_outpaint_extends_the_canvas_as_an_undoable_edit(qtbot, win):
    panel = win.panels[0]
    panel.extend["right"].setValue(16)
    panel.extend["top"].setValue(8)
    original = win.doc.image_array().copy()
    run_panel(qtbot, win, outpaint=True)
    result = win.doc.results[-1]
    assert result.rgb.shape[:2] == (56, 64) and result.spec["kind"] == "outpaint"
    assert np.array_equal(result.rgb[8:, :48], original)
    win.apply_result(len(win.doc.results) - 1)
    assert win.doc.image_array().shape[:2] == (56, 64)
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.image_array(), original)
    for box in panel.extend.values():
        box.setValue(0)
    with pytest.raises(JobError, match="at least one side"):
        panel._outpaint_next = True
        try:
            panel.build_spec(win.doc)
        finally:
            panel._outpaint_next = False


def test_settings_round_trip_through_a_spec(win):
    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    panel.model.setCurrentIndex(panel.model.findData("tiny_pixel_diffusion"))
    panel.steps.setValue(33)
    panel.strength.setValue(0.6)
    panel.resample.setValue(3)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddpm"))
    win.doc.set_mask(mouth_mask())
    spec = panel.build_spec(win.doc).to_dict()
    assert spec_from_dict(spec).model == "tiny_pixel_diffusion"
    panel.engine.setCurrentIndex(0)
    panel.steps.setValue(20)
    panel.strength.setValue(1.0)
    assert panel.restore(spec) == []
    assert panel.engine.currentData() == "diffusion" and panel.steps.value() == 33
    assert panel.model.currentData() == "tiny_pixel_diffusion"
    assert panel.strength.value() == pytest.approx(0.6) and panel.resample.value() == 3
    assert spec["sampler"] == "ddpm" and panel.sampler.currentData() == "ddpm"
    spec["model"] = "gone"
    assert any("not installed" in p for p in panel.restore(spec))


def test_asking_for_a_smile_lists_the_worlds_attributes_runs_and_round_trips(qtbot, win,
                                                                              tmp_path):
    from tests.shipped_weights import copy_judges

    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    items = [panel.attribute.itemData(i) for i in range(panel.attribute.count())]
    assert items[0] == "" and {"smiling=smiling", "glasses=glasses"} <= set(items)
    assert panel.attribute.itemText(panel.attribute.findData("hair_colour=red")) == \
        "hair colour: red"
    panel.attribute.setCurrentIndex(panel.attribute.findData("smiling=smiling"))
    panel.guidance.setValue(0.35)
    panel.steps.setValue(3)
    panel.resample.setValue(1)
    panel.variations.setValue(1)
    win.doc.set_mask(mouth_mask())
    copy_judges(tmp_path / "no-shipped-weights")  # the faces judge steers the fill
    run_panel(qtbot, win)
    spec = win.doc.results[-1].spec
    assert spec["attribute"] == "smiling=smiling" and spec["guidance"] == 0.35
    panel.attribute.setCurrentIndex(0)
    panel.guidance.setValue(0.2)
    assert panel.restore(spec) == []
    assert panel.attribute.currentData() == "smiling=smiling"
    assert panel.guidance.value() == pytest.approx(0.35)
    spec["attribute"] = "smiling=grinning"
    assert any("cannot be asked" in p for p in panel.restore(spec))
    assert panel.attribute.currentData() == ""


def test_no_diffusion_model_installed_is_explained(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "none"))
    w = open_window(qtbot, tmp_path, name="empty.ini")
    try:
        panel = w.panels[0]
        panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
        assert "No diffusion model is installed" in panel.message.text()
        w.open_paths([_write(tmp_path)])
        w.doc.set_mask(mouth_mask())
        with pytest.raises(JobError, match="No diffusion model"):
            panel.build_spec(w.doc)
    finally:
        w.close()


def _write(tmp_path) -> str:
    path = tmp_path / "plain.png"
    imageio.save_png(str(path), np.full((48, 48, 3), 120, np.uint8))
    return str(path)


def test_the_model_picker_and_its_refresh_show_only_for_diffusion(qtbot, tmp_path, monkeypatch):
    from desktop.panels.inpaint import InpaintPanel

    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    panel = InpaintPanel()
    qtbot.addWidget(panel)
    panel.show()
    from PySide6.QtWidgets import QPushButton

    refresh = [b for b in panel.findChildren(QPushButton) if b.text() == "↻"]
    picker = (panel.model, panel.model_label, *refresh)
    assert len(picker) == 3
    panel.engine.setCurrentIndex(panel.engine.findData("patchmatch"))
    assert not any(w.isVisible() for w in picker)
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    assert all(w.isVisible() for w in picker)


def install_lama(home) -> None:
    """A tiny random-weight LaMa as an import of a user's big-lama file leaves it."""
    from dataclasses import asdict

    import torch

    from core import paths
    from core.nets.lama import LaMa, LaMaConfig
    from core.weights import ModelCard, save_model

    config = LaMaConfig(channels=4, blocks=2, global_channels=24)
    torch.manual_seed(0)
    card = ModelCard(name="big-lama", family="lama", architecture="lama", config=asdict(config),
                     extra={"source": {"file": "big-lama.ckpt"}})
    save_model(paths.models_dir() / "lama", "big-lama", LaMa(config).eval(), card)


def test_the_lama_engine_lists_imported_files_fills_the_mask_and_round_trips(qtbot, win):
    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("lama"))
    assert not panel.diffusion_box.isVisibleTo(panel)
    assert not panel.patchmatch_box.isVisibleTo(panel)
    assert panel.model.isVisibleTo(panel) and panel.model.count() == 0
    assert "No LaMa model is imported" in panel.message.text()
    win.doc.set_mask(mouth_mask())
    with pytest.raises(JobError, match="Models > Manage models > Import"):
        panel.build_spec(win.doc)

    install_lama(None)
    panel.model_refresh.click()
    assert [panel.model.itemText(i) for i in range(panel.model.count())] == [
        "big-lama (LaMa, from big-lama.ckpt)"]
    original = win.doc.image_array().copy()
    run_panel(qtbot, win)
    entry = win.doc.results[-1]
    assert entry.spec["engine"] == "lama" and entry.spec["model"] == "big-lama"
    hole = mouth_mask() > 0
    assert np.array_equal(entry.rgb[~hole], original[~hole])
    assert not np.array_equal(entry.rgb[hole], original[hole])
    # Back to diffusion: its models again; the LaMa run restores engine and model.
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    assert panel.model.itemData(0) == "diffusion_faces"
    assert panel.restore(entry.spec) == []
    assert panel.engine.currentData() == "lama" and panel.model.currentData() == "big-lama"


@pytest.fixture
def sd(win, installed, network):  # noqa: F811  (after win: imported into its models folder)
    """The tiny SD 1.x models imported by name, and the record of refused network calls."""
    return installed, network


def test_the_sd_engine_shows_its_prompt_fills_with_an_imported_checkpoint_and_round_trips(
        qtbot, win, sd):
    models, refused = sd
    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("sd"))
    assert panel.diffusion_box.isVisibleTo(panel)
    assert panel.diffusion_box.title() == "Stable Diffusion"
    form = panel.diffusion_form
    for shown in (panel.prompt, panel.negative_prompt, panel.cfg, panel.steps, panel.strength):
        assert form.isRowVisible(shown)
    for hidden in (panel.attribute, panel.guidance, panel.jump, panel.resample):
        assert not form.isRowVisible(hidden)
    assert [panel.sampler.itemData(i) for i in range(panel.sampler.count())] == [
        "dpm++", "euler", "ddim"]
    assert {panel.model.itemText(i) for i in range(panel.model.count())} == {
        f"{models['inpainting']} (Stable Diffusion 1.x inpainting)",
        f"{models['v1']} (Stable Diffusion 1.x)"}
    panel.model.setCurrentIndex(panel.model.findData(models["inpainting"]))
    panel.prompt.setText("a red ball")
    panel.negative_prompt.setText("blurry")
    panel.cfg.setValue(5.0)
    panel.steps.setValue(2)
    panel.variations.setValue(2)
    win.doc.set_mask(mouth_mask())
    original = win.doc.image_array().copy()
    previews = []
    run_panel(qtbot, win, previews=previews)
    results = win.doc.results[-2:]
    assert len(win.doc.results) == 2 and previews
    hole = mouth_mask() > 0
    for entry in results:
        assert np.array_equal(entry.rgb[~hole], original[~hole])
        spec = entry.spec
        assert (spec["engine"], spec["model"], spec["prompt"], spec["negative_prompt"],
                spec["cfg"], spec["sampler"]) == ("sd", models["inpainting"], "a red ball",
                                                  "blurry", 5.0, "dpm++")
    assert refused == []  # nothing reached for the internet
    # Back to the shipped diffusion engine: its own samplers and rows; the SD run restores.
    panel.engine.setCurrentIndex(panel.engine.findData("diffusion"))
    assert panel.sampler.currentData() == "ddim" and not form.isRowVisible(panel.prompt)
    assert form.isRowVisible(panel.guidance)
    assert panel.restore(results[0].spec) == []
    assert (panel.engine.currentData(), panel.model.currentData(), panel.prompt.text(),
            panel.sampler.currentData()) == ("sd", models["inpainting"], "a red ball",
                                             "dpm++")


def test_the_source_area_and_context_go_into_the_spec_run_and_round_trip(qtbot, win):
    panel = win.panels[0]
    panel.engine.setCurrentIndex(panel.engine.findData("patchmatch"))
    assert panel.source_label.text() == "Copy from: anywhere outside the mask"
    assert not panel.source_clear.isEnabled()
    source = np.zeros((48, 48), bool)
    source[:20] = True  # where the fill may copy from: the top of the face
    win.doc.set_mask(source)
    panel.use_mask_as_source()
    assert not (win.doc.mask_array() >= 128).any()  # cleared for painting what should go
    assert "42%" in panel.source_label.text() and panel.source_clear.isEnabled()
    # The canvas shows the source area: a tint over its pixels and nowhere else.
    assert win.scene.source_area_shown()
    tint = win.scene._source.pixmap.toImage()
    assert tint.pixelColor(10, 5).alpha() > 0 and tint.pixelColor(10, 30).alpha() == 0
    panel.context.setValue(32)
    win.doc.set_mask(mouth_mask())
    spec = panel.build_spec(win.doc)
    assert spec.context == 32
    np.testing.assert_array_equal(spec.source.array() > 0, source)
    run_panel(qtbot, win)  # the service fills with them
    d = spec.to_dict()
    panel.source_clear.click()
    assert not win.scene.source_area_shown()
    panel.context.setValue(0)
    assert panel.context.text() == "Auto"
    assert panel.restore(d) == []
    assert panel.context.value() == 32 and "42%" in panel.source_label.text()
    assert win.scene.source_area_shown()  # a restored source area is shown too
    panel.source_clear.click()
    assert panel.build_spec(win.doc).source is None


def test_using_an_empty_mask_as_source_explains_itself(win):
    panel = win.panels[0]
    panel.use_mask_as_source()
    assert "Paint where the fill may copy from" in panel.message.text()
    assert panel.source_label.text() == "Copy from: anywhere outside the mask"
