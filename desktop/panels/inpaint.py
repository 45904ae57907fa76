"""The Inpaint panel: fill the painted mask, or extend the canvas, with PatchMatch (weight-free,
any photo) or a diffusion model (draws what the picture does not have).

Mask tools (grow, shrink, invert, clear) edit the document's mask as undoable steps. The fill's
results (one per variation) go to the result strip, where a click compares and a double-click
applies one as an undoable edit; "Hold to see original" (or holding \\) shows the picture
under the compared result. Diffusion fills show each step's guess on the canvas while they
run.
"""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.algorithms import masks
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec
from core.pipelines.inpaint import (
    DEFAULT_GUIDANCE,
    DEFAULT_MODEL,
    MAX_EXTEND,
    MAX_GUIDANCE,
    MAX_ITERATIONS,
    MAX_JUMP,
    MAX_RADIUS,
    MAX_RESAMPLE,
    MAX_STEPS,
    MAX_VARIATIONS,
    PATCH_SIZES,
    InpaintSpec,
    OutpaintSpec,
    installed_models,
)
from desktop.canvas import Document
from desktop.panels.base import (
    Panel,
    message_label,
    refresh_button,
    restore_spins,
    spin,
)

ENGINES = [("PatchMatch (no model, any photo)", "patchmatch"),
           ("Diffusion (a trained model)", "diffusion")]
SIDES = ("left", "right", "top", "bottom")


class InpaintPanel(Panel):
    name = "inpaint"
    title = "Inpaint"
    showOriginal = Signal(bool)  # True while "Hold to see original" is held

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._outpaint_next = False
        self.engine = QComboBox()
        for text, key in ENGINES:
            self.engine.addItem(text, key)
        self.engine.setToolTip("PatchMatch copies from the rest of the picture; diffusion draws "
                               "new content with a model trained on a world or your images.")
        self.model = QComboBox()
        self.model.setToolTip("The diffusion model: each knows the kind of pictures it was "
                              "trained on")
        self._attributes: dict[str, list[str]] = {}  # model name -> what can be asked of it
        self.attribute = QComboBox()
        self.attribute.setToolTip("Ask the fill for something the model's world has a name for "
                                  "(a smile, glasses...): the world's judge steers every step")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, MAX_GUIDANCE)
        self.guidance.setSingleStep(0.05)
        self.guidance.setValue(DEFAULT_GUIDANCE)
        self.guidance.setToolTip("How hard the fill is steered towards what is asked for; too "
                                 "high draws marks only the judge reads")
        self.model.currentIndexChanged.connect(self._model_changed)
        self.refresh_models()

        self.patch = spin(*PATCH_SIZES, 7, "Patch size in pixels: larger keeps bigger structures, "
                           "smaller follows fine detail.", step=2)
        self.iterations = spin(1, MAX_ITERATIONS, 4, "Search-and-vote rounds per scale.")
        self.sampler = QComboBox()
        self.sampler.addItem("DDIM (deterministic)", "ddim")
        self.sampler.addItem("DDPM (stochastic)", "ddpm")
        self.sampler.setToolTip("DDIM follows one path from the seed's noise; DDPM adds fresh "
                                "noise at every step and usually needs more steps.")
        self.steps = spin(1, MAX_STEPS, 20, "Denoising steps: more is slower and usually "
                           "cleaner.")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.05, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(1.0)
        self.strength.setToolTip("1 draws the masked area anew; lower keeps more of what is "
                                 "there (its shapes and colours).")
        self.variations = spin(1, MAX_VARIATIONS, 4, "Fills drawn at once; each goes to the "
                                "result strip.")
        self.jump = spin(1, MAX_JUMP, 5, "RePaint: steps jumped back each time the fill is "
                          "reconciled with its surround.", suffix=" steps")
        self.resample = spin(1, MAX_RESAMPLE, 3, "RePaint: times each jump is redone (1 = "
                              "off). More blends the fill better and takes longer.")
        self.grow = spin(0, MAX_RADIUS, 0, "Grow the mask by this many pixels before filling, so "
                          "the fill covers the object's edge too.", suffix=" px")
        self.feather = spin(0, MAX_RADIUS, 0, "Blend the fill into its surround over this many "
                             "pixels (inside the mask).", suffix=" px")
        self.seed = spin(0, MAX_SEED, 1, "Same seed, same settings: same result.")
        self.random_seed = QCheckBox("New seed each run")
        self.random_seed.setChecked(True)

        self.run_button = QPushButton("Inpaint")
        self.run_button.setToolTip("Fill the masked area (Ctrl+Enter)")
        self.run_button.clicked.connect(self.runRequested)
        self.original_button = QPushButton("Hold to see original")
        self.original_button.setToolTip("Shows the picture under the compared result while "
                                        "held (or hold \\)")
        self.original_button.pressed.connect(lambda: self.showOriginal.emit(True))
        self.original_button.released.connect(lambda: self.showOriginal.emit(False))
        self.message = message_label()

        form = QFormLayout()
        form.addRow("Engine", self.engine)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        self.model_refresh = refresh_button(self.refresh_models)
        model_row.addWidget(self.model_refresh)
        self.model_label = QLabel("Model")
        form.addRow(self.model_label, model_row)

        self.patchmatch_box = QGroupBox("PatchMatch")
        pm = QFormLayout(self.patchmatch_box)
        pm.addRow("Patch size", self.patch)
        pm.addRow("Iterations", self.iterations)
        self.diffusion_box = QGroupBox("Diffusion")
        df = QFormLayout(self.diffusion_box)
        df.addRow("Sampler", self.sampler)
        df.addRow("Steps", self.steps)
        df.addRow("Strength", self.strength)
        df.addRow("Variations", self.variations)
        df.addRow("Ask for", self.attribute)
        df.addRow("Guidance", self.guidance)
        df.addRow("Jump length", self.jump)
        df.addRow("Resample", self.resample)

        mask_box = QGroupBox("Mask")
        mk = QFormLayout(mask_box)
        self.mask_px = spin(1, MAX_RADIUS, 4, "Pixels to grow or shrink the mask by",
                             suffix=" px")
        tools = QGridLayout()  # two by two: the panel stays narrow beside the canvas
        for i, (text, tip, slot) in enumerate((
                ("Grow", "Grow the painted mask (undoable)", lambda: self.edit_mask("grow")),
                ("Shrink", "Shrink the painted mask (undoable)",
                 lambda: self.edit_mask("shrink")),
                ("Invert", "Select what is not selected (undoable)",
                 lambda: self.edit_mask("invert")),
                ("Clear", "Clear the mask (undoable)", lambda: self.edit_mask("clear")))):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            tools.addWidget(b, i // 2, i % 2)
        mk.addRow("By", self.mask_px)
        mk.addRow(tools)
        mk.addRow("Grow before fill", self.grow)
        mk.addRow("Feather", self.feather)

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        seed_form = QFormLayout()
        seed_form.addRow("Seed", seed_row)

        out_box = QGroupBox("Outpaint: extend the canvas")
        ob = QFormLayout(out_box)
        self.extend = {}
        for side in SIDES:
            self.extend[side] = spin(0, MAX_EXTEND, 0, f"Pixels to add on the {side}",
                                      suffix=" px")
            ob.addRow(side.capitalize(), self.extend[side])
        self.outpaint_button = QPushButton("Outpaint")
        self.outpaint_button.setToolTip("Extend the canvas and fill the new area with the "
                                        "chosen engine")
        self.outpaint_button.clicked.connect(self.request_outpaint)
        ob.addRow(self.outpaint_button)

        hint = QLabel("Paint over what should go (brush B, eraser E, rectangle R, lasso L; "
                      "[ and ] change the brush size), then press Inpaint.")
        hint.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addLayout(form)
        lay.addWidget(self.patchmatch_box)
        lay.addWidget(self.diffusion_box)
        lay.addWidget(mask_box)
        lay.addLayout(seed_form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.original_button)
        lay.addLayout(buttons)
        lay.addWidget(self.message)
        lay.addWidget(out_box)
        lay.addStretch(1)
        self.engine.currentIndexChanged.connect(self._engine_changed)
        self._engine_changed()

    # ---------------------------------------------------------------- actions

    def refresh_models(self) -> None:
        """List the installed diffusion models (shipped and the user's) again."""
        current = self.model.currentData() or DEFAULT_MODEL
        models = installed_models()
        self._attributes = {m["name"]: m["attributes"] for m in models}
        self.model.clear()
        for m in models:
            self.model.addItem(f"{m['name']} ({m['data']}, {m['source']})", m["name"])
        index = self.model.findData(current)
        self.model.setCurrentIndex(max(0, index))
        self._model_changed()

    def _model_changed(self) -> None:
        """List what can be asked of the chosen model's fills, keeping the choice if it can."""
        current = self.attribute.currentData() or ""
        self.attribute.clear()
        self.attribute.addItem("Nothing in particular", "")
        for item in self._attributes.get(self.model.currentData(), []):
            head, _, cls = item.partition("=")
            self.attribute.addItem(f"{head.replace('_', ' ')}: {cls}", item)
        self.attribute.setCurrentIndex(max(0, self.attribute.findData(current)))
        self.attribute.setEnabled(self.attribute.count() > 1)

    def edit_mask(self, op: str) -> None:
        """Grow, shrink, invert or clear the document's mask, as one undoable step."""
        doc = self.doc
        if doc is None or doc.is_empty():
            self.show_message("Open an image first.")
            return
        mask = doc.mask_array() >= 128
        if op == "clear":
            doc.clear_mask()
            return
        if op == "invert":
            doc.set_mask(~mask, "Invert mask")
            return
        if not mask.any():
            self.show_message("The mask is empty: paint the area first.")
            return
        px = self.mask_px.value()
        fn = masks.grow if op == "grow" else masks.shrink
        doc.set_mask(fn(mask, px), f"{op.capitalize()} mask by {px} px")

    def request_outpaint(self) -> None:
        """Outpaint: the window runs the panel's next spec, which is then an OutpaintSpec."""
        self._outpaint_next = True
        self.runRequested.emit()
        self._outpaint_next = False

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _engine_changed(self) -> None:
        diffusion = self.engine.currentData() == "diffusion"
        self.patchmatch_box.setVisible(not diffusion)
        self.diffusion_box.setVisible(diffusion)
        for widget in (self.model, self.model_label, self.model_refresh):
            widget.setVisible(diffusion)  # PatchMatch uses no model
        if diffusion and self.model.count() == 0:
            self.show_message("No diffusion model is installed: train one (easel train "
                              "diffusion_faces) or use PatchMatch.")
        else:
            self.show_message("")

    # ---------------------------------------------------------------- Panel API

    def build_spec(self, doc: Document) -> JobSpec:
        if doc.is_empty():
            raise JobError("Open an image first (File > Open, drag one in, or paste).")
        outpaint = self._outpaint_next
        if outpaint and not any(box.value() for box in self.extend.values()):
            raise JobError("Choose how many pixels to add on at least one side.")
        if not outpaint and doc.mask_is_empty():
            raise JobError("The mask is empty: paint the area to fill first.")
        diffusion = self.engine.currentData() == "diffusion"
        if diffusion and self.model.currentData() is None:
            raise JobError("No diffusion model is installed: train one (easel train "
                           "diffusion_faces) or choose PatchMatch.")
        if self.random_seed.isChecked():
            self.seed.setValue(random.randint(0, MAX_SEED))
        common = {
            "seed": self.seed.value(),
            "image": document_image_ref(doc),
            "engine": self.engine.currentData(),
            "patch_size": self.patch.value() | 1,  # odd: a patch has a centre pixel
            "iterations": self.iterations.value(),
            "feather": self.feather.value(),
            "model": self.model.currentData() or DEFAULT_MODEL,
            "sampler": self.sampler.currentData(),
            "steps": self.steps.value(),
            "strength": round(self.strength.value(), 3),
            "variations": self.variations.value() if diffusion else 1,
            "jump": self.jump.value(),
            "resample": self.resample.value(),
            "attribute": (self.attribute.currentData() or "") if diffusion else "",
            "guidance": round(self.guidance.value(), 3),
        }
        self.show_message("")
        if outpaint:
            return OutpaintSpec(**common, **{s: b.value() for s, b in self.extend.items()})
        mask = (doc.mask_array() >= 128).astype("uint8") * 255
        return InpaintSpec(**common, mask=ImageRef.of(mask, embed=True), grow=self.grow.value())

    def restore(self, spec: dict[str, Any]) -> list[str]:
        problems = []
        index = self.engine.findData(spec.get("engine", "patchmatch"))
        if index >= 0:
            self.engine.setCurrentIndex(index)
        else:
            problems.append(f"Engine {spec.get('engine')!r} is not available here.")
        if spec.get("engine") == "diffusion" and "model" in spec:
            index = self.model.findData(spec["model"])
            if index >= 0:
                self.model.setCurrentIndex(index)
            else:
                problems.append(f"The diffusion model {spec['model']!r} is not installed.")
        problems += restore_spins(spec, self._spins())
        for key, box in (("strength", self.strength), ("guidance", self.guidance)):
            value = spec.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                box.setValue(float(value))
        attribute = spec.get("attribute") or ""
        index = self.attribute.findData(attribute)
        if index >= 0:
            self.attribute.setCurrentIndex(index)
        else:
            problems.append(f"{attribute!r} cannot be asked of this model; asked for nothing.")
            self.attribute.setCurrentIndex(0)
        index = self.sampler.findData(spec.get("sampler", "ddim"))
        if index >= 0:
            self.sampler.setCurrentIndex(index)
        else:
            problems.append(f"Sampler {spec.get('sampler')!r} is not available here.")
        self.random_seed.setChecked(False)  # a restored run should reproduce as it was
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        settings.setValue("engine", self.engine.currentData())
        settings.setValue("model", self.model.currentData() or "")
        settings.setValue("strength", self.strength.value())
        settings.setValue("guidance", self.guidance.value())
        settings.setValue("attribute", self.attribute.currentData() or "")
        settings.setValue("sampler", self.sampler.currentData())
        for key, box in self._spins().items():
            settings.setValue(key, box.value())
        settings.setValue("random_seed", self.random_seed.isChecked())
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        index = self.engine.findData(settings.value("engine", "patchmatch"))
        self.engine.setCurrentIndex(max(0, index))
        index = self.model.findData(settings.value("model", DEFAULT_MODEL))
        if index >= 0:
            self.model.setCurrentIndex(index)
        for key, box in self._spins().items():
            value = settings.value(key)
            if value is not None:
                box.setValue(int(value))
        self.sampler.setCurrentIndex(max(0, self.sampler.findData(settings.value("sampler",
                                                                                 "ddim"))))
        for key, box in (("strength", self.strength), ("guidance", self.guidance)):
            value = settings.value(key)
            if value is not None:
                box.setValue(float(value))
        self.attribute.setCurrentIndex(max(0, self.attribute.findData(
            settings.value("attribute", ""))))
        self.random_seed.setChecked(str(settings.value("random_seed", "true")).lower()
                                    in ("true", "1"))
        settings.endGroup()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.outpaint_button.setEnabled(not busy)

    def _spins(self) -> dict[str, QSpinBox]:
        return {"patch_size": self.patch, "iterations": self.iterations, "grow": self.grow,
                "feather": self.feather, "seed": self.seed, "steps": self.steps,
                "variations": self.variations, "jump": self.jump, "resample": self.resample,
                **self.extend}


def document_image_ref(doc: Document) -> ImageRef:
    """The document's picture for a spec; names its file only while the pixels are the file's."""
    ref = ImageRef.of(doc.image_array())
    if doc.source_path and ref.sha256 == getattr(doc, "source_sha256", None):
        ref = ImageRef.of(ref.array(), path=doc.source_path)
    return ref


