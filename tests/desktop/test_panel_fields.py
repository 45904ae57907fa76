"""Each panel's field table drives its four paths: the specs it builds, its restore from a spec,
and its saved and loaded settings. Round trips built from the table alone (every field set away
from its default, then carried by the panel's own jobs, settings and restore into fresh panels)
bring back every value, and a value outside a field's range is named, not taken. A field a
panel drops from one path, or a spec field its table forgets, fails them."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QGroupBox, QSpinBox

from core.specs.scene import DEFAULT_PRIOR
from desktop.canvas import Document
from desktop.panels import fields
from desktop.panels.base import Panel
from desktop.panels.inpaint import InpaintPanel
from desktop.panels.latent import LatentPanel
from desktop.panels.scene import ScenePanel
from desktop.panels.style import StylePanel
from desktop.panels.train import TrainPanel
from tests.core.test_thirdparty_sd import (  # noqa: F401  (fixtures: a tiny SD imported)
    built,
    installed,
    network,
    no_network,
    tiny_configs,
)

PANELS = [InpaintPanel, ScenePanel, StylePanel, TrainPanel, LatentPanel]
# What each panel's specs carry besides its form: pictures, masks, picks and the like.
NOT_IN_FORMS = {
    # prediction: a Stable Diffusion model's card says it (the CLI may override it)
    # source: the area the artist painted and kept with "Use mask as source", not a form field
    "inpaint": {"image", "mask", "prediction", "source"},
    "scene": {"layout"},  # a layout prior's layout: boxes on the canvas, not a form field
    # one_pass: chosen in the method list, the fast style's combo box (test_style_panel.py)
    "style": {"image", "mask", "styles", "style_weights", "one_pass"},
    "train": {"folder", "steps", "minutes"},  # the folder read, the budget by its unit
    "latent": {"model", "a", "b", "c", "directions", "upscale", "image", "crop", "start",
               "end"},
}
ALWAYS = {"kind", "version"}  # every spec's
# Fields set to a value of their own choosing: the Inpaint engine that uses most of the form
# (the other model engines list only models the user imported).
AWAY = {"engine": "diffusion"}
# The field whose value decides which kind of job a panel builds: the Scene panel's model (a
# scene prior's jobs are "scene", a Stable Diffusion model's "sd_scene"). Its jobs of the other
# kind carry the model that builds them; its last job carries the value it shows.
CHOOSES_KIND = {"scene": "model"}


@pytest.fixture(autouse=True)
def stable_diffusion(request):
    """For the Scene panel, a tiny Stable Diffusion model imported the real way
    (tests/sd_models.py): it is listed last, so a changed form chooses it and builds its job,
    whose settings are fields of their own."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("cls") is ScenePanel:
        request.getfixturevalue("installed")


def away_from_default(widget: Any, field: fields.Field) -> Any:
    """A value the widget can show that differs from what a new panel shows (if it has one)."""
    if isinstance(widget, fields.ScaledSlider):
        lo, hi = widget.minimum() / widget.scale, widget.maximum() / widget.scale
        return lo if widget.number() != lo else hi
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.minimum() if widget.value() != widget.minimum() else widget.maximum()
    if isinstance(widget, QComboBox):
        others = [widget.itemData(i) for i in range(widget.count())
                  if widget.itemData(i) != widget.currentData()]
        return others[-1] if others else widget.currentData()
    if isinstance(widget, QAbstractButton | QGroupBox):
        return not widget.isChecked()
    return f"{field.name.replace('.', '_')}_restored"  # a text that names a model too


def changed_panel(cls, qtbot):
    """A panel with every field away from its default, and what the fields then show (a field
    may change another: a fast style keeps colours by luminance only)."""
    panel = fresh(cls, qtbot)
    for f in cls.FIELDS:
        widget = fields.widget_of(panel, f)
        value = AWAY[f.name] if f.name in AWAY else away_from_default(widget, f)
        assert fields.set_value(widget, f, value) is None
    return panel, current(panel, [f.name for f in cls.FIELDS])


def fresh(cls, qtbot):
    panel = cls()
    qtbot.addWidget(panel)
    return panel


def current(panel, names) -> dict[str, Any]:
    return {n: fields.value(fields.widget_of(panel, fields.Field(n))) for n in names}


def picture_document() -> Document:
    doc = Document()
    doc.set_image(np.full((32, 32, 3), 120, np.uint8))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    doc.set_mask(mask)
    return doc


def built_specs(panel: Panel, tmp_path) -> list[tuple[dict[str, Any], bool]]:
    """The panel's own jobs for its form as spec dicts, each with whether the panel restores
    from it (a spec in a PNG); built the way the panel builds them for the window."""
    made: list[Any] = []
    panel.set_job_runner(made.append)  # the panel's own jobs, caught (none runs)
    if isinstance(panel, InpaintPanel | StylePanel):
        doc = picture_document()
        made.append(panel.build_spec(doc))
        if isinstance(panel, InpaintPanel):  # Outpaint: the window builds the next spec
            panel.runRequested.connect(lambda: made.append(panel.build_spec(doc)))
            panel.request_outpaint()
    elif isinstance(panel, ScenePanel):  # the prior's job, then the SD model's it shows
        sd_model = panel.current_model()
        assert panel.current_family() == "sd"
        assert panel.set_model(DEFAULT_PRIOR)
        panel.generate()
        assert panel.set_model(sd_model)
        panel.generate()
    elif isinstance(panel, TrainPanel):
        panel.folder, panel.report = str(tmp_path), {"count": 10 ** 6}
        return [(dataclasses.asdict(panel.build_request()), False)]
    elif isinstance(panel, LatentPanel):
        assert panel.set_model("vae_faces")  # shipped; its grid is sampled
        pick = panel.state.new_pick([0.0] * 8, None, "a face")
        panel.put("A", [pick])  # the live edit
        panel.set_walk_end(0, pick)
        panel.set_walk_end(1, pick)
        panel.walk()
        panel.encode_into("B", np.zeros((8, 8, 3), np.uint8), (), "a picture")
    specs = [s.to_dict() for s in made if s.kind != "latent_info"]
    return [(d, d["kind"] != "latent_encode") for d in specs]  # no PNG holds an encoding


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_settings_round_trip_every_field(cls, qtbot, tmp_path):
    panel, wanted = changed_panel(cls, qtbot)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    panel.save_settings(settings)
    settings.sync()
    again = fresh(cls, qtbot)
    again.load_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    remembered = {f.name for f in cls.FIELDS if f.key is not None}
    assert current(again, remembered) == {n: wanted[n] for n in remembered}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_the_panels_specs_carry_and_restore_every_field(cls, qtbot, tmp_path):
    panel, wanted = changed_panel(cls, qtbot)
    specs = built_specs(panel, tmp_path)
    for f in (f for f in cls.FIELDS if f.spec):
        carried = [d[f.spec] for d, _ in specs if f.in_spec(d.get("kind")) and f.spec in d]
        if f.name == CHOOSES_KIND.get(cls.name):
            carried = carried[-1:]
        assert carried and all(v == wanted[f.name] for v in carried), f.name
    form = {f.spec for f in cls.FIELDS if f.spec}
    for d, _ in specs:
        assert set(d) - form - NOT_IN_FORMS[cls.name] - ALWAYS == set(), d["kind"]

    if cls.restore is Panel.restore:
        return  # the panel's jobs are in no PNG (Train runs its own process)
    again = fresh(cls, qtbot)
    for d, restorable in specs:
        if restorable:
            assert again.restore(d) == []
    if isinstance(again, StylePanel):
        again.shutdown()  # the run's images are read off the GUI thread
    restored = {f.name for f in cls.FIELDS
                if any(r and f.in_spec(d.get("kind")) and f.spec in d for d, r in specs)}
    assert restored
    assert current(again, restored) == {n: wanted[n] for n in restored}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_spec_values_restore_every_field(cls, qtbot):
    panel, wanted = changed_panel(cls, qtbot)
    again = fresh(cls, qtbot)
    for kind in {k for f in cls.FIELDS if f.spec for k in f.kinds}:
        spec = {"kind": kind or None, **fields.spec_values(panel, cls.FIELDS, kind or None)}
        assert fields.restore(again, cls.FIELDS, spec) == []
    in_specs = {f.name for f in cls.FIELDS if f.spec}
    assert current(again, in_specs) == {n: wanted[n] for n in in_specs}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_values_outside_a_range_are_named_and_not_taken(cls, qtbot):
    panel = fresh(cls, qtbot)
    numbers = [f for f in cls.FIELDS if f.range is not None and f.spec]
    before = current(panel, [f.name for f in numbers])
    problems = []
    for f in numbers:
        problems += fields.restore(panel, cls.FIELDS,
                                   {"kind": f.kinds[0], f.spec: f.range[1] + 1})
    assert len(problems) == len(numbers)
    for f, line in zip(numbers, problems, strict=True):
        assert line.startswith(f"{f.describe()} {f.range[1] + 1!r} is outside")
    assert current(panel, [f.name for f in numbers]) == before


def test_a_slider_field_names_the_step_it_rounds_to(qtbot):
    panel = fresh(StylePanel, qtbot)
    strength = next(f for f in StylePanel.FIELDS if f.name == "strength")
    assert fields.restore(panel, [strength], {"strength": 7.25}) == \
        ["Strength 7.25 was set to 7.2 (the slider's nearest step)."]
    assert panel.strength.number() == 7.2


def test_a_table_names_each_widget_and_spec_field_once():
    for cls in PANELS:
        names = [f.name for f in cls.FIELDS]
        specs = [(f.job, f.spec) for f in cls.FIELDS if f.spec]
        keys = [f.key for f in cls.FIELDS if f.key]
        assert len(set(names)) == len(names) and len(set(specs)) == len(specs)
        assert len(set(keys)) == len(keys)
        every_kind = {s for job, s in specs if not job}
        assert not every_kind & {s for job, s in specs if job}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_a_new_panel_shows_each_fields_default(cls, qtbot):
    panel = fresh(cls, qtbot)
    stated = {f.name: f.default for f in cls.FIELDS if f.default is not None}
    assert current(panel, stated) == stated
