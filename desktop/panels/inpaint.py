"""The Inpaint panel: fill the painted mask with PatchMatch (weight-free, any photo)."""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec
from core.pipelines.inpaint import MAX_ITERATIONS, MAX_RADIUS, PATCH_SIZES, InpaintSpec
from desktop.canvas import Document
from desktop.panels.base import Panel

ENGINES = [("PatchMatch (no model, any photo)", "patchmatch")]


class InpaintPanel(Panel):
    name = "inpaint"
    title = "Inpaint"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = QComboBox()
        for text, key in ENGINES:
            self.engine.addItem(text, key)
        self.patch = _spin(*PATCH_SIZES, 7, "Patch size in pixels: larger keeps bigger structures, "
                           "smaller follows fine detail.", step=2)
        self.iterations = _spin(1, MAX_ITERATIONS, 4, "Search-and-vote rounds per scale.")
        self.grow = _spin(0, MAX_RADIUS, 0, "Grow the mask by this many pixels before filling, so "
                          "the fill covers the object's edge too.", suffix=" px")
        self.feather = _spin(0, MAX_RADIUS, 0, "Blend the fill into its surround over this many "
                             "pixels (inside the mask).", suffix=" px")
        self.seed = _spin(0, MAX_SEED, 1, "Same seed, same settings: same result.")
        self.random_seed = QCheckBox("New seed each run")
        self.random_seed.setChecked(True)
        self.run_button = QPushButton("Inpaint")
        self.run_button.setToolTip("Fill the masked area (Ctrl+Enter)")
        self.run_button.clicked.connect(self.runRequested)

        form = QFormLayout()
        form.addRow("Engine", self.engine)
        form.addRow("Patch size", self.patch)
        form.addRow("Iterations", self.iterations)
        form.addRow("Grow mask", self.grow)
        form.addRow("Feather", self.feather)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        form.addRow("Seed", seed_row)
        hint = QLabel("Paint over what should go (brush B, eraser E, rectangle R, lasso L; "
                      "[ and ] change the brush size), then press Inpaint.")
        hint.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addLayout(form)
        lay.addWidget(self.run_button)
        lay.addStretch(1)

    # ---------------------------------------------------------------- Panel API

    def build_spec(self, doc: Document) -> JobSpec:
        if doc.is_empty():
            raise JobError("Open an image first (File > Open, drag one in, or paste).")
        if doc.mask_is_empty():
            raise JobError("The mask is empty: paint the area to fill first.")
        if self.random_seed.isChecked():
            self.seed.setValue(random.randint(0, MAX_SEED))
        mask = (doc.mask_array() >= 128).astype("uint8") * 255
        return InpaintSpec(
            seed=self.seed.value(),
            image=document_image_ref(doc),
            mask=ImageRef.of(mask, embed=True),
            engine=self.engine.currentData(),
            patch_size=self.patch.value() | 1,  # odd: a patch has a centre pixel
            iterations=self.iterations.value(),
            grow=self.grow.value(),
            feather=self.feather.value(),
        )

    def restore(self, spec: dict[str, Any]) -> list[str]:
        problems = []
        index = self.engine.findData(spec.get("engine", "patchmatch"))
        if index >= 0:
            self.engine.setCurrentIndex(index)
        else:
            problems.append(f"Engine {spec.get('engine')!r} is not available here.")
        for key, box in self._spins().items():
            value = spec.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not box.minimum() <= value <= box.maximum():
                problems.append(f"{key.replace('_', ' ').capitalize()} {value!r} is outside "
                                f"{box.minimum()}..{box.maximum()}; kept {box.value()}.")
                continue
            box.setValue(value)
        self.random_seed.setChecked(False)  # a restored run should reproduce as it was
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        settings.setValue("engine", self.engine.currentData())
        for key, box in self._spins().items():
            settings.setValue(key, box.value())
        settings.setValue("random_seed", self.random_seed.isChecked())
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        index = self.engine.findData(settings.value("engine", "patchmatch"))
        self.engine.setCurrentIndex(max(0, index))
        for key, box in self._spins().items():
            value = settings.value(key)
            if value is not None:
                box.setValue(int(value))
        self.random_seed.setChecked(str(settings.value("random_seed", "true")).lower()
                                    in ("true", "1"))
        settings.endGroup()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)

    def _spins(self) -> dict[str, QSpinBox]:
        return {"patch_size": self.patch, "iterations": self.iterations, "grow": self.grow,
                "feather": self.feather, "seed": self.seed}


def document_image_ref(doc: Document) -> ImageRef:
    """The document's picture for a spec; names its file only while the pixels are the file's."""
    ref = ImageRef.of(doc.image_array())
    if doc.source_path and ref.sha256 == getattr(doc, "source_sha256", None):
        ref = ImageRef.of(ref.array(), path=doc.source_path)
    return ref


def _spin(lo: int, hi: int, value: int, tip: str, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    box.setSuffix(suffix)
    return box
