"""QImage <-> numpy conversion without Python loops.

Two traps make this module worth having. A QImage row is padded to a multiple of 4 bytes
(``bytesPerLine`` may exceed ``width * channels``), so a flat buffer cannot simply be reshaped to
HxWxC. And a QImage built on a numpy buffer does not own it, so every conversion here copies:
the result never shares memory with its source and stays valid however long it lives.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QRect
from PySide6.QtGui import QImage

RGBA = QImage.Format.Format_RGBA8888
GRAY = QImage.Format.Format_Grayscale8


def qimage_from_array(a: np.ndarray) -> QImage:
    """An owning QImage of ``a``: HxW uint8 -> Grayscale8; HxWx3 or HxWx4 uint8 -> RGBA8888.

    Three-channel input gets an opaque alpha channel.
    """
    a = np.asarray(a)
    if a.dtype != np.uint8:
        raise ValueError(f"Expected 8-bit pixels (uint8), got {a.dtype}.")
    if a.ndim == 3 and a.shape[2] == 3:
        alpha = np.full(a.shape[:2] + (1,), 255, np.uint8)
        a = np.concatenate([a, alpha], axis=2)
    if a.ndim == 2:
        fmt, channels = GRAY, 1
    elif a.ndim == 3 and a.shape[2] == 4:
        fmt, channels = RGBA, 4
    else:
        raise ValueError(f"Expected an HxW, HxWx3 or HxWx4 image, got shape {a.shape}.")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("The image is empty (zero width or height).")
    a = np.ascontiguousarray(a)
    # The QImage only borrows a's buffer; .copy() makes it own its pixels before a can go away.
    return QImage(a.data, w, h, w * channels, fmt).copy()


def array_from_qimage(img: QImage) -> np.ndarray:
    """A copy of the pixels: Grayscale8 -> HxW; any other format -> HxWx4 RGBA."""
    if img.isNull():
        raise ValueError("The image is empty.")
    if img.format() not in (GRAY, RGBA):
        img = img.convertToFormat(RGBA)
    return pixel_view(img, readonly=True).copy()


def pixel_view(img: QImage, readonly: bool = False) -> np.ndarray:
    """A numpy view of a Grayscale8 (HxW) or RGBA8888 (HxWx4) image's own buffer.

    Writing through a writable view edits the image in place (``bits()`` detaches a shared image
    first). The view dangles once the image is freed or reallocated: use it within one function.
    """
    channels = {GRAY: 1, RGBA: 4}.get(img.format())
    if channels is None:
        raise ValueError(f"pixel_view needs Grayscale8 or RGBA8888, got {img.format()}.")
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = img.constBits() if readonly else img.bits()
    rows = np.frombuffer(buf, np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * channels]
    return rows if channels == 1 else rows.reshape(h, w, channels)


def read_region(img: QImage, rect: QRect) -> np.ndarray:
    """A copy of the pixels of ``img`` inside ``rect`` (which must lie inside the image)."""
    view = pixel_view(img, readonly=True)
    return view[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1].copy()


def write_region(img: QImage, rect: QRect, pixels: np.ndarray) -> None:
    """Overwrite the pixels of ``img`` inside ``rect`` with ``pixels`` (same shape)."""
    view = pixel_view(img)
    view[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1] = pixels


def changed_bounds(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) half-open box of pixels that differ, or None when none do."""
    diff = before != after
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def dropped(mime: QMimeData) -> tuple[list[str], QImage | None]:
    """What a drag carries: its local files (and folders), else a picture (e.g. dragged from
    a browser or another app), else nothing: ([], None)."""
    files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    if files:
        return files, None
    return [], QImage(mime.imageData()) if mime.hasImage() else None
