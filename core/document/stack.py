"""The layer stack of a document, without Qt: layers, their limits, and compositing.

A document is a canvas (width x height) with an ordered stack of pixel layers, bottom first,
and a mask. Exactly one layer is the *picture* (kind ``"picture"``): it covers the canvas at
(0, 0) and is what mask edits and "paint into the picture" write to. The others are applied
results (kind ``"result"``, placed at the box their job changed and carrying its spec), panel
layers (``"panel"``, e.g. a material map) and layers brought in from other programs
(``"paint"``). Each has a name, an offset, visibility and opacity; the blend mode is always
normal (layered files that use other modes are flattened on the way in, see
:func:`flatten_blend_modes`).

Pixels are straight (not premultiplied) RGBA uint8. Compositing is the Porter-Duff "over"
operator on premultiplied floats (W3C Compositing and Blending Level 1, section 5.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

KINDS = ("picture", "result", "panel", "paint")  # "mask": only on the way out (with_mask_layer)
MAX_LAYERS = 500
MAX_NAME = 200
# A layer may reach past the canvas, but not absurdly: offsets are bounded (PSB's 300,000 px).
MAX_OFFSET = 300_000
MASK_NAME = "Easel mask"  # the hidden layer the mask travels as in .ora and .psd files


class DocumentError(Exception):
    """A document cannot be read, written or edited as asked; the text says why."""


@dataclass
class Layer:
    """One pixel layer: HxWx4 uint8 straight RGBA placed with its top-left corner at (x, y)."""

    name: str
    pixels: np.ndarray
    x: int = 0
    y: int = 0
    visible: bool = True
    opacity: float = 1.0
    kind: str = "paint"
    spec: dict[str, Any] | None = None  # the job that made a result layer

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass
class LayerStack:
    """A canvas and its layers (bottom first) and mask (HxW uint8 coverage or None)."""

    width: int
    height: int
    layers: list[Layer] = field(default_factory=list)
    mask: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)  # what was changed on the way in

    def picture_index(self) -> int:
        return next(i for i, layer in enumerate(self.layers) if layer.kind == "picture")

    def composite(self) -> np.ndarray:
        return composite(self.layers, self.width, self.height)

    def with_mask_layer(self) -> list[Layer]:
        """The layers as a layered file holds them: the mask, when it covers anything, on
        top as a hidden white layer named MASK_NAME with its coverage as alpha."""
        if self.mask is None or not self.mask.any():
            return list(self.layers)
        white = np.full(self.mask.shape + (4,), 255, np.uint8)
        white[..., 3] = self.mask
        return [*self.layers, Layer(MASK_NAME, white, visible=False, kind="mask")]


def rgba(pixels: np.ndarray) -> np.ndarray:
    """HxW, HxWx3 or HxWx4 uint8 as C-contiguous HxWx4 (opaque where there was no alpha)."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise DocumentError(f"Layer pixels must be HxW, HxWx3 or HxWx4 uint8, got {a.shape} "
                            f"{a.dtype}.")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(a)


def check_stack(stack: LayerStack, name: str, max_pixels: int) -> None:
    """DocumentError naming ``name`` when the stack breaks Easel's limits or rules."""
    if not (stack.width > 0 and stack.height > 0 and stack.width * stack.height <= max_pixels):
        raise DocumentError(f"{name}: the canvas is {stack.width}x{stack.height}; the limit is "
                            f"{max_pixels / 1e6:g} megapixels.")
    if len(stack.layers) > MAX_LAYERS:
        raise DocumentError(f"{name} has {len(stack.layers)} layers; Easel opens at most "
                            f"{MAX_LAYERS}.")
    if sum(layer.kind == "picture" for layer in stack.layers) != 1:
        raise DocumentError(f"{name} is damaged: it must have exactly one picture layer.")
    for layer in stack.layers:
        check_rect(layer.x, layer.y, layer.width, layer.height, max_pixels,
                   f"{name}: layer {layer.name!r}")
        if layer.kind not in KINDS or not 0.0 <= layer.opacity <= 1.0:
            raise DocumentError(f"{name}: layer {layer.name!r} is damaged.")
    pic = stack.layers[stack.picture_index()]
    if (pic.x, pic.y, pic.width, pic.height) != (0, 0, stack.width, stack.height):
        raise DocumentError(f"{name} is damaged: its picture does not cover the canvas.")
    if stack.mask is not None and stack.mask.shape != (stack.height, stack.width):
        raise DocumentError(f"{name} is damaged: the mask and the picture differ in size.")


def check_rect(x: int, y: int, w: int, h: int, max_pixels: int, what: str) -> None:
    """A layer's rectangle: positive size within the pixel limit, offsets within bounds."""
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise DocumentError(f"{what} is {w}x{h}; the limit is {max_pixels / 1e6:g} "
                            "megapixels.")
    if max(abs(x), abs(y), abs(x + w), abs(y + h)) > MAX_OFFSET:
        raise DocumentError(f"{what} lies {max(abs(x), abs(y)):,} pixels off the canvas; "
                            "Easel opens layers within 300,000.")


# --------------------------------------------------------------------------- compositing


def _soft_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    d = np.where(cb <= 0.25, ((16 * cb - 12) * cb + 4) * cb, np.sqrt(cb))
    return np.where(cs <= 0.5, cb - (1 - 2 * cs) * cb * (1 - cb), cb + (2 * cs - 1) * (d - cb))


def _hard_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.where(cs <= 0.5, cb * 2 * cs, 1 - (1 - cb) * (1 - (2 * cs - 1)))


# The separable blend functions B(Cb, Cs) of W3C Compositing Level 1 (section 9.1), by
# Easel's name for each mode; readers map their files' names onto these.
BLEND: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "normal": lambda cb, cs: cs,
    "multiply": lambda cb, cs: cb * cs,
    "screen": lambda cb, cs: cb + cs - cb * cs,
    "overlay": lambda cb, cs: _hard_light(cs, cb),
    "darken": np.minimum,
    "lighten": np.maximum,
    "color-dodge": lambda cb, cs: np.where(
        cb <= 0, 0.0, np.where(cs >= 1, 1.0, np.minimum(1.0, cb / np.maximum(1 - cs, 1e-6)))),
    "color-burn": lambda cb, cs: np.where(
        cb >= 1, 1.0, np.where(cs <= 0, 0.0,
                               1 - np.minimum(1.0, (1 - cb) / np.maximum(cs, 1e-6)))),
    "hard-light": _hard_light,
    "soft-light": _soft_light,
    "difference": lambda cb, cs: np.abs(cb - cs),
    "exclusion": lambda cb, cs: cb + cs - 2 * cb * cs,
    "plus": lambda cb, cs: np.minimum(1.0, cb + cs),
}


def composite(layers: Sequence[Layer], width: int, height: int) -> np.ndarray:
    """The visible layers drawn in order onto a transparent width x height canvas: HxWx4
    uint8 straight RGBA. One full-size opaque-opacity layer alone comes back exactly."""
    shown = [la for la in layers if la.visible and la.opacity > 0]
    if (len(shown) == 1 and shown[0].opacity >= 1.0 and (shown[0].x, shown[0].y) == (0, 0)
            and shown[0].pixels.shape[:2] == (height, width)):
        return np.ascontiguousarray(rgba(shown[0].pixels)).copy()
    out = np.zeros((height, width, 4), np.float32)  # premultiplied, 0..1
    for layer in shown:
        draw(out, layer, "normal")
    return to_uint8(out)


def draw(out: np.ndarray, layer: Layer, mode: str) -> None:
    """Composite ``layer`` onto ``out`` (HxWx4 premultiplied float32) in place with the
    separable blend ``mode`` (W3C Compositing Level 1, section 5.1 with 9.1)."""
    height, width = out.shape[:2]
    x0, y0 = max(layer.x, 0), max(layer.y, 0)
    x1, y1 = min(layer.x + layer.width, width), min(layer.y + layer.height, height)
    if x0 >= x1 or y0 >= y1:
        return
    src = rgba(layer.pixels)[y0 - layer.y:y1 - layer.y, x0 - layer.x:x1 - layer.x]
    src = src.astype(np.float32) / 255.0
    a_s = src[..., 3:4] * np.float32(layer.opacity)
    dst = out[y0:y1, x0:x1]
    a_b = dst[..., 3:4]
    cs = src[..., :3]
    if mode != "normal":
        cb = np.where(a_b > 0, dst[..., :3] / np.maximum(a_b, 1e-6), 0.0)
        cs = (1 - a_b) * cs + a_b * BLEND[mode](cb, cs)
    dst[..., :3] = cs * a_s + dst[..., :3] * (1 - a_s)
    dst[..., 3:4] = a_s + a_b * (1 - a_s)


def to_uint8(premultiplied: np.ndarray) -> np.ndarray:
    a = premultiplied[..., 3:4]
    rgb = np.where(a > 0, premultiplied[..., :3] / np.maximum(a, 1e-6), 0.0)
    out = np.concatenate([rgb, a], axis=2)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def flatten(layers: Sequence[Layer], width: int, height: int, name: str = "Picture",
            kind: str = "picture") -> Layer:
    """The visible layers merged into one canvas-sized layer (hidden ones are dropped)."""
    return Layer(name=name, pixels=composite(layers, width, height), kind=kind)


def flatten_blend_modes(stack: LayerStack, modes: Sequence[str | None]) -> None:
    """Merge layers whose blend mode Easel does not keep, with a note for each.

    ``modes[i]`` is the mode of ``stack.layers[i]`` as Easel names it (a key of :data:`BLEND`)
    or None for a mode Easel cannot compute. A visible layer in a mode other than normal is
    drawn with its mode onto the layers below it, and those become one layer; a mode Easel
    cannot compute is drawn as normal. A hidden layer keeps its pixels, as a normal layer.
    """
    layers = stack.layers
    top = max((i for i, la in enumerate(layers)
               if la.visible and modes[i] != "normal"), default=-1)
    for i, layer in enumerate(layers):
        if modes[i] == "normal":
            continue
        if not layer.visible or i > top:
            stack.notes.append(f"The hidden layer {layer.name!r} uses a blend mode Easel does "
                               "not keep; it comes in as a normal layer.")
        elif modes[i] is None:
            stack.notes.append(f"The layer {layer.name!r} uses a blend mode Easel cannot "
                               "draw; it was merged into the layers below it as a normal "
                               "layer.")
        else:
            stack.notes.append(f"The layer {layer.name!r} uses the blend mode {modes[i]}, "
                               "which Easel does not keep; it was merged into the layers "
                               "below it.")
    if top < 0:
        return
    out = np.zeros((stack.height, stack.width, 4), np.float32)
    merged = [la for la in layers[:top + 1] if la.visible and la.opacity > 0]
    for i, layer in enumerate(layers[:top + 1]):
        if layer.visible and layer.opacity > 0:
            draw(out, layer, modes[i] or "normal")
    hidden = [la for la in layers[:top + 1] if not la.visible]
    flat = Layer(name="Flattened: " + ", ".join(la.name for la in merged)[:MAX_NAME],
                 pixels=to_uint8(out))
    stack.layers = [flat, *hidden, *layers[top + 1:]]


def settle_picture(stack: LayerStack) -> None:
    """For a file from another program: its bottom layer becomes the picture, laid on a
    transparent canvas-sized layer when it does not cover the canvas (the picture always
    does; what lies off the canvas is cut, with a note)."""
    if not stack.layers:
        stack.layers = [Layer("Picture", np.zeros((stack.height, stack.width, 4), np.uint8),
                              kind="picture")]
        return
    bottom = stack.layers[0]
    if (bottom.x, bottom.y, bottom.width, bottom.height) != (0, 0, stack.width, stack.height):
        canvas = np.zeros((stack.height, stack.width, 4), np.uint8)
        x0, y0 = max(bottom.x, 0), max(bottom.y, 0)
        x1 = min(bottom.x + bottom.width, stack.width)
        y1 = min(bottom.y + bottom.height, stack.height)
        if x0 < x1 and y0 < y1:
            canvas[y0:y1, x0:x1] = rgba(bottom.pixels)[y0 - bottom.y:y1 - bottom.y,
                                                       x0 - bottom.x:x1 - bottom.x]
        if (x1 - x0) * (y1 - y0) < bottom.width * bottom.height:
            stack.notes.append(f"The bottom layer {bottom.name!r} reached past the canvas; "
                               "Easel's picture layer is the canvas, so the part outside was "
                               "cut.")
        bottom = replace(bottom, pixels=canvas, x=0, y=0)
    stack.layers[0] = replace(bottom, kind="picture")
    for layer in stack.layers[1:]:
        if layer.kind == "picture":
            layer.kind = "paint"
