"""The user-folder dataset: the images of a folder (recursively), squared and resized.

:func:`scan_folder` lists the images of a folder in a fixed order and, by default, reads each
one through :func:`core.imageio.load_image`, so a corrupt, truncated, huge or mislabelled file
is set aside with the reason that function gives instead of failing a training run later.
:class:`FolderWorld` serves them as :class:`~core.data.worlds.Sample` objects: centre-cropped
or padded to a square, resized with Pillow's antialiasing Lanczos filter, optionally flipped
left-right from a seed, with a caption from a same-name ``.txt`` file when there is one.

Each file is decoded once: the scan keeps the squared, resized picture in a bounded in-memory
cache, so later epochs never decode again unless the cache was too small to hold the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image

from core.data.worlds import Sample
from core.imageio import IMAGE_SUFFIXES, ImageError, LoadedImage, load_image

log = logging.getLogger(__name__)

CAPTION_SUFFIX = ".txt"
MAX_CAPTION_CHARS = 2000
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
Fit = Literal["crop", "pad"]


class FolderError(ValueError):
    """A folder that cannot serve as a dataset; the message is readable by the user."""


@dataclass
class FolderScan:
    root: Path
    files: list[Path] = field(default_factory=list)  # usable images, sorted
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why it was left out)

    def skipped_report(self) -> list[dict[str, str]]:
        """Every skipped file as ``{"path": relative path, "reason": why}`` (JSON-ready)."""
        return [{"path": _relative(p, self.root), "reason": why} for p, why in self.skipped]

    def summary(self, limit: int = 3) -> str:
        """"3 files skipped (a.png: truncated ...; ...)" for messages; "" when none were."""
        if not self.skipped:
            return ""
        parts = [f"{_relative(p, self.root)}: {why}" for p, why in self.skipped[:limit]]
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        n = len(self.skipped)
        return f"{n} file{'s' if n != 1 else ''} skipped ({'; '.join(parts)}{more})"


def scan_folder(path: str | os.PathLike, verify: bool = True,
                on_image: Any = None) -> FolderScan:
    """List the images under ``path`` (recursively, sorted by relative path).

    Only files whose suffix is in :data:`core.imageio.IMAGE_SUFFIXES` are candidates; other
    files are reported in ``skipped`` (except hidden files and ``.txt`` captions, which are
    expected company). With ``verify`` every candidate is decoded, and the ones that fail are
    skipped with the :class:`ImageError` message; ``on_image(path, loaded)`` is then called
    with each good image, so a caller can keep what it needs without decoding twice.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise FolderError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder.")
    scan = FolderScan(root=root)
    candidates: list[Path] = []
    for folder, dirs, names in os.walk(root, onerror=None, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith("."):
                continue
            file = Path(folder) / name
            suffix = file.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                candidates.append(file)
            elif suffix != CAPTION_SUFFIX:
                kind = suffix or "no suffix"
                scan.skipped.append((file, f"not an image type Easel reads ({kind})"))
    candidates.sort(key=lambda p: _sort_key(p, root))
    for file in candidates:
        if not verify:
            scan.files.append(file)
            continue
        try:
            loaded = load_image(file)
        except ImageError as exc:
            scan.skipped.append((file, str(exc)))
            continue
        except OSError as exc:  # e.g. permission denied or vanished between walk and read
            scan.skipped.append((file, f"could not be read ({exc.strerror or exc})"))
            continue
        scan.files.append(file)
        if on_image is not None:
            on_image(file, loaded)
    scan.skipped.sort(key=lambda item: _sort_key(item[0], root))
    return scan


def read_caption(image_path: str | os.PathLike) -> str | None:
    """The text of the ``.txt`` file next to an image with the same stem, stripped; else None."""
    text_path = Path(image_path).with_suffix(CAPTION_SUFFIX)
    try:
        raw = text_path.read_bytes()
    except OSError:
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    return text[:MAX_CAPTION_CHARS] or None


def square_image(loaded: LoadedImage, size: int, fit: Fit = "crop") -> np.ndarray:
    """A (size, size, 3) uint8 picture: centre-cropped or padded square, Lanczos-resized.

    Transparent pixels are composited over white. Padding uses the mean colour of the image
    border, so the added bars continue the picture's own edge rather than a fixed colour.
    """
    rgb = loaded.rgb
    if loaded.alpha is not None:
        a = loaded.alpha[..., None].astype(np.float32) / 255.0
        rgb = (rgb * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
    h, w = rgb.shape[:2]
    if fit == "crop":
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        rgb = rgb[y0:y0 + side, x0:x0 + side]
    elif fit == "pad":
        side = max(h, w)
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        out = np.empty((side, side, 3), np.uint8)
        out[:] = border.mean(axis=0).round().astype(np.uint8)
        y0, x0 = (side - h) // 2, (side - w) // 2
        out[y0:y0 + h, x0:x0 + w] = rgb
        rgb = out
    else:
        raise ValueError(f"fit must be 'crop' or 'pad', not {fit!r}")
    im = Image.fromarray(np.ascontiguousarray(rgb))
    if im.size != (size, size):
        # reducing_gap: a fast integer box reduction first, then Lanczos for the last factor.
        im = im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8).copy()


class FolderWorld:
    """The images of a user folder as Samples; ``load(i, size, rng)`` returns picture ``i``.

    ``size`` is the size the scan prepares and caches; ``load`` at another size decodes again.
    ``flip`` enables random left-right flips in :meth:`load` when it is given an ``rng``.
    """

    name = "folder"
    attributes: ClassVar[dict[str, list[str]]] = {}  # a folder has no judged labels

    def __init__(self, path: str | os.PathLike, size: int = 64, fit: Fit = "crop",
                 flip: bool = True, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if fit not in ("crop", "pad"):
            raise ValueError(f"fit must be 'crop' or 'pad', not {fit!r}")
        if size < 1:
            raise ValueError(f"image size must be a positive number of pixels, not {size}")
        self.size, self.fit, self.flip = int(size), fit, flip
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self.decodes = 0  # how many times a file was decoded (the scan's included)

        def keep(file: Path, loaded: LoadedImage) -> None:
            self.decodes += 1
            self._remember(file, self.size, square_image(loaded, self.size, self.fit))

        self.scan = scan_folder(path, verify=True, on_image=keep)
        self.root = self.scan.root
        self.files = self.scan.files
        if not self.files:
            detail = self.scan.summary()
            raise FolderError(f"No usable images in {self.root}"
                              + (f": {detail}" if detail else "") + ".")
        for file, why in self.scan.skipped:
            log.info("Skipping %s: %s", file, why)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int, size: int | None = None,
             rng: np.random.Generator | int | None = None) -> Sample:
        """Picture ``i`` at ``size`` (default: the world's size), flipped at random by ``rng``.

        ``rng`` may be a Generator or an int seed; without one the picture is never flipped,
        so evaluation sees the files as they are.
        """
        if not 0 <= i < len(self.files):
            raise IndexError(f"image index {i} out of range (the folder has {len(self.files)})")
        size = self.size if size is None else int(size)
        file = self.files[i]
        image = self._cache.get((file, size))
        if image is None:
            try:
                loaded = load_image(file)
            except (ImageError, OSError) as exc:
                # The file changed since the scan; say which one rather than crash a run.
                raise FolderError(f"{_relative(file, self.root)} can no longer be read: "
                                  f"{exc}") from exc
            self.decodes += 1
            image = square_image(loaded, size, self.fit)
            self._remember(file, size, image)
        else:
            self._cache.move_to_end((file, size))
        flipped = False
        if self.flip and rng is not None:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            flipped = bool(gen.integers(2))
        if flipped:
            image = image[:, ::-1]
        labels = {"path": _relative(file, self.root), "flipped": flipped}
        return Sample(image=np.array(image), labels=labels,  # a copy: the cache stays intact
                      caption=read_caption(file), seed=i)

    def render(self, seed: int, size: int = 64) -> Sample:
        """World-protocol access: picture ``seed % len`` with a flip drawn from the seed."""
        return self.load(int(seed) % len(self.files), size, rng=int(seed))

    def _remember(self, file: Path, size: int, image: np.ndarray) -> None:
        image.flags.writeable = False  # cached pictures are shared; load hands out copies
        if image.nbytes > self.cache_bytes:
            return
        self._cache[(file, size)] = image
        self._cached_bytes += image.nbytes
        while self._cached_bytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes


MIN_HELD_OUT = 2  # a folder of at least 5x this many pictures always holds this many out


def held_out_split(relative_paths: list[str], fraction: float) -> set[int]:
    """The indices of a folder's held-out files: those whose SHA-1 of the relative path
    falls below ``fraction`` (not Python's salted hash: the split is the same in every
    process, and adding or removing other pictures never moves a file across it). A small
    folder still gets :data:`MIN_HELD_OUT` (the lowest hashes), so its model can be measured."""
    if fraction <= 0:
        return set()
    keys = [int.from_bytes(hashlib.sha1(p.encode("utf-8")).digest()[:4], "big")
            for p in relative_paths]
    held = {i for i, k in enumerate(keys) if k < fraction * 2 ** 32}
    if len(held) < MIN_HELD_OUT and len(keys) >= 5 * MIN_HELD_OUT:
        held = set(sorted(range(len(keys)), key=keys.__getitem__)[:MIN_HELD_OUT])
    return held


def _relative(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return str(file)


def _sort_key(file: Path, root: Path) -> tuple[str, str]:
    rel = _relative(file, root)
    return (rel.casefold(), rel)
