"""The main window: canvas in the middle, tools on the left, panels on the right, results below.

It owns one Document, one InferenceService and the panels. Panels build job specs; the window
submits them, shows progress in the status bar, and adds finished results to the document's
result strip. Every edit of the document is an undoable command (desktop/canvas).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QUndoGroup,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core import imageio
from core.device import DeviceError, choose, device_name
from core.document import LAYERED_SUFFIXES, LayerStack, write_layered
from core.document.files import LAYERED_FILTER
from core.jobs import JobError, JobSpec, Result, check_spec, spec_class
from core.specs.scene import picture_spec
from core.specs.upscale import TILE
from desktop.autosave import Autosave
from desktop.background import BackgroundReader
from desktop.canvas import (
    CanvasScene,
    CanvasView,
    Document,
    DocumentError,
    array_from_qimage,
    dropped,
    qimage_from_array,
)
from desktop.inference import InferenceService, JobHandle
from desktop.panels.base import Panel
from desktop.panels.inpaint import InpaintPanel
from desktop.panels.judge import JudgePanel
from desktop.panels.latent import LatentPanel
from desktop.panels.scene import ScenePanel
from desktop.panels.style import StylePanel
from desktop.panels.train import TrainPanel
from desktop.settings import app_settings
from desktop.widgets.batch_inpaint_dialog import BatchInpaintDialog
from desktop.widgets.layers_dock import LayersDock
from desktop.widgets.progress import JobProgress
from desktop.widgets.result_strip import ResultStrip
from desktop.widgets.upscale_dialog import ask_upscaler

log = logging.getLogger("easel.window")

DOC_FILTER = "Easel documents (*.easel)"
LAYERED_SAVE_FILTERS = {"OpenRaster (*.ora)": ".ora", "Photoshop (*.psd)": ".psd"}
FIRST_SIZE = (1200, 800)  # the first window's size, on a screen with room for it
CANVAS_SHARE = 0.6  # at least, of the first window's width; the docks share the rest
# The Settings > Device menu: the device setting's values and their entries.
DEVICE_CHOICES = {"auto": "Automatic (best available)", "cuda": "CUDA GPU", "mps": "Apple MPS",
                  "cpu": "CPU"}
TOOLS = [("brush", "Brush", "B"), ("eraser", "Eraser", "E"), ("rect", "Rectangle", "R"),
         ("lasso", "Lasso", "L"), ("move", "Pan", "H")]


def make_panels() -> list[Panel]:
    return [
        InpaintPanel(),
        LatentPanel(),
        ScenePanel(),
        StylePanel(),
        JudgePanel(),
        TrainPanel(),
    ]


class MainWindow(QMainWindow):
    def __init__(self, service: InferenceService | None = None,
                 settings: QSettings | None = None, autosave: Autosave | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Easel")
        self.setAcceptDrops(True)
        self.settings = settings or app_settings()
        self.service = service or InferenceService(
            device=str(self.settings.value("device", "")) or None)
        self.autosave = autosave or Autosave()
        self.ask = _ask_user  # tests replace this to answer dialogs
        self.inform = _inform_user
        self.ask_upscaler = lambda *args: ask_upscaler(self, *args)
        self._job: JobHandle | None = None  # the main job: its results go to the strip
        self._job_panel: Panel | None = None
        # The panels' own jobs (Panel.run_job) and whether each shows in the status bar.
        self._panel_jobs: dict[JobHandle, bool] = {}
        self._closing = False
        # Layered exports are written off the GUI thread, one at a time (a 2048 px .psd takes
        # seconds); the names of those started and not yet written, oldest first.
        self._exports = BackgroundReader(self)
        self._exporting: list[str] = []
        # A close asked for while an export is written: the document and undo index its
        # questions were answered for, so the close that follows the export does not ask again.
        self._close_after_export: tuple[Document, int] | None = None
        # The devices (name: description, best first) the worker found, or, until it has (it
        # imports torch to, at the first job), the ones it found in an earlier session.
        self._devices = self._remembered_devices()
        self._devices_found = False
        self.service.devicesFound.connect(self._found_devices)

        self.undo_group = QUndoGroup(self)
        self.doc = Document()
        self.scene = CanvasScene()
        self.view = CanvasView(self.scene)
        self.setCentralWidget(self.view)
        self.view.filesDropped.connect(self.open_paths)

        self.panels = make_panels()
        self.panel_tabs = QTabWidget()
        for panel in self.panels:
            self.panel_tabs.addTab(panel, panel.title)
            panel.runRequested.connect(self.run_current_panel)
            panel.set_job_runner(lambda spec, p=panel: self.submit_panel_job(p, spec))
            panel.resultToCanvas.connect(self.send_to_canvas)
            panel.pictureEdited.connect(self.replace_picture)
            if hasattr(panel, "showOriginal"):
                panel.showOriginal.connect(self.show_original)
        for box in self.panel_tabs.findChildren(QComboBox):
            # Long entries (model names) must not widen the dock: the list shows them whole.
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(8)
        self.train_panel = next(p for p in self.panels if isinstance(p, TrainPanel))
        self.inpaint_panel = next(p for p in self.panels if isinstance(p, InpaintPanel))
        self.inpaint_panel.sourceChanged.connect(self.scene.set_source_area)
        self.batch_dialog: BatchInpaintDialog | None = None  # File > Batch inpaint, once opened
        self.train_panel.modelsChanged.connect(self.refresh_models)
        self.train_panel.useModel.connect(self.use_model)
        self.train_panel.set_devices(list(self._devices) or ["cpu"])
        # Scrolled, so that a panel taller or wider than a small screen never makes the window
        # too big for it, and the dock can stay narrow beside the canvas. Only the shown
        # panel's size counts (panels that scroll themselves then need no second scroll bar).
        self.panel_tabs.currentChanged.connect(self._size_to_current_panel)
        self.panel_tabs.currentChanged.connect(self._panel_shown)
        self._size_to_current_panel(self.panel_tabs.currentIndex())
        panels_scroll = QScrollArea()
        panels_scroll.setWidgetResizable(True)
        panels_scroll.setFrameShape(QFrame.Shape.NoFrame)
        panels_scroll.setWidget(self.panel_tabs)
        self.panels_dock = self._add_dock("Panels", panels_scroll,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.tools_dock = self._add_dock("Tools", self._build_tools(),
                                         Qt.DockWidgetArea.LeftDockWidgetArea)
        self.results = ResultStrip()
        self.results.compareRequested.connect(self.compare_result)
        self.results.applyRequested.connect(self.apply_result)
        self.results.saveRequested.connect(self.save_result)
        self.results.removeRequested.connect(lambda i: self.doc.remove_result(i))
        self.results_dock = self._add_dock("Results", self.results,
                                           Qt.DockWidgetArea.BottomDockWidgetArea)
        self.layers = LayersDock()
        self.layers.problem.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.layers_dock = self._add_dock("Layers", self.layers,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.panels_dock, self.layers_dock, Qt.Orientation.Vertical)

        self.job_progress = JobProgress()
        self.job_progress.cancelRequested.connect(self.cancel_job)
        self.device_label = QLabel()
        self.export_progress = JobProgress()  # busy while a layered export is written
        self.export_progress.cancel.hide()
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().addPermanentWidget(self.export_progress)
        self.statusBar().addPermanentWidget(self.device_label)
        self._build_menus()

        self._watch_document(self.doc)

        self._load_settings()
        self._update_title()
        self._update_device_label()
        self.statusBar().showMessage("Open an image: File > Open, drag it in, or paste.", 8000)
        left = self.train_panel.resume_left_runs()
        if left is not None:
            what = {"paused": "is paused", "killed": "stopped unexpectedly"}.get(
                left.state, "is still training")
            self.statusBar().showMessage(f"The training run {left.name} {what}: see the Train "
                                         "panel.", 15000)

    # ---------------------------------------------------------------- building

    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _size_to_current_panel(self, index: int) -> None:
        for i in range(self.panel_tabs.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.panel_tabs.widget(i).setSizePolicy(policy, policy)
        self.panel_tabs.updateGeometry()

    def _build_tools(self) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        self.tool_buttons = QButtonGroup(box)
        self.tool_actions = QActionGroup(self)
        for name, text, key in TOOLS:
            act = QAction(f"{text}", self, checkable=True, shortcut=QKeySequence(key))
            act.setToolTip(f"{text} ({key})")
            act.triggered.connect(lambda _=False, n=name: self.set_tool(n))
            self.tool_actions.addAction(act)
            act.setData(name)
            btn = QToolButton()
            btn.setDefaultAction(act)
            btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            btn.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            lay.addWidget(btn)
        self.tool_actions.actions()[0].setChecked(True)

        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 500)
        self.size_slider.setToolTip("Brush size ([ and ])")
        self.size_slider.valueChanged.connect(self.view.set_brush_size)
        self.hardness_slider = QSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setToolTip("Brush hardness")
        self.hardness_slider.valueChanged.connect(
            lambda v: self.view.set_brush_hardness(v / 100.0))
        self.size_label = QLabel()
        self.view.brushChanged.connect(self._brush_changed)
        lay.addSpacing(8)
        lay.addWidget(self.size_label)
        lay.addWidget(self.size_slider)
        lay.addWidget(QLabel("Hardness"))
        lay.addWidget(self.hardness_slider)
        lay.addStretch(1)
        self._brush_changed(self.view.brush_size, self.view.brush_hardness)
        return box

    def _build_menus(self) -> None:
        bar = self.menuBar()

        def action(menu, text, slot, shortcut=None, tip=""):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            if tip:
                act.setStatusTip(tip)
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        m = bar.addMenu("&File")
        action(m, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        action(m, "&Paste image", self.paste, QKeySequence.StandardKey.Paste)
        m.addSeparator()
        action(m, "&Save document", self.save_document, QKeySequence.StandardKey.Save)
        action(m, "Save document &as…", self.save_document_as, "Ctrl+Shift+S")
        action(m, "&Export PNG…", self.export_png, "Ctrl+E",
               "Save the picture as a PNG with the settings that made it")
        action(m, "Export &layered…", self.export_layered, "Ctrl+Shift+E",
               "Save the layers as OpenRaster (.ora: Krita, GIMP) or Photoshop (.psd)")
        action(m, "&Copy image", self.copy_image, "Ctrl+Shift+C")
        m.addSeparator()
        action(m, "&Batch inpaint…", self.batch_inpaint, None,
               "Fill every picture of a folder with its mask, with the Inpaint panel's "
               "settings, into another folder")
        m.addSeparator()
        action(m, "Show &log folder", self.show_log_folder)
        action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        m = bar.addMenu("&Edit")
        undo = self.undo_group.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_group.createRedoAction(self, "&Redo")
        # Both common redo keys on every platform. Not StandardKey.Redo: its first binding is
        # Ctrl+Y on some platforms and Ctrl+Shift+Z on others (X11, GNOME, KDE), so adding the
        # other key to it bound one key twice there, and Qt ignores an ambiguous shortcut.
        redo.setShortcuts([QKeySequence("Ctrl+Y"), QKeySequence("Ctrl+Shift+Z")])
        m.addAction(undo)
        m.addAction(redo)
        m.addSeparator()
        action(m, "&Clear mask", lambda: self.doc.clear_mask(), "Ctrl+D")
        action(m, "&Invert mask", lambda: self.doc.invert_mask(), "Ctrl+I")
        action(m, "Smaller brush", lambda: self.view.change_brush_size(-1), "[")
        action(m, "Larger brush", lambda: self.view.change_brush_size(+1), "]")

        m = bar.addMenu("&View")
        action(m, "Zoom &in", self.view.zoom_in, QKeySequence.StandardKey.ZoomIn)
        action(m, "Zoom &out", self.view.zoom_out, QKeySequence.StandardKey.ZoomOut)
        action(m, "&Fit", self.view.fit, "Ctrl+0")
        action(m, "&100%", self.view.zoom_100, "Ctrl+1")
        self.mask_action = action(m, "Show &mask", self.scene.set_mask_visible, "M")
        self.mask_action.setCheckable(True)
        self.mask_action.setChecked(True)
        self.mask_action.toggled.connect(self.layers.set_mask_visible)
        self.layers.maskVisibleChanged.connect(self._mask_row_toggled)
        m.addSeparator()
        m.addAction(self.layers_dock.toggleViewAction())

        m = bar.addMenu("&Layer")
        action(m, "&Flatten", self.flatten_layers, "Ctrl+Shift+F",
               "Merge the visible layers into the picture (hidden layers are dropped)")
        self.layers_setting = action(
            m, "Apply results as &layers", self.set_results_as_layers, None,
            "Applying a result adds it as a layer; off, it is painted into the picture")
        self.layers_setting.setCheckable(True)
        self.layers_setting.setChecked(self._results_as_layers())

        m = bar.addMenu("&Image")
        action(m, "&Upscale…", lambda: self.upscale_picture(), "Ctrl+Shift+U",
               "Upscale the picture with Easel's upscaler or one of yours (Real-ESRGAN, "
               "SPAN...); the result goes to the strip")

        m = bar.addMenu("&Run")
        action(m, "&Run panel", self.run_current_panel, "Ctrl+Return")
        action(m, "&Cancel job", self.cancel_job, "Esc")

        m = bar.addMenu("&Models")
        action(m, "&Manage models…", lambda: self.train_panel.manage_models(), "Ctrl+Shift+M",
               "Shipped and your own models: rename, delete, import, export, check")
        action(m, "&Train a model…", lambda: self.show_panel(self.train_panel))
        action(m, "&List models again", self.refresh_models)

        m = bar.addMenu("&Settings")
        devices = m.addMenu("&Device")
        devices.aboutToShow.connect(self._find_devices)
        self.device_actions = QActionGroup(self)
        current = str(self.settings.value("device", "")) or "auto"
        for key, text in DEVICE_CHOICES.items():
            act = QAction(text, self, checkable=True)
            act.setData(key)
            act.setChecked(key == current)
            act.triggered.connect(lambda _=False, k=key: self.set_device(k))
            self.device_actions.addAction(act)
            devices.addAction(act)
        self._enable_device_actions()

        m = bar.addMenu("&Help")
        action(m, "&About Easel", self.about)

    # ---------------------------------------------------------------- tools & view

    def set_tool(self, name: str) -> None:
        self.view.set_tool(name)
        for act in self.tool_actions.actions():
            act.setChecked(act.data() == name)

    def _brush_changed(self, size: int, hardness: float) -> None:
        self.size_label.setText(f"Brush size: {size} px")
        for slider, value in ((self.size_slider, size),
                              (self.hardness_slider, round(hardness * 100))):
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)

    # ---------------------------------------------------------------- opening

    def open_dialog(self) -> None:
        folder = str(self.settings.value("last_folder", str(Path.home())))
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open", folder,
            f"{imageio.IMAGE_FILE_FILTER};;{DOC_FILTER};;{LAYERED_FILTER}")
        if paths:
            self.settings.setValue("last_folder", str(Path(paths[0]).parent))
            self.open_paths(paths)

    def open_paths(self, paths: list[str]) -> None:
        """Open the first usable file: an image, an Easel PNG (restores its panel), .easel,
        or a layered .ora or .psd (its layers come in)."""
        if not paths:
            return
        path = paths[0]
        if Path(path).is_dir():
            self.open_folder(path)
            return
        if len(paths) > 1:
            self.statusBar().showMessage("Opened the first of the dropped files.", 5000)
        if not self._confirm_discard():
            return
        if path.lower().endswith((".easel", *LAYERED_SUFFIXES)):
            self.open_document(path)
        else:
            self.open_image(path)

    def open_folder(self, path: str) -> None:
        """A dropped folder is a training set: the Train panel reads it."""
        self.show_panel(self.train_panel)
        self.train_panel.set_folder(path)

    def show_panel(self, panel: Panel) -> None:
        self.panel_tabs.setCurrentIndex(self.panels.index(panel))
        self.panels_dock.show()
        self.panels_dock.raise_()

    def refresh_models(self) -> None:
        """Every panel lists its installed models again (a model was trained or changed)."""
        for panel in self.panels:
            refresh = getattr(panel, "refresh_models", None)
            if refresh is not None:
                refresh()

    def use_model(self, family: str, name: str) -> None:
        """Open a newly trained latent model in the Latent panel."""
        latent = next((p for p in self.panels if isinstance(p, LatentPanel)), None)
        if latent is None:
            return
        self.refresh_models()
        if latent.set_model(name):
            self.show_panel(latent)
        else:
            self.statusBar().showMessage(f"The Latent panel cannot open {family} {name}.", 8000)

    def open_image(self, path: str) -> bool:
        try:
            loaded = imageio.load_image(path)
            meta = imageio.read_metadata(path) if loaded.format == "PNG" else None
        except imageio.ImageError as exc:
            self.inform("Cannot open image", str(exc))
            return False
        rgba = loaded.rgb if loaded.alpha is None else loaded.rgba()
        self._set_picture(rgba, path)
        self.statusBar().showMessage(
            f"Opened {Path(path).name} ({loaded.size[0]}x{loaded.size[1]})", 5000)
        spec = picture_spec(meta) if meta else None
        if spec is not None:
            self.restore_spec(spec)
        return True

    def open_document(self, path: str) -> bool:
        try:
            doc = Document.load(path)
        except DocumentError as exc:
            self.inform("Cannot open document", str(exc))
            return False
        self._replace_document(doc)
        if doc.imported_from:
            self.statusBar().showMessage(
                f"Opened {Path(path).name} ({len(doc.layers)} layers); File > Save document "
                "keeps them as an .easel document.", 8000)
        if doc.notes:
            self.inform("Opened with changes", "\n".join(doc.notes))
        return True

    def paste(self) -> None:
        clip = QGuiApplication.clipboard()
        mime = clip.mimeData()
        if mime is not None and mime.hasUrls():
            files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if files:
                self.open_paths(files)
                return
        if mime is None or not mime.hasImage():
            self.statusBar().showMessage("The clipboard holds no image.", 5000)
            return
        self._set_pasted_picture(clip.image())

    def _set_picture(self, rgba: np.ndarray, path: str | None,
                     spec: dict[str, Any] | None = None) -> None:
        self._abandon_job()
        self.doc.set_image(rgba, source_path=path, spec=spec)
        self.view.fit()
        self._update_title()

    def _set_pasted_picture(self, image: QImage) -> None:
        """A picture from the clipboard or a drag: the same size limit as files."""
        if image.isNull():
            self.inform("Cannot paste", "The clipboard's image could not be read.")
            return
        limit = imageio.max_pixels_setting()
        if image.width() * image.height() > limit:
            self.inform("Cannot paste", f"The pasted image is {image.width()}x{image.height()} "
                        f"({image.width() * image.height() / 1e6:.1f} megapixels); the limit is "
                        f"{limit / 1e6:.0f} megapixels.")
            return
        if self._confirm_discard():
            self._set_picture(array_from_qimage(
                image.convertToFormat(QImage.Format.Format_RGBA8888)), None)

    def _replace_document(self, doc: Document) -> None:
        self._abandon_job()
        old = self.doc
        self._watch_document(doc)
        self.undo_group.removeStack(old.undo_stack)
        old.deleteLater()
        self.view.fit()
        self._update_title()

    def _watch_document(self, doc: Document) -> None:
        self.doc = doc
        doc.results_as_layers = self._results_as_layers()
        self.scene.set_document(doc)
        self.results.set_document(doc)
        self.layers.set_document(doc)
        self.autosave.attach(doc)
        for panel in self.panels:
            panel.set_document(doc)
        self.undo_group.addStack(doc.undo_stack)
        self.undo_group.setActiveStack(doc.undo_stack)
        doc.dirtyChanged.connect(self._update_title)

    def panel_for(self, spec: dict[str, Any]) -> Panel | None:
        """The panel that makes jobs of ``spec``'s kind (None for an unknown kind)."""
        cls = spec_class(spec.get("kind"))
        return next((p for p in self.panels if cls and p.name == cls.panel), None)

    def restore_spec(self, spec: dict[str, Any]) -> None:
        """Show the panel that made ``spec`` with its settings (a dropped Easel PNG)."""
        panel = self.panel_for(spec)
        if panel is None:
            return
        try:  # the whole dict, before a panel reads any of it (no file is read here)
            check_spec(spec)
        except JobError as exc:
            self.inform("Settings not restored", "The settings saved in this image cannot be "
                        f"used: {exc}")
            return
        self.panel_tabs.setCurrentWidget(panel)
        problems = panel.restore(spec)
        if problems:
            self.inform("Settings partly restored", "Some settings in this image are outside "
                        "what the panel allows and were adjusted:\n" + "\n".join(problems))
        self.statusBar().showMessage(
            f"Restored the {panel.title} settings saved in this image.", 8000)

    # ---------------------------------------------------------------- saving

    def save_document(self) -> bool:
        if self.doc.path:
            return self._write_document(self.doc.path)
        return self.save_document_as()

    def save_document_as(self) -> bool:
        start = self.doc.path or str(Path(str(self.settings.value("last_folder", Path.home())))
                                     / "untitled.easel")
        path, _ = QFileDialog.getSaveFileName(self, "Save document", start, DOC_FILTER)
        if not path:
            return False
        if not path.lower().endswith(".easel"):
            path += ".easel"  # the dialog's overwrite question did not cover this name
            if Path(path).exists() and self.ask(
                    "Replace?", f"{Path(path).name} exists. Replace it?",
                    ("Replace", "Cancel")) != "Replace":
                return False
        return self._write_document(path)

    def _write_document(self, path: str) -> bool:
        try:
            self.doc.save(path)
        except (OSError, DocumentError) as exc:
            self.inform("Cannot save document", f"{Path(path).name} was not saved: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {Path(path).name}", 5000)
        self._update_title()
        return True

    def export_png(self) -> None:
        if self.doc.is_empty():
            return
        stem = Path(self.doc.source_path or "untitled").stem
        folder = Path(str(self.settings.value("last_folder", Path.home())))
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG",
                                              str(folder / f"{stem}-easel.png"), "PNG (*.png)")
        if path:
            self.write_png(path, self.doc.image_array(), self.doc.alpha_array(),
                           self.doc.applied_spec())

    def export_layered(self) -> bool:
        """File > Export layered: the layers (and the mask, as a hidden layer) as .ora/.psd."""
        if self.doc.is_empty():
            return False
        stem = Path(self.doc.path or self.doc.imported_from or self.doc.source_path
                    or "untitled").stem
        folder = Path(str(self.settings.value("last_folder", Path.home())))
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export layered", str(folder / f"{stem}-layers.ora"),
            ";;".join(LAYERED_SAVE_FILTERS))
        if not path:
            return False
        if Path(path).suffix.lower() not in LAYERED_SUFFIXES:
            path += LAYERED_SAVE_FILTERS.get(chosen, ".ora")
        return self.write_layered(path)

    def write_layered(self, path: str) -> bool:
        """Start writing the layers to ``path`` (.ora/.psd) off the GUI thread; False when
        refused. The stack is copied now, so edits made meanwhile do not reach the file; the
        status bar is busy until it is written, and a failure is shown in a dialog."""
        if self.doc.imported_from and Path(path).resolve() == Path(
                self.doc.imported_from).resolve():
            self.inform("Not saved", "Easel never overwrites the file you opened; choose "
                        "another name.")
            return False
        stack = self.doc.snapshot().stack
        name = Path(path).name
        self._exporting.append(name)
        self.export_progress.begin(f"Exporting {self._exporting[0]}…")
        self._exports.read(lambda: _write_layered_file(path, stack),
                           lambda problem: self._exported(name, len(stack.layers), problem))
        return True

    def exporting(self) -> bool:
        """Whether a layered export is still being written."""
        return self._exports.busy()

    def finish_exports(self) -> None:
        """Block until every started export is written (the app quits without a close)."""
        if self.exporting():
            log.info("waiting for %d layered export(s) before quitting", len(self._exporting))
            self._exports.wait()

    def _exported(self, name: str, layers: int, problem: str | None) -> None:
        self._exporting.remove(name)
        if self._exporting:
            self.export_progress.begin(f"Exporting {self._exporting[0]}…")
        else:
            self.export_progress.end()
        if problem is not None:
            closing, self._close_after_export = self._close_after_export, None
            self.inform("Cannot export", f"{name} was not written: {problem}"
                        + ("\n\nEasel stays open: export again under another name."
                           if closing else ""))
            return
        self.statusBar().showMessage(f"Exported {name} ({layers} layers)", 5000)
        if self._close_after_export is not None and not self.exporting():
            self.close()

    def save_result(self, index: int) -> None:
        entry = self.doc.results[index]
        folder = Path(str(self.settings.value("last_folder", Path.home())))
        path, _ = QFileDialog.getSaveFileName(self, "Save result",
                                              str(folder / f"result-{index + 1}.png"),
                                              "PNG (*.png)")
        if not path:
            return
        rgb, alpha = entry.rgb, self.doc.alpha_array()
        if rgb.ndim == 3 and rgb.shape[2] == 4:
            rgb, alpha = rgb[..., :3], rgb[..., 3]
        elif alpha is not None and alpha.shape != rgb.shape[:2]:
            alpha = None  # a result of another size: the picture's alpha does not fit it
        self.write_png(path, rgb, alpha, entry.spec)

    def write_png(self, path: str, rgb: np.ndarray, alpha: np.ndarray | None,
                  spec: dict[str, Any] | None) -> bool:
        if not path.lower().endswith(".png"):
            path += ".png"
        if self.doc.source_path and Path(path).resolve() == Path(self.doc.source_path).resolve():
            self.inform("Not saved", "Easel never overwrites the image you opened; "
                        "choose another name.")
            return False
        try:
            # Inpainting edits the user's picture: the XMP says "composite with AI media".
            imageio.save_png(path, rgb, alpha, spec=spec, edited=True)
        except (OSError, ValueError, imageio.ImageError) as exc:
            self.inform("Cannot save PNG", f"{Path(path).name} was not saved: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {Path(path).name}", 5000)
        return True

    def copy_image(self) -> None:
        if not self.doc.is_empty():
            QGuiApplication.clipboard().setImage(qimage_from_array(self.doc.image_array()))
            self.statusBar().showMessage("Copied the picture to the clipboard.", 3000)

    # ---------------------------------------------------------------- jobs

    def current_panel(self) -> Panel:
        return self.panels[self.panel_tabs.currentIndex()]

    def run_current_panel(self) -> JobHandle | None:
        """Build the current panel's spec and submit it; returns its handle (None if refused)."""
        panel = self.current_panel()
        if panel.run_in_panel():
            return None
        if self._job is not None:
            self.statusBar().showMessage("A job is running: wait for it or cancel it (Esc).",
                                         5000)
            return None
        try:
            spec = panel.build_spec(self.doc)
        except JobError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            self.inform(panel.title, str(exc))
            return None
        self._job_panel = panel
        panel.set_busy(True)
        job = self._submit_main(spec, f"{panel.title}…")
        panel.watch_main_job(job)
        return job

    def _submit_main(self, spec: JobSpec, label: str) -> JobHandle:
        """Run the window's main job: progress in the status bar, results to the strip."""
        job = self._job = self.service.submit(spec)
        job.started.connect(lambda spec: log.info("job %d started: %s", job.id,
                                                  type(spec).__name__))
        job.progress.connect(self._while_main(job, self.job_progress.step))
        job.preview.connect(self._while_main(job, self.scene.set_compare_image))
        job.finished.connect(self._while_main(job, self._job_finished))
        job.failed.connect(self._while_main(job, lambda message, details: self._job_failed(
            job, message, details)))
        job.cancelled.connect(self._while_main(job, self._job_cancelled))
        self.job_progress.begin(label)
        return job

    def _while_main(self, job: JobHandle, slot: Any) -> Any:
        """``slot``, called only while ``job`` is still the main job (not one given up on
        because the picture changed)."""
        return lambda *args: slot(*args) if job is self._job else None

    def cancel_job(self) -> None:
        """Cancel (Esc): the main job, or when none runs, the panels' own jobs."""
        if self._job is not None:
            self._job.cancel()
            self.job_progress.cancelling()
        elif self._panel_jobs:
            for job in list(self._panel_jobs):
                job.cancel()
            self.job_progress.cancelling()

    def submit_panel_job(self, panel: Panel, spec: JobSpec) -> JobHandle | None:
        """Run a job a panel asked for itself (``Panel.run_job``); the panel connects to the
        handle. None once the window is closing (the service is shut down)."""
        if self._closing:
            return None
        job = self.service.submit(spec)
        self._panel_jobs[job] = False
        job.progress.connect(lambda *args: self._panel_job_progress(panel, job, *args))
        job.finished.connect(lambda result: self._panel_job_ended(job))
        job.cancelled.connect(lambda: self._panel_job_ended(job))
        job.failed.connect(lambda message, details: (
            log.warning("%s job %d failed: %s\n%s", panel.name, job.id, message, details),
            self._panel_job_ended(job)))
        return job

    def _panel_job_progress(self, panel: Panel, job: JobHandle, step: int, total: int,
                            message: str) -> None:
        # The main job keeps the status bar while it runs. One-step jobs (a live edit, a grid)
        # are done before a bar could be read: showing them would only make it flash while a
        # slider is dragged.
        if self._job is not None or total <= 1:
            return
        if not self._panel_jobs.get(job):
            self._panel_jobs[job] = True
            self.job_progress.begin(f"{panel.title}…")
        self.job_progress.step(step, total, message)

    def _panel_job_ended(self, job: JobHandle) -> None:
        shown = self._panel_jobs.pop(job, False)
        if self._job is None and shown and not any(self._panel_jobs.values()):
            self.job_progress.end()

    def _abandon_job(self) -> None:
        """The picture is being replaced: the running job's result would land on the wrong one."""
        if self._job is not None:
            self._job.cancel()
            self._job_done()

    def _job_finished(self, result: Result) -> None:
        self._job_done()
        spec = result.spec.to_dict()
        for image in result.images:
            if result.alpha is not None and result.alpha.shape == image.shape[:2]:
                image = np.dstack([image, result.alpha])  # e.g. an upscale's resized alpha
            self.doc.add_result(image, spec, f"{self._title_of(spec)} #{spec.get('seed', '')}")
        self.results.select_last()
        secs = result.info.get("seconds")
        notes = [str(n) for n in result.info.get("notes", [])]
        for note in notes:
            log.info("%s: %s", result.spec.kind, note)
        self.statusBar().showMessage(
            "Done" + (f" in {secs:.1f} s" if isinstance(secs, float) else "")
            + ": double-click the result to apply it (or press Enter)."
            + "".join(f" Note: {n}" for n in notes), 8000 + 4000 * len(notes))

    def _job_failed(self, job: JobHandle, message: str, details: str) -> None:
        self._job_done()
        log.warning("job %d failed: %s\n%s", job.id, message, details)
        self.inform("The job failed", message)

    def _job_cancelled(self) -> None:
        self._job_done()
        self.statusBar().showMessage("Cancelled.", 4000)

    def _job_done(self) -> None:
        self._job = None
        self.job_progress.end()
        self.scene.set_compare_image(None)
        if self._job_panel is not None:
            self._job_panel.set_busy(False)
            self._job_panel = None

    def _title_of(self, spec: dict[str, Any]) -> str:
        panel = self.panel_for(spec)
        return panel.title if panel else str(spec.get("kind", "Result")).title()

    def upscale_picture(self, model: str | None = None, tile: int = TILE
                        ) -> JobHandle | None:
        """Image > Upscale: the picture (with its alpha) through the upscaler the user chooses
        (``model`` in ``tile`` px tiles, else both asked, with the model's scale and the size it
        gives); the result lands in the strip, and applying it replaces the picture
        (undoable)."""
        from core.catalog import upscalers
        from core.jobs import ImageRef
        from core.specs.upscale import DEFAULT_MODEL, UpscaleSpec, validate

        if self.doc.is_empty():
            self.statusBar().showMessage("Open a picture to upscale first.", 5000)
            return None
        if self._job is not None:
            self.statusBar().showMessage("A job is running: wait for it or cancel it (Esc).",
                                         5000)
            return None
        rgb, alpha = self.doc.image_array(), self.doc.alpha_array()
        if model is None:
            models = upscalers()
            if not models:
                self._refuse_upscale("No upscaler is installed: train one (easel train "
                                     "upscale_faces) or import yours (Models > Manage models "
                                     "> Import).")
                return None
            h, w = rgb.shape[:2]
            chosen = self.ask_upscaler(
                models, w, h, str(self.settings.value("upscale/model", DEFAULT_MODEL)),
                int(self.settings.value("upscale/tile", TILE)))
            if chosen is None:
                return None
            model, tile = chosen
        pixels = rgb if alpha is None else np.dstack([rgb, alpha])
        spec = UpscaleSpec(image=ImageRef.of(pixels), model=model, tile=tile)
        try:
            card = validate(spec)[2]  # an unknown model, too large: say so now, not after
        except JobError as exc:
            self._refuse_upscale(str(exc))
            return None
        self.settings.setValue("upscale/model", model)
        self.settings.setValue("upscale/tile", tile)
        return self._submit_main(spec, f"Upscale x{card.config.get('scale', 4)} ({model})…")

    def batch_inpaint(self) -> BatchInpaintDialog:
        """File > Batch inpaint: the dialog (one, kept between openings) that fills a folder of
        pictures with the Inpaint panel's settings, one job of the service per picture."""
        if self.batch_dialog is None:
            self.batch_dialog = BatchInpaintDialog(
                self._submit_batch_job, self.inpaint_panel.fill_settings,
                self.inpaint_panel.describe_settings, self.settings, self)
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()
        return self.batch_dialog

    def _submit_batch_job(self, spec: JobSpec) -> JobHandle | None:
        return None if self._closing else self.service.submit(spec)

    def _refuse_upscale(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)
        self.inform("Upscale", text)

    # ---------------------------------------------------------------- results

    def compare_result(self, index: int) -> None:
        """Show result ``index`` over the picture (the mask overlay steps aside); -1: none."""
        comparing = 0 <= index < len(self.doc.results)
        self.scene.set_compare_image(self.doc.results[index].rgb if comparing else None)
        self.scene.set_mask_visible(self.mask_action.isChecked() and not comparing)

    def apply_result(self, index: int) -> None:
        if not 0 <= index < len(self.doc.results):
            return
        entry = self.doc.results[index]
        self.doc.apply_result(entry.rgb, text=f"Apply {entry.label}", spec=entry.spec,
                              name=entry.label)
        self.scene.set_compare_image(None)
        self.statusBar().showMessage(f"Applied {entry.label} (Ctrl+Z undoes it).", 5000)

    def send_to_canvas(self, rgb: np.ndarray, spec: dict[str, Any], label: str) -> None:
        """A panel's result into the strip and onto the canvas, as one undoable edit.

        With no picture yet the result becomes the picture. Otherwise it is pasted, scaled to
        fit and centred, into the selection's bounding box (where a face taken from the
        selection came from), or without a selection centred at its own size (shrunk to fit);
        the rest of the picture and the selection stay as they were.
        """
        self.doc.add_result(rgb, spec, label)
        self.results.select_last()
        if self.doc.is_empty():
            kept = [(r.rgb, r.spec, r.label) for r in self.doc.results]
            # "open" clears the strip: keep what it held
            self._set_picture(rgb, None, spec=spec)
            for entry in kept:
                self.doc.add_result(*entry)
            self.statusBar().showMessage(f"{label} is the picture now.", 5000)
            return
        picture = self.doc.image_array()
        h, w = picture.shape[:2]
        box, fill = (0, 0, w, h), False
        if not self.doc.mask_is_empty():
            ys, xs = np.nonzero(self.doc.mask_array() >= 128)
            if len(xs):
                box, fill = (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                             int(ys.max()) + 1), True
        self.doc.apply_result(paste_fitted(picture, rgb, box, fill), clear_mask=False,
                              text=f"Send {label} to canvas", spec=spec, name=label)
        self.scene.set_compare_image(None)
        self.statusBar().showMessage(f"Put {label} on the canvas (Ctrl+Z undoes it).", 5000)

    def replace_picture(self, rgb: np.ndarray, spec: dict[str, Any], label: str) -> None:
        """A panel's edit of the whole picture into the strip and onto the canvas, as one
        undoable edit (the selection stays, for another edit of the same region)."""
        self.doc.add_result(rgb, spec, label)
        self.results.select_last()
        self.doc.apply_result(rgb, clear_mask=False, text=f"Apply {label}", spec=spec,
                              name=label)
        self.scene.set_compare_image(None)
        self.statusBar().showMessage(f"Applied {label} (Ctrl+Z undoes it).", 5000)

    def flatten_layers(self) -> None:
        """Layer > Flatten: the visible layers merged into the picture (one undo step)."""
        if not self.doc.is_empty() and self.doc.flatten():
            self.statusBar().showMessage("Flattened the layers (Ctrl+Z undoes it).", 5000)

    def _results_as_layers(self) -> bool:
        return str(self.settings.value("results_as_layers", "true")).lower() != "false"

    def set_results_as_layers(self, on: bool) -> None:
        """Layer > Apply results as layers (remembered): off paints results into the
        picture, as before layers."""
        self.settings.setValue("results_as_layers", "true" if on else "false")
        self.doc.results_as_layers = bool(on)

    def _mask_row_toggled(self, visible: bool) -> None:
        self.mask_action.setChecked(visible)
        self.scene.set_mask_visible(visible)

    def show_original(self, held: bool) -> None:
        """While ``held``, the picture itself instead of the compared result (or a preview)."""
        if held:
            self.scene.set_compare_image(None)
            self.scene.set_mask_visible(False)
        else:
            self.compare_result(self.results.currentRow())

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.results.currentRow() >= 0:
            self.apply_result(self.results.currentRow())
            return
        if event.key() == Qt.Key.Key_Backslash and not event.isAutoRepeat():
            self.show_original(True)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Backslash and not event.isAutoRepeat():
            self.show_original(False)
            return
        super().keyReleaseEvent(event)

    # ---------------------------------------------------------------- drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files, image = dropped(event.mimeData())
        if files or image is not None:
            event.acceptProposedAction()
        if files:
            self.open_paths(files)
        elif image is not None:
            self._set_pasted_picture(image)

    # ---------------------------------------------------------------- state

    def _update_title(self, *_: object) -> None:
        name = Path(self.doc.path or self.doc.imported_from or self.doc.source_path
                    or "Untitled").name
        dirty = "*" if self.doc.is_dirty() else ""
        self.setWindowTitle(f"{name}{dirty} — Easel")

    def set_device(self, name: str, remember: bool = True) -> None:
        """Run the next jobs on ``name`` (auto, cuda, mps, cpu); ``remember`` keeps it for
        the next sessions (the Settings menu does; a command-line --device does not)."""
        if remember:
            self.settings.setValue("device", "" if name == "auto" else name)
        self.service.set_device(None if name == "auto" else name)
        self._update_device_label(name)

    def _update_device_label(self, name: str | None = None) -> None:
        name = name or self.service.device() or "auto"  # the setting, or --device
        text = DEVICE_CHOICES.get(name, name)  # until devices are known
        if self._devices:
            try:
                chosen = choose(device_name(name), list(self._devices))
                text = self._devices.get(chosen) or self._devices.get(f"{chosen}:0", chosen)
            except DeviceError as exc:
                if self._devices_found:
                    text = str(exc)
                else:  # not among an earlier session's devices: this session's decide
                    self._find_devices()
        self.device_label.setText(f"Device: {text}")

    # ---------------------------------------------------------------- devices

    def _remembered_devices(self) -> dict[str, str]:
        """The devices found in an earlier session (a machine's devices seldom change)."""
        try:
            found = json.loads(str(self.settings.value("devices", "") or "{}"))
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _found_devices(self, devices: dict[str, str]) -> None:
        """The worker listed the devices: the menu, the Train panel and the status bar say
        what is here now."""
        self._devices, self._devices_found = dict(devices), True
        self.settings.setValue("devices", json.dumps(self._devices))
        self._enable_device_actions()
        self.train_panel.set_devices(list(self._devices))
        self._update_device_label()

    def _enable_device_actions(self) -> None:
        available = {d.split(":")[0] for d in self._devices} | {"auto", "cpu"}
        for act in self.device_actions.actions():
            act.setEnabled(act.data() in available)

    def _find_devices(self) -> None:
        """Have the worker find the devices now (it imports torch), not at the first job."""
        if not self._devices_found:
            self.service.find_devices()

    def _panel_shown(self, index: int) -> None:
        """The Train panel lists the devices to train on."""
        if self.panels[index] is self.train_panel and self.isVisible():
            self._find_devices()

    def _confirm_training(self) -> bool:
        """A training run goes on: pause it (resumable later) or leave it training."""
        if not self.train_panel.is_running():
            return True
        answer = self.ask("Training", f"{self.train_panel.state.name} is still training. Pause "
                          "it (Resume continues it later), or leave it training after Easel "
                          "closes?", ("Pause training", "Leave it training", "Cancel"))
        if answer == "Pause training":
            self.train_panel.pause()
        return answer in ("Pause training", "Leave it training")

    def _confirm_discard(self) -> bool:
        """Ask before an open replaces a picture with unsaved edits."""
        if self.doc.is_empty() or not self.doc.is_dirty():
            return True
        answer = self.ask("Unsaved changes",
                          "The current picture has unsaved edits. Save them first?",
                          ("Save", "Discard", "Cancel"))
        if answer == "Save":
            return self.save_document()
        return answer == "Discard"

    def _load_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self._first_layout()
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        size = self.settings.value("brush_size")
        if size is not None:
            self.view.set_brush_size(int(size))
        hardness = self.settings.value("brush_hardness")
        if hardness is not None:
            self.view.set_brush_hardness(float(hardness))
        tab = self.settings.value("panel")
        for i, panel in enumerate(self.panels):
            panel.load_settings(self.settings)
            if panel.name == tab:
                self.panel_tabs.setCurrentIndex(i)

    def _first_layout(self) -> None:
        """The first window: FIRST_SIZE, or 90% of the screen where that is smaller, centred,
        with the canvas CANVAS_SHARE of its width and the docks sharing the rest."""
        screen = self.screen().availableGeometry()
        w = min(FIRST_SIZE[0], int(screen.width() * 0.9))
        h = min(FIRST_SIZE[1], int(screen.height() * 0.9))
        self.setGeometry(screen.x() + (screen.width() - w) // 2,
                         screen.y() + (screen.height() - h) // 2, w, h)
        tools = self.tools_dock.minimumSizeHint().width()
        docks = int(w * (1 - CANVAS_SHARE)) - 16  # the dock separators and frames
        self.resizeDocks([self.tools_dock, self.panels_dock], [tools, max(docks - tools, 80)],
                         Qt.Orientation.Horizontal)
        strip = self.results_dock.minimumSizeHint().height()
        self.resizeDocks([self.results_dock], [strip], Qt.Orientation.Vertical)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("brush_size", self.view.brush_size)
        s.setValue("brush_hardness", self.view.brush_hardness)
        s.setValue("panel", self.current_panel().name)
        for panel in self.panels:
            panel.save_settings(s)
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:
            event.accept()
            return
        answered = self._close_after_export == (self.doc, self.doc.undo_stack.index())
        self._close_after_export = None
        if not answered and (not self._confirm_discard() or not self._confirm_training()):
            event.ignore()
            return
        if self.exporting():
            # The export finishes first (the file is never left half-written or lost); the
            # window closes when it is written, or stays open to show why it was not.
            self._close_after_export = (self.doc, self.doc.undo_stack.index())
            self.statusBar().showMessage(f"Finishing the export of {self._exporting[0]}; "
                                         "Easel closes when it is written.")
            event.ignore()
            return
        self._closing = True
        if self.batch_dialog is not None:
            self.batch_dialog.close()  # stops a running batch; what it wrote stays
        self.save_settings()
        for panel in self.panels:
            panel.shutdown()
        self.service.shutdown()
        self.autosave.finish()
        event.accept()

    # ---------------------------------------------------------------- misc

    def about(self) -> None:
        from core.cli.info import version_text
        from core.notices import NOTICES

        notices = "".join(f"<p>{html.escape(text)}</p>" for text in NOTICES)
        QMessageBox.about(self, "About Easel",
                          f"<h3>Easel</h3><p>An offline generative image studio.</p>"
                          f"<pre>{version_text()}</pre>{notices}")

    def show_log_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from core import paths

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir())))


def _write_layered_file(path: str, stack: LayerStack) -> str | None:
    """Write a layered export (on the export thread); None, or why it was not written."""
    try:
        write_layered(path, stack)
    except (OSError, DocumentError) as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001  (a writer's bug must not pass for a written file)
        log.exception("exporting %s failed", path)
        return f"an unexpected error ({exc}); the log has the details."
    return None


def paste_fitted(picture: np.ndarray, rgb: np.ndarray, box: tuple[int, int, int, int],
                 fill: bool) -> np.ndarray:
    """``picture`` with ``rgb`` pasted centred in ``box``, aspect kept: scaled to fill the box
    (``fill``) or at its own size, shrunk only if it does not fit."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    h, w = rgb.shape[:2]
    scale = min(bw / w, bh / h) if fill else min(1.0, bw / w, bh / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        scaled = qimage_from_array(rgb).scaled(nw, nh, Qt.AspectRatioMode.IgnoreAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
        rgb = array_from_qimage(scaled)[..., :3]
    out = picture.copy()
    left, top = x0 + (bw - nw) // 2, y0 + (bh - nh) // 2
    out[top:top + nh, left:left + nw] = rgb[..., :3]
    return out


def _ask_user(title: str, text: str, buttons: tuple[str, ...]) -> str:
    box = QMessageBox(QMessageBox.Icon.Question, title, text)
    mapping = {}
    for name in buttons:
        role = {"Cancel": QMessageBox.ButtonRole.RejectRole,
                "Discard": QMessageBox.ButtonRole.DestructiveRole}.get(
            name, QMessageBox.ButtonRole.AcceptRole)
        mapping[box.addButton(name, role)] = name
    box.exec()
    return mapping.get(box.clickedButton(), buttons[-1])


def _inform_user(title: str, text: str) -> None:
    QMessageBox.warning(None, title, text)

