"""Inpainting a folder of pictures: which mask goes with which picture, where each result goes,
the job that fills one picture, and what became of each.

``easel inpaint FOLDER --mask MASK|MASKFOLDER -o OUTFOLDER`` and the app's File > Batch
inpaint share all of it: :func:`plan_batch` pairs the pictures with their masks (by file stem,
whatever the image suffix; or one mask file for every picture, resized to each), each pair
becomes an :class:`InpaintFileSpec` that the inference core (or the CLI) runs like any job,
and every picture ends as one :class:`FileOutcome`: written, refused (its input, with the
reason) or failed (unexpectedly). One picture's trouble never stops the others.

Torch-free: the desktop dialog plans on the GUI thread. The pipeline that fills and writes
one picture is core/pipelines/inpaint_batch.py.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.imageio import IMAGE_SUFFIXES
from core.jobs import JobError
from core.specs.inpaint import InpaintSpec

WRITTEN, REFUSED, FAILED = "written", "refused", "failed"
# InpaintSpec fields a batch does not take from the settings: each picture brings its own.
PER_PICTURE = ("image", "mask", "source")  # source: a PatchMatch source area


@dataclass(frozen=True)
class InpaintFileSpec(InpaintSpec):
    """Fill one picture file of a batch with its mask file and write the result as a PNG.

    The fill settings are an InpaintSpec's; the PNG written carries the plain InpaintSpec of
    its fill (the picture's path, the mask embedded), so it reruns and restores the Inpaint
    panel like any other fill.
    """

    kind = "inpaint_file"
    panel = ""  # a batch's step: no panel restores it

    picture: str = ""  # the picture file
    mask_file: str = ""  # its mask (white = fill)
    fit_mask: bool = False  # one mask for the whole batch: resized (nearest) to each picture
    output: str = ""  # the PNG to write
    overwrite: bool = False  # replace an existing output (never an input)


def fill_settings(spec: InpaintSpec) -> dict[str, Any]:
    """The fill settings of ``spec`` (engine, patch size, seed...): an InpaintSpec's fields
    other than its picture and mask."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(InpaintSpec)
            if f.name not in PER_PICTURE}


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class BatchItem:
    picture: Path
    mask: Path | None
    output: Path
    problem: str = ""  # why the picture is refused before anything runs ("" when it can run)


@dataclass(frozen=True)
class BatchPlan:
    folder: Path
    mask: Path  # a mask file, or a folder of masks named like the pictures
    output: Path
    items: tuple[BatchItem, ...]
    single_mask: bool  # one mask file for every picture
    skipped: int = 0  # files in the folder that are not images by their suffix

    def spec(self, item: BatchItem, settings: dict[str, Any], overwrite: bool
             ) -> InpaintFileSpec:
        """The job that fills ``item`` with the fill ``settings`` (see fill_settings)."""
        if item.problem or item.mask is None:
            raise JobError(item.problem or f"No mask for {item.picture.name}.")
        settings = {k: v for k, v in settings.items() if k not in PER_PICTURE}
        settings["variations"] = 1  # a batch writes one fill per picture
        return InpaintFileSpec(**settings, picture=str(item.picture), mask_file=str(item.mask),
                               fit_mask=self.single_mask, output=str(item.output),
                               overwrite=bool(overwrite))

    def make_output_folder(self) -> None:
        """Create the output folder (and its parents) if it is not there yet."""
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobError(f"The output folder {self.output} cannot be made: "
                           f"{exc.strerror or exc}.") from None


def plan_batch(folder: str | os.PathLike, mask: str | os.PathLike,
               output: str | os.PathLike) -> BatchPlan:
    """Pair every picture in ``folder`` (its image files, by suffix, not its sub-folders) with
    its mask and its output ``<output>/<stem>.png``.

    ``mask`` is one mask file for every picture, or a folder holding a mask per picture with
    the picture's stem and any image suffix. A picture without a mask, with several, or whose
    output name another picture also gets is refused (its item's ``problem``); the others
    still run. JobError when the batch cannot start at all: a folder that is missing or holds
    no picture, no mask, or an output folder that is a file or one of the input folders.
    """
    src = _folder(folder, "The picture folder")
    mask_path = Path(mask).expanduser().resolve()
    if not mask_path.exists():
        raise JobError(f"The mask {mask_path} does not exist.")
    single = not mask_path.is_dir()
    if mask_path.is_dir() and _same(mask_path, src):
        raise JobError("Keep the masks in a folder of their own: in the picture folder they "
                       "would be taken for pictures.")
    out = Path(output).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise JobError(f"The output {out} is a file; give a folder.")
    for name, where in (("picture", src), ("mask", mask_path if not single else None)):
        if where is not None and _same(out, where):
            raise JobError(f"The output folder is the {name} folder: choose another, so that "
                           "results never replace an input and a later batch does not take "
                           "them for pictures.")
    pictures, skipped = _images(src)
    # One mask for all that lies among the pictures is the mask, not a picture.
    pictures = [p for p in pictures if not (single and _same(p, mask_path))]
    if not pictures:
        raise JobError(f"{src} holds no pictures (image files: "
                       f"{', '.join(sorted(IMAGE_SUFFIXES))}).")
    masks: dict[str, list[Path]] = {}
    if not single:
        for path in _images(mask_path)[0]:
            masks.setdefault(_key(path), []).append(path)
    by_key: dict[str, list[Path]] = {}
    for path in pictures:
        by_key.setdefault(_key(path), []).append(path)
    items = []
    for path in pictures:
        target = out / f"{path.stem}.png"
        twins = by_key[_key(path)]
        found = [mask_path] if single else masks.get(_key(path), [])
        problem = ""
        if len(twins) > 1:
            problem = (f"{' and '.join(p.name for p in twins)} would both be written to "
                       f"{target.name}: rename one.")
        elif not found:
            problem = f"No mask named {path.stem} (any image suffix) in {mask_path}."
        elif len(found) > 1:
            problem = (f"Several masks are named {path.stem} in {mask_path} "
                       f"({', '.join(p.name for p in found)}): keep one.")
        items.append(BatchItem(path, found[0] if len(found) == 1 else None, target, problem))
    return BatchPlan(src, mask_path, out, tuple(items), single, skipped)


def _folder(folder: str | os.PathLike, what: str) -> Path:
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        raise JobError(f"{what} {path} {state}.")
    return path


def _images(folder: Path) -> tuple[list[Path], int]:
    """The image files in ``folder`` (by suffix, hidden ones left out) sorted by name, and how
    many other files it holds."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: (p.name.casefold(), p.name))
    except OSError as exc:
        raise JobError(f"{folder} cannot be read: {exc.strerror or exc}.") from None
    files = [p for p in entries if not p.name.startswith(".") and p.is_file()]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    return images, len(files) - len(images)


def _key(path: Path) -> str:
    """The stem pictures and masks are matched by (case-blind: Windows and macOS file names)."""
    return path.stem.casefold()


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class FileOutcome:
    """What became of one picture of a batch."""

    picture: str
    status: str  # WRITTEN, REFUSED or FAILED
    output: str = ""  # the PNG written ("" when none was)
    message: str = ""  # why it was refused or failed
    notes: tuple[str, ...] = ()  # e.g. the mask was resized to the picture
    seconds: float | None = None
    spec: dict[str, Any] | None = field(default=None, repr=False)  # the fill's, when written

    @staticmethod
    def of_result(item: BatchItem, result: Any) -> FileOutcome:
        """The outcome the inpaint_file pipeline's Result reports."""
        info = result.info
        status = info.get("status", FAILED)
        return FileOutcome(str(item.picture), status, info.get("output", ""),
                           info.get("message", ""), tuple(info.get("notes", ())),
                           info.get("seconds"),
                           result.spec.to_dict() if status == WRITTEN else None)

    @staticmethod
    def refused(item: BatchItem, message: str) -> FileOutcome:
        return FileOutcome(str(item.picture), REFUSED, message=message)

    @staticmethod
    def failed(item: BatchItem, message: str) -> FileOutcome:
        return FileOutcome(str(item.picture), FAILED, message=message)

    def to_dict(self) -> dict[str, Any]:
        """One line of ``easel inpaint FOLDER --json``."""
        d: dict[str, Any] = {"picture": self.picture, "status": self.status,
                             "output": self.output or None, "message": self.message or None,
                             "notes": list(self.notes), "seconds": self.seconds}
        if self.spec is not None:
            d["spec"] = self.spec
        return d


def batch_exit_code(outcomes: list[FileOutcome]) -> int:
    """0 when every picture was written, 1 when any failed unexpectedly, else 2 when any was
    refused (the CLI's exit codes: 1 internal error, 2 bad input)."""
    statuses = {o.status for o in outcomes}
    if FAILED in statuses:
        return 1
    return 2 if REFUSED in statuses else 0


def summary_line(outcomes: list[FileOutcome], total: int) -> str:
    """"5 pictures: 3 written, 1 refused, 1 failed" (and how many were not reached)."""
    counts = {s: sum(o.status == s for o in outcomes) for s in (WRITTEN, REFUSED, FAILED)}
    parts = [f"{n} {s}" for s, n in counts.items() if n or s == WRITTEN]
    if len(outcomes) < total:
        parts.append(f"{total - len(outcomes)} not started")
    return f"{total} picture{'s' if total != 1 else ''}: {', '.join(parts)}"
