"""The settings and frames of a latent walk: its two ends, frame count, interpolation,
export frame rate, and buttons to make it and export it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.base import shrinkable
from desktop.widgets.thumbnail_list import ThumbnailList, thumbnail_pixmap

END = 48  # px of the start and end thumbnails
EXPORTS = (("GIF…", "gif", "an animated GIF"), ("WebP…", "webp", "an animated WebP"),
           ("Frames…", "frames", "numbered PNGs with the walk's settings"))


class WalkControls(QGroupBox):
    """Emits ``walkRequested`` and ``exportRequested(fmt)``; clicks on frames come out of
    ``strip.picked``."""

    walkRequested = Signal()
    exportRequested = Signal(str)  # gif | webp | frames

    def __init__(self, max_frames: int, parent: QWidget | None = None) -> None:
        super().__init__("Walk", parent)
        self.ends = [QLabel(), QLabel()]
        for label, which in zip(self.ends, ("start", "end"), strict=True):
            label.setFixedSize(END, END)
            label.setToolTip(f"The walk's {which}: right-click a face or the result to set it")
        self.frames = QSpinBox()
        self.frames.setRange(2, max_frames)
        self.frames.setValue(16)
        self.frames.setToolTip("Frames from start to end, both included")
        self.mode = shrinkable(QComboBox(), 5)
        self.mode.addItem("Spherical (slerp)", "slerp")
        self.mode.addItem("Straight line", "linear")
        self.mode.setToolTip("Spherical keeps every frame as typical as the ends; a straight "
                             "line passes through blander faces midway")
        self.fps = QSpinBox()
        self.fps.setRange(1, 50)
        self.fps.setValue(10)
        self.fps.setSuffix(" fps")
        self.fps.setToolTip("Frames per second of exported animations")
        self.upscale = QCheckBox("Upscale x4")
        self.upscale.setToolTip("Upscale every frame with the super-resolution model")
        walk = QPushButton("Walk")
        walk.setToolTip("Make the frames between start and end")
        walk.clicked.connect(self.walkRequested)
        self.strip = ThumbnailList(icon=40, wrap=False)
        self.strip.setToolTip("Click a frame to put it into the selected slot")
        exports = QHBoxLayout()
        for text, fmt, what in EXPORTS:
            button = QPushButton(text)
            button.setToolTip(f"Export the walk as {what}")
            button.clicked.connect(lambda _=False, f=fmt: self.exportRequested.emit(f))
            exports.addWidget(button)
        top = QHBoxLayout()
        top.addWidget(self.ends[0])
        top.addWidget(QLabel("→"))
        top.addWidget(self.ends[1])
        top.addWidget(self.frames)
        top.addWidget(self.mode, 1)
        options = QHBoxLayout()
        options.addWidget(self.fps)
        options.addWidget(self.upscale)
        options.addWidget(walk)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(options)
        lay.addWidget(self.strip)
        lay.addLayout(exports)
        self.show_ends(None, None)

    def show_ends(self, start: np.ndarray | None, end: np.ndarray | None) -> None:
        for label, rgb in zip(self.ends, (start, end), strict=True):
            label.setPixmap(thumbnail_pixmap(rgb, END))
