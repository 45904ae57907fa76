"""OpenRaster (``.ora``): the layered exchange format of Krita, GIMP and MyPaint.

An OpenRaster file is a zip whose first member is ``mimetype`` (stored, ``image/openraster``),
with ``stack.xml`` describing the layers (the first element is the topmost), one PNG per layer
under ``data/``, ``mergedimage.png`` (the composite) and ``Thumbnails/thumbnail.png`` (at most
256 px a side). Easel writes it directly; the mask travels as a hidden layer named
``Easel mask`` (white, its coverage in the alpha channel).

Reading treats the zip as untrusted, under the archive rules Easel uses for model imports
(core/safezip.py: member count, expansion ratio, total size, paths), refuses XML with a
document type (entity expansion), checks every layer's rectangle and PNG header before a pixel
is decoded, and flattens nested stacks and blend modes Easel does not keep, with notes.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image

from core import imageio
from core.document.easel_format import png_bytes, read_png
from core.document.stack import (
    MAX_LAYERS,
    MAX_NAME,
    DocumentError,
    Layer,
    LayerStack,
    check_rect,
    flatten_blend_modes,
    rgba,
    settle_picture,
)
from core.safezip import ZipLimits, ZipRefused, check_members, read_member

MIMETYPE = b"image/openraster"
EASEL_NS = "urn:easel:layer"  # stack.xml attributes only Easel reads (ignored elsewhere)
THUMBNAIL = 256
MAX_XML_BYTES = 4 << 20
# mimetype, stack.xml, the merged image, the thumbnail and one PNG a layer, with room for
# what other programs add (Krita's own files, layer thumbnails).
ORA_LIMITS = ZipLimits(max_members=2 * MAX_LAYERS + 16, max_total=4 << 30,
                       what="an OpenRaster file")
# svg:* composite-op values and Easel's names for those it can draw (stack.BLEND).
COMPOSITE_OPS = {
    "svg:src-over": "normal", "svg:multiply": "multiply", "svg:screen": "screen",
    "svg:overlay": "overlay", "svg:darken": "darken", "svg:lighten": "lighten",
    "svg:color-dodge": "color-dodge", "svg:color-burn": "color-burn",
    "svg:hard-light": "hard-light", "svg:soft-light": "soft-light",
    "svg:difference": "difference", "svg:exclusion": "exclusion", "svg:plus": "plus",
}


def write_ora(stack: LayerStack) -> bytes:
    """The bytes of an OpenRaster file of ``stack`` (its mask as a hidden layer)."""
    ET.register_namespace("easel", EASEL_NS)
    image = ET.Element("image", {"version": "0.0.5", "w": str(stack.width),
                                 "h": str(stack.height)})
    root = ET.SubElement(image, "stack")
    members: list[tuple[str, bytes]] = []
    for i, layer in reversed(list(enumerate(stack.with_mask_layer()))):  # the topmost first
        src = f"data/layer{i}.png"
        ET.SubElement(root, "layer", {
            "name": layer.name, "src": src, "x": str(layer.x), "y": str(layer.y),
            "opacity": f"{layer.opacity:.6g}",
            "visibility": "visible" if layer.visible else "hidden",
            "composite-op": "svg:src-over", f"{{{EASEL_NS}}}kind": layer.kind})
        members.append((src, png_bytes(rgba(layer.pixels))))
    merged = stack.composite()
    thumb = Image.fromarray(merged, "RGBA")
    thumb.thumbnail((THUMBNAIL, THUMBNAIL))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # The mimetype first and stored, so `file` and other programs know the format.
        z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, zipfile.ZIP_STORED)
        z.writestr("stack.xml", ET.tostring(image, encoding="utf-8", xml_declaration=True),
                   zipfile.ZIP_DEFLATED)
        for src, data in members:
            z.writestr(src, data, zipfile.ZIP_STORED)
        z.writestr("mergedimage.png", png_bytes(merged), zipfile.ZIP_STORED)
        z.writestr("Thumbnails/thumbnail.png", png_bytes(np.asarray(thumb)), zipfile.ZIP_STORED)
    return buf.getvalue()


def read_ora(data: bytes, name: str, max_pixels: int | None = None) -> LayerStack:
    """The layers of an OpenRaster file; DocumentError naming ``name`` when it is refused."""
    limit = imageio.max_pixels_setting() if max_pixels is None else max_pixels
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return _read(z, name, limit)
    except ZipRefused as exc:
        raise DocumentError(f"{exc}; not opened.") from None
    except DocumentError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError, UnicodeDecodeError, RecursionError) as exc:
        raise DocumentError(f"{name} is not a readable OpenRaster file ({exc}).") from exc


def _read(z: zipfile.ZipFile, name: str, limit: int) -> LayerStack:
    members = set(check_members(z, name, ORA_LIMITS))
    if "stack.xml" not in members:
        raise DocumentError(f"{name} is not an OpenRaster file (it has no stack.xml).")
    if "mimetype" in members and read_member(z, "mimetype", 64, name,
                                             ORA_LIMITS).strip() != MIMETYPE:
        raise DocumentError(f"{name} is not an OpenRaster file (its mimetype differs).")
    xml = read_member(z, "stack.xml", MAX_XML_BYTES, name, ORA_LIMITS)
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise DocumentError(f"{name}: stack.xml declares a document type; not opened.")
    try:
        image = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DocumentError(f"{name}: stack.xml is not readable XML ({exc}).") from None
    root = image.find("stack")
    if image.tag != "image" or root is None:
        raise DocumentError(f"{name}: stack.xml has no image stack.")
    width, height = _int(image, "w", name), _int(image, "h", name)
    check_rect(0, 0, width, height, limit, f"{name}: the canvas")
    stack = LayerStack(width, height)

    # The layers bottom first, groups flattened into their layers; headers before pixels.
    found: list[tuple[ET.Element, bool, float, str | None]] = []
    _walk(root, True, 1.0, found, stack.notes, name)
    if len(found) > MAX_LAYERS:
        raise DocumentError(f"{name} has {len(found)} layers; Easel opens at most "
                            f"{MAX_LAYERS}.")
    total = 0
    for element, _, _, _ in found:
        src = element.get("src", "")
        if src not in members or not src.lower().endswith(".png"):
            raise DocumentError(f"{name}: layer {element.get('name', '')!r} has no PNG "
                                f"{src!r} in the file.")
        w, h = _header(z, src, name, limit)
        check_rect(_int(element, "x", name, 0), _int(element, "y", name, 0), w, h, limit,
                   f"{name}: layer {element.get('name', '')!r}")
        total += w * h
    if total > 8 * limit:
        raise DocumentError(f"{name} holds {total / 1e6:.0f} megapixels of layers; Easel opens "
                            f"at most {8 * limit / 1e6:.0f}.")
    modes: list[str | None] = []
    for element, visible, opacity, mode in found:
        layer_name = element.get("name", "")[:MAX_NAME] or f"Layer {len(modes) + 1}"
        data = read_member(z, element.get("src", ""), 4 * limit + (1 << 20), name, ORA_LIMITS)
        pixels = read_png(data, f"{name}: layer {layer_name!r}", limit).rgba()
        layer = Layer(layer_name, pixels, _int(element, "x", name, 0),
                      _int(element, "y", name, 0), visible, opacity)
        if element.get(f"{{{EASEL_NS}}}kind") == "mask" and stack.mask is None and (
                layer.x, layer.y, layer.width, layer.height) == (0, 0, width, height):
            stack.mask = pixels[..., 3].copy()
            continue
        if element.get(f"{{{EASEL_NS}}}kind") in ("result", "panel"):
            layer.kind = element.get(f"{{{EASEL_NS}}}kind", "paint")
        stack.layers.append(layer)
        modes.append(mode)
    flatten_blend_modes(stack, modes)
    settle_picture(stack)
    return stack


def _walk(element: ET.Element, visible: bool, opacity: float, out: list[Any],
          notes: list[str], name: str, depth: int = 0) -> None:
    """Collect ``element``'s layers bottom first (its children are listed top first), with
    the visibility and opacity of the stacks around them."""
    if depth > 32:
        raise DocumentError(f"{name}: stack.xml nests its stacks too deep.")
    for child in reversed(list(element)):
        shown = visible and child.get("visibility", "visible") != "hidden"
        alpha = opacity * _opacity(child, name)
        op = child.get("composite-op", "svg:src-over")
        if child.tag == "stack":
            if op not in ("svg:src-over", "svg:pass-through") or child.get("isolation") == \
                    "isolate":
                notes.append(f"The group {child.get('name', '')!r} is blended as a whole in "
                             "the file; Easel brings its layers in one by one.")
            _walk(child, shown, alpha, out, notes, name, depth + 1)
        elif child.tag == "layer":
            out.append((child, shown, alpha, COMPOSITE_OPS.get(op)))
        elif child.tag in ("text", "filter"):
            notes.append(f"{name}: a {child.tag} element was left out (Easel reads layers).")
        if len(out) > MAX_LAYERS:
            raise DocumentError(f"{name} has more than {MAX_LAYERS} layers; Easel opens at "
                                f"most {MAX_LAYERS}.")


def _header(z: zipfile.ZipFile, src: str, name: str, limit: int) -> tuple[int, int]:
    # The PNG header is in the first bytes of the member: read them alone.
    with z.open(src) as f:
        head = f.read(64)
    if not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        raise DocumentError(f"{name}: {src} is not a PNG image.")
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return w, h


def _int(element: ET.Element, key: str, name: str, default: int | None = None) -> int:
    text = element.get(key)
    if text is None and default is not None:
        return default
    try:
        value = int(str(text).strip())
    except ValueError:
        raise DocumentError(f"{name}: stack.xml has {key}={text!r}, not a whole number."
                            ) from None
    if abs(value) > 10**7:
        raise DocumentError(f"{name}: stack.xml has {key}={text!r}, out of range.")
    return value


def _opacity(element: ET.Element, name: str) -> float:
    try:
        value = float(element.get("opacity", "1"))
    except ValueError:
        raise DocumentError(f"{name}: stack.xml has an unreadable opacity.") from None
    return min(max(value, 0.0), 1.0) if value == value else 1.0
