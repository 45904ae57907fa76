"""The one check of a job spec read from a file (a PNG's metadata, `easel rerun`, a drop).

A spec dict from outside is untrusted: a few kilobytes of JSON can nest deeply, list thousands
of images, embed huge masks, give a number with hundreds of digits, or name any file on disk.
:func:`check_spec_dict` looks at the dict alone (types, ranges of magnitude, nesting depth, list
lengths, the pixel counts in embedded images' headers) before anything is decoded or read, and
:func:`check_image_files` reads only the headers of the image files it references, so the
memory and time a spec costs are bounded by what its inputs are, not by what it claims.
Every panel's restore and ``easel rerun`` go through ``JobSpec.from_dict``, which calls both.

What a spec may make Easel read: image files (by an image suffix; hash-checked afterwards when
the spec carries a hash) and model files inside Easel's model folders, never a weights path
elsewhere. A referenced image that cannot be opened gets one message whatever the reason, so
a spec cannot probe which other paths exist.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable
from dataclasses import Field
from pathlib import Path
from typing import Any

from core.jobs import JobError

MAX_DEPTH = 8  # a spec nests at most dict > list > list > number (latents) or dict > list > ref
MAX_ITEMS = 4096  # entries in one list or keys in one dict
MAX_NODES = 200_000  # values in the whole spec
MAX_TEXT = 8192  # characters in one string (a prompt, a path)
MAX_NUMBER = 2**53  # magnitude of any number: far above every setting, far below overflow
MAX_IMAGES = 16  # image references in one spec (a picture, a mask, up to 8 style images)
MAX_EMBEDDED = 16 * 2**20  # base64 characters of one embedded image (masks compress to KBs)
MODEL_FIELDS = ("model", "fast", "one_pass")  # fields that name a model: installed names only
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_spec_dict(d: Any, fields: Iterable[Field]) -> None:
    """Refuse a spec dict whose shape, types or sizes do not fit a spec with ``fields``.

    Reads no file and decodes no image: embedded images are sized from their PNG headers.
    """
    if not isinstance(d, dict):
        raise JobError("The job settings are not in Easel's format.")
    _check_shape(d)
    refs = 0
    embedded_pixels = 0
    for f in fields:
        if f.name not in d:
            continue
        value, kind = d[f.name], str(f.type)
        if kind == "tuple[ImageRef, ...]":
            if not isinstance(value, list):
                raise JobError(f"The job's {f.name!r} is not a list of image references.")
            items = value
        elif kind == "ImageRef | None":
            items = [] if value is None else [value]
        else:
            _check_value(f.name, kind, value)
            if f.name in MODEL_FIELDS:
                check_model_name(f.name, value)
            continue
        for item in items:
            refs += 1
            if refs > MAX_IMAGES:
                raise JobError(f"The job refers to more than {MAX_IMAGES} images.")
            embedded_pixels += _check_ref(f.name, item)
    limit = _max_pixels()
    if embedded_pixels > 2 * limit:
        raise JobError(f"The job's embedded images hold {embedded_pixels / 1e6:.1f} megapixels "
                        f"together, over twice the limit of {limit / 1e6:g} megapixels.")


def check_image_files(d: dict[str, Any], fields: Iterable[Field]) -> None:
    """Refuse image files referenced by the (checked) spec dict that are not images or are too
    big, from their headers alone, before any is decoded; embedded images count too."""
    from core.imageio import ImageError, image_size

    limit = _max_pixels()
    total = 0
    for f in fields:
        if "ImageRef" not in str(f.type) or d.get(f.name) is None:
            continue
        items = d[f.name] if isinstance(d[f.name], list) else [d[f.name]]
        for ref in items:
            if "png" in ref:
                total += _embedded_pixels(f.name, ref["png"])
                continue
            path = ref.get("path")
            if not path:
                continue
            path = check_image_path(path)
            try:
                w, h = image_size(path)
            except ImageError:
                raise JobError(unreadable_image(path)) from None
            if w * h > limit:
                raise JobError(f"{Path(path).name} is {w}x{h}; the limit is "
                                f"{limit / 1e6:g} megapixels.")
            total += w * h
    if total > 2 * limit:
        raise JobError(f"The job's images hold {total / 1e6:.1f} megapixels together, over "
                        f"twice the limit of {limit / 1e6:g} megapixels.")


def check_image_path(path: str) -> str:
    """``path`` when it names an image file by its suffix, else the unreadable-image error."""
    from core.imageio import IMAGE_SUFFIXES

    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise JobError(unreadable_image(path))
    return path


def unreadable_image(path: str) -> str:
    """One message for a referenced image that is missing, not a file or not an image, so a
    spec cannot tell which."""
    return (f"The image {Path(path).name!r} this job was made from cannot be opened: it is "
            "missing, unreadable or not an image. Open the picture itself instead.")


def check_model_name(field: str, value: str) -> None:
    """A model named by a spec from a file must be installed: a plain name, or a path inside
    Easel's model folders, never a weights file elsewhere."""
    if not value or not any(c in value for c in "/\\") and not value.endswith(
            (".safetensors", ".json")):
        return
    from core import paths

    try:
        target = Path(value).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        target = None
    roots = [paths.shipped_weights_dir(), paths.models_dir()]
    if target is not None and any(target.is_relative_to(r.resolve()) for r in roots):
        return
    raise JobError(f"The job's {field} names a model file outside Easel's model folders "
                    f"({Path(value).name}); saved settings may only name installed models. "
                    "Install it with: easel models import FILE")


# --------------------------------------------------------------------------- parts


def _check_shape(d: dict[str, Any]) -> None:
    """Depth, list lengths, string lengths and the number of values, without recursion."""
    stack: list[tuple[Any, int]] = [(d, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise JobError("The job settings are too large.")
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise JobError("The job settings nest too deeply to be Easel's.")
            if len(value) > MAX_ITEMS:
                raise JobError(f"The job settings hold a list of {len(value)} entries; at "
                                f"most {MAX_ITEMS} are allowed.")
            children = value.values() if isinstance(value, dict) else value
            if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
                raise JobError("The job settings are not in Easel's format.")
            stack.extend((c, depth + 1) for c in children)
        elif isinstance(value, str):
            if len(value) > MAX_EMBEDDED:  # texts are checked against MAX_TEXT field by field
                raise JobError("The job settings hold a text far too long to be Easel's.")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int | float):
            _check_number("A value", value)
        else:
            raise JobError("The job settings are not in Easel's format.")


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER:
            raise JobError(f"{name} in the job settings is out of range ({_short(value)}).")
    elif isinstance(value, float):
        if not abs(value) <= MAX_NUMBER:  # also NaN and infinities
            raise JobError(f"{name} in the job settings is out of range ({_short(value)}).")
    else:
        raise JobError(f"{name} in the job settings is not a number ({_short(value)}).")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(name: str, kind: str, value: Any) -> None:
    """``value`` fits the field's annotation (as JSON gives it back: tuples are lists)."""
    what = {"int": "a whole number", "float": "a number", "str": "a text", "bool": "yes or no",
            "tuple[int, ...]": "a list of whole numbers", "tuple[float, ...]": "a list of numbers",
            "Latents": "a list of latents (lists of numbers)",
            "tuple[tuple[str, float], ...]": "a list of (name, amount) pairs"}.get(kind)
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": _is_number,
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "tuple[int, ...]": lambda v: isinstance(v, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v),
        "tuple[float, ...]": lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
        "Latents": lambda v: isinstance(v, list) and all(
            isinstance(z, list) and all(_is_number(x) for x in z) for z in v),
        "tuple[tuple[str, float], ...]": lambda v: isinstance(v, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and _is_number(p[1])
            for p in v),
    }.get(kind)
    if ok is None:
        raise JobError(f"The job's {name!r} cannot be read back from saved settings.")
    if not ok(value):
        raise JobError(f"The job's {name!r} must be {what}, not {_short(value)}.")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise JobError(f"The job's {name!r} is a text of {len(value)} characters; at most "
                        f"{MAX_TEXT} are allowed.")


def _check_ref(name: str, ref: Any) -> int:
    """An image reference's fields; the pixels of its embedded PNG (0 when it has none)."""
    if not isinstance(ref, dict) or not isinstance(ref.get("sha256"), str):
        raise JobError(f"The job's {name!r} is not an image reference.")
    for key in ("path", "png"):
        if key in ref and not isinstance(ref[key], str | None):
            raise JobError(f"The job's {name!r} has a {key} that is not a text.")
    if len(ref.get("path") or "") > MAX_TEXT:
        raise JobError(f"The job's {name!r} has a path far too long.")
    shape = ref.get("shape", [])
    if not (isinstance(shape, list) and len(shape) <= 3
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 10**6
                    for x in shape)):
        raise JobError(f"The job's {name!r} has an unreadable shape.")
    if ref.get("path"):
        check_image_path(ref["path"])
    return _embedded_pixels(name, ref["png"]) if ref.get("png") else 0


def _embedded_pixels(name: str, data: str) -> int:
    """Width x height from an embedded PNG's header (its first 24 bytes), checked against the
    pixel limit before a byte of it is inflated."""
    if len(data) > MAX_EMBEDDED:
        raise JobError(f"The image embedded in the job's {name!r} is too large.")
    try:
        head = base64.b64decode(data[:32], validate=True)
    except (binascii.Error, ValueError):
        head = b""
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise JobError(f"The image embedded in the job's {name!r} cannot be read (not a PNG).")
    w, h = struct.unpack(">II", head[16:24])
    limit = _max_pixels()
    if w * h > limit:
        raise JobError(f"The image embedded in the job's {name!r} is {w}x{h}; the limit is "
                        f"{limit / 1e6:g} megapixels.")
    return w * h


def _max_pixels() -> int:
    from core.imageio import max_pixels_setting

    return max_pixels_setting()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
