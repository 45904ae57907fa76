"""Each panel's field table drives its settings and its restore: a round trip built from the
table alone (every field set away from its default, saved, loaded and restored into fresh
panels) brings back every value, and a value outside a field's range is named, not taken."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QSpinBox

from desktop.panels import fields
from desktop.panels.inpaint import InpaintPanel
from desktop.panels.scene import ScenePanel

PANELS = [InpaintPanel, ScenePanel]


def away_from_default(widget: Any, field: fields.Field) -> Any:
    """A value the widget can show that differs from what a new panel shows (if it has one)."""
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.minimum() if widget.value() != widget.minimum() else widget.maximum()
    if isinstance(widget, QComboBox):
        others = [widget.itemData(i) for i in range(widget.count())
                  if widget.itemData(i) != widget.currentData()]
        return others[-1] if others else widget.currentData()
    if isinstance(widget, QAbstractButton):
        return not widget.isChecked()
    return f"{field.name} restored"


def changed_panel(cls, qtbot):
    panel = cls()
    qtbot.addWidget(panel)
    wanted = {}
    for f in cls.FIELDS:
        widget = getattr(panel, f.name)
        assert fields.set_value(widget, f, away_from_default(widget, f)) is None
        wanted[f.name] = fields.value(widget)
    return panel, wanted


def fresh(cls, qtbot):
    panel = cls()
    qtbot.addWidget(panel)
    return panel


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_settings_round_trip_every_field(cls, qtbot, tmp_path):
    panel, wanted = changed_panel(cls, qtbot)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    panel.save_settings(settings)
    settings.sync()
    again = fresh(cls, qtbot)
    again.load_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    remembered = {f.name for f in cls.FIELDS if f.key is not None}
    assert {n: fields.value(getattr(again, n)) for n in remembered} == \
        {n: wanted[n] for n in remembered}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_spec_restores_every_field(cls, qtbot):
    panel, wanted = changed_panel(cls, qtbot)
    spec = fields.spec_values(panel, cls.FIELDS)
    again = fresh(cls, qtbot)
    assert fields.restore(again, cls.FIELDS, spec) == []
    in_specs = {f.name for f in cls.FIELDS if f.spec}
    assert {n: fields.value(getattr(again, n)) for n in in_specs} == \
        {n: wanted[n] for n in in_specs}


@pytest.mark.parametrize("cls", PANELS, ids=lambda c: c.name)
def test_values_outside_a_range_are_named_and_not_taken(cls, qtbot):
    panel = fresh(cls, qtbot)
    numbers = [f for f in cls.FIELDS if f.range is not None and f.spec]
    before = {f.name: fields.value(getattr(panel, f.name)) for f in numbers}
    spec = {f.spec: f.range[1] + 1 for f in numbers}
    problems = fields.restore(panel, cls.FIELDS, spec)
    assert len(problems) == len(numbers)
    for f, line in zip(numbers, problems, strict=True):
        assert line.startswith(f"{f.describe()} {f.range[1] + 1!r} is outside")
    assert {f.name: fields.value(getattr(panel, f.name)) for f in numbers} == before


def test_a_table_names_each_widget_and_spec_field_once():
    for cls in PANELS:
        names = [f.name for f in cls.FIELDS]
        specs = [f.spec for f in cls.FIELDS if f.spec]
        keys = [f.key for f in cls.FIELDS if f.key]
        assert len(set(names)) == len(names) and len(set(specs)) == len(specs)
        assert len(set(keys)) == len(keys)
