"""What a folder holds as a training set: usable images, files set aside and why, near-duplicates
and the spread of sizes and shapes (the Train panel's dataset view).

Near-duplicates are found with a difference hash (Krawetz's dHash): the picture in grey at 9x8,
one bit per pair of horizontal neighbours (is the left one brighter?). Re-saves, rescales and
small edits keep all but a few of the 64 bits; two files whose hashes differ in at most
``DUPLICATE_BITS`` bits are grouped as near-duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.data.folder import _relative, scan_folder

DUPLICATE_BITS = 4  # of 64: at most this many differing bits make a near-duplicate


def dhash(rgb: np.ndarray) -> int:
    """The 64-bit difference hash of a picture (HxWx3 uint8)."""
    grey = Image.fromarray(np.ascontiguousarray(rgb[..., :3])).convert("L")
    small = np.asarray(grey.resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    bits = (small[:, :-1] > small[:, 1:]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def near_duplicates(hashes: list[int], max_bits: int = DUPLICATE_BITS) -> list[list[int]]:
    """Groups (indices into ``hashes``, ascending) of two or more pictures whose hashes differ
    in at most ``max_bits`` bits, linked transitively; groups in order of their first index."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if (hashes[i] ^ hashes[j]).bit_count() <= max_bits:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        groups.setdefault(root(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@dataclass
class FolderReport:
    root: Path
    files: list[str] = field(default_factory=list)  # usable images, relative paths, sorted
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) per file
    duplicates: list[list[str]] = field(default_factory=list)  # groups of relative paths

    @property
    def count(self) -> int:
        return len(self.files)

    def spread(self) -> dict[str, Any]:
        """Sizes and shapes: the smallest, median and largest side, and how many pictures are
        square, landscape or portrait (within 5% counts as square)."""
        if not self.sizes:
            return {"min_side": 0, "median_side": 0, "max_side": 0,
                    "square": 0, "landscape": 0, "portrait": 0}
        sides = np.array([min(w, h) for w, h in self.sizes] + [max(w, h) for w, h in self.sizes])
        ratios = np.array([w / h for w, h in self.sizes])
        return {"min_side": int(sides.min()), "median_side": int(np.median(sides)),
                "max_side": int(sides.max()),
                "square": int((abs(ratios - 1) <= 0.05).sum()),
                "landscape": int((ratios > 1.05).sum()), "portrait": int((ratios < 0.95).sum())}

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "count": self.count, "files": self.files,
                "skipped": self.skipped, "duplicates": self.duplicates,
                "spread": self.spread()}


def folder_report(path: str | os.PathLike) -> FolderReport:
    """Scan ``path`` (every image decoded once, through the safe intake) and report it;
    FolderError for a folder that does not exist."""
    hashes: list[int] = []
    sizes: list[tuple[int, int]] = []

    def seen(file: Path, loaded: Any) -> None:
        hashes.append(dhash(loaded.rgb))
        h, w = loaded.rgb.shape[:2]
        sizes.append((w, h))

    scan = scan_folder(path, verify=True, on_image=seen)
    files = [_relative(f, scan.root) for f in scan.files]
    return FolderReport(root=scan.root, files=files, skipped=scan.skipped_report(),
                        sizes=sizes,
                        duplicates=[[files[i] for i in g] for g in near_duplicates(hashes)])
