"""A panel's form as one table: each :class:`Field` binds a widget to its job-spec field and its
settings key, with its range and default, and that table alone drives the four places a panel
writes its controls: building the spec, restoring from a PNG's spec, saving and loading the
settings.

Number boxes and check boxes are built from their field (:func:`build`); widgets whose entries
come from elsewhere (a combo box of installed models) are built by the panel under the field's
name. A widget's value is read and written by its type: a spin box's number, a combo box's
item data, a check box's state, a text box's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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


def build(owner: object, fields: Iterable[Field]) -> None:
    """Create the number boxes and check boxes of ``fields`` as attributes of ``owner``."""
    for f in fields:
        if f.range is not None:
            box: QWidget = QDoubleSpinBox() if isinstance(f.default, float) else QSpinBox()
            box.setRange(*f.range)
            if isinstance(box, QDoubleSpinBox):
                box.setDecimals(2)
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
    if isinstance(widget, QDoubleSpinBox):
        return round(widget.value(), widget.decimals())
    if isinstance(widget, QSpinBox):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QAbstractButton):
        return widget.isChecked()
    return widget.text()


def spec_values(owner: object, fields: Iterable[Field]) -> dict[str, Any]:
    """The spec fields the widgets set, by spec key."""
    return {f.spec: value(getattr(owner, f.name)) for f in fields if f.spec}


def set_value(widget: QWidget, f: Field, new: Any) -> str | None:
    """Show ``new`` in ``widget``; a readable line when it cannot (the widget keeps its value)."""
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        whole = isinstance(widget, QSpinBox)
        number = isinstance(new, int | float) and not isinstance(new, bool) \
            and (not whole or isinstance(new, int))
        if not number or not widget.minimum() <= new <= widget.maximum():
            lo, hi, kept = widget.minimum(), widget.maximum(), widget.value()
            if not whole:
                lo, hi, kept = f"{lo:g}", f"{hi:g}", f"{kept:g}"
            return f"{f.describe()} {new!r} is outside {lo}..{hi}; kept {kept}."
        widget.setValue(new)
    elif isinstance(widget, QComboBox):
        index = widget.findData(new)
        if index < 0:
            if f.fallback:
                widget.setCurrentIndex(0)
            return (f.missing or "{label} {value!r} is not available here.").format(
                label=f.describe(), value=new)
        widget.setCurrentIndex(index)
    elif isinstance(widget, QAbstractButton):
        widget.setChecked(bool(new))
    elif hasattr(widget, "set_text"):  # a PromptBox
        widget.set_text(str(new))
    else:
        widget.setText(str(new))
    return None


def restore(owner: object, fields: Iterable[Field], spec: dict[str, Any],
            skip: Iterable[str] = ()) -> list[str]:
    """Set each field from ``spec`` (except the spec keys in ``skip``); one readable line for
    each value the panel cannot show as it was."""
    problems = []
    for f in fields:
        if f.spec and f.spec in spec and f.spec not in skip:
            problem = set_value(getattr(owner, f.name), f, spec[f.spec])
            if problem:
                problems.append(problem)
    return problems


def save(owner: object, fields: Iterable[Field], settings: QSettings) -> None:
    for f in fields:
        if f.key is not None:
            v = value(getattr(owner, f.name))
            settings.setValue(f.key, "" if v is None else v)


def load(owner: object, fields: Iterable[Field], settings: QSettings) -> None:
    """Set each remembered field from ``settings``; a missing or unreadable value (QSettings
    may hand back strings) leaves the field as it is."""
    for f in fields:
        stored = settings.value(f.key) if f.key is not None else None
        if stored is None:
            continue
        widget = getattr(owner, f.name)
        if isinstance(widget, QSpinBox | QDoubleSpinBox):
            number = setting_number(stored)
            if number is not None:
                widget.setValue(int(number) if isinstance(widget, QSpinBox) else number)
        elif isinstance(widget, QComboBox):
            index = widget.findData(stored)
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QAbstractButton):
            widget.setChecked(str(stored).lower() in ("true", "1"))
        else:
            set_value(widget, f, str(stored))
