"""The Scene panel with a Stable Diffusion model: a tiny random-weight SD 1.x checkpoint
(tests/sd_models.py) imported through the real path, run through a real MainWindow and
InferenceService on the CPU: the picker, the SD settings, generating with step previews,
seeds that reproduce, cancelling, the PNG's spec restored, and the prior's word check back."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from test_scene_panel import cancel_each_way, open_panel, underlined
from window_helpers import open_window

from core.specs.scene import DEFAULT_PRIOR, SceneSpec
from core.specs.sd import SDSceneSpec
from desktop.panels.scene import ScenePanel
from tests.core.test_thirdparty_sd import (  # noqa: F401  (fixtures: the tiny SDs imported)
    built,
    installed,
    network,
    no_network,
    tiny_configs,
)

WAIT = 60_000
PROMPT = "a photo of a cat on a windowsill"  # words the scene prior does not know


@pytest.fixture
def win(qtbot, tmp_path, installed, network):  # noqa: F811
    """The window, with the imported models' names (``sd``: {"v1": ..., "inpainting": ...})
    and the network connections refused since the import (``refused``)."""
    w = open_window(qtbot, tmp_path)
    w.sd, w.refused = installed, network
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def sd_panel(win) -> ScenePanel:
    panel = open_panel(win)
    assert panel.set_model(win.sd["v1"], "sd")
    panel.prompt.set_text(PROMPT)
    panel.negative.setText("blurry")
    panel.steps.setValue(3)
    panel.cfg.setValue(5.0)
    panel.sd_width.setValue(64)
    panel.sd_height.setValue(64)
    panel.sampler.setCurrentIndex(panel.sampler.findData("euler"))
    panel.seed.setValue(5)
    return panel


def generate(qtbot, panel: ScenePanel) -> None:
    panel.generate()
    assert panel.is_running()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=WAIT)
    assert not panel.message.isVisibleTo(panel), panel.message.text()


def shown(panel: ScenePanel, *names: str) -> list[bool]:
    return [getattr(panel, n).isVisibleTo(panel) for n in names]


SD_ONLY = ("sd_box", "sd_advanced")
PRIOR_ONLY = ("count", "count_label", "prior_advanced", "edit_button")


def test_the_picker_lists_sd_models_after_the_priors_with_their_own_settings(qtbot, win):
    panel = open_panel(win)
    panel.advanced_toggle.setChecked(True)
    texts = [panel.model.itemText(i) for i in range(panel.model.count())]
    assert texts[0].startswith(f"{DEFAULT_PRIOR} (shipped)") and texts[-2] == ""  # separator
    assert texts[-1] == f"{win.sd['v1']} (Stable Diffusion 1.x, yours)"
    assert not any(win.sd["inpainting"] in t for t in texts)  # it fills masks only
    assert panel.current_family() == "prior"
    assert shown(panel, *SD_ONLY) == [False] * 2 and all(shown(panel, *PRIOR_ONLY))
    panel.prompt.set_text(PROMPT)
    assert "cat" in underlined(panel)  # the prior knows shapes, not cats

    panel.model.setCurrentIndex(panel.model.count() - 1)
    assert panel.current_family() == "sd" and panel.current_model() == win.sd["v1"]
    assert all(shown(panel, *SD_ONLY)) and shown(panel, *PRIOR_ONLY) == [False] * 4
    assert underlined(panel) == []  # any words
    spec = panel.current_spec()
    assert isinstance(spec, SDSceneSpec) and spec.prompt == PROMPT
    assert (spec.steps, spec.cfg, spec.width, spec.height, spec.sampler) == (25, 7.5, 0, 0,
                                                                             "dpm++")
    assert panel.sd_width.text() == "model's own"

    assert panel.set_model(DEFAULT_PRIOR, "prior")  # the prior's word check is back
    assert "cat" in underlined(panel) and isinstance(panel.current_spec(), SceneSpec)
    assert shown(panel, *SD_ONLY) == [False] * 2 and all(shown(panel, *PRIOR_ONLY))


def test_generate_previews_then_fills_the_grid_and_a_seed_reproduces(qtbot, win, tmp_path):
    panel = sd_panel(win)
    previews = []

    def preview(rgb):
        previews.append((rgb.shape, panel.is_running(), panel.grid.count()))
        show(rgb)

    show = panel._preview
    panel._preview = preview  # connected to each job when it starts
    generate(qtbot, panel)
    assert previews and all(p == ((64, 64, 3), True, 1) for p in previews[1:])
    assert previews[0][:2] == ((64, 64, 3), True)
    assert panel.grid.count() == 1 and not panel.previewing and not win.doc.results
    first = panel.candidates[0]
    assert first.image.shape == (64, 64, 3) and first.image.std() > 0
    assert first.spec == SDSceneSpec(prompt=PROMPT, negative_prompt="blurry",
                                     model=win.sd["v1"], steps=3, cfg=5.0, width=64,
                                     height=64, sampler="euler", seed=5)
    assert panel.caption.text() == f"{win.sd['v1']} · seed 5 · 64×64 px"

    generate(qtbot, panel)  # the same seed: the same pixels
    assert np.array_equal(panel.candidates[0].image, first.image)
    panel.seed.setValue(6)
    generate(qtbot, panel)
    assert not np.array_equal(panel.candidates[0].image, first.image)
    assert win.refused == []

    panel.grid.setCurrentRow(0)
    panel.send_to_canvas()  # the picture, with its spec, into a PNG and back
    assert np.array_equal(win.doc.image_array(), panel.candidates[0].image)
    png = str(tmp_path / "sd.png")
    assert win.write_png(png, win.doc.image_array(), None, win.doc.results[-1].spec)
    saved = panel.current_spec()
    assert saved.seed == 6 and win.doc.results[-1].spec == saved.to_dict()
    panel.set_model(DEFAULT_PRIOR, "prior")
    panel.prompt.set_text("a red star")
    panel.steps.setValue(30)
    panel.sampler.setCurrentIndex(0)
    win.panel_tabs.setCurrentIndex(0)
    win.open_paths([png])
    assert win.current_panel() is panel and not win.messages
    assert panel.current_family() == "sd" and panel.current_spec() == saved
    assert panel.message.text().endswith("Generate draws it again.")


def test_cancel_stops_the_run_within_a_step_and_keeps_the_grid(qtbot, win):
    panel = sd_panel(win)
    generate(qtbot, panel)
    before = panel.candidates[0].image
    panel.steps.setValue(150)
    for _ in cancel_each_way(qtbot, win, panel, "Denoising step"):  # button, then Esc
        assert not panel.previewing and not panel.progress.isVisible()
        assert panel.grid.count() == 1 and panel.candidates[0].image is before


def test_restore_names_a_missing_model_and_settings_keep_the_sd_model(qtbot, win, tmp_path):
    panel = sd_panel(win)
    spec = panel.current_spec()
    problems = panel.restore(dict(spec.to_dict(), model="no_such_sd"))
    assert problems == ["The Stable Diffusion model 'no_such_sd' is not installed here; "
                        f"{win.sd['v1']} is chosen instead."]
    assert panel.current_spec() == spec
    panel.edit_region()  # a prior's job only
    assert "Edit region redraws with a scene prior" in panel.message.text()

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    panel.save_settings(settings)
    again = ScenePanel()
    qtbot.addWidget(again)
    again.load_settings(settings)
    assert again.current_family() == "sd" and again.current_spec() == spec
    assert again.sd_box.isVisibleTo(again) and not again.count.isVisibleTo(again)
