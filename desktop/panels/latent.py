"""The Latent panel: pick faces from a seeded grid, compose A - B + C, push the result along
attribute directions with sliders, walk between two picks, and make directions of your own.

Every model call is a job (core/pipelines/latent.py) the panel runs with ``run_job``; its
result comes back through the job's handle. The live result is coalesced:
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
from PySide6.QtCore import QPoint, QSettings, Qt
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
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core import imageio
from core.algorithms.directions import METHODS, MIN_SET
from core.jobs import MAX_SEED, ImageRef, JobError, JobSpec, Result
from core.pipelines.latent import installed_models
from core.specs.latent import (
    DEFAULT_MODEL,
    MAX_COUNT,
    MAX_FRAMES,
    MAX_INVERSION_STEPS,
    MAX_SLOT,
    LatentDirectionSpec,
    LatentEditSpec,
    LatentEncodeSpec,
    LatentInfoSpec,
    LatentSampleSpec,
    LatentWalkSpec,
)
from desktop.canvas import Document
from desktop.inference import JobHandle
from desktop.panels.base import Panel, message_label, refresh_button
from desktop.widgets.direction_sets import DirectionSets
from desktop.widgets.direction_sliders import LIMIT, DirectionSliders
from desktop.widgets.latent_slot import LatentSlot, Pick
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


class LatentPanel(Panel):
    name = "latent"
    title = "Latent"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._picks: dict[str, Pick] = {}
        self._next_key = 0
        self._jobs: list[JobHandle] = []  # the panel's jobs still running
        # Bumped on a model change: answers to jobs of the previous model are dropped.
        self._generation = 0
        self._model = ""  # the model everything in the panel belongs to
        self.info: dict[str, Any] | None = None  # the latent_info answer for self._model
        self._started = False
        self._pending_amounts: dict[str, float] | None = None  # restored, awaiting the sliders
        self._edit_in_flight: LatentEditSpec | None = None
        self._edit_again = False
        self.result_image: np.ndarray | None = None
        self.result_latent: tuple[float, ...] = ()
        self.result_spec: LatentEditSpec | None = None
        self.walk_frames: list[np.ndarray] = []
        self.walk_spec: LatentWalkSpec | None = None
        self._walk_ends: list[Pick | None] = [None, None]
        self._build()

    # ================================================================ layout

    def _build(self) -> None:
        self.model = QComboBox()
        self.model.setToolTip("The VAE or GAN whose latent space you explore: shipped models "
                              "and the ones you trained")
        self.model.activated.connect(lambda _: self._model_chosen())
        refresh = refresh_button(self.refresh_models)
        self.model_info = QLabel()
        self.message = message_label()

        # ---- samples
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setValue(1)
        self.seed.setToolTip("The grid's seed: the same seed shows the same faces")
        self.seed.editingFinished.connect(lambda: self.sample_grid(self.seed.value()))
        self.count = QSpinBox()
        self.count.setRange(1, MAX_COUNT)
        self.count.setValue(16)
        self.count.setToolTip("Faces per grid")
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
        grid_row.addWidget(self.seed, 1)
        grid_row.addWidget(QLabel("Count"))
        grid_row.addWidget(self.count)
        grid_row.addWidget(new_grid)
        samples = _group("Samples", grid_row, self.grid)

        # ---- slots
        self.slots = {name: LatentSlot(f"&{name}", SLOT_TIPS[name]) for name in "ABC"}
        slot_row = QHBoxLayout()
        for name, slot in self.slots.items():
            slot.name = name
            slot.selected.connect(lambda n=name: self.select_slot(n))
            slot.picksDropped.connect(lambda keys, n=name: self.put(n, self._resolve(keys)))
            slot.filesDropped.connect(lambda paths, n=name: self.encode_files(n, paths))
            slot.canvasRequested.connect(lambda n=name: self.use_canvas_selection(n))
            slot.membersChanged.connect(lambda n=name: self._slot_changed(n))
            slot_row.addWidget(slot)
        self.select_slot("A")
        self.encode_method = QComboBox()
        self.encode_method.addItem("Auto (encoder if the model has one)", "auto")
        self.encode_method.addItem("Inversion (slower, often closer)", "inversion")
        self.encode_method.setToolTip("How a dropped image becomes a latent. GANs have no "
                                      "encoder and always use inversion.")
        self.steps = QSpinBox()
        self.steps.setRange(10, MAX_INVERSION_STEPS)
        self.steps.setValue(300)
        self.steps.setToolTip("Optimisation steps of an inversion")
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
        self.sliders.changed.connect(self._request_edit)
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
        generation = self._generation

        last_step = (0, 0, "")  # previews arrive apart from the step they belong to

        def answer(fn: Callable[..., None] | None, *args: Any, end: bool = False) -> None:
            if end:
                self._jobs.remove(job)
            if fn is not None and generation == self._generation:
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
        wanted = self.model.currentData() or self._model or DEFAULT_MODEL
        found = self._fill_models(installed_models(), wanted)
        if not self.model.count():
            self.show_message("No latent model is installed. Train one in the Train panel "
                              "(or `easel train vae_faces`); it then appears here.")
            return
        if self.model.currentData() != self._model:
            self._model_chosen()
        if not found:
            self.show_message(f"The model {wanted!r} is not installed; showing "
                              f"{self._model!r}.")

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
        return self._model

    def set_model(self, name: str) -> bool:
        """Switch to the model ``name`` (False if it is not installed)."""
        index = self.model.findData(name)
        if index < 0:
            self._fill_models(installed_models(), name)
            index = self.model.findData(name)
        if index < 0:
            return False
        self.model.setCurrentIndex(index)
        if name != self._model:
            self._model_chosen()
        return True

    def _model_chosen(self) -> None:
        """A new model: everything picked so far belongs to the old latent space."""
        name = self.model.currentData()
        if not name:
            return
        self._generation += 1
        for job in self._jobs:
            job.cancel()
        self._model = name
        self.info = None
        self._edit_in_flight, self._edit_again = None, False
        self._picks.clear()
        self.grid.clear()
        for slot in self.slots.values():
            slot.clear()
        self._walk_ends = [None, None]
        self._show_walk_ends()
        self.walk_box.strip.clear()
        self.walk_frames, self.walk_spec = [], None
        self.direction_sets.clear()
        self._show_result(None)
        self.sliders.set_directions([], [], "Loading the model's directions…")
        self.model_info.setText(f"Loading {name}… (the first time, its attribute directions "
                                "are computed: a few seconds)")
        self.show_message("")
        self._request_info()
        self.sample_grid(self.seed.value())

    def _request_info(self) -> None:
        self._submit(LatentInfoSpec(model=self._model), self._info_done, self._info_failed)

    def _info_done(self, result: Result) -> None:
        info = result.info
        self.info = info
        models = info.get("models", [])
        if any(m["name"] == self._model for m in models):  # else keep the picker as it is
            self._fill_models(models, self._model)
        size, dim = info.get("size"), info.get("dim")
        self.model_info.setText(
            f"{str(info.get('family', '')).upper()}, {size}x{size} px, {dim} latent numbers, "
            + ("has an encoder" if info.get("has_encoder") else "no encoder (images are "
               "inverted)"))
        self.sliders.set_directions(list(info.get("directions", [])),
                                    list(info.get("user_directions", [])),
                                    "This model has no directions (they are computed for "
                                    "models of the faces world; make your own below).")
        if self._pending_amounts is not None:
            unknown = self.sliders.set_amounts(self._pending_amounts)
            self._pending_amounts = None
            if unknown:
                self.show_message("Not restored (this model has no such direction): "
                                  + ", ".join(unknown))

    def _info_failed(self, message: str | None) -> None:
        self.model_info.setText("")
        self.sliders.set_directions([], [], "No directions: the model did not load.")

    # ================================================================ picks and grid

    def _new_pick(self, latent: Any, image: np.ndarray | None, label: str) -> Pick:
        self._next_key += 1
        pick = Pick(f"p{self._next_key}", tuple(float(v) for v in latent), image, label)
        self._picks[pick.key] = pick
        return pick

    def _resolve(self, keys: list[str]) -> list[Pick]:
        return [self._picks[k] for k in keys if k in self._picks]

    def sample_grid(self, seed: int | None = None) -> None:
        """Show a grid of prior samples (a new random seed when none is given)."""
        if not self._model:
            self.show_message("No latent model is chosen.")
            return
        if seed is None:
            seed = random.randint(0, MAX_SEED)
        self.seed.setValue(seed)
        spec = LatentSampleSpec(model=self._model, seed=seed, count=self.count.value())
        self._submit(spec, lambda r: self._grid_done(spec, r))

    def _grid_done(self, spec: LatentSampleSpec, result: Result) -> None:
        self.grid.clear()
        for i, (image, z) in enumerate(zip(result.images, result.info["latents"], strict=True)):
            pick = self._new_pick(z, image, f"seed {spec.seed} #{i + 1}")
            self.grid.add_thumbnail(image, pick.key, pick.label)

    def _grid_clicked(self, row: int) -> None:
        self.put(self.target, self._resolve([self.grid.key(row)]))

    def select_slot(self, name: str) -> None:
        """Grid clicks go into slot ``name`` from now on."""
        self.target = name
        self.slots[name].title.setChecked(True)

    def _pick_menu(self, key: str, pos: QPoint) -> None:
        menu = self._pick_actions(self._resolve([key]))
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

    # ================================================================ slots

    def put(self, name: str, picks: list[Pick]) -> None:
        if not picks:
            return
        slot = self.slots[name]
        if slot.add(picks, MAX_SLOT) < len(picks):
            self.show_message(f"A slot averages at most {MAX_SLOT} faces.")
        self._slot_changed(name)

    def _slot_changed(self, name: str) -> None:
        """Show the slot's mean (decoded by a job when it averages several faces)."""
        slot = self.slots[name]
        picks = slot.picks()
        if len(picks) == 1:  # the face itself (or, restored, once _decode_into drew it)
            slot.set_mean_image(picks[0].image)
        else:
            slot.set_mean_image(None)
            if picks:
                latents = slot.latents()
                spec = LatentEditSpec(model=self._model, a=latents, upscale=False)

                def shown(r: Result) -> None:
                    if slot.latents() == latents:  # not changed again meanwhile
                        slot.set_mean_image(r.images[0])

                self._submit(spec, shown)
        self._request_edit()

    def _decode_into(self, picks: list[Pick]) -> None:
        """Decode picks that have no image yet (restored from a spec) for their thumbnails."""
        for pick in picks:
            if pick.image is not None:
                continue

            def shown(r: Result, p: Pick = pick) -> None:
                p.image = r.images[0]
                for slot in self.slots.values():
                    slot.update_image(p.key, p.image)
                    if [q.key for q in slot.picks()] == [p.key]:
                        slot.set_mean_image(p.image)

            self._submit(LatentEditSpec(model=self._model, a=(pick.latent,), upscale=False),
                         shown)

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
                    and spec.get("model") == self._model:
                try:
                    exact = LatentEditSpec.from_dict(spec).replace(upscale=False)
                except JobError as exc:
                    self.show_message(f"{Path(path).name}: {exc}")
                    continue
                self._submit(exact, lambda r, n=name, p=path: self._exact_done(n, p, r))
                continue
            self.encode_into(name, loaded.rgb, (), Path(path).name)

    def _exact_done(self, name: str, path: str, result: Result) -> None:
        pick = self._new_pick(result.info["latent"], result.images[0],
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
        if not self._model:
            self.show_message("No latent model is chosen.")
            return
        slot = self.slots[name]
        try:
            spec = LatentEncodeSpec(model=self._model, image=ImageRef.of(rgb), crop=crop,
                                    method=self.encode_method.currentData(),
                                    steps=self.steps.value())
        except JobError as exc:
            self.show_message(str(exc))
            return
        slot.set_status("Encoding…")

        def done(r: Result) -> None:
            how = ENCODED_BY.get(r.info["method"], f"by {r.info['method']}")
            pick = self._new_pick(r.info["latent"], r.images[0], f"{label} (encoded {how})")
            slot.set_source(rgb, tuple(r.info["crop"]))
            slot.set_status(f"Encoded {how}")
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
        if not self._model:
            raise JobError("No latent model is installed or chosen.")
        a, b, c = (self.slots[n].latents() for n in "ABC")
        if not a:
            raise JobError("Slot A is empty: click a face in the grid, drop an image on A, "
                           "or use the canvas selection.")
        if bool(b) != bool(c):
            raise JobError("Fill both B and C for A − B + C, or leave both empty to edit A "
                           "alone.")
        return LatentEditSpec(model=self._model, a=a, b=b, c=c,
                              directions=self.sliders.amounts(),
                              method=self.method.currentData(), upscale=upscale)

    def build_spec(self, doc: Document) -> JobSpec:
        return self.current_spec()

    def _request_edit(self) -> None:
        """Ask for the result of the current state; coalesced to one edit job at a time."""
        try:
            spec = self.current_spec()
        except JobError as exc:
            self._show_result(None, str(exc))
            return
        if self._edit_in_flight is not None:
            self._edit_again = True
            return
        if spec == self.result_spec:
            return
        self._edit_in_flight = spec
        self._submit(spec, lambda r: self._edit_done(spec, r),
                     lambda m: self._edit_done(spec, None, cancelled=m is None))

    def _edit_done(self, spec: LatentEditSpec, result: Result | None,
                   cancelled: bool = False) -> None:
        if spec is not self._edit_in_flight:
            return
        self._edit_in_flight = None
        if cancelled:  # the user stopped the work (Esc): wait for the next change
            self._edit_again = False
        if result is not None:
            self.result_spec = spec
            self.result_latent = tuple(result.info["latent"])
            self._show_result(result.images[0], result.info.get("note", ""))
        if self._edit_again:
            self._edit_again = False
            self._request_edit()

    def is_idle(self) -> bool:
        """No edit in flight and none wanted (tests wait for this)."""
        return self._edit_in_flight is None and not self._edit_again

    def _show_result(self, rgb: np.ndarray | None, note: str = "") -> None:
        self.result_image = rgb
        if rgb is None:
            self.result_spec, self.result_latent = None, ()
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
        if self.result_image is None or self.result_spec is None:
            self.show_message("There is no result yet: put a face in slot A.")
            return
        self.resultToCanvas.emit(self.result_image, self.result_spec.to_dict(), "Latent")

    def _result_menu(self, pos: QPoint) -> None:
        if self.result_image is None:
            return
        pick = self._new_pick(self.result_latent, self.result_image, "result")
        menu = self._pick_actions([pick])
        menu.insertAction(menu.actions()[0], act := QAction("Send to canvas", menu))
        act.triggered.connect(self.send_to_canvas)
        menu.exec(self.result_view.mapToGlobal(pos))

    # ================================================================ walk

    def set_walk_end(self, which: int, pick: Pick) -> None:
        self._walk_ends[which] = pick
        self._show_walk_ends()

    def _show_walk_ends(self) -> None:
        self.walk_box.show_ends(*(p.image if p else None for p in self._walk_ends))

    def walk(self) -> None:
        start, end = self._walk_ends
        if start is None or end is None:
            self.show_message("Set the walk's start and end first: right-click a face in the "
                              "grid (or the result) and choose Walk start / Walk end.")
            return
        box = self.walk_box
        spec = LatentWalkSpec(model=self._model, start=start.latent, end=end.latent,
                              frames=box.frames.value(), mode=box.mode.currentData(),
                              upscale=box.upscale.isChecked())
        self._submit(spec, lambda r: self._walk_done(spec, r))

    def _walk_done(self, spec: LatentWalkSpec, result: Result) -> None:
        self.walk_spec, self.walk_frames = spec, list(result.images)
        self.walk_box.strip.clear()
        for i, (image, z) in enumerate(zip(result.images, result.info["latents"], strict=True)):
            pick = self._new_pick(z, image, f"walk frame {i + 1}")
            self.walk_box.strip.add_thumbnail(image, pick.key, pick.label)
        note = result.info.get("note")
        if note:
            self.show_message(note)

    def _walk_frame_clicked(self, row: int) -> None:
        self.put(self.target, self._resolve([self.walk_box.strip.key(row)]))

    def _export_dialog(self, fmt: str) -> None:
        if not self.walk_frames:
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
        try:
            imageio.save_animation(path, self.walk_frames,
                                   round(1000 / self.walk_box.fps.value()))
        except (OSError, imageio.ImageError) as exc:
            self.show_message(f"{Path(path).name} was not saved: {exc}")
            return False
        self.show_message(f"Saved {Path(path).name} ({len(self.walk_frames)} frames).")
        return True

    def export_frames(self, folder: str) -> list[str]:
        """Write the walk as walk-001.png, ... with the walk's spec in each; returns the paths."""
        written = []
        spec = self.walk_spec.to_dict() if self.walk_spec else None
        try:
            for i, frame in enumerate(self.walk_frames):
                path = str(Path(folder) / f"walk-{i + 1:03d}.png")
                imageio.save_png(path, frame, spec=spec,
                                 extra={"frame": i + 1, "frames": len(self.walk_frames)})
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
                model=self._model, name=name, method=self.method.currentData(),
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
        if isinstance(parsed, LatentSampleSpec):
            self.count.setValue(parsed.count)
            self.seed.setValue(parsed.seed)
            self.sample_grid(parsed.seed)
            return []
        if isinstance(parsed, LatentWalkSpec):
            ends = [self._new_pick(z, None, f"walk {w}")
                    for z, w in ((parsed.start, "start"), (parsed.end, "end"))]
            self._walk_ends = ends
            box = self.walk_box
            box.frames.setValue(parsed.frames)
            box.mode.setCurrentIndex(max(0, box.mode.findData(parsed.mode)))
            box.upscale.setChecked(parsed.upscale)
            self._decode_walk_ends()
            self.walk()
            return []
        return self._restore_edit(parsed)

    def _restore_edit(self, spec: LatentEditSpec) -> list[str]:
        problems = []
        self.method.blockSignals(True)
        self.method.setCurrentIndex(max(0, self.method.findData(spec.method)))
        self.method.blockSignals(False)
        for name in "ABC":
            latents = getattr(spec, name.lower())
            picks = [self._new_pick(z, None, f"restored {name}{i + 1}")
                     for i, z in enumerate(latents)]
            self.slots[name].clear()
            self.slots[name].add(picks, MAX_SLOT)
            self._decode_into(picks)
            self._slot_changed(name)
        amounts = {}
        for name, value in spec.directions:
            if abs(value) > LIMIT:
                problems.append(f"{name} {value:+.2f} is beyond the sliders' ±{LIMIT:g}; set "
                                f"to {max(-LIMIT, min(LIMIT, value)):+.2f}.")
                value = max(-LIMIT, min(LIMIT, value))
            amounts[name] = value
        if self.info is not None:
            unknown = self.sliders.set_amounts(amounts)
            problems += [f"This model has no direction {n!r}." for n in unknown]
        else:
            self._pending_amounts = amounts  # applied when the model's directions arrive
        return problems

    def _decode_walk_ends(self) -> None:
        for pick in self._walk_ends:
            if pick is None:
                continue

            def shown(r: Result, p: Pick = pick) -> None:
                p.image = r.images[0]
                self._show_walk_ends()

            self._submit(LatentEditSpec(model=self._model, a=(pick.latent,), upscale=False),
                         shown)

    def save_settings(self, settings: QSettings) -> None:
        settings.beginGroup("latent")
        if self._model:
            settings.setValue("model", self._model)
        for key, box in self._spins().items():
            settings.setValue(key, box.value())
        for key, combo in self._combos().items():
            settings.setValue(key, combo.currentData())
        settings.setValue("walk_upscale", self.walk_box.upscale.isChecked())
        settings.endGroup()

    def load_settings(self, settings: QSettings) -> None:
        settings.beginGroup("latent")
        model = settings.value("model")
        if model:
            # Chosen when the panel is first shown (listing models is deferred until then).
            self.model.addItem(str(model), str(model))
        for key, box in self._spins().items():
            value = settings.value(key)
            if value is not None:
                box.setValue(int(value))
        for key, combo in self._combos().items():
            combo.setCurrentIndex(max(0, combo.findData(settings.value(key))))
        self.walk_box.upscale.setChecked(str(settings.value("walk_upscale", "false")).lower()
                                     in ("true", "1"))
        settings.endGroup()

    def _spins(self) -> dict[str, QSpinBox]:
        return {"seed": self.seed, "count": self.count, "steps": self.steps,
                "frames": self.walk_box.frames, "fps": self.walk_box.fps}

    def _combos(self) -> dict[str, QComboBox]:
        return {"method": self.method, "encode_method": self.encode_method,
                "walk_mode": self.walk_box.mode}


def _group(title: str, *items: QWidget | QHBoxLayout | QVBoxLayout | QFormLayout) -> QGroupBox:
    box = QGroupBox(title)
    lay = QVBoxLayout(box)
    for item in items:
        if isinstance(item, QWidget):
            lay.addWidget(item)
        else:
            lay.addLayout(item)
    return box
