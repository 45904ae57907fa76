"""The Style panel: restyle the picture after one or more paintings, or with a fast style model.

The content is the canvas picture. Style images go into the tray (drop files on it, or "Add
style image…"), each with a weight, and are either optimised towards or, with "One pass (any
painting)", painted in one pass by the one-pass net; or a fast style (a model trained for one
style) restyles in one pass. Strength, colour keeping, "only the painted area" (the
document's mask, with a feathered seam), the working resolution, steps and the optimiser are
the main settings; "Seamless tile" makes a result that repeats without seams. Before a run
the panel says about how long it will take (core.specs.style's estimate, scaled by what the
last run here measured); while it runs, the current step's picture shows in the panel (and on
the canvas). The result goes to the result strip, where a double-click applies it as an
undoable edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QPixmap, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core import imageio
from core.catalog import fast_styles, one_pass_styles
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec, pixel_hash
from core.specs.style import (
    COLOUR_MODES,
    MAX_FEATHER,
    MAX_SIZE,
    MAX_STEPS,
    MAX_STYLES,
    MIN_SIZE,
    ONE_PASS_MODEL,
    OPTIMIZERS,
    StyleSpec,
    estimate_cpu_seconds,
    estimate_wall_seconds,
)
from desktop.background import BackgroundReader
from desktop.canvas import Document
from desktop.canvas.qimage import qimage_from_array
from desktop.inference import JobHandle
from desktop.panels import fields
from desktop.panels.base import Panel, message_label, refresh_button
from desktop.panels.fields import Field
from desktop.panels.inpaint import document_image_ref
from desktop.widgets.style_tray import MAX_WEIGHT, StyleImage, StyleTray, pixels_of_qimage

COLOURS = [("Off", ""), ("Keep colours (luminance)", "luminance"),
           ("Keep colours (histogram)", "histogram")]
OPTIMIZER_NAMES = {"lbfgs": "L-BFGS (line search)", "adam": "Adam (the default)"}
PREVIEW_SIDE = 160  # px, the running step's picture in the panel
STRENGTH_SCALE = 10  # slider units per unit of strength (0.1 steps)
ALPHA_SCALE = 20  # the one pass's strength in 0.05 steps
ONE_PASS = "one-pass:"  # the method list's data for a one-pass net: this + its name
MAX_STRENGTH = 20.0
MAX_CONTENT_WEIGHT = 100.0
MAX_TV_WEIGHT = 1000.0
_D = StyleSpec()  # the job's defaults are the panel's
# The form: widget, spec field, settings key, range, default (desktop/panels/fields.py). The
# fast style comes first: choosing one changes which colour modes apply.
FIELDS = (
    Field("fast", "fast", default="", fallback=True,
          missing="The fast style {value!r} is not installed; optimising instead."),
    Field("strength", "strength", range=(0.0, MAX_STRENGTH), default=_D.strength,
          scale=STRENGTH_SCALE, tip="How strongly the style is painted over the picture's own "
          "look (the content weighs 1)"),
    Field("alpha", "alpha", range=(0.0, 1.0), default=_D.alpha, scale=ALPHA_SCALE,
          label="One-pass strength", tip="From the picture as it is (0) to the painting's "
          "full style (1)"),
    Field("colour", "preserve_color", default=_D.preserve_color, label="Colour mode"),
    Field("only_mask", None, "only_mask", default=False, text="Only the painted area",
          tip="Restyle only what is painted on the mask (brush B, rectangle R, lasso L); the "
          "rest stays exactly as it is"),
    Field("feather", "feather", range=(0, MAX_FEATHER), default=_D.feather, suffix=" px",
          tip="The seam between the restyled area and the rest, in pixels"),
    Field("tile", "tile", default=_D.tile, text="Seamless tile",
          tip="A result that repeats without seams (for textures and patterns): the picture "
          "wraps round while it is restyled"),
    # picture_size, not size: QWidget.size() is the panel's own; the settings key stays "size"
    Field("picture_size", "size", "size", range=(MIN_SIZE, MAX_SIZE), default=_D.size, step=64,
          suffix=" px",
          label="Resolution", tip="The long side the style is worked at: larger is finer and "
          "slower (a smaller picture stays its size)"),
    Field("steps", "steps", range=(1, MAX_STEPS), default=_D.steps,
          tip="Optimisation steps over the coarse-to-fine levels: more is slower and settles "
          "the style further"),
    Field("optimizer", "optimizer", default=_D.optimizer, label="Optimiser"),
    Field("seed", "seed", range=(0, MAX_SEED), default=1,
          tip="Recorded with the result: the same settings and seed give the same pixels"),
    Field("content_weight", "content_weight", range=(0.0, MAX_CONTENT_WEIGHT),
          default=_D.content_weight, step=0.1, tip="How much the picture's shapes are kept"),
    Field("tv_weight", "tv_weight", range=(0.0, MAX_TV_WEIGHT), default=_D.tv_weight, step=5.0,
          label="Smoothness", tip="Smoothness: higher gives less speckle and softer strokes"),
    Field("moments", "moments", default=_D.moments, text="Match colour statistics too",
          tip="Also match each feature's mean and spread, not only their correlations: usually "
          "closer to the painting's palette"),
    Field("feature_seed", "feature_seed", range=(0, MAX_SEED), default=_D.feature_seed,
          label="Feature network seed", tip="Another random feature network sees the style "
          "differently: try a few for other takes on the same painting"),
    Field("advanced_box", None, "advanced"),  # shows the optimisation's finer settings
)


class StylePanel(Panel):
    name = "style"
    title = "Style"
    FIELDS = FIELDS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        assert set(COLOUR_MODES) == {key for _, key in COLOURS}
        assert set(OPTIMIZERS) == set(OPTIMIZER_NAMES)
        fields.build(self, FIELDS)

        # ---- style sources
        self.tray = StyleTray()
        self.reader = BackgroundReader(self)  # reads a restored run's images off the GUI thread
        self._restoring = 0  # the latest restore; an older one's images are dropped
        self.tray.filesDropped.connect(self.add_style_files)
        self.tray.imageDropped.connect(self.add_style_qimage)
        self.tray.changed.connect(self._update_state)
        self.add_button = QPushButton("Add style image…")
        self.add_button.setToolTip("Choose paintings (or any pictures) whose style to take")
        self.add_button.clicked.connect(self.choose_style_files)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Take every style image out of the tray")
        self.clear_button.clicked.connect(self.tray.clear)
        self.fast = QComboBox()
        self.fast.setToolTip("How to restyle: “None” optimises towards the tray's images; "
                             "“One pass (any painting)” paints them in one pass (easel train "
                             "style_onepass); a fast style model restyles in one pass after "
                             "the painting it was trained on (easel train style_fast_…)")
        self.fast.currentIndexChanged.connect(self._update_state)

        # ---- look
        self.strength_label = QLabel()
        self.strength_label.setMinimumWidth(36)
        self.strength.valueChanged.connect(self._strength_changed)
        self.alpha.valueChanged.connect(self._strength_changed)
        self._strength_changed()
        self.colour = QComboBox()
        for text, key in COLOURS:
            self.colour.addItem(text, key)
        self.colour.setToolTip("Keep the picture's own colours: “luminance” transfers the "
                               "brushwork only; “histogram” recolours the style images to the "
                               "picture's palette first (not for fast styles)")
        self.only_mask.toggled.connect(self._update_state)
        self.tile.toggled.connect(self._update_state)

        # ---- quality
        self.optimizer = QComboBox()
        for key in OPTIMIZERS:
            self.optimizer.addItem(OPTIMIZER_NAMES[key], key)
        self.optimizer.setCurrentIndex(self.optimizer.findData(_D.optimizer))
        self.optimizer.setToolTip("Adam matches the painting's texture most closely; L-BFGS "
                                  "with a line search settles in fewer steps and keeps more "
                                  "of the picture's own detail")
        for w in (self.picture_size, self.steps):
            w.valueChanged.connect(self.update_estimate)
        self.optimizer.currentIndexChanged.connect(self.update_estimate)
        self.fast.currentIndexChanged.connect(self.update_estimate)
        self._speed = 1.0  # what the last run here took over what was estimated for it
        self._estimated = 0.0  # the running job's estimate, CPU seconds

        self.run_button = QPushButton("Restyle")
        self.run_button.setToolTip("Restyle the picture (Ctrl+Enter)")
        self.run_button.clicked.connect(self.runRequested)
        self.message = message_label()
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setToolTip("Estimated from the picture's size and the settings; it "
                                 "learns from each run on this computer")
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setToolTip("The picture at the step the run has reached")
        self.preview.setVisible(False)
        self.step_label = QLabel()
        self.step_label.setWordWrap(True)
        self.step_label.setVisible(False)

        # ---- layout
        hint = QLabel("Drop one or more paintings into the tray (or pick a fast style), then "
                      "press Restyle. Results go to the strip below the canvas; double-click "
                      "one to apply it.")
        hint.setWordWrap(True)
        styles_box = QGroupBox("Style")
        sb = QVBoxLayout(styles_box)
        sb.addWidget(self.tray)
        tray_buttons = QHBoxLayout()
        tray_buttons.addWidget(self.add_button, 1)
        tray_buttons.addWidget(self.clear_button)
        sb.addLayout(tray_buttons)
        fast_form = QFormLayout()
        fast_row = QHBoxLayout()
        fast_row.addWidget(self.fast, 1)
        fast_row.addWidget(refresh_button(self.refresh_fast_styles))
        fast_form.addRow("Method", fast_row)
        sb.addLayout(fast_form)

        look_box = QGroupBox("Look")
        lk = QFormLayout(look_box)
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.alpha, 1)
        strength_row.addWidget(self.strength_label)
        lk.addRow("Strength", strength_row)
        lk.addRow("Colours", self.colour)
        lk.addRow(self.only_mask)
        lk.addRow(self.tile)
        lk.addRow("Feather", self.feather)

        self.quality_box = QGroupBox("Quality")
        qb = QFormLayout(self.quality_box)
        qb.addRow("Resolution", self.picture_size)
        qb.addRow("Steps", self.steps)
        qb.addRow("Optimiser", self.optimizer)
        qb.addRow("Seed", self.seed)

        self.advanced_box = QGroupBox("Advanced")
        self.advanced_box.setCheckable(True)
        self.advanced_box.setChecked(False)
        self.advanced_box.setToolTip("Show the optimisation's finer settings")
        ab = QFormLayout()
        ab.addRow("Content weight", self.content_weight)
        ab.addRow("Smoothness", self.tv_weight)
        ab.addRow(self.moments)
        ab.addRow("Feature network", self.feature_seed)
        self.advanced_body = QWidget()
        self.advanced_body.setLayout(ab)
        ab.setContentsMargins(0, 0, 0, 0)
        adv = QVBoxLayout(self.advanced_box)
        adv.addWidget(self.advanced_body)
        self.advanced_box.toggled.connect(self.advanced_body.setVisible)
        self.advanced_body.setVisible(False)
        self.refresh_fast_styles()

        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addWidget(styles_box)
        lay.addWidget(look_box)
        lay.addWidget(self.quality_box)
        lay.addWidget(self.advanced_box)
        lay.addWidget(self.run_button)
        lay.addWidget(self.estimate)
        lay.addWidget(self.preview)
        lay.addWidget(self.step_label)
        lay.addWidget(self.message)
        lay.addStretch(1)
        self._update_state()

    # ---------------------------------------------------------------- style images

    def choose_style_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add style images", str(Path.home()),
                                                imageio.IMAGE_FILE_FILTER)
        if paths:
            self.add_style_files(paths)

    def add_style_files(self, paths: list[str]) -> int:
        """Load ``paths`` into the tray (safe intake); the ones that cannot be used are named
        in the panel's message and the others are kept. Returns how many were added."""
        problems: list[str] = []
        added = 0
        for k, path in enumerate(paths):
            if self.tray.count() >= MAX_STYLES:
                rest = [Path(p).name for p in paths[k:]]
                problems.append(f"The tray holds at most {MAX_STYLES} style images; not added: "
                                f"{', '.join(rest)}.")
                break
            try:
                pixels = _load_pixels(path)
            except imageio.ImageError as exc:
                problems.append(str(exc))
                continue
            if self._add_pixels(pixels, path, problems):
                added += 1
        self.show_message(" ".join(problems))
        return added

    def add_style_qimage(self, image: QImage) -> bool:
        """A dropped image without a file (e.g. from a browser) into the tray."""
        problems: list[str] = []
        if image.isNull():
            problems.append("The dropped image could not be read.")
        elif image.width() * image.height() > imageio.max_pixels_setting():
            problems.append(f"The dropped image is {image.width()}x{image.height()}: larger "
                            "than the pixel limit.")
        elif self.tray.count() >= MAX_STYLES:
            problems.append(f"The tray holds at most {MAX_STYLES} style images.")
        ok = not problems and self._add_pixels(pixels_of_qimage(image), None, problems)
        self.show_message(" ".join(problems))
        return ok

    def _add_pixels(self, pixels: np.ndarray, path: str | None, problems: list[str],
                    weight: float = 1.0) -> bool:
        sha = pixel_hash(pixels)
        if self.tray.has(sha):
            problems.append(f"{Path(path).name if path else 'That image'} is already in the "
                            "tray.")
            return False
        self.tray.add(StyleImage(pixels, path, sha), weight)
        return True

    # ---------------------------------------------------------------- fast styles

    def refresh_fast_styles(self) -> None:
        """List the installed fast style models (shipped and the user's) again."""
        current = self.fast.currentData() or ""
        self.fast.blockSignals(True)
        self.fast.clear()
        self.fast.addItem("None (optimise towards the tray)", "")
        one_pass = one_pass_styles()
        for m in one_pass:
            mine = "" if m["name"] == ONE_PASS_MODEL else f": {m['name']}"
            self.fast.addItem(f"One pass (any painting){mine} ({m['source']})",
                              ONE_PASS + m["name"])
        if not one_pass:  # listed, so the choice is known, but not chosen until trained
            self.fast.addItem("One pass (any painting): not installed",
                              ONE_PASS + ONE_PASS_MODEL)
            model = self.fast.model()
            if isinstance(model, QStandardItemModel):
                item = model.item(self.fast.count() - 1)
                item.setEnabled(False)
                item.setToolTip("Train it first: easel train style_onepass")
        for m in fast_styles():
            style = f"{m['style']}, " if m["style"] else ""
            self.fast.addItem(f"{m['name']} ({style}{m['source']})", m["name"])
        self.fast.setCurrentIndex(max(0, self.fast.findData(current)))
        self._usable_method()
        self.fast.blockSignals(False)
        self._update_state()

    # ---------------------------------------------------------------- state

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _strength_changed(self) -> None:
        self.strength_label.setText(f"{self._strength():g}")

    def _strength(self) -> float:
        return (self.alpha if self._one_pass() else self.strength).number()

    def _usable_method(self) -> bool:
        """Whether the chosen method can run; if not (a one-pass net listed but not installed,
        or none chosen), choose optimising instead."""
        index = self.fast.currentIndex()
        model = self.fast.model()
        if index >= 0 and model.flags(model.index(index, 0)) & Qt.ItemFlag.ItemIsEnabled:
            return True
        self.fast.setCurrentIndex(0)
        return False

    def _one_pass(self) -> str:
        """The chosen one-pass net's name ("" when another method is chosen)."""
        data = self.fast.currentData() or ""
        return data.removeprefix(ONE_PASS) if data.startswith(ONE_PASS) else ""

    def _update_state(self) -> None:
        """Enable what the current choice uses: a fast style ignores the tray, the strength,
        steps and optimiser; the one pass uses the tray and its own strength (0 to 1), not the
        steps and optimiser; the feather needs the mask."""
        one_pass = bool(self._one_pass())
        fast = bool(self.fast.currentData()) and not one_pass
        for w in (self.tray, self.add_button, self.clear_button, self.strength):
            w.setEnabled(not fast)
        for w in (self.steps, self.optimizer, self.advanced_box):
            w.setEnabled(not fast and not one_pass)
        self.strength.setVisible(not one_pass)
        self.alpha.setVisible(one_pass)
        self._strength_changed()
        self.clear_button.setEnabled(not fast and self.tray.count() > 0)
        self.add_button.setEnabled(not fast and self.tray.count() < MAX_STYLES)
        self.feather.setEnabled(self.only_mask.isChecked())
        self.only_mask.setEnabled(not self.tile.isChecked())  # a tile is the whole picture
        self.tile.setEnabled(not self.only_mask.isChecked())
        self.update_estimate()
        model = self.colour.model()
        if isinstance(model, QStandardItemModel):  # histogram matching recolours style images
            item = model.item(self.colour.findData("histogram"))
            item.setEnabled(not fast)
            item.setToolTip("Fast styles keep colours by luminance only" if fast else "")
        if fast and self.colour.currentData() == "histogram":
            self.colour.setCurrentIndex(self.colour.findData("luminance"))

    # ---------------------------------------------------------------- Panel API

    def build_spec(self, doc: Document) -> JobSpec:
        if doc.is_empty():
            raise JobError("Open an image first (File > Open, drag one in, or paste).")
        values = fields.spec_values(self, FIELDS)
        values["one_pass"] = self._one_pass()
        if values["one_pass"]:
            values["fast"] = ""
        fast = values["fast"] or ""
        images = [] if fast else self.tray.images()
        weights = [] if fast else self.tray.weights()
        if not fast and not images:
            raise JobError("Add a style image (drop a painting into the style tray) or pick a "
                           "fast style.")
        if weights and sum(weights) <= 0:
            raise JobError("Every style image has weight 0: give at least one a weight above "
                           "0.")
        mask = None
        if self.only_mask.isChecked():
            if doc.mask_is_empty():
                raise JobError("Paint the area to restyle first, or untick 'Only the painted "
                               "area'.")
            m = (doc.mask_array() >= 128).astype(np.uint8) * 255
            mask = ImageRef.of(m, embed=True)
        self.show_message("")
        return StyleSpec(
            **values,
            image=document_image_ref(doc),
            styles=tuple(ImageRef.of(i.pixels, path=i.path) for i in images),
            style_weights=tuple(weights),
            mask=mask,
        )

    def restore(self, spec: dict[str, Any]) -> list[str]:
        # A run from before fast styles existed has no "fast": it optimised.
        problems = fields.restore(self, FIELDS, {"fast": "", **spec})
        one_pass = spec.get("one_pass")
        if isinstance(one_pass, str) and one_pass:
            self.fast.setCurrentIndex(self.fast.findData(ONE_PASS + one_pass))
            if not self._usable_method():
                problems.append(f"The one-pass net {one_pass!r} is not installed; optimising "
                                "instead (train it with easel train style_onepass).")
        self.only_mask.setChecked(spec.get("mask") is not None)  # the run had a region
        styles = spec.get("styles") if isinstance(spec.get("styles"), list) else []
        if spec.get("mask") is not None or styles:
            self.restore_images(spec.get("mask"), styles, spec.get("style_weights"), problems)
        self._update_state()
        return problems

    def restore_images(self, mask: Any, styles: list[Any], weights: Any,
                       problems: list[str]) -> None:
        """Read a restored run's region mask and style images off the GUI thread, then put
        the mask on the document (an undoable edit, when the artist has painted none and it
        fits the picture) and the style images in the tray (replacing what is there) with their
        weights. What cannot be had again is named in the panel's message."""
        if not (isinstance(weights, list) and len(weights) == len(styles)
                and all(_number(w) and 0 <= w <= MAX_WEIGHT for w in weights)):
            if weights:
                problems.append("The style weights could not be restored; each is 1.")
            weights = [1.0] * len(styles)
        if len(styles) > MAX_STYLES:
            problems.append(f"Only {MAX_STYLES} style images fit in the tray.")
        if styles:
            self.tray.clear()
        self._restoring += 1
        ticket, doc = self._restoring, self.doc
        items = list(zip(styles, weights, strict=True))[:MAX_STYLES]
        self.show_message("Reading the images this run was made with…")
        self.reader.read(lambda: read_run_images(mask, items),
                         lambda read: self._images_read(ticket, doc, read))

    def _images_read(self, ticket: int, doc: Document | None, read: RunImages) -> None:
        if ticket != self._restoring:
            return  # another restore came since
        problems = list(read.problems)
        if read.mask is not None and doc is self.doc and doc is not None \
                and not doc.is_empty() and doc.mask_is_empty():
            if read.mask.shape != doc.image_array().shape[:2]:
                problems.append("The painted area recorded with this run does not fit the "
                                "picture; paint it again.")
            else:
                doc.set_mask(read.mask > 0, "Restore the styled area")
        for image, weight in read.styles:
            if self.tray.has(image.sha256):
                continue
            self.tray.add(image, weight)
        self.show_message(" ".join(problems))
        self._update_state()

    def shutdown(self) -> None:
        self.reader.wait()

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("style")
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("style")
        fields.load(self, FIELDS, settings)
        settings.endGroup()
        self._usable_method()
        self._update_state()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)

    # ---------------------------------------------------------------- time and preview

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.sizeChanged.disconnect(self.update_estimate)
        super().set_document(doc)
        doc.sizeChanged.connect(self.update_estimate)
        self.update_estimate()

    def _method(self) -> str:
        return "one_pass" if self._one_pass() else "fast" if self.fast.currentData() else ""

    def estimated_cpu_seconds(self) -> float:
        """What a run at the current settings should take on the CPU (0 with no picture)."""
        if self.doc is None or self.doc.is_empty():
            return 0.0
        size = self.doc.size()
        return estimate_cpu_seconds(size.height(), size.width(), self.picture_size.value(),
                                    self.steps.value(), self.optimizer.currentData() or "",
                                    self._method()) * self._speed

    def update_estimate(self) -> None:
        cpu = self.estimated_cpu_seconds()
        if cpu <= 0:
            self.estimate.setText("")
            return
        wall = estimate_wall_seconds(cpu)
        self.estimate.setText(f"About {_duration(wall)} on this computer's CPU "
                              f"({_duration(cpu)} of CPU time).")

    def watch_main_job(self, job: JobHandle) -> None:
        """Follow a run of this panel's: the current step's picture and where it is, then
        what it took (the next estimates scale by it)."""
        self._estimated = self.estimated_cpu_seconds() / self._speed
        self.preview.clear()
        self.step_label.setText("Starting…")
        self.step_label.setVisible(True)
        job.progress.connect(self._step)
        job.preview.connect(self._show_preview)
        job.finished.connect(self._finished)
        for signal in (job.failed, job.cancelled):
            signal.connect(self._stopped)

    def _step(self, step: int, total: int, message: str) -> None:
        self.step_label.setText(f"Step {step} of {total}: {message}" if total > 1 else message)

    def _show_preview(self, rgb: np.ndarray) -> None:
        pix = QPixmap.fromImage(qimage_from_array(np.ascontiguousarray(rgb[..., :3])))
        self.preview.setPixmap(pix.scaled(PREVIEW_SIDE, PREVIEW_SIDE,
                                          Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        self.preview.setVisible(True)

    def _finished(self, result: Any) -> None:
        seconds = result.info.get("seconds") if isinstance(result.info, dict) else None
        if _number(seconds) and seconds > 0 and self._estimated > 0:
            # Wall seconds measured over the wall estimate: the machine's speed and load.
            self._speed = min(20.0, max(0.05, seconds / estimate_wall_seconds(self._estimated)))
        self._stopped()
        self.update_estimate()

    def _stopped(self, *_: Any) -> None:
        self.preview.setVisible(False)
        self.step_label.setVisible(False)


@dataclass
class RunImages:
    """What :func:`read_run_images` could read of a restored run."""

    mask: np.ndarray | None = None
    styles: list[tuple[StyleImage, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_run_images(mask: Any, styles: list[tuple[Any, float]]) -> RunImages:
    """A run's embedded region mask and its style images with their weights, read and hashed
    (off the GUI thread: it touches no widget). The spec dict was checked as a whole before
    (core.spec_check), so what it names is bounded."""
    out = RunImages()
    if isinstance(mask, dict):
        try:
            m = np.asarray(ImageRef.from_dict(mask).array())
            out.mask = m if m.ndim == 2 else None
        except JobError as exc:
            out.problems.append(f"The painted area could not be restored: {exc}")
        if out.mask is None and not out.problems:
            out.problems.append("The painted area recorded with this run is not a mask; "
                                "paint it again.")
    for k, (d, weight) in enumerate(styles, 1):
        if not isinstance(d, dict):
            out.problems.append(f"Style image {k} is not an image reference.")
            continue
        pixels, path = None, d.get("path")
        try:
            if "png" in d:
                pixels = ImageRef.from_dict(d).array()
            elif isinstance(path, str) and path:
                pixels = _load_pixels(path)
        except (imageio.ImageError, JobError) as exc:
            out.problems.append(f"Style image {k} could not be loaded: {exc}")
            continue
        if pixels is None:
            out.problems.append(f"Style image {k} was not saved with the run (it had no file); "
                                "drop it into the tray again.")
            continue
        sha = pixel_hash(pixels)
        if d.get("sha256") and sha != d["sha256"]:
            out.problems.append(f"{path} changed since the run (its pixels differ); the tray "
                                "has it as it is now.")
        out.styles.append((StyleImage(pixels, path if isinstance(path, str) else None, sha),
                           float(weight)))
    return out


def _load_pixels(path: str) -> np.ndarray:
    """A style image file as HxWx3 uint8, or HxWx4 when it has alpha (ImageError if unusable)."""
    loaded = imageio.load_image(path)
    return loaded.rgb if loaded.alpha is None else np.dstack([loaded.rgb, loaded.alpha])


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and bool(np.isfinite(v))
