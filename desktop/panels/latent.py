"""The Latent panel: pick faces from a seeded grid, compose A - B + C, push the result along
attribute directions with sliders, walk between two picks, and make directions of your own.

Every model call is a job (core/pipelines/latent.py) the panel runs with ``run_job``; its
result comes back through the job's handle. What the panel holds (the model, its picks, the
slots, the amounts, the result, the walk) is a :class:`LatentState` that the panel changes and
renders from its signals. The live result is coalesced:
at most one edit job is in flight, and when it returns the newest wanted state is submitted,
so dragging a slider never queues a backlog. ``build_spec`` gives the same edit at full size
for the result strip, and its spec (the slots' exact latents and the slider amounts) is what
an exported PNG carries, so dropping that PNG back restores the panel exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QSettings, QSignalBlocker, Qt
from PySide6.QtGui import QAction, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core import imageio
from core.algorithms.directions import METHODS, MIN_SET
from core.catalog import latent_models
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec, Result
from core.specs.latent import (
    DEFAULT_MODEL,
    MAX_COUNT,
    MAX_FRAMES,
    MAX_INVERSION_STEPS,
    MAX_SLOT,
    NO_TRUNCATION,
    LatentDirectionSpec,
    LatentEditSpec,
    LatentEncodeSpec,
    LatentInfoSpec,
    LatentSampleSpec,
    LatentWalkSpec,
)
from desktop.canvas import Document
from desktop.inference import JobHandle
from desktop.panels import fields
from desktop.panels.base import Panel, message_label, refresh_button, shrinkable
from desktop.panels.fields import Field
from desktop.panels.latent_model import LatentState, Pick
from desktop.widgets.direction_sets import DirectionSets
from desktop.widgets.direction_sliders import LIMIT, DirectionSliders
from desktop.widgets.latent_slot import LatentSlot
from desktop.widgets.reflow import ReflowRow
from desktop.widgets.thumbnail_list import ThumbnailList, thumbnail_pixmap
from desktop.widgets.walk_controls import WalkControls

RESULT = 256  # px of the result view
METHOD_TEXT = {"mean": "Difference of means", "classifier": "Classifier normal"}
# How a picture became a latent, in words (its reconstruction figures are the model card's,
# in Models > Manage models).
ENCODED_BY = {"encoder": "by the model's encoder", "inversion": "by inversion"}
SLOT_TIPS = {
    "A": "The face to edit. Alone, the sliders move it; with B and C it becomes A - B + C.",
    "B": "What to take away from A (e.g. faces with glasses). Fill C too.",
    "C": "What to add instead (e.g. faces without glasses but with a hat). Fill B too.",
}
# The form: widget, spec field, settings key, range, default (desktop/panels/fields.py); each
# field belongs to the spec of one kind of the panel's jobs. The walk's controls are built by
# its group box; the model is the state's (LatentState), not the form's.
FIELDS = (
    Field("seed", "seed", range=(0, MAX_SEED), default=1, job="latent_sample",
          tip="The grid's seed: the same seed shows the same faces"),
    Field("count", "count", range=(1, MAX_COUNT), default=16, job="latent_sample",
          tip="Faces per grid"),
    Field("truncation", "truncation", range=(0.0, 1.0), default=NO_TRUNCATION, step=0.05,
          job=("latent_sample", "latent_edit", "latent_walk"),
          tip="Variety ↔ fidelity (the truncation trick, ψ): 1 = off, every face the model "
              "can draw. Lower pulls the grid's faces, the result and the walk toward the "
              "average face: more typical faces, less variety (0 = the average face itself)."),
    Field("encode_method", "method", "encode_method", default="auto", job="latent_encode"),
    Field("steps", "steps", range=(10, MAX_INVERSION_STEPS), default=300, job="latent_encode",
          tip="Optimisation steps of an inversion"),
    Field("method", "method", default="mean", job="latent_edit"),
    Field("walk_box.frames", "frames", job="latent_walk"),
    Field("walk_box.mode", "mode", "walk_mode", job="latent_walk"),
    Field("walk_box.upscale", "upscale", "walk_upscale", job="latent_walk"),
    Field("walk_box.fps", None, "fps"),
)


class LatentPanel(Panel):
    name = "latent"
    title = "Latent"
    FIELDS = FIELDS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = LatentState(self)
        self._jobs: list[JobHandle] = []  # the panel's jobs still running
        self._started = False
        self._build()
        s = self.state
        s.modelChanged.connect(self._show_new_model)
        s.infoChanged.connect(self._show_info)
        s.gridChanged.connect(self._show_grid)
        s.slotChanged.connect(self._slot_changed)
        s.targetChanged.connect(lambda name: self.slots[name].title.setChecked(True))
        s.amountsChanged.connect(self._show_amounts)
        s.pickImageChanged.connect(self._show_pick_image)
        s.resultChanged.connect(self._show_result)
        s.walkEndsChanged.connect(self._show_walk_ends)
        s.walkChanged.connect(self._show_walk)
        self.select_slot("A")

    # ================================================================ layout

    def _build(self) -> None:
        self.model = QComboBox()
        self.model.setToolTip("The VAE or GAN whose latent space you explore: shipped models "
                              "and the ones you trained")
        self.model.activated.connect(lambda _: self._model_chosen())
        refresh = refresh_button(self.refresh_models)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.message = message_label()

        # ---- samples
        fields.build(self, FIELDS)
        self.seed.editingFinished.connect(lambda: self.sample_grid(self.seed.value()))
        self.truncation.setKeyboardTracking(False)  # typing "0.7" asks for one grid, not three
        self.truncation.valueChanged.connect(lambda _: self._truncation_changed())
        new_grid = QPushButton("New grid")
        new_grid.setToolTip("Sample new faces with a new seed (Ctrl+G)")
        new_grid.clicked.connect(lambda: self.sample_grid())
        QShortcut(QKeySequence("Ctrl+G"), self, lambda: self.sample_grid(),
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.grid = ThumbnailList(icon=56)
        self.grid.setMinimumHeight(2 * 64 + 8)
        self.grid.setToolTip("Click a face to put it into the selected slot, drag it onto a "
                             "slot, or right-click for more")
        self.grid.picked.connect(self._grid_clicked)
        self.grid.menuRequested.connect(lambda row, pos: self._pick_menu(self.grid.key(row), pos))
        grid_row = QHBoxLayout()
        grid_row.addWidget(QLabel("Seed"))
        self.seed.setMinimumWidth(64)  # wider where there is room (stretch 1)
        grid_row.addWidget(self.seed, 1)
        grid_row.addWidget(QLabel("Count"))
        grid_row.addWidget(self.count)
        grid_row.addWidget(new_grid)
        samples = _group("Samples", grid_row, self.grid)

        # ---- slots
        self.slots = {name: LatentSlot(f"&{name}", SLOT_TIPS[name]) for name in "ABC"}
        for name, slot in self.slots.items():
            slot.name = name
            slot.selected.connect(lambda n=name: self.select_slot(n))
            slot.picksDropped.connect(
                lambda keys, n=name: self.put(n, self.state.resolve(keys)))
            slot.filesDropped.connect(lambda paths, n=name: self.encode_files(n, paths))
            slot.canvasRequested.connect(lambda n=name: self.use_canvas_selection(n))
            slot.membersChanged.connect(
                lambda n=name: self.state.set_slot(n, self.slots[n].picks()))
        slot_row = ReflowRow(list(self.slots.values()))  # side by side where they fit
        self.encode_method = shrinkable(QComboBox())
        self.encode_method.addItem("Auto (encoder if the model has one)", "auto")
        self.encode_method.addItem("Inversion (slower, often closer)", "inversion")
        self.encode_method.setToolTip("How a dropped image becomes a latent. GANs have no "
                                      "encoder and always use inversion.")
        enc_row = QHBoxLayout()
        enc_row.addWidget(QLabel("Encode"))
        enc_row.addWidget(self.encode_method, 1)
        enc_row.addWidget(QLabel("Steps"))
        enc_row.addWidget(self.steps)
        hint = QLabel("Drop faces, image files or use the canvas selection. A alone is edited "
                      "by the sliders; A − B + C needs B and C both.")
        hint.setWordWrap(True)
        slots = _group("Slots", hint, slot_row, enc_row)

        # ---- result and sliders
        self.result_view = QLabel("Put a face in slot A")
        self.result_view.setFixedSize(RESULT, RESULT)
        self.result_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.result_view.setWordWrap(True)  # what to do next, said in words until there is one
        self.result_view.setMargin(8)
        self.result_view.setStyleSheet("QLabel { background: #333; color: #ccc; }")
        self.result_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.result_view.customContextMenuRequested.connect(self._result_menu)
        self.result_view.setToolTip("The result, updated as you edit; right-click for more")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.method = QComboBox()
        for key in METHODS:
            self.method.addItem(METHOD_TEXT.get(key, key), key)
        self.method.setToolTip("Difference of means: the DCGAN paper's vector between the "
                               "average faces with and without. Classifier normal: the normal "
                               "of a linear classifier (InterFaceGAN), which disturbs other "
                               "attributes less.")
        self.method.currentIndexChanged.connect(lambda _: self._request_edit())
        reset = QPushButton("Reset sliders")
        reset.setToolTip("Put every slider back to 0")
        reset.clicked.connect(self.reset_sliders)
        self.send_button = QPushButton("Send to canvas")
        self.send_button.setToolTip("Add the result to the results strip and put it on the "
                                    "canvas (Ctrl+Z undoes it)")
        self.send_button.clicked.connect(self.send_to_canvas)
        result_buttons = QHBoxLayout()
        result_buttons.addWidget(self.method, 1)
        result_buttons.addWidget(reset)
        self.sliders = DirectionSliders()
        self.sliders.changed.connect(self._sliders_moved)
        result = _group("Result", self.result_view, self.note, self.send_button, result_buttons,
                        self.sliders)

        # ---- walk and user directions
        self.walk_box = WalkControls(MAX_FRAMES)
        self.walk_box.walkRequested.connect(self.walk)
        self.walk_box.exportRequested.connect(self._export_dialog)
        self.walk_box.strip.picked.connect(self._walk_frame_clicked)
        self.direction_sets = DirectionSets(MIN_SET)
        self.direction_sets.makeRequested.connect(self.make_direction)

        body = QWidget()
        lay = QVBoxLayout(body)
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model"))
        model_row.addWidget(self.model, 1)
        model_row.addWidget(refresh)
        lay.addLayout(model_row)
        truncation_row = QHBoxLayout()
        truncation_row.addWidget(QLabel("Variety ↔ fidelity"))
        truncation_row.addWidget(self.truncation)
        truncation_row.addStretch(1)
        lay.addLayout(truncation_row)
        lay.addWidget(self.model_info)
        lay.addWidget(self.message)
        for box in (samples, slots, result, self.walk_box, self.direction_sets):
            lay.addWidget(box)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # ================================================================ jobs

    def _submit(self, spec: JobSpec, done: Callable[[Result], None],
                failed: Callable[[str | None], None] | None = None,
                progress: Callable[[int, int, str, np.ndarray | None], None] | None = None
                ) -> None:
        """Run ``spec`` for the panel: ``done`` gets its result, ``failed`` its message (None
        when cancelled), ``progress`` its steps and previews; nothing once the model changed
        (the answer belongs to the old latent space)."""
        job = self.run_job(spec)
        if job is None:
            return
        self._jobs.append(job)
        generation = self.state.generation

        last_step = (0, 0, "")  # previews arrive apart from the step they belong to

        def answer(fn: Callable[..., None] | None, *args: Any, end: bool = False) -> None:
            if end:
                self._jobs.remove(job)
            if fn is not None and generation == self.state.generation:
                fn(*args)

        def stepped(step: int, total: int, message: str) -> None:
            nonlocal last_step
            last_step = (step, total, message)
            answer(progress, step, total, message, None)

        def on_failed(message: str, _details: str) -> None:
            answer(failed, message, end=True)
            answer(self.show_message, message)

        job.finished.connect(lambda result: answer(done, result, end=True))
        job.failed.connect(on_failed)
        job.cancelled.connect(lambda: answer(failed, None, end=True))
        if progress is not None:
            job.progress.connect(stepped)
            job.preview.connect(lambda image: answer(progress, *last_step, image))

    def _decode(self, pick: Pick) -> None:
        """Decode a pick that has no image yet (restored from a spec) for its thumbnails."""
        spec = LatentEditSpec(model=self.state.model, a=(pick.latent,), upscale=False)
        self._submit(spec, lambda r: self.state.set_pick_image(pick, r.images[0]))

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ================================================================ models

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._started:  # the first info job may take seconds: only when first shown
            self._started = True
            self.refresh_models()

    def refresh_models(self) -> None:
        """List the installed models (their cards only; no weights are read here)."""
        wanted = self.model.currentData() or self.state.model or DEFAULT_MODEL
        found = self._fill_models(latent_models(), wanted)
        if not self.model.count():
            self.show_message("No latent model is installed. Train one in the Train panel "
                              "(or `easel train vae_faces`); it then appears here.")
            return
        if self.model.currentData() != self.state.model:
            self._model_chosen()
        if not found:
            self.show_message(f"The model {wanted!r} is not installed; showing "
                              f"{self.state.model!r}.")

    def _fill_models(self, models: list[dict[str, str]], wanted: str) -> bool:
        """List ``models`` in the picker and select ``wanted`` (else the first): found?"""
        self.model.blockSignals(True)
        self.model.clear()
        for m in models:
            self.model.addItem(f"{m['name']} ({m['family'].upper()}, {m['source']})", m["name"])
            self.model.setItemData(self.model.count() - 1, m["path"],
                                   Qt.ItemDataRole.ToolTipRole)
        index = self.model.findData(wanted)
        self.model.setCurrentIndex(max(0, index))
        self.model.blockSignals(False)
        return index >= 0

    def current_model(self) -> str:
        return self.state.model

    def set_model(self, name: str) -> bool:
        """Switch to the model ``name`` (False if it is not installed)."""
        index = self.model.findData(name)
        if index < 0:
            self._fill_models(latent_models(), name)
            index = self.model.findData(name)
        if index < 0:
            return False
        self.model.setCurrentIndex(index)
        if name != self.state.model:
            self._model_chosen()
        return True

    def _model_chosen(self) -> None:
        """The picker's model: a new latent space, its info and a grid of it."""
        name = self.model.currentData()
        if not name:
            return
        for job in self._jobs:
            job.cancel()
        self.state.set_model(name)
        self._request_info()
        self.sample_grid(self.seed.value())

    def _show_new_model(self, name: str) -> None:
        """Everything the panel showed belonged to the old latent space."""
        for slot in self.slots.values():
            slot.clear()
        self._show_grid()
        self._show_walk_ends()
        self._show_walk()
        self.direction_sets.clear()
        self._show_result()
        self.sliders.set_directions([], [], "Loading the model's directions…")
        self.model_info.setText(f"Loading {name}… (the first time, its attribute directions "
                                "are computed: a few seconds)")
        self.show_message("")

    def _request_info(self) -> None:
        self._submit(LatentInfoSpec(model=self.state.model), self._info_done, self._info_failed)

    def _info_done(self, result: Result) -> None:
        unknown = self.state.set_info(result.info)
        if unknown:
            self.show_message("Not restored (this model has no such direction): "
                              + ", ".join(unknown))

    def _show_info(self) -> None:
        info = self.state.info or {}
        models = info.get("models", [])
        if any(m["name"] == self.state.model for m in models):  # else keep the picker as is
            self._fill_models(models, self.state.model)
        size, dim = info.get("size"), info.get("dim")
        self.model_info.setText(
            f"{str(info.get('family', '')).upper()}, {size}x{size} px, {dim} latent numbers, "
            + ("has an encoder" if info.get("has_encoder") else "no encoder (images are "
               "inverted)"))
        with QSignalBlocker(self.sliders):  # the state's amounts, not the old sliders', stay
            self.sliders.set_directions(list(info.get("directions", [])),
                                        list(info.get("user_directions", [])),
                                        "This model has no directions (they are computed for "
                                        "models of the faces world; make your own below).")
        self.sliders.set_amounts(self.state.amounts)

    def _info_failed(self, message: str | None) -> None:
        self.model_info.setText("")
        self.sliders.set_directions([], [], "No directions: the model did not load.")

    # ================================================================ picks and grid

    def sample_grid(self, seed: int | None = None) -> None:
        """Show a grid of prior samples (a new random seed when none is given)."""
        if not self.state.model:
            self.show_message("No latent model is chosen.")
            return
        if seed is None:
            seed = random.randint(0, MAX_SEED)
        self.seed.setValue(seed)
        spec = LatentSampleSpec(model=self.state.model,
                                **fields.spec_values(self, FIELDS, "latent_sample"))
        self._submit(spec, lambda r: self._grid_done(spec, r))

    def _truncation_changed(self) -> None:
        """A new variety <-> fidelity: the grid is drawn again with it and the result redone
        (a walk takes it when it is next made)."""
        if self.state.model:
            self.sample_grid(self.seed.value())
            self._request_edit()

    def _grid_done(self, spec: LatentSampleSpec, result: Result) -> None:
        self.state.set_grid([
            self.state.new_pick(z, image, f"seed {spec.seed} #{i + 1}")
            for i, (image, z) in enumerate(zip(result.images, result.info["latents"],
                                               strict=True))])

    def _show_grid(self) -> None:
        self.grid.clear()
        for pick in self.state.grid:
            self.grid.add_thumbnail(pick.image, pick.key, pick.label)

    def _grid_clicked(self, row: int) -> None:
        self.put(self.state.target, self.state.resolve([self.grid.key(row)]))

    def select_slot(self, name: str) -> None:
        """Grid clicks go into slot ``name`` from now on."""
        self.state.set_target(name)

    def _pick_menu(self, key: str, pos: QPoint) -> None:
        menu = self._pick_actions(self.state.resolve([key]))
        menu.exec(pos)

    def _pick_actions(self, picks: list[Pick]) -> QMenu:
        menu = QMenu(self)

        def add(text: str, fn: Callable[[], None]) -> None:
            act = QAction(text, menu)
            act.triggered.connect(fn)
            menu.addAction(act)

        for name in "ABC":
            add(f"Into slot {name}", lambda n=name: self.put(n, picks))
        menu.addSeparator()
        add("Add to 'these' (with the quality)",
            lambda: self.direction_sets.add("these", picks))
        add("Add to 'those' (without it)", lambda: self.direction_sets.add("those", picks))
        menu.addSeparator()
        add("Walk start", lambda: self.set_walk_end(0, picks[0]))
        add("Walk end", lambda: self.set_walk_end(1, picks[0]))
        return menu

    def _show_pick_image(self, key: str) -> None:
        """A pick's image arrived: wherever it is shown."""
        pick = self.state.picks[key]
        for name, slot in self.slots.items():
            slot.update_image(key, pick.image)
            if [p.key for p in self.state.slots[name]] == [key]:
                slot.set_mean_image(pick.image)
        if pick in self.state.walk_ends:
            self._show_walk_ends()

    # ================================================================ slots

    def put(self, name: str, picks: list[Pick]) -> None:
        if picks and self.state.put(name, picks) < len(picks):
            self.show_message(f"A slot averages at most {MAX_SLOT} faces.")

    def _slot_changed(self, name: str) -> None:
        """Show the slot's picks and their mean (decoded by a job when it averages several
        faces), and ask for the edit."""
        slot, picks = self.slots[name], self.state.slots[name]
        if slot.picks() != picks:
            slot.set_picks(picks)
        if len(picks) == 1:  # the face itself (or, restored, once it is decoded)
            slot.set_mean_image(picks[0].image)
        else:
            slot.set_mean_image(None)
            if picks:
                latents = self.state.latents(name)
                spec = LatentEditSpec(model=self.state.model, a=latents, upscale=False)

                def shown(r: Result) -> None:
                    if self.state.latents(name) == latents:  # not changed again meanwhile
                        slot.set_mean_image(r.images[0])

                self._submit(spec, shown)
        self._request_edit()

    def encode_files(self, name: str, paths: list[str]) -> None:
        """Encode dropped image files into slot ``name``. An Easel PNG of a latent edit of
        this model gives its exact latent instead of an encoding of its pixels."""
        for path in paths[:MAX_SLOT]:
            try:
                loaded = imageio.load_image(path)
                meta = imageio.read_metadata(path) if loaded.format == "PNG" else None
            except imageio.ImageError as exc:
                self.show_message(str(exc))
                continue
            spec = (meta or {}).get("spec")
            if isinstance(spec, dict) and spec.get("kind") == "latent_edit" \
                    and spec.get("model") == self.state.model:
                try:
                    exact = LatentEditSpec.from_dict(spec).replace(upscale=False)
                except JobError as exc:
                    self.show_message(f"{Path(path).name}: {exc}")
                    continue
                self._submit(exact, lambda r, n=name, p=path: self._exact_done(n, p, r))
                continue
            self.encode_into(name, loaded.rgb, (), Path(path).name)

    def _exact_done(self, name: str, path: str, result: Result) -> None:
        pick = self.state.new_pick(result.info["latent"], result.images[0],
                                   f"{Path(path).name} (its exact latent)")
        self.slots[name].set_status("exact latent from its metadata")
        self.put(name, [pick])

    def use_canvas_selection(self, name: str) -> None:
        """Encode the canvas selection's bounding box (the whole picture without one)."""
        doc = self.doc
        if doc is None or doc.is_empty():
            self.show_message("Open a picture first: the slot takes the selection of the "
                              "canvas, or the whole picture.")
            return
        crop: tuple[int, ...] = ()
        if not doc.mask_is_empty():
            ys, xs = np.nonzero(doc.mask_array() >= 128)
            if len(xs):
                crop = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        self.encode_into(name, doc.image_array(), crop, "canvas selection")

    def encode_into(self, name: str, rgb: np.ndarray, crop: tuple[int, ...], label: str) -> None:
        if not self.state.model:
            self.show_message("No latent model is chosen.")
            return
        slot = self.slots[name]
        try:
            spec = LatentEncodeSpec(model=self.state.model, image=ImageRef.of(rgb), crop=crop,
                                    **fields.spec_values(self, FIELDS, "latent_encode"))
        except JobError as exc:
            self.show_message(str(exc))
            return
        slot.set_status("Encoding…")

        def done(r: Result) -> None:
            how = ENCODED_BY.get(r.info["method"], f"by {r.info['method']}")
            pick = self.state.new_pick(r.info["latent"], r.images[0],
                                       f"{label} (encoded {how})")
            slot.set_source(rgb, tuple(r.info["crop"]))
            slot.set_status(f"Encoded {how}")
            if r.info.get("note"):  # far from the model's world: said, and encoded anyway
                slot.set_status(f"Encoded {how}; far from the model's world")
                self.show_message(r.info["note"])
            self.put(name, [pick])

        def failed(message: str | None) -> None:
            slot.set_status("" if message else "Cancelled.")

        def progress(step: int, total: int, message: str, preview: np.ndarray | None) -> None:
            slot.set_status(message or f"{step}/{total}")
            if preview is not None:
                slot.set_mean_image(preview)

        self._submit(spec, done, failed, progress)

    # ================================================================ the edit

    def current_spec(self, upscale: bool = True) -> LatentEditSpec:
        """The edit the panel shows; JobError (readable) when the slots do not make one."""
        s = self.state
        if not s.model:
            raise JobError("No latent model is installed or chosen.")
        a, b, c = (s.latents(n) for n in "ABC")
        if not a:
            raise JobError("Slot A is empty: click a face in the grid, drop an image on A, "
                           "or use the canvas selection.")
        if bool(b) != bool(c):
            raise JobError("Fill both B and C for A − B + C, or leave both empty to edit A "
                           "alone.")
        return LatentEditSpec(model=s.model, a=a, b=b, c=c, directions=s.edit_directions(),
                              upscale=upscale, **fields.spec_values(self, FIELDS, "latent_edit"))

    def build_spec(self, doc: Document) -> JobSpec:
        return self.current_spec()

    def _sliders_moved(self) -> None:
        if self.state.directions() is not None:  # else the sliders are not the model's yet
            self.state.set_amounts(dict(self.sliders.amounts()))
        self._request_edit()

    def _show_amounts(self) -> None:
        if self.state.directions() is not None \
                and dict(self.sliders.amounts()) != self.state.amounts:
            self.sliders.set_amounts(self.state.amounts)

    def _request_edit(self) -> None:
        """Ask for the result of the current state; coalesced to one edit job at a time."""
        try:
            spec = self.current_spec()
        except JobError as exc:
            self.state.clear_result(str(exc))
            return
        if self.state.want_edit(spec):
            self._submit(spec, lambda r: self._edit_done(spec, r),
                         lambda m: self._edit_done(spec, None, cancelled=m is None))

    def _edit_done(self, spec: LatentEditSpec, result: Result | None,
                   cancelled: bool = False) -> None:
        image, latent, note = None, (), ""
        if result is not None:
            image, latent, note = (result.images[0], result.info["latent"],
                                   result.info.get("note", ""))
        if self.state.edit_returned(spec, image, latent, note, cancelled):
            self._request_edit()

    def is_idle(self) -> bool:
        """No edit in flight and none wanted (tests wait for this)."""
        return self.state.is_idle()

    def _show_result(self) -> None:
        rgb, note = self.state.result_image, self.state.result_note
        if rgb is None:
            self.result_view.setPixmap(QPixmap())
            self.result_view.setText(note or "Put a face in slot A")
            self.note.clear()
        else:
            self.result_view.setPixmap(thumbnail_pixmap(rgb, RESULT))
            self.note.setText(note)
        self.send_button.setEnabled(rgb is not None)

    def reset_sliders(self) -> None:
        self.sliders.reset()

    def send_to_canvas(self) -> None:
        s = self.state
        if s.result_image is None or s.result_spec is None:
            self.show_message("There is no result yet: put a face in slot A.")
            return
        self.resultToCanvas.emit(s.result_image, s.result_spec.to_dict(), "Latent")

    def _result_menu(self, pos: QPoint) -> None:
        s = self.state
        if s.result_image is None:
            return
        pick = s.new_pick(s.result_latent, s.result_image, "result")
        menu = self._pick_actions([pick])
        menu.insertAction(menu.actions()[0], act := QAction("Send to canvas", menu))
        act.triggered.connect(self.send_to_canvas)
        menu.exec(self.result_view.mapToGlobal(pos))

    # ================================================================ walk

    def set_walk_end(self, which: int, pick: Pick) -> None:
        self.state.set_walk_end(which, pick)

    def _show_walk_ends(self) -> None:
        self.walk_box.show_ends(*(p.image if p else None for p in self.state.walk_ends))

    def walk(self) -> None:
        start, end = self.state.walk_ends
        if start is None or end is None:
            self.show_message("Set the walk's start and end first: right-click a face in the "
                              "grid (or the result) and choose Walk start / Walk end.")
            return
        spec = LatentWalkSpec(model=self.state.model, start=start.latent, end=end.latent,
                              **fields.spec_values(self, FIELDS, "latent_walk"))
        self._submit(spec, lambda r: self._walk_done(spec, r))

    def _walk_done(self, spec: LatentWalkSpec, result: Result) -> None:
        self.state.set_walk(spec, [
            self.state.new_pick(z, image, f"walk frame {i + 1}")
            for i, (image, z) in enumerate(zip(result.images, result.info["latents"],
                                               strict=True))])
        note = result.info.get("note")
        if note:
            self.show_message(note)

    def _show_walk(self) -> None:
        self.walk_box.strip.clear()
        for pick in self.state.walk:
            self.walk_box.strip.add_thumbnail(pick.image, pick.key, pick.label)

    def _walk_frame_clicked(self, row: int) -> None:
        self.put(self.state.target, self.state.resolve([self.walk_box.strip.key(row)]))

    def _export_dialog(self, fmt: str) -> None:
        if not self.state.walk:
            self.show_message("Make a walk first (Walk).")
            return
        start = str(Path.home() / f"walk.{fmt}")
        if fmt == "frames":
            folder = QFileDialog.getExistingDirectory(self, "Export frames to", str(Path.home()))
            if folder:
                self.export_frames(folder)
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", start,
                                              f"{fmt.upper()} (*.{fmt})")
        if path:
            self.export_animation(path, fmt)

    def export_animation(self, path: str, fmt: str) -> bool:
        """Write the walk as an animated GIF or WebP (looping); False with a message on error."""
        if not path.lower().endswith(f".{fmt}"):
            path += f".{fmt}"
        frames = self.state.walk_frames
        try:
            imageio.save_animation(path, frames, round(1000 / self.walk_box.fps.value()))
        except (OSError, imageio.ImageError) as exc:
            self.show_message(f"{Path(path).name} was not saved: {exc}")
            return False
        self.show_message(f"Saved {Path(path).name} ({len(frames)} frames).")
        return True

    def export_frames(self, folder: str) -> list[str]:
        """Write the walk as walk-001.png, ... with the walk's spec in each; returns the paths."""
        written = []
        frames = self.state.walk_frames
        spec = self.state.walk_spec.to_dict() if self.state.walk_spec else None
        try:
            for i, frame in enumerate(frames):
                path = str(Path(folder) / f"walk-{i + 1:03d}.png")
                imageio.save_png(path, frame, spec=spec,
                                 extra={"frame": i + 1, "frames": len(frames)})
                written.append(path)
        except (OSError, ValueError) as exc:
            self.show_message(f"Frames were not all saved: {exc}")
            return written
        self.show_message(f"Saved {len(written)} frames to {folder}.")
        return written

    # ================================================================ user directions

    def make_direction(self) -> None:
        sets = self.direction_sets
        name = sets.direction_name()
        these, those = sets.picks("these"), sets.picks("those")
        n, m = len(these), len(those)
        if not name:
            self.show_message("Name the direction first.")
            return
        if n < MIN_SET or m < MIN_SET:
            self.show_message(f"A direction needs at least {MIN_SET} faces on each side (you "
                              f"have {n} and {m}); right-click faces in the grid to add them.")
            return
        try:
            spec = LatentDirectionSpec(
                model=self.state.model, name=name, method=self.method.currentData(),
                these=tuple(p.latent for p in these), those=tuple(p.latent for p in those))
        except JobError as exc:
            self.show_message(str(exc))
            return

        def done(r: Result) -> None:
            self.show_message(f"Saved the direction {r.info['direction']!r}: its slider is "
                              "under 'Your directions'.")
            self._request_info()

        self._submit(spec, done)

    # ================================================================ Panel API

    def restore(self, spec: dict[str, Any]) -> list[str]:
        kind = spec.get("kind")
        if kind not in ("latent_edit", "latent_walk", "latent_sample"):
            return [f"A {kind} job has nothing the Latent panel can show."]
        model = spec.get("model")
        self._started = True  # the restored model, not the default one, is wanted
        if not isinstance(model, str) or not self.set_model(model):
            return [(f"The model {model!r} is not installed here, so its latents cannot "
                     "be shown.")]
        try:
            cls = {"latent_edit": LatentEditSpec, "latent_walk": LatentWalkSpec,
                   "latent_sample": LatentSampleSpec}[kind]
            parsed = cls.from_dict(spec)
        except JobError as exc:
            return [str(exc)]
        truncation = self.truncation.value()
        # the edit (or grid, or walk) is asked for once the whole spec is back
        with QSignalBlocker(self.method), QSignalBlocker(self.truncation):
            problems = fields.restore(self, FIELDS, spec)
        if isinstance(parsed, LatentSampleSpec) or self.truncation.value() != truncation:
            self.sample_grid(self.seed.value())  # the restored seed or truncation's grid
        if isinstance(parsed, LatentWalkSpec):
            ends = [self.state.new_pick(z, None, f"walk {w}")
                    for z, w in ((parsed.start, "start"), (parsed.end, "end"))]
            for which, pick in enumerate(ends):
                self.state.set_walk_end(which, pick)
                self._decode(pick)
            self.walk()
        elif isinstance(parsed, LatentEditSpec):
            problems += self._restore_edit(parsed)
        return problems

    def _restore_edit(self, spec: LatentEditSpec) -> list[str]:
        problems = []
        for name in "ABC":
            picks = [self.state.new_pick(z, None, f"restored {name}{i + 1}")
                     for i, z in enumerate(getattr(spec, name.lower()))]
            for pick in picks:
                self._decode(pick)
            self.slots[name].clear()
            self.state.set_slot(name, picks)
        amounts = {}
        for name, value in spec.directions:
            if abs(value) > LIMIT:
                problems.append(f"{name} {value:+.2f} is beyond the sliders' ±{LIMIT:g}; set "
                                f"to {max(-LIMIT, min(LIMIT, value)):+.2f}.")
                value = max(-LIMIT, min(LIMIT, value))
            amounts[name] = value
        # Until the model's directions arrive the amounts wait in the state.
        unknown = self.state.set_amounts(amounts)
        return problems + [f"This model has no direction {n!r}." for n in unknown]

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("latent")
        if self.state.model:
            settings.setValue("model", self.state.model)
        fields.save(self, FIELDS, settings)
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("latent")
        model = settings.value("model")
        if model:
            # Chosen when the panel is first shown (listing models is deferred until then).
            self.model.addItem(str(model), str(model))
        fields.load(self, FIELDS, settings)
        settings.endGroup()


def _group(title: str, *items: QWidget | QHBoxLayout | QVBoxLayout | QFormLayout) -> QGroupBox:
    box = QGroupBox(title)
    lay = QVBoxLayout(box)
    for item in items:
        if isinstance(item, QWidget):
            lay.addWidget(item)
        else:
            lay.addLayout(item)
    return box
