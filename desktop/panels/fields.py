"""A panel's form as one table: each :class:`Field` binds a widget to its job-spec field and its
settings key, with its range and default, and that table alone drives the four places a panel
writes its controls: building the spec, restoring from a PNG's spec, saving and loading the
settings.

Number boxes, fractional sliders and check boxes are built from their field (:func:`build`);
widgets whose entries come from elsewhere (a combo box of installed models) are built by the
panel under the field's name, and a dotted name (``walk_box.frames``) is a widget that one of
the panel's own widgets holds and builds. A widget's value is read and written by its type: a
spin box's number, a slider's number, a combo box's item data, a check box's (or checkable
group box's) state, a text box's text.

A panel that makes several kinds of job names the kind (or kinds) a field belongs to
(``job``): those kinds' specs alone carry it and restore it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QSlider,
    QSpinBox,
    QWidget,
)

from desktop.panels.base import setting_number

SAME = "="  # Field.setting: the settings key is the spec key (or, without one, the name)


@dataclass(frozen=True)
class Field:
    name: str  # the panel's attribute holding the widget
    spec: str | None = None  # the spec field it sets and is restored from (None: not in specs)
    setting: str | None = SAME  # its settings key (None: not remembered between sessions)
    range: tuple[float, float] | None = None  # a number box's lowest and highest value
    default: Any = None  # what a new panel shows (a number, a check state, a combo's data)
    tip: str = ""
    step: float = 1
    decimals: int = 2  # a fractional number box's decimals
    scale: int = 0  # a slider's ticks per unit of its number (0: a number box, not a slider)
    # the kind of job whose spec holds it, or a tuple of kinds ("": every kind the panel makes)
    job: str | tuple[str, ...] = ""
    suffix: str = ""
    special: str = ""  # a number box's text for its lowest value ("off")
    text: str = ""  # a check box's text
    label: str = ""  # names the field in restore problems (default: the spec key in words)
    missing: str = ""  # restore problem for a combo value it does not list ({value!r})
    fallback: bool = False  # after a missing combo value, choose its first entry

    @property
    def key(self) -> str | None:
        if self.setting != SAME:
            return self.setting
        return self.spec or self.name

    def describe(self) -> str:
        return self.label or (self.spec or self.name).replace("_", " ").capitalize()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of job ``job`` names (("",): every kind)."""
        return (self.job,) if isinstance(self.job, str) else self.job

    def in_spec(self, kind: str | None) -> bool:
        """Whether a spec of job ``kind`` carries this field (None: any kind)."""
        return bool(self.spec) and (not self.job or kind is None or kind in self.kinds)


class ScaledSlider(QSlider):
    """A horizontal slider for a number in steps of 1/``scale`` (a strength in tenths)."""

    def __init__(self, scale: int, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.scale = scale

    def number(self) -> float:
        return round(self.value() / self.scale, 3)

    def set_number(self, number: float) -> None:
        self.setValue(round(number * self.scale))


def widget_of(owner: object, f: Field) -> QWidget:
    """The widget ``f`` names on ``owner`` (a dotted name reaches into a child widget)."""
    return functools.reduce(getattr, f.name.split("."), owner)


def build(owner: object, fields: Iterable[Field]) -> None:
    """Create the number boxes, sliders and check boxes of ``fields`` as attributes of
    ``owner`` (those with a dotted name are built by the widget that holds them)."""
    for f in fields:
        if "." in f.name:
            continue
        if f.range is not None and f.scale:
            box: QWidget = ScaledSlider(f.scale)
            box.setRange(round(f.range[0] * f.scale), round(f.range[1] * f.scale))
            box.set_number(f.default)
        elif f.range is not None:
            box = QDoubleSpinBox() if isinstance(f.default, float) else QSpinBox()
            box.setRange(*f.range)
            if isinstance(box, QDoubleSpinBox):
                box.setDecimals(f.decimals)
            box.setSingleStep(f.step)
            box.setSuffix(f.suffix)
            box.setSpecialValueText(f.special)
            box.setValue(f.default)
        elif isinstance(f.default, bool):
            box = QCheckBox(f.text)
            box.setChecked(f.default)
        else:
            continue
        box.setToolTip(f.tip)
        setattr(owner, f.name, box)


def value(widget: QWidget) -> Any:
    if isinstance(widget, ScaledSlider):
        return widget.number()
    if isinstance(widget, QDoubleSpinBox):
        return round(widget.value(), widget.decimals())
    if isinstance(widget, QSpinBox):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QAbstractButton | QGroupBox):
        return widget.isChecked()
    return widget.text()


def spec_values(owner: object, fields: Iterable[Field], kind: str | None = None
                ) -> dict[str, Any]:
    """The spec fields the widgets set, by spec key (of the job ``kind``'s fields only when
    given)."""
    return {f.spec: value(widget_of(owner, f)) for f in fields if f.in_spec(kind)}


def find_data(combo: QComboBox, data: Any) -> int:
    """The index of ``data`` in ``combo``, or of the entry it names when it was read back from
    the settings as text ("64" for 64); -1 when none."""
    index = combo.findData(data)
    if index < 0 and isinstance(data, str):
        index = next((i for i in range(combo.count()) if str(combo.itemData(i)) == data), -1)
    return index


def _number_problem(f: Field, new: Any, whole: bool, lo: float, hi: float,
                    kept: float) -> str | None:
    """Why ``new`` cannot be shown in a number widget of range lo..hi (None: it can)."""
    number = isinstance(new, int | float) and not isinstance(new, bool) \
        and (not whole or isinstance(new, int))
    if number and lo <= new <= hi:
        return None
    if not whole:
        lo, hi, kept = f"{lo:g}", f"{hi:g}", f"{kept:g}"
    return f"{f.describe()} {new!r} is outside {lo}..{hi}; kept {kept}."


def set_value(widget: QWidget, f: Field, new: Any) -> str | None:
    """Show ``new`` in ``widget``; a readable line when it cannot (the widget keeps its value)
    or can only show it rounded to a slider's step."""
    if isinstance(widget, ScaledSlider):
        problem = _number_problem(f, new, False, widget.minimum() / widget.scale,
                                  widget.maximum() / widget.scale, widget.number())
        if problem:
            return problem
        widget.set_number(new)
        if abs(widget.number() - new) > 1e-6:
            return f"{f.describe()} {new:g} was set to {widget.number():g} (the slider's " \
                "nearest step)."
    elif isinstance(widget, QSpinBox | QDoubleSpinBox):
        problem = _number_problem(f, new, isinstance(widget, QSpinBox),
                                  widget.minimum(), widget.maximum(), widget.value())
        if problem:
            return problem
        widget.setValue(new)
    elif isinstance(widget, QComboBox):
        index = widget.findData(new)
        if index < 0:
            if f.fallback:
                widget.setCurrentIndex(0)
            return (f.missing or "{label} {value!r} is not available here.").format(
                label=f.describe(), value=new)
        widget.setCurrentIndex(index)
    elif isinstance(widget, QAbstractButton | QGroupBox):
        widget.setChecked(bool(new))
    elif hasattr(widget, "set_text"):  # a PromptBox
        widget.set_text(str(new))
    else:
        widget.setText(str(new))
    return None


def restore(owner: object, fields: Iterable[Field], spec: dict[str, Any],
            skip: Iterable[str] = ()) -> list[str]:
    """Set each field that a spec of its kind carries from ``spec`` (except the spec keys in
    ``skip``); one readable line for each value the panel cannot show as it was."""
    problems = []
    kind = spec.get("kind")
    for f in fields:
        if f.in_spec(kind) and f.spec in spec and f.spec not in skip:
            problem = set_value(widget_of(owner, f), f, spec[f.spec])
            if problem:
                problems.append(problem)
    return problems


def save(owner: object, fields: Iterable[Field], settings: QSettings) -> None:
    for f in fields:
        if f.key is not None:
            v = value(widget_of(owner, f))
            settings.setValue(f.key, "" if v is None else v)


def load(owner: object, fields: Iterable[Field], settings: QSettings) -> None:
    """Set each remembered field from ``settings``; a missing or unreadable value (QSettings
    may hand back strings) leaves the field as it is."""
    for f in fields:
        stored = settings.value(f.key) if f.key is not None else None
        if stored is None:
            continue
        widget = widget_of(owner, f)
        if isinstance(widget, ScaledSlider | QSpinBox | QDoubleSpinBox):
            number = setting_number(stored)
            if number is None:
                continue
            if isinstance(widget, ScaledSlider):
                widget.set_number(number)
            else:
                widget.setValue(int(number) if isinstance(widget, QSpinBox) else number)
        elif isinstance(widget, QComboBox):
            index = find_data(widget, stored)
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QAbstractButton | QGroupBox):
            widget.setChecked(str(stored).lower() in ("true", "1"))
        else:
            set_value(widget, f, str(stored))
