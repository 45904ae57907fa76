"""The Inpaint panel: fill the painted mask, or extend the canvas, with PatchMatch (weight-free,
any photo), a diffusion model (draws what the picture does not have), LaMa (a big-lama file
the user imported: large holes in photos) or a Stable Diffusion checkpoint the user imported
(draws what the prompt says).

Mask tools (grow, shrink, invert, clear) edit the document's mask as undoable steps. The fill's
results (one per variation) go to the result strip, where a click compares and a double-click
applies one as an undoable edit; "Hold to see original" (or holding \\) shows the picture
under the compared result. Diffusion fills show each step's guess on the canvas while they
run.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.algorithms import masks
from core.catalog import diffusion_models, lama_models, sd_models
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec
from core.specs.inpaint import (
    DEFAULT_GUIDANCE,
    DEFAULT_MODEL,
    MAX_CONTEXT,
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
)
from core.specs.sd import DEFAULT_CFG, MAX_CFG
from desktop.canvas import Document
from desktop.panels import fields
from desktop.panels.base import (
    Panel,
    message_label,
    refresh_button,
    spin,
)
from desktop.panels.fields import Field

ENGINES = [("PatchMatch (no model, any photo)", "patchmatch"),
           ("Diffusion (a trained model)", "diffusion"),
           ("LaMa (your big-lama file)", "lama"),
           ("Stable Diffusion (your checkpoint)", "sd")]
# What each engine that uses a model says when none is installed.
NO_MODEL = {
    "diffusion": "No diffusion model is installed: train one (easel train diffusion_faces) or "
                 "use PatchMatch.",
    "lama": "No LaMa model is imported: import your big-lama file (Models > Manage models > "
            "Import…) or use PatchMatch.",
    "sd": "No Stable Diffusion model is imported: import your checkpoint (Models > Manage "
          "models > Import…) or use PatchMatch.",
}
# The samplers each diffusion engine offers: (text, spec value)
SAMPLERS = {
    "diffusion": [("DDIM (deterministic)", "ddim"), ("DDPM (stochastic)", "ddpm")],
    "sd": [("DPM++ 2M (fast)", "dpm++"), ("Euler", "euler"), ("DDIM", "ddim")],
}
# The diffusion settings only one of the two diffusion engines uses
ONLY = {"diffusion": ("attribute", "guidance", "jump", "resample"),
        "sd": ("prompt", "negative_prompt", "cfg")}
SIDES = ("left", "right", "top", "bottom")

# The form: widget, spec field, settings key, range, default (desktop/panels/fields.py). The
# combo boxes list what is installed; the model comes before what can be asked of it. Growing
# the mask is an inpaint's, the sides are an outpaint's.
FIELDS = (
    Field("engine", "engine", default="patchmatch"),
    Field("model", "model", default=DEFAULT_MODEL,
          missing="The model {value!r} is not installed."),
    Field("attribute", "attribute", default="", fallback=True,
          missing="{value!r} cannot be asked of this model; asked for nothing."),
    Field("sampler", "sampler", default="ddim"),
    Field("prompt", "prompt", default="", label="prompt"),
    Field("negative_prompt", "negative_prompt", default="", label="negative prompt"),
    Field("cfg", "cfg", range=(0.0, MAX_CFG), default=DEFAULT_CFG, step=0.5,
          tip="Classifier-free guidance: how closely the fill follows the prompt (1: off)"),
    Field("patch", "patch_size", range=PATCH_SIZES, default=7, step=2,
          tip="Patch size in pixels: larger keeps bigger structures, smaller follows fine "
          "detail."),
    Field("iterations", "iterations", range=(1, MAX_ITERATIONS), default=4,
          tip="Search-and-vote rounds per scale."),
    Field("context", "context", range=(0, MAX_CONTEXT), default=0, step=16, suffix=" px",
          special="Auto",
          tip="How far around the mask the fill may copy from. Auto: twice the mask's size "
          "(the whole picture when that holds too little). Smaller keeps the fill to what is "
          "near the hole."),
    Field("steps", "steps", range=(1, MAX_STEPS), default=20,
          tip="Denoising steps: more is slower and usually cleaner."),
    Field("strength", "strength", range=(0.05, 1.0), default=1.0, step=0.05,
          tip="1 draws the masked area anew; lower keeps more of what is there (its shapes "
          "and colours)."),
    Field("variations", "variations", range=(1, MAX_VARIATIONS), default=4,
          tip="Fills drawn at once; each goes to the result strip."),
    Field("guidance", "guidance", range=(0.0, MAX_GUIDANCE), default=DEFAULT_GUIDANCE,
          step=0.05, tip="How hard the fill is steered towards what is asked for; too high "
          "draws marks only the judge reads"),
    Field("jump", "jump", range=(1, MAX_JUMP), default=5, suffix=" steps",
          tip="RePaint: steps jumped back each time the fill is reconciled with its surround."),
    Field("resample", "resample", range=(1, MAX_RESAMPLE), default=3,
          tip="RePaint: times each jump is redone (1 = off). More blends the fill better and "
          "takes longer."),
    Field("grow", "grow", range=(0, MAX_RADIUS), default=0, suffix=" px", job="inpaint",
          tip="Grow the mask by this many pixels before filling, so the fill covers the "
          "object's edge too."),
    Field("feather", "feather", range=(0, MAX_RADIUS), default=0, suffix=" px",
          tip="Blend the fill into its surround over this many pixels (inside the mask)."),
    Field("seed", "seed", range=(0, MAX_SEED), default=1,
          tip="Same seed, same settings: same result."),
    Field("random_seed", None, "random_seed", default=True, text="New seed each run"),
    *(Field(f"extend_{side}", side, range=(0, MAX_EXTEND), default=0, suffix=" px",
            job="outpaint", tip=f"Pixels to add on the {side}") for side in SIDES),
)


class InpaintPanel(Panel):
    name = "inpaint"
    title = "Inpaint"
    FIELDS = FIELDS
    showOriginal = Signal(bool)  # True while "Hold to see original" is held
    sourceChanged = Signal(object)  # the source area (HxW bool) or None: the canvas shows it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._outpaint_next = False
        fields.build(self, FIELDS)
        self.engine = QComboBox()
        for text, key in ENGINES:
            self.engine.addItem(text, key)
        self.engine.setToolTip("PatchMatch copies from the rest of the picture; diffusion draws "
                               "new content with a model trained on a world or your images; "
                               "LaMa (a model file you imported) fills large holes in photos.")
        self.model = QComboBox()
        self.model.setToolTip("The engine's model: each knows the kind of pictures it was "
                              "trained on")
        self._attributes: dict[str, list[str]] = {}  # model name -> what can be asked of it
        self.attribute = QComboBox()
        self.attribute.setToolTip("Ask the fill for something the model's world has a name for "
                                  "(a smile, glasses...): the world's judge steers every step")
        self.model.currentIndexChanged.connect(self._model_changed)
        self.refresh_models()
        self.sampler = QComboBox()
        self.sampler.setToolTip("DDIM follows one path from the seed's noise; DDPM adds fresh "
                                "noise at every step and usually needs more steps; DPM++ and "
                                "Euler (Stable Diffusion) need the fewest.")
        for text, key in SAMPLERS["diffusion"]:
            self.sampler.addItem(text, key)
        self._sampler_engine = "diffusion"  # whose samplers the combo lists
        self._samplers: dict[str, str] = {}  # each engine's last sampler
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("What to draw in the masked area, e.g. \"a red door\"")
        self.prompt.setToolTip("Describe the fill (or the whole picture as it should be)")
        self.negative_prompt = QLineEdit()
        self.negative_prompt.setPlaceholderText("What to avoid, e.g. \"blurry, text\"")

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
        pm.addRow("Context", self.context)
        self._source: np.ndarray | None = None  # where the fill may copy from (None: anywhere)
        self.source_label = QLabel()
        self.source_label.setToolTip("Where the fill may copy from")
        source_row = QHBoxLayout()
        self.source_set = QPushButton("Use mask as source")
        self.source_set.setToolTip("Paint where the fill may copy from, press this, then clear "
                                   "the mask and paint what should go")
        self.source_set.clicked.connect(self.use_mask_as_source)
        self.source_clear = QPushButton("Anywhere")
        self.source_clear.setToolTip("Let the fill copy from anywhere outside the mask again")
        self.source_clear.clicked.connect(lambda: self.set_source(None))
        source_row.addWidget(self.source_set, 1)
        source_row.addWidget(self.source_clear)
        pm.addRow(self.source_label)
        pm.addRow(source_row)
        self.set_source(None)
        self.diffusion_box = QGroupBox("Diffusion")
        df = self.diffusion_form = QFormLayout(self.diffusion_box)
        df.addRow("Prompt", self.prompt)
        df.addRow("Negative", self.negative_prompt)
        df.addRow("Sampler", self.sampler)
        df.addRow("Steps", self.steps)
        df.addRow("Strength", self.strength)
        df.addRow("Variations", self.variations)
        df.addRow("CFG scale", self.cfg)
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
        self.extend = {side: getattr(self, f"extend_{side}") for side in SIDES}
        for side, box in self.extend.items():
            ob.addRow(side.capitalize(), box)
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
        """List the installed models of the chosen engine (shipped and the user's) again:
        diffusion models, or the LaMa models imported from the user's files."""
        current = self.model.currentData() or DEFAULT_MODEL
        self.model.blockSignals(True)
        self.model.clear()
        engine = self.engine.currentData()
        if engine == "lama":
            self._attributes = {}
            for m in lama_models():
                self.model.addItem(f"{m['name']} (LaMa, from {m['file']})", m["name"])
        elif engine == "sd":
            self._attributes = {}
            for m in sd_models():
                self.model.addItem(f"{m['name']} ({m['label']})", m["name"])
        else:
            models = diffusion_models()
            self._attributes = {m["name"]: m["attributes"] for m in models}
            for m in models:
                self.model.addItem(f"{m['name']} ({m['data']}, {m['source']})", m["name"])
        self.model.setCurrentIndex(max(0, self.model.findData(current)))
        self.model.blockSignals(False)
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

    def use_mask_as_source(self) -> None:
        """The painted mask becomes the area the fill may copy from (the mask is cleared, as
        one undoable step, so the next strokes paint what should go)."""
        doc = self.doc
        if doc is None or doc.is_empty():
            self.show_message("Open an image first.")
            return
        mask = doc.mask_array() >= 128
        if not mask.any():
            self.show_message("Paint where the fill may copy from first, then press "
                              "\"Use mask as source\".")
            return
        self.set_source(mask)
        doc.clear_mask()
        self.show_message("Source area set: now paint what should go.")

    def set_source(self, source: np.ndarray | None) -> None:
        self._source = source
        self.sourceChanged.emit(source)
        self.source_clear.setEnabled(source is not None)
        self.source_label.setText(
            "Copy from: anywhere outside the mask" if source is None else
            f"Copy from: the painted area ({100 * masks.coverage(source):.0f}% of it)")

    def request_outpaint(self) -> None:
        """Outpaint: the window runs the panel's next spec, which is then an OutpaintSpec."""
        self._outpaint_next = True
        self.runRequested.emit()
        self._outpaint_next = False

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _engine_changed(self) -> None:
        engine = self.engine.currentData()
        self.refresh_models()
        self.patchmatch_box.setVisible(engine == "patchmatch")
        self.diffusion_box.setVisible(engine in SAMPLERS)
        if engine in SAMPLERS:
            self.diffusion_box.setTitle("Stable Diffusion" if engine == "sd" else "Diffusion")
            for kind, names in ONLY.items():
                for name in names:
                    self.diffusion_form.setRowVisible(getattr(self, name), kind == engine)
            if self._sampler_engine != engine:  # each engine's own samplers and choice
                self._samplers[self._sampler_engine] = self.sampler.currentData()
                self.sampler.clear()
                for text, key in SAMPLERS[engine]:
                    self.sampler.addItem(text, key)
                self.sampler.setCurrentIndex(
                    max(0, self.sampler.findData(self._samplers.get(engine))))
                self._sampler_engine = engine
        for widget in (self.model, self.model_label, self.model_refresh):
            widget.setVisible(engine in NO_MODEL)  # PatchMatch uses no model
        self.show_message(NO_MODEL[engine] if engine in NO_MODEL and self.model.count() == 0
                          else "")

    # ---------------------------------------------------------------- Panel API

    def build_spec(self, doc: Document) -> JobSpec:
        if doc.is_empty():
            raise JobError("Open an image first (File > Open, drag one in, or paste).")
        outpaint = self._outpaint_next
        if outpaint and not any(box.value() for box in self.extend.values()):
            raise JobError("Choose how many pixels to add on at least one side.")
        if not outpaint and doc.mask_is_empty():
            raise JobError("The mask is empty: paint the area to fill first.")
        values = self.fill_settings("outpaint" if outpaint else "inpaint")
        values["image"] = document_image_ref(doc)
        source = None  # the painted source area belongs to this picture, not to a batch
        if values["engine"] == "patchmatch" and self._source is not None:
            h, w = doc.image_array().shape[:2]
            if self._source.shape != (h, w):
                raise JobError("The source area was painted on a picture of another size: "
                               "press \"Anywhere\" and paint it again.")
            source = ImageRef.of(masks.to_uint8(self._source), embed=True)
        self.show_message("")
        if outpaint:
            return OutpaintSpec(**values, source=source)
        mask = (doc.mask_array() >= 128).astype("uint8") * 255
        return InpaintSpec(**values, mask=ImageRef.of(mask, embed=True), source=source)

    def fill_settings(self, kind: str = "inpaint") -> dict[str, Any]:
        """The engine and its settings as an ``kind`` spec's fields (no picture, no mask);
        a new seed first when "New seed each run" is on. JobError when the engine's model is
        not installed. File > Batch inpaint fills every picture with these."""
        engine = self.engine.currentData()
        if engine in NO_MODEL and self.model.currentData() is None:
            raise JobError(NO_MODEL[engine])
        if self.random_seed.isChecked():
            self.seed.setValue(random.randint(0, MAX_SEED))
        values = fields.spec_values(self, FIELDS, kind)
        values.update(
            patch_size=values["patch_size"] | 1,  # odd: a patch has a centre pixel
            model=values["model"] or DEFAULT_MODEL,
            variations=values["variations"] if engine in SAMPLERS else 1,
            attribute=(values["attribute"] or "") if engine == "diffusion" else "")
        return values

    def describe_settings(self) -> str:
        """The fill settings in a line, e.g. "PatchMatch (no model, any photo): patch 7 px,
        4 iterations, grow 0 px, feather 0 px, seed 1"."""
        engine = self.engine.currentData()
        parts = []
        if engine in NO_MODEL:
            parts.append(f"model {self.model.currentData() or 'none installed'}")
        if engine == "patchmatch":
            parts += [f"patch {self.patch.value() | 1} px", f"{self.iterations.value()} iterations",
                      f"context {self.context.text()}"]
        else:
            parts += [f"{self.sampler.currentText()} sampler" if engine in SAMPLERS else "",
                      f"{self.steps.value()} steps" if engine in SAMPLERS else "",
                      f"prompt \"{self.prompt.text()}\"" if engine == "sd" else ""]
        parts += [f"grow {self.grow.value()} px", f"feather {self.feather.value()} px",
                  "a new seed each run" if self.random_seed.isChecked()
                  else f"seed {self.seed.value()}"]
        return f"{self.engine.currentText()}: {', '.join(p for p in parts if p)}"

    def restore(self, spec: dict[str, Any]) -> list[str]:
        # A PatchMatch run names the default model, which need not be installed here.
        skip = () if spec.get("engine") in NO_MODEL else ("model",)
        problems = fields.restore(self, FIELDS, spec, skip)
        source = spec.get("source")
        try:
            self.set_source(None if not source else
                            masks.as_bool(ImageRef.from_dict(source).array()))
        except (JobError, ValueError) as exc:
            self.set_source(None)
            problems.append(f"The source area could not be read back ({exc}); the fill may "
                            "copy from anywhere.")
        self.random_seed.setChecked(False)  # a restored run should reproduce as it was
        return problems

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("inpaint")
        fields.load(self, FIELDS, settings)
        settings.endGroup()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.outpaint_button.setEnabled(not busy)



def document_image_ref(doc: Document) -> ImageRef:
    """The document's picture for a spec; names its file only while the pixels are the file's."""
    ref = ImageRef.of(doc.image_array())
    if doc.source_path and ref.sha256 == getattr(doc, "source_sha256", None):
        ref = ImageRef.of(ref.array(), path=doc.source_path)
    return ref


