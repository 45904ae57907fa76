"""Photoshop documents (``.psd``) through psd-tools: layers out and in.

Writing gives each layer its name, offset, visibility and opacity; psd-tools renders the
merged preview other programs show. The mask travels as a hidden layer named ``Easel mask``.

Reading treats the file as untrusted. Before psd-tools parses anything, :func:`check_header`
walks the file's own structure: the signature, 8 bits per channel in RGB (with or without
alpha; other depths and colour modes get a message saying what to save instead), the canvas
within the pixel limit, at most 500 layers, and every layer's rectangle within limits. Only
then are the layers parsed, and a layer's channels are decoded one layer at a time, under
psd-tools' own allocation ceiling. Groups are brought in as their layers; blend modes Easel
does not keep are flattened, and what cannot come in (adjustment layers, masks, clipping) is
named in a note.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import Any

import numpy as np

from core import imageio
from core.document.stack import (
    MASK_NAME,
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

# psd-tools logs what it skips in a file at warning level; with no handler configured (the
# CLI) Python would print that beside Easel's own lines. The app's log still receives it.
logging.getLogger("psd_tools").addHandler(logging.NullHandler())

COLOR_MODES = {0: "bitmap", 1: "greyscale", 2: "indexed colour", 3: "RGB", 4: "CMYK",
               7: "multichannel", 8: "duotone", 9: "Lab"}
# psd-tools' blend mode keys and Easel's names for those it can draw (stack.BLEND).
BLEND_KEYS = {b"norm": "normal", b"pass": "normal", b"mul ": "multiply", b"scrn": "screen",
              b"over": "overlay", b"dark": "darken", b"lite": "lighten",
              b"div ": "color-dodge", b"idiv": "color-burn", b"hLit": "hard-light",
              b"sLit": "soft-light", b"diff": "difference", b"smud": "exclusion",
              b"lddg": "plus"}


def write_psd(stack: LayerStack) -> bytes:
    """The bytes of a layered 8-bit RGB Photoshop file of ``stack``."""
    from PIL import Image
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGBA", (stack.width, stack.height), depth=8)
    for layer in stack.with_mask_layer():
        out = PixelLayer.frompil(Image.fromarray(rgba(layer.pixels), "RGBA"), psd,
                                 layer.name, top=layer.y, left=layer.x)
        out.visible = layer.visible
        out.opacity = round(layer.opacity * 255)
        psd.append(out)
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def check_header(data: bytes, name: str, limit: int) -> int:
    """Refuse a PSD Easel will not open, from its structure alone (no channel is decoded);
    returns its layer count. DocumentError says why, naming ``name``."""
    r = _Reader(data, name)
    if r.take(4) != b"8BPS":
        raise DocumentError(f"{name} is not a Photoshop file.")
    version = r.u(2)
    if version not in (1, 2):
        raise DocumentError(f"{name} is a Photoshop file of an unknown version ({version}).")
    r.take(6)
    channels, height, width, depth, mode = r.u(2), r.u(4), r.u(4), r.u(2), r.u(2)
    if mode != 3:
        raise DocumentError(f"{name} is a {COLOR_MODES.get(mode, 'an unknown')} Photoshop "
                            "file; Easel opens 8-bit RGB ones (with or without "
                            "transparency): convert it to RGB 8 bits/channel and save again.")
    if depth != 8:
        raise DocumentError(f"{name} has {depth} bits per channel; Easel opens 8-bit RGB "
                            "Photoshop files: convert it to 8 bits/channel and save again.")
    if not 3 <= channels <= 56:
        raise DocumentError(f"{name} is damaged ({channels} channels).")
    check_rect(0, 0, width, height, limit, f"{name}: the canvas")
    big = version == 2  # PSB: some lengths are 8 bytes
    r.skip(r.u(4))  # colour mode data
    r.skip(r.u(4))  # image resources
    if r.u(8 if big else 4) == 0:
        return 0
    if r.u(8 if big else 4) == 0:  # the layer info's length
        return 0
    count = abs(struct.unpack(">h", r.take(2))[0])  # negative: the first alpha is merged
    if count > MAX_LAYERS:
        raise DocumentError(f"{name} has {count} layers; Easel opens at most {MAX_LAYERS}.")
    total = 0
    for i in range(count):
        top, left, bottom, right = struct.unpack(">4i", r.take(16))
        w, h = right - left, bottom - top
        if w < 0 or h < 0:
            raise DocumentError(f"{name} is damaged: layer {i + 1} has a negative size.")
        if w and h:  # empty layers (groups' markers, empty pixel layers) hold no pixels
            check_rect(left, top, w, h, limit, f"{name}: layer {i + 1}")
            total += w * h
        n = r.u(2)
        if n > 56:
            raise DocumentError(f"{name} is damaged: layer {i + 1} has {n} channels.")
        r.skip(n * (10 if big else 6))
        if r.take(4) not in (b"8BIM", b"8B64"):
            raise DocumentError(f"{name} is damaged: layer {i + 1}'s record is unreadable.")
        r.skip(8)  # blend key, opacity, clipping, flags, filler
        r.skip(r.u(4))  # mask, blending ranges, name, tagged blocks
    if total > 8 * limit:
        raise DocumentError(f"{name} holds {total / 1e6:.0f} megapixels of layers; Easel opens "
                            f"at most {8 * limit / 1e6:.0f}.")
    return count


def read_psd(data: bytes, name: str, max_pixels: int | None = None) -> LayerStack:
    """The layers of a Photoshop file; DocumentError naming ``name`` when it is refused."""
    limit = imageio.max_pixels_setting() if max_pixels is None else max_pixels
    check_header(data, name, limit)
    from psd_tools import PSDImage

    try:
        # psd-tools' own ceiling on what decoding one layer may allocate (float intermediates).
        psd = PSDImage.open(io.BytesIO(data), max_alloc_bytes=32 * limit)
        stack = LayerStack(psd.width, psd.height)
        modes: list[str | None] = []
        _walk(psd, True, 1.0, stack, modes, name)
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentError(f"{name} is too large to open with the memory available.") from None
    except Exception as exc:  # psd-tools parses untrusted bytes: any failure means damage
        raise DocumentError(f"{name} is damaged and cannot be read ({type(exc).__name__}: "
                            f"{exc}).") from exc
    flatten_blend_modes(stack, modes)
    settle_picture(stack)
    return stack


def _walk(group: Any, visible: bool, opacity: float, stack: LayerStack,
          modes: list[str | None], name: str) -> None:
    for layer in group:  # bottom first
        shown = visible and bool(layer.visible)
        alpha = opacity * layer.opacity / 255.0
        label = str(layer.name)[:MAX_NAME] or f"Layer {len(stack.layers) + 1}"
        mode = BLEND_KEYS.get(bytes(layer.blend_mode.value))
        if layer.is_group():
            if mode != "normal":
                stack.notes.append(f"The group {label!r} is blended as a whole in the file; "
                                   "Easel brings its layers in one by one.")
            _walk(layer, shown, alpha, stack, modes, name)
            continue
        if not layer.has_pixels() or layer.width == 0 or layer.height == 0:
            if layer.kind not in ("pixel", "group"):
                stack.notes.append(f"The {layer.kind} layer {label!r} has no pixels Easel can "
                                   "use; it was left out.")
            continue
        if layer.has_mask() or getattr(layer, "clipping", False):
            stack.notes.append(f"The layer {label!r} has a layer mask or clipping, which Easel "
                               "does not apply; its pixels come in unmasked.")
        image = layer.topil()
        if image is None:
            continue
        pixels = rgba(np.asarray(image.convert("RGBA")))
        if label == MASK_NAME and not shown and stack.mask is None and (
                layer.left, layer.top, image.width, image.height) == (0, 0, stack.width,
                                                                       stack.height):
            stack.mask = pixels[..., 3].copy()
            continue
        stack.layers.append(Layer(label, pixels, int(layer.left), int(layer.top), shown,
                                  alpha))
        modes.append(mode)


class _Reader:
    """Big-endian reads that turn running off the end into a clear error."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DocumentError(f"{self.name} is truncated or damaged.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise DocumentError(f"{self.name} is truncated or damaged.")
        self.pos += n

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")
