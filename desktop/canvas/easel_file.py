"""The ``.easel`` document file: a zip of PNGs and one JSON file.

    document.json     {"format": "easel", "version": 1, "source_path", "source_sha256",
                       "width", "height", "results": [{"label", "spec", "channels"}],
                       "picture_spec"}  (the job spec of the result the picture shows, or null)
    image.png         the picture (RGBA)
    mask.png          the mask (8-bit grey coverage, see brush.py)
    results/<i>.png   one per result, in order

Only PNG and JSON are ever decoded, so a hostile file cannot run code (nothing is unpickled).
Reading is defensive: sizes are checked before anything is decompressed, and every failure is
a DocumentError with a readable message.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage, QImageReader

from desktop.canvas.qimage import GRAY, RGBA, array_from_qimage, qimage_from_array

FORMAT = "easel"
VERSION = 1
MAX_PIXELS = 100_000_000  # per layer; a 10000 x 10000 picture
MAX_MEMBER_BYTES = 4 * MAX_PIXELS + (1 << 20)  # no PNG of an allowed picture inflates past this
MAX_JSON_BYTES = 16 << 20
MAX_RESULTS = 1000
PNG_QUALITY = 80  # Qt maps it to a low zlib level: ~4x faster than the default, ~7% larger


class DocumentError(Exception):
    """A document cannot be read, written or edited as asked; the text says why."""


@dataclass
class Contents:
    """What a .easel file holds, decoded."""

    image: QImage
    mask: QImage
    results: list[tuple[np.ndarray, dict[str, Any], str]] = field(default_factory=list)
    source_path: str | None = None
    source_sha256: str | None = None
    picture_spec: dict[str, Any] | None = None


def encode(contents: Contents) -> bytes:
    """The bytes of a .easel file."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "source_path": contents.source_path,
        "source_sha256": contents.source_sha256,
        "width": contents.image.width(),
        "height": contents.image.height(),
        "results": [{"label": label, "spec": spec, "channels": int(rgb.shape[2])}
                    for rgb, spec, label in contents.results],
        "picture_spec": contents.picture_spec,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # PNGs are compressed already: store them, deflate only the JSON.
        z.writestr("document.json", json.dumps(meta, indent=1), zipfile.ZIP_DEFLATED)
        z.writestr("image.png", _png(contents.image), zipfile.ZIP_STORED)
        z.writestr("mask.png", _png(contents.mask), zipfile.ZIP_STORED)
        for i, (rgb, _, _) in enumerate(contents.results):
            z.writestr(f"results/{i}.png", _png(qimage_from_array(rgb)), zipfile.ZIP_STORED)
    return buf.getvalue()


def decode(data: bytes, name: str = "the document") -> Contents:
    """Decode a .easel file's bytes; DocumentError names ``name`` when they are not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return _decode(z, name)
    except DocumentError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{name} is not a readable Easel document ({exc}).") from exc


def peek(data: bytes, name: str = "the document") -> dict[str, Any]:
    """The document.json of a .easel file (its picture's source and size) without decoding a
    picture; DocumentError when it is not readable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("document.json")
            if info.file_size > MAX_JSON_BYTES:
                raise DocumentError(f"{name} is damaged or too large (document.json).")
            meta = json.loads(z.read(info).decode("utf-8"))
    except DocumentError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{name} is not a readable Easel document ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DocumentError(f"{name} is not an Easel document.")
    return meta


def _decode(z: zipfile.ZipFile, name: str) -> Contents:
    members = {info.filename: info for info in z.infolist()}
    for required in ("document.json", "image.png", "mask.png"):
        if required not in members:
            raise DocumentError(f"{name} is not an Easel document (it has no {required}).")
    for info in members.values():
        limit = MAX_JSON_BYTES if info.filename.endswith(".json") else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise DocumentError(f"{name} is damaged or too large ({info.filename}).")
    meta = json.loads(z.read("document.json").decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DocumentError(f"{name} is not an Easel document.")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise DocumentError(f"{name} was written by a newer Easel (format version {version}); "
                            "update Easel to open it.")
    image = _read_png(z.read("image.png"), RGBA, f"{name}: the picture")
    mask = _read_png(z.read("mask.png"), GRAY, f"{name}: the mask")
    if mask.size() != image.size():
        raise DocumentError(f"{name} is damaged: the mask and the picture differ in size.")
    results_meta = meta.get("results", [])
    if not isinstance(results_meta, list) or len(results_meta) > MAX_RESULTS:
        raise DocumentError(f"{name} is damaged: its result list is unreadable.")
    results = []
    for i, entry in enumerate(results_meta):
        if not (isinstance(entry, dict) and isinstance(entry.get("label", ""), str)
                and isinstance(entry.get("spec", {}), dict)
                and entry.get("channels", 3) in (3, 4) and f"results/{i}.png" in members):
            raise DocumentError(f"{name} is damaged: result {i + 1} is unreadable.")
        rgba = array_from_qimage(_read_png(z.read(f"results/{i}.png"), RGBA,
                                           f"{name}: result {i + 1}"))
        rgb = np.ascontiguousarray(rgba[..., : entry.get("channels", 3)])
        results.append((rgb, entry.get("spec", {}), entry.get("label", "")))
    return Contents(image=image, mask=mask, results=results,
                    source_path=_optional_str(meta.get("source_path")),
                    source_sha256=_optional_str(meta.get("source_sha256")),
                    picture_spec=spec if isinstance(spec := meta.get("picture_spec"), dict)
                    else None)


def _png(img: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not img.save(buf, "PNG", PNG_QUALITY):
        raise DocumentError("Could not encode the document's pixels as PNG.")
    buf.close()
    return bytes(data.data())


def _read_png(data: bytes, fmt: QImage.Format, what: str) -> QImage:
    buf = QBuffer()
    buf.setData(QByteArray(data))
    buf.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buf, b"png")
    size = reader.size()
    if not size.isValid() or size.isEmpty():
        raise DocumentError(f"{what} is not a readable PNG image.")
    if size.width() * size.height() > MAX_PIXELS:
        raise DocumentError(f"{what} is too large ({size.width()} x {size.height()} pixels).")
    img = reader.read()
    if img.isNull():
        raise DocumentError(f"{what} is damaged ({reader.errorString()}).")
    return img.convertToFormat(fmt)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
