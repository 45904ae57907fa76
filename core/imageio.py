"""Safe image intake, atomic writes, and PNG output that carries how it was made.

Intake (:func:`load_image`, :func:`load_mask`) accepts only PNG, JPEG, WebP, BMP, TIFF and GIF,
detected from the bytes rather than the file name; refuses images over a pixel limit by reading
the header before any pixel is decoded; applies the EXIF orientation; and normalises every mode
(palette, 1-bit, greyscale, 16-bit, float, CMYK, premultiplied alpha) to RGB uint8 plus an
optional alpha plane. Every failure is an :class:`ImageError` whose text names the file.

Output (:func:`save_png`) writes a PNG atomically with three kinds of metadata: a tEXt
``parameters`` summary in the AUTOMATIC1111 style (what other tools show), an iTXt ``easel``
JSON with the full job spec and versions (what Easel reads back to replay a run), and an XMP
packet with the IPTC DigitalSourceType that marks the image as made by a trained model.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import platform
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from core import pngcheck
from core.paths import atomic_write


class SpecLike(Protocol):
    """What save_png takes as a spec besides a dict: a core.jobs.JobSpec (imageio sits below
    the job protocol and does not import it)."""

    def to_dict(self) -> dict[str, Any]: ...

log = logging.getLogger(__name__)
# PIL logs damage it finds (e.g. "More samples per pixel than can be decoded") at error level;
# with no handler configured (the CLI) Python would print that beside Easel's own message. The
# NullHandler stops that fallback; an app that configures logging still receives the records.
logging.getLogger("PIL").addHandler(logging.NullHandler())

ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
DEFAULT_MAX_PIXELS = 80_000_000
MAX_PIXELS_ENV = "EASEL_MAX_PIXELS"

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
)
IMAGE_FILE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"

_ALLOWED_TEXT = "PNG, JPEG, WebP, BMP, TIFF, GIF"

# Leading bytes of the allowed formats. Only used to word an error: a file that starts like an
# allowed format but does not open is "corrupt", anything else is "not an image Easel can open".
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM",
               b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

SOURCE_TYPE_URI = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = SOURCE_TYPE_URI + "trainedAlgorithmicMedia"
COMPOSITE = SOURCE_TYPE_URI + "compositeWithTrainedAlgorithmicMedia"
XMP_KEY = "XML:com.adobe.xmp"  # the iTXt keyword the XMP spec (part 3) assigns to PNG
EASEL_KEY = "easel"
# Easel's metadata is a job spec (an embedded mask at most) and versions: a few KB, rarely a
# few hundred. More than this is not read, so a crafted chunk costs no memory or time.
MAX_METADATA_BYTES = 8 << 20
PARAMETERS_KEY = "parameters"


class ImageError(Exception):
    """An image that cannot be read, or is refused; the message is one sentence for the user."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(eq=False)
class LoadedImage:
    rgb: np.ndarray  # HxWx3 uint8, C-contiguous
    alpha: np.ndarray | None  # HxW uint8; None when the image is fully opaque or has no alpha
    path: str | None  # absolute path it was read from; None for bytes
    format: str  # PIL format name, e.g. "PNG", "JPEG" ("MPO" for multi-picture JPEGs)
    mode: str  # the PIL mode of the file before normalisation, e.g. "P", "I;16", "CMYK"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def rgba(self) -> np.ndarray:
        h, w = self.rgb.shape[:2]
        a = self.alpha if self.alpha is not None else np.full((h, w), 255, np.uint8)
        return np.ascontiguousarray(np.dstack([self.rgb, a]))


# --------------------------------------------------------------------------- intake


def max_pixels_setting() -> int:
    """The pixel limit: ``EASEL_MAX_PIXELS`` when set to a positive integer, else the default."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("%s=%r is not a positive whole number; using %d.", MAX_PIXELS_ENV, raw,
                    DEFAULT_MAX_PIXELS)
        return DEFAULT_MAX_PIXELS
    return value


def load_image(source: str | os.PathLike | bytes, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file (or its bytes) into RGB uint8 plus optional alpha, or raise ImageError."""
    limit = max_pixels_setting() if max_pixels is None else int(max_pixels)
    name, path, fp = _open_source(source)
    with fp, _pil_checks_off(), _decoder_notes_to_log(name):
        im = _identify(fp, name, path)
        try:
            with im:
                _check_pixels(im.size, limit, name, path)
                fmt, mode = im.format or "", im.mode
                if fmt == "PNG":
                    pngcheck.verify(fp)  # Pillow skips the pixel data's checksums
                # libtiff prints its complaints on stderr; they go to the log instead
                with _native_stderr_to_log(name) if fmt == "TIFF" else contextlib.nullcontext():
                    im.load()  # decodes the first frame only (GIF, APNG, WebP, TIFF pages)
                _check_pixels(im.size, limit, name, path)
                rgb, alpha = _normalise(_upright(im))
        except ImageError:
            raise
        except MemoryError:
            raise ImageError(f"{name} is too large to open with the memory available.",
                             path) from None
        except pngcheck.PngDamage as e:
            log.debug("%s: %s", name, e)
            raise ImageError(f"{name} is truncated or corrupt and cannot be read.", path) from e
        except Exception as e:
            # The decoders are C code fed untrusted bytes; they report damage as OSError,
            # ValueError, SyntaxError, struct.error, EOFError, IndexError and more. Whatever the
            # type, the file could not be decoded, and the user needs one readable sentence.
            log.debug("decoding %s failed", name, exc_info=True)
            raise ImageError(f"{name} is truncated or corrupt and cannot be read.", path) from e
    return LoadedImage(rgb=rgb, alpha=alpha, path=path, format=fmt, mode=mode)


def load_mask(source: str | os.PathLike | bytes,
              size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask: HxW uint8, 255 where the image is to be filled and 0 elsewhere.

    Bright pixels (ITU-R BT.601 luma >= 128) are "fill". When the file has transparency, a pixel
    must also be mostly opaque (alpha >= 128), so white strokes painted on a transparent layer
    work even where the transparent pixels hold white colour values. ``size`` is the (w, h) of
    the image the mask belongs to; a mask of another size is refused.
    """
    loaded = load_image(source)
    if size is not None and tuple(size) != loaded.size:
        w, h = loaded.size
        raise ImageError(f"{_display_name(source)} is {w}x{h} but the image is "
                         f"{size[0]}x{size[1]}.", loaded.path)
    rgb = loaded.rgb.astype(np.uint32)
    luma = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2]) // 1000
    fill = luma >= 128
    if loaded.alpha is not None:
        fill &= loaded.alpha >= 128
    return np.where(fill, np.uint8(255), np.uint8(0))


def image_size(source: str | os.PathLike | bytes) -> tuple[int, int]:
    """(width, height) from an image's header, decoding no pixel; ImageError as load_image."""
    name, path, fp = _open_source(source)
    with fp, _pil_checks_off(), _identify(fp, name, path) as im:
        return im.size


def _display_name(source: str | os.PathLike | bytes) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return "The image data"
    return Path(os.fspath(source)).name or os.fspath(source)


def _open_source(source: str | os.PathLike | bytes) -> tuple[str, str | None, io.IOBase]:
    """Name for messages, absolute path (None for bytes) and an open binary stream."""
    name = _display_name(source)
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ImageError(f"{name} is empty (0 bytes).")
        return name, None, io.BytesIO(bytes(source))
    path = os.path.abspath(os.fspath(source))
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{name} is a folder, not an image.", path)
        if not stat.S_ISREG(st.st_mode):  # a device or pipe could block or never end
            raise ImageError(f"{name} is not a regular file.", path)
        if st.st_size == 0:
            raise ImageError(f"{name} is empty (0 bytes).", path)
        return name, path, open(path, "rb")  # closed by the caller's `with`
    except FileNotFoundError:
        raise ImageError(f"{name} was not found.", path) from None
    except PermissionError:
        raise ImageError(f"{name} cannot be read (permission denied).", path) from None
    except OSError as e:
        raise ImageError(f"{name} cannot be read: {e.strerror or e}.", path) from None
    except ValueError:  # e.g. a NUL character in the path
        raise ImageError(f"{name!r} is not a valid file path.", path) from None


def _identify(fp: io.IOBase, name: str, path: str | None) -> Image.Image:
    """Image.open restricted to the allowed formats: reads the header, decodes nothing."""
    try:
        return Image.open(fp, formats=list(ALLOWED_FORMATS))
    except MemoryError:
        raise ImageError(f"{name} is too large to open with the memory available.",
                         path) from None
    except Exception as e:  # UnidentifiedImageError, or a plugin choking on a damaged header
        fp.seek(0)
        head = fp.read(16)
        webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        if webp or head.startswith(_SIGNATURES):
            raise ImageError(f"{name} is truncated or corrupt and cannot be read.", path) from e
        raise ImageError(f"{name} is not an image Easel can open (allowed: {_ALLOWED_TEXT}).",
                         path) from e


def _check_pixels(size: tuple[int, int], limit: int, name: str, path: str | None) -> None:
    w, h = size
    if w * h > limit:
        mp = f"{w * h / 1e6:.1f}" if w * h >= 100_000 else f"{w * h / 1e6:.2g}"
        raise ImageError(f"{name} is {w}x{h} ({mp} megapixels); the limit is "
                         f"{limit / 1e6:g} megapixels.", path)


# PIL keeps its decompression-bomb limit in a module global, and warns or raises (with its own
# wording and its own ~89 MP threshold) inside Image.open and some decoders. Our limit is checked
# on the header before anything is decoded, so for the length of one load PIL's check is turned
# off and restored afterwards; the lock keeps concurrent loads from restoring each other's value.
# Likewise PIL refuses a whole PNG whose one compressed text chunk inflates past 1 MB (often
# harmless metadata): for a load its per-chunk limit is raised to its limit on all text together
# (64 MB), which still bounds the memory text can take.
_PIL_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pil_checks_off() -> Iterator[None]:
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK
        Image.MAX_IMAGE_PIXELS = None
        PngImagePlugin.MAX_TEXT_CHUNK = max(saved[1], PngImagePlugin.MAX_TEXT_MEMORY)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK = saved


@contextlib.contextmanager
def _decoder_notes_to_log(name: str) -> Iterator[None]:
    """PIL's warnings about a damaged file (EXIF, TIFF tags) go to the log, not the terminal."""
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        yield
    for note in notes:
        log.debug("%s: %s", name, note.message)


@contextlib.contextmanager
def _native_stderr_to_log(name: str) -> Iterator[None]:
    """Catch what C libraries write on file descriptor 2 meanwhile and log it at debug level.

    libtiff reports damage through its default handlers, which print on stderr beside Easel's
    own one-line message (and Pillow raises an error of its own as well).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr (a windowed app)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(64 * 1024).decode("utf-8", "replace").strip()
            if text:
                log.debug("%s: %s", name, text)


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (cameras store pixels sideways and set the tag)."""
    try:
        # exif_transpose copies even an upright image; only call it when there is work to do.
        if im.getexif().get(_ORIENTATION, 1) in range(2, 9):
            return ImageOps.exif_transpose(im) or im
        return im
    except MemoryError:
        raise
    except Exception:
        # A damaged EXIF block should not cost the user their photo: show it as stored.
        log.debug("ignoring unreadable EXIF orientation", exc_info=True)
        return im


_ORIENTATION = 0x0112  # EXIF tag
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_HAS_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def _normalise(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any PIL mode -> (HxWx3 uint8 RGB, HxW uint8 alpha or None when fully opaque)."""
    if im.mode in _SIXTEEN_BIT or im.mode in ("I", "F"):
        grey = _grey_to_uint8(np.asarray(im), im.mode)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), None
    if im.mode == "La":  # premultiplied; PIL converts La only to LA
        im = im.convert("LA")
    if im.mode in _HAS_ALPHA or "transparency" in im.info:
        # PIL applies a palette's or a single-colour tRNS transparency when converting to RGBA.
        rgba = np.asarray(im.convert("RGBA"))
        rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        return rgb, (None if alpha.min() == 255 else alpha)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im), None  # np.array, not asarray: a writable array of our own


def _grey_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """Scale high-bit-depth greyscale to 8 bits by its range instead of clipping at 255.

    16-bit data (and 32-bit integer data that fits in 16 bits, which is how PIL has returned
    16-bit PNGs) maps 0..65535 onto 0..255 (v / 257, rounded). Float data in [0, 1] maps by
    x 255; any other range (integer or float) is stretched from its own min..max.
    """
    a = a.astype(np.float64)
    a[~np.isfinite(a)] = 0.0
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = a * 255.0
    elif mode != "F" and lo >= 0 and hi <= 65535:
        scaled = a / 257.0
    else:
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- writing


def save_png(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None, *,
             spec: dict[str, Any] | SpecLike | None = None, extra: dict[str, Any] | None = None,
             edited: bool = False, overwrite: bool = True) -> None:
    """Write RGB (plus optional alpha) as a PNG with Easel's metadata, atomically.

    ``spec`` is the job spec (or its dict); ``extra`` is merged into the ``easel`` JSON (e.g.
    ``{"models": {name: sha256}}``); ``edited=True`` marks an edit of the user's own image.
    ``overwrite=False``: FileExistsError rather than replace a file (see atomic_write).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"save_png needs an HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}.")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha must be {rgb.shape[:2]} uint8, got {alpha.dtype} "
                             f"{alpha.shape}.")
        im = Image.fromarray(np.ascontiguousarray(np.dstack([rgb, alpha])), "RGBA")
    else:
        im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else spec
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, parameters_text(spec_dict))  # iTXt if not Latin-1
    easel = {"spec": spec_dict, "versions": versions(), **(extra or {})}
    info.add_itxt(EASEL_KEY, json.dumps(easel, ensure_ascii=False, sort_keys=False))
    info.add_itxt(XMP_KEY, xmp_packet(edited))

    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info)
    atomic_write(path, buf.getvalue(), overwrite=overwrite)


def parameters_text(spec: dict[str, Any] | None) -> str:
    """A one-glance summary in the AUTOMATIC1111 "parameters" layout.

    The prompt on the first line, "Negative prompt: ..." on the second, then one line of
    "Key: value" pairs from the spec's scalar fields (image fields and lists are left to the
    JSON), ending with the Easel version.
    """
    spec = spec or {}
    lines = []
    for key, label in (("prompt", ""), ("negative_prompt", "Negative prompt: ")):
        if isinstance(spec.get(key), str) and spec[key].strip():
            lines.append(label + spec[key].strip())
    pairs = []
    if spec.get("kind"):
        pairs.append(f"Job: {spec['kind']}")
    for key, value in spec.items():
        if key in ("kind", "prompt", "negative_prompt") or value is None:
            continue
        if isinstance(value, bool | int | float | str):
            pairs.append(f"{key.replace('_', ' ').capitalize()}: {_quote(value)}")
    pairs.append(f"Version: easel {versions()['easel']}")
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def _quote(value: Any) -> str:
    """Quote values that would break the "Key: value, Key: value" line, as AUTOMATIC1111 does."""
    text = str(value)
    if any(c in text for c in ",:\n\""):
        return json.dumps(text, ensure_ascii=False)
    return text


def xmp_packet(edited: bool = False) -> str:
    """An XMP packet whose IPTC DigitalSourceType says a trained model made (or edited) this."""
    source = COMPOSITE if edited else TRAINED
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f'    Iptc4xmpExt:DigitalSourceType="{source}"\n'
        f'    xmp:CreatorTool="Easel {versions()["easel"]}"/>\n'
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )


def versions() -> dict[str, str | None]:
    """Versions of Easel and the libraries that shape its pixels.

    Read from installed package metadata, so recording them never imports torch.
    """
    return dict(_versions())


@lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    from importlib import metadata  # some 30 ms at import: the app's start does without

    out: dict[str, str | None] = {}
    for key, dist in (("easel", "easel"), ("torch", "torch"), ("numpy", "numpy"),
                      ("pillow", "pillow"), ("safetensors", "safetensors"),
                      ("pyside6", "PySide6-Essentials")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            module = sys.modules.get(key if key != "pillow" else "PIL")
            out[key] = getattr(module, "__version__", None)
    out["easel"] = out["easel"] or "dev"
    out["python"] = platform.python_version()
    return out


# --------------------------------------------------------------------------- reading back


def read_metadata(path: str | os.PathLike | bytes) -> dict[str, Any] | None:
    """The ``easel`` JSON of a PNG written by :func:`save_png`, or None when it has none.

    Reads the header chunks only (save_png writes its text before the pixel data), so it is
    cheap and works on any image size. A non-PNG image gives None, and so does metadata over
    :data:`MAX_METADATA_BYTES` (it is not read); a file that is not an image raises ImageError.
    """
    try:
        return strict_metadata(path)
    except ImageError as e:
        if not isinstance(e.__cause__, pngcheck.TextTooLarge):
            raise
        log.warning("%s", e)
        return None


def strict_metadata(path: str | os.PathLike | bytes) -> dict[str, Any] | None:
    """read_metadata, but over-sized metadata is an ImageError saying so (read_spec needs
    to tell the user)."""
    name, abspath, fp = _open_source(path)
    with fp, _pil_checks_off(), _decoder_notes_to_log(name):
        with _identify(fp, name, abspath) as im:
            if im.format != "PNG":
                return None
        try:
            raw = pngcheck.read_text(fp, EASEL_KEY, MAX_METADATA_BYTES)
        except pngcheck.TextTooLarge as e:
            raise ImageError(f"{name} carries Easel metadata over {MAX_METADATA_BYTES >> 20} MiB;"
                             " Easel does not read it.", abspath) from e
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: crafted, deeply nested JSON
        log.info("%s has unreadable Easel metadata; ignoring it.", name)
        return None
    return meta if isinstance(meta, dict) else None


def is_easel_png(path: str | os.PathLike | bytes) -> bool:
    try:
        return read_metadata(path) is not None
    except ImageError:
        return False


ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}


def save_animation(path: str | os.PathLike, frames: list[np.ndarray], frame_ms: int = 100,
                   loop: bool = True, overwrite: bool = True) -> None:
    """Write HxWx3 uint8 frames as an animated GIF or WebP (by the suffix), atomically.

    WebP is lossless here; GIF gets a per-frame adaptive palette, which suits the few colours of
    generated faces and walks.
    """
    fmt = ANIMATION_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: an animation is saved as .gif or .webp.")
    if not frames:
        raise ImageError("There are no frames to save.")
    ims = [Image.fromarray(np.ascontiguousarray(f), "RGB") for f in frames]
    buf = io.BytesIO()
    options: dict[str, Any] = {"save_all": True, "append_images": ims[1:],
                               "duration": int(frame_ms), "loop": 0 if loop else 1}
    if fmt == "WEBP":
        options["lossless"] = True
    ims[0].save(buf, format=fmt, **options)
    atomic_write(path, buf.getvalue(), overwrite=overwrite)
