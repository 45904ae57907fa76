"""The ``.easel`` document file: a zip of PNGs and one JSON file.

    document.json     {"format": "easel", "version": 2, "source_path", "source_sha256",
                       "width", "height", "results": [{"label", "spec", "channels"}],
                       "picture_spec",  (the job spec of the result the picture shows, or null)
                       "layers": [{"name", "kind", "x", "y", "visible", "opacity", "spec",
                                   "file"}]}  (bottom first; the picture's file is image.png)
    image.png         the picture layer (RGBA)
    mask.png          the mask (8-bit grey coverage)
    layers/<i>.png    every other layer (RGBA)
    results/<i>.png   one per result in the strip, in order

Version 1 (before layers) has no "layers" and no layers/ folder: it opens as a document whose
stack is its picture alone. Only PNG and JSON are ever decoded, so a hostile file cannot run
code (nothing is unpickled). Reading is defensive: every member's size and every PNG's header
are checked before anything is decompressed, and every failure is a DocumentError.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from core import imageio
from core.document.stack import (
    KINDS,
    MAX_LAYERS,
    MAX_NAME,
    DocumentError,
    Layer,
    LayerStack,
    check_stack,
)

FORMAT = "easel"
VERSION = 2
MAX_PIXELS = 100_000_000  # per layer; a 10000 x 10000 picture
MAX_TOTAL_PIXELS = 8 * MAX_PIXELS  # all layers and results together
MAX_MEMBER_BYTES = 4 * MAX_PIXELS + (1 << 20)  # no PNG of an allowed picture inflates past this
MAX_JSON_BYTES = 16 << 20
MAX_RESULTS = 1000
PNG_LEVEL = 1  # zlib level: ~4x faster than the default for ~7% more bytes

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                NotImplementedError, RuntimeError, UnicodeDecodeError, RecursionError)


@dataclass
class Contents:
    """What a .easel file holds, decoded."""

    stack: LayerStack
    results: list[tuple[np.ndarray, dict[str, Any], str]] = field(default_factory=list)
    source_path: str | None = None
    source_sha256: str | None = None
    picture_spec: dict[str, Any] | None = None


def png_bytes(pixels: np.ndarray) -> bytes:
    """HxW (grey) or HxWx3/4 uint8 as PNG bytes, compressed fast."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG",
                                                       compress_level=PNG_LEVEL)
    return buf.getvalue()


def encode(contents: Contents) -> bytes:
    """The bytes of a .easel file."""
    stack = contents.stack
    entries = []
    for i, layer in enumerate(stack.layers):
        file = "image.png" if layer.kind == "picture" else f"layers/{i}.png"
        entries.append({"name": layer.name, "kind": layer.kind, "x": layer.x, "y": layer.y,
                        "visible": layer.visible, "opacity": layer.opacity,
                        "spec": layer.spec, "file": file})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "source_path": contents.source_path,
        "source_sha256": contents.source_sha256,
        "width": stack.width,
        "height": stack.height,
        "results": [{"label": label, "spec": spec, "channels": int(rgb.shape[2])}
                    for rgb, spec, label in contents.results],
        "picture_spec": contents.picture_spec,
        "layers": entries,
    }
    mask = stack.mask if stack.mask is not None else np.zeros((stack.height, stack.width),
                                                              np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # PNGs are compressed already: store them, deflate only the JSON.
        z.writestr("document.json", json.dumps(meta, indent=1), zipfile.ZIP_DEFLATED)
        for layer, entry in zip(stack.layers, entries, strict=True):
            z.writestr(entry["file"], png_bytes(layer.pixels), zipfile.ZIP_STORED)
        z.writestr("mask.png", png_bytes(mask), zipfile.ZIP_STORED)
        for i, (rgb, _, _) in enumerate(contents.results):
            z.writestr(f"results/{i}.png", png_bytes(rgb), zipfile.ZIP_STORED)
    return buf.getvalue()


def decode(data: bytes, name: str = "the document") -> Contents:
    """Decode a .easel file's bytes; DocumentError names ``name`` when they are not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return _decode(z, name)
    except DocumentError:
        raise
    except _READ_ERRORS as exc:
        raise DocumentError(f"{name} is not a readable Easel document ({exc}).") from exc


def peek(data: bytes, name: str = "the document") -> dict[str, Any]:
    """The document.json of a .easel file (its picture's source and size) without decoding a
    picture; DocumentError when it is not readable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return _meta(z, {i.filename: i for i in z.infolist()}, name)
    except DocumentError:
        raise
    except _READ_ERRORS as exc:
        raise DocumentError(f"{name} is not a readable Easel document ({exc}).") from exc


def _meta(z: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str) -> dict[str, Any]:
    info = members.get("document.json")
    if info is None:
        raise DocumentError(f"{name} is not an Easel document (it has no document.json).")
    if info.file_size > MAX_JSON_BYTES:
        raise DocumentError(f"{name} is damaged or too large (document.json).")
    meta = json.loads(z.read(info).decode("utf-8"))
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
    meta = _meta(z, members, name)
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise DocumentError(f"{name} was written by a newer Easel (format version {version}); "
                            "update Easel to open it.")
    entries = _layer_entries(meta, members, name)
    results_meta = meta.get("results", [])
    if not isinstance(results_meta, list) or len(results_meta) > MAX_RESULTS:
        raise DocumentError(f"{name} is damaged: its result list is unreadable.")
    for i, entry in enumerate(results_meta):
        if not (isinstance(entry, dict) and isinstance(entry.get("label", ""), str)
                and isinstance(entry.get("spec", {}), dict)
                and entry.get("channels", 3) in (3, 4) and f"results/{i}.png" in members):
            raise DocumentError(f"{name} is damaged: result {i + 1} is unreadable.")
    # Every PNG's header before any pixel: the pixels of all of them together are bounded.
    files = [e["file"] for e in entries] + ["mask.png"] + [
        f"results/{i}.png" for i in range(len(results_meta))]
    total = 0
    for file in files:
        w, h = _png_size(z.read(file), f"{name}: {file}")
        total += w * h
    if total > MAX_TOTAL_PIXELS:
        raise DocumentError(f"{name} holds {total / 1e6:.0f} megapixels of layers; Easel opens "
                            f"at most {MAX_TOTAL_PIXELS / 1e6:.0f}.")

    layers = []
    for entry in entries:
        pixels = read_png(z.read(entry["file"]), f"{name}: layer {entry['name']!r}").rgba()
        layers.append(Layer(name=entry["name"], pixels=pixels, x=entry["x"], y=entry["y"],
                            visible=entry["visible"], opacity=entry["opacity"],
                            kind=entry["kind"], spec=entry["spec"]))
    width, height = layers[[e["kind"] for e in entries].index("picture")].pixels.shape[1::-1]
    mask = read_png(z.read("mask.png"), f"{name}: the mask").rgb[..., 0].copy()
    stack = LayerStack(width, height, layers, mask)
    check_stack(stack, name, MAX_PIXELS)
    results = []
    for i, entry in enumerate(results_meta):
        loaded = read_png(z.read(f"results/{i}.png"), f"{name}: result {i + 1}")
        rgb = loaded.rgba()[..., : entry.get("channels", 3)]
        results.append((np.ascontiguousarray(rgb), entry.get("spec", {}),
                        entry.get("label", "")))
    spec = meta.get("picture_spec")
    return Contents(stack=stack, results=results,
                    source_path=_optional_str(meta.get("source_path")),
                    source_sha256=_optional_str(meta.get("source_sha256")),
                    picture_spec=spec if isinstance(spec, dict) else None)


def _layer_entries(meta: dict[str, Any], members: dict[str, zipfile.ZipInfo],
                   name: str) -> list[dict[str, Any]]:
    """document.json's layers, checked; a version 1 document's picture alone."""
    raw = meta.get("layers")
    if raw is None:  # version 1: no layers yet
        return [{"name": "Picture", "kind": "picture", "x": 0, "y": 0, "visible": True,
                 "opacity": 1.0, "spec": None, "file": "image.png"}]
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LAYERS:
        raise DocumentError(f"{name} is damaged: its layer list is unreadable.")
    entries = []
    for i, e in enumerate(raw):
        ok = (isinstance(e, dict) and isinstance(e.get("name"), str)
              and e.get("kind") in KINDS and _is_int(e.get("x")) and _is_int(e.get("y"))
              and isinstance(e.get("visible"), bool)
              and isinstance(e.get("opacity"), int | float) and not isinstance(
                  e.get("opacity"), bool) and 0.0 <= e["opacity"] <= 1.0
              and (e.get("spec") is None or isinstance(e.get("spec"), dict))
              and isinstance(e.get("file"), str) and e["file"] in members
              and e["file"].endswith(".png")
              and (e["file"] == "image.png") == (e.get("kind") == "picture"))
        if not ok:
            raise DocumentError(f"{name} is damaged: layer {i + 1} is unreadable.")
        entries.append({**e, "name": e["name"][:MAX_NAME], "opacity": float(e["opacity"])})
    if sum(e["kind"] == "picture" for e in entries) != 1:
        raise DocumentError(f"{name} is damaged: it must have exactly one picture layer.")
    return entries


def _png_size(data: bytes, what: str) -> tuple[int, int]:
    try:
        w, h = imageio.image_size(data)
    except imageio.ImageError as exc:
        raise DocumentError(f"{what} is not a readable PNG image.") from exc
    if w * h > MAX_PIXELS:
        raise DocumentError(f"{what} is too large ({w} x {h} pixels).")
    return w, h


def read_png(data: bytes, what: str, max_pixels: int = MAX_PIXELS) -> imageio.LoadedImage:
    """A PNG member through Easel's image intake (pixel limit from the header, damage as a
    clear error); DocumentError naming ``what`` when it is not a readable PNG."""
    try:
        loaded = imageio.load_image(data, max_pixels=max_pixels)
    except imageio.ImageError as exc:
        reason = str(exc).removeprefix("The image data ")
        raise DocumentError(f"{what} {reason}") from exc
    if loaded.format != "PNG":
        raise DocumentError(f"{what} is not a PNG image.")
    return loaded


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
