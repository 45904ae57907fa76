"""The job protocol shared by every pipeline, the CLI and the desktop inference service.

A job spec is a frozen dataclass holding everything a run needs, seed included. Its
``to_dict()`` is JSON-safe; that dict goes into a PNG's metadata, the history and the CLI's
``--json`` output, and ``spec_from_dict()`` turns it back into the same spec.

A pipeline is a generator ``run(spec, ctx)`` that yields :class:`Progress` at least once per
step and returns a :class:`Result`. ``ctx.check()`` raises :class:`Cancelled` once a cancel
was requested, so cancelling takes effect within one step.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

MAX_SEED = 2**31 - 1  # seeds are 0..MAX_SEED everywhere (CLI, panels, metadata)


class Cancelled(Exception):
    """Raised inside a pipeline by ``Context.check()`` once the job was cancelled."""


class JobError(Exception):
    """Bad input for a job (a user-readable message). The CLI maps it to exit code 2."""


class OutOfMemory(JobError):
    """A job ran out of device memory; the message says what to try (the CPU, smaller tiles).
    The app runs a job that raised it on a GPU once more on the CPU, as it does any job that
    ran out of memory there (core.device.is_out_of_memory)."""

    out_of_memory = True  # what core.device.is_out_of_memory looks for


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    message: str = ""
    preview: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.step / self.total)


@dataclass(frozen=True)
class Result:
    """What a pipeline returns: one or more RGB uint8 images plus the spec that made them."""

    images: list[np.ndarray]
    spec: JobSpec
    alpha: np.ndarray | None = field(default=None, repr=False)  # carried over from the input
    info: dict[str, Any] = field(default_factory=dict)  # model hashes, timings, notes


# --------------------------------------------------------------------------- image fields


@dataclass(frozen=True, eq=False)
class ImageRef:
    """An image a spec needs. Pixels travel in memory; the dict records where they came from.

    ``embed=True`` stores the pixels themselves in the dict (as a base64 PNG); that is meant for
    masks, which compress to a few hundred bytes, so saved metadata can replay the run.
    Without it the dict holds the source path and sha256, and ``from_dict`` reloads the file
    and refuses it if its pixels changed.
    """

    pixels: np.ndarray | None = field(default=None, repr=False)
    path: str | None = None
    sha256: str = ""
    embed: bool = False

    @staticmethod
    def of(pixels: np.ndarray, path: str | None = None, embed: bool = False) -> ImageRef:
        pixels = np.ascontiguousarray(pixels)
        return ImageRef(pixels=pixels, path=path, sha256=pixel_hash(pixels), embed=embed)

    def array(self) -> np.ndarray:
        if self.pixels is None:
            raise JobError(f"The job's input image {self.path} is not loaded." if self.path else
                           "The job's input image was not saved with it (only its hash is "
                           "recorded, e.g. it was an edited picture); run it from the app on "
                           "that picture instead.")
        return self.pixels

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sha256": self.sha256}
        if self.pixels is not None:
            d["shape"] = list(self.pixels.shape)
        if self.path:
            d["path"] = self.path
        if self.embed and self.pixels is not None:
            d["png"] = _png_b64(self.pixels)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any], load: bool = True) -> ImageRef:
        """The reference a (checked: core.spec_check) dict describes, its image read back
        unless ``load`` is False; JobError when the image cannot be had as it was."""
        path = d.get("path") or None
        if not load:
            return ImageRef(path=path, sha256=d.get("sha256", ""), embed="png" in d)
        if "png" in d:
            pixels = _png_unb64(d["png"])
            ref = ImageRef.of(pixels, path, embed=True)
            if d.get("sha256") and ref.sha256 != d["sha256"]:
                raise JobError("An embedded image in the job's metadata is damaged "
                               "(its hash does not match).")
            return ref
        pixels = None
        if path:
            from core.imageio import ImageError, load_image  # local: jobs stays import-light

            try:
                loaded = load_image(path)
            except ImageError as exc:
                raise JobError(str(exc)) from None
            pixels = loaded.rgb
            shape = d.get("shape") or ()
            if len(shape) == 3 and shape[2] == 4 and loaded.alpha is not None:
                pixels = np.dstack([loaded.rgb, loaded.alpha])  # recorded with its alpha
            if d.get("sha256") and pixel_hash(pixels) != d["sha256"]:
                raise JobError(f"{path} changed since the run was recorded (pixel hash differs).")
        return ImageRef(pixels=pixels, path=path, sha256=d.get("sha256", ""), embed=False)


def input_image(ref: ImageRef | None, missing: str) -> np.ndarray:
    """A job's input picture as 8-bit RGB or RGBA (H, W, 3|4), or JobError: ``missing`` when
    there is none, a readable line when it is of another kind or empty."""
    if ref is None:
        raise JobError(missing)
    image = np.asarray(ref.array())
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise JobError(f"The image must be 8-bit RGB (HxWx3 uint8), got {image.dtype} with "
                       f"shape {image.shape}.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise JobError("The image is empty.")
    return image


def job_weights(name: str, family: str | tuple[str, ...], what: str) -> Path:
    """The weights of an installed model of ``family`` (or one of several) called ``name``, or
    a .safetensors path; JobError naming the installed ones."""
    from core.weights import WeightsError, resolve_weights

    try:
        return resolve_weights(name, (family,) if isinstance(family, str) else family, what)
    except WeightsError as exc:
        raise JobError(str(exc)) from None


def job_model(path: Path, ctx: Context, cls: type, what: str) -> tuple[Any, str]:
    """(net, sha256) through the job's model cache; JobError for bad or other weights."""
    from core.weights import WeightsError, load_checked

    try:
        net, card = load_checked(path, cls, what, ctx.device, ctx.models)
    except WeightsError as exc:
        raise JobError(str(exc)) from None
    return net, card.sha256


def job_judge(world: str, ctx: Context) -> tuple[Any, str, str] | None:
    """(net, name, sha256) of the installed judge of ``world`` ("faces", "scenes") through the
    job's model cache; None when none is installed, JobError when it is broken."""
    from core.nets.judge import Judge
    from core.weights import list_models

    for info in list_models("judge"):
        if info.card is not None and info.card.config.get("world") == world:
            net, sha = job_model(info.path, ctx, Judge, "judge")
            return net, info.name, sha
    return None


def pixel_hash(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.shape).encode() + str(a.dtype).encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # no copy of a big picture
    return h.hexdigest()


def _png_b64(a: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_unb64(s: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(base64.b64decode(s, validate=True))) as im:
            if im.format != "PNG" or im.width * im.height > 100_000_000:
                raise ValueError("not a PNG of a sane size")
            return np.asarray(im).copy()
    except (ValueError, TypeError, OSError, UnidentifiedImageError) as exc:
        raise JobError("An embedded image in the job's metadata cannot be read.") from exc


# --------------------------------------------------------------------------- specs

_SPEC_KINDS: dict[str, type[JobSpec]] = {}
_PIPELINES: dict[str, Callable[..., Generator[Progress, None, Result]]] = {}


@dataclass(frozen=True)
class JobSpec:
    """Base of every job spec. Subclasses set ``kind`` and are frozen dataclasses."""

    kind: ClassVar[str] = ""
    panel: ClassVar[str] = ""  # which desktop panel restores this spec

    seed: int = 0

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.__dict__.get("kind"):
            _SPEC_KINDS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = _jsonable(v)
        return d

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= MAX_SEED:
            raise JobError(f"The seed must be a whole number from 0 to {MAX_SEED}, "
                           f"got {self.seed!r}.")

    @classmethod
    def from_dict(cls, d: dict[str, Any], load_images: bool = True) -> JobSpec:
        """The spec a dict describes (as read back from a PNG): JobError if it is not one.

        The dict is checked whole (core.spec_check: types, sizes, which files it may name)
        before any image is read or decoded. Without ``load_images`` its image references
        keep their path and hash only and nothing is read (a panel restoring settings).
        """
        from core.spec_check import check_image_files

        target = check_spec(d, None if cls is JobSpec else cls)
        fields = dataclasses.fields(target)
        if load_images:
            check_image_files(d, fields)
        kwargs: dict[str, Any] = {}
        for f in fields:
            if f.name not in d:
                continue
            v = d[f.name]
            if str(f.type).startswith("tuple[ImageRef"):  # several images (style transfer)
                v = tuple(ImageRef.from_dict(x, load_images) for x in v)
            elif "ImageRef" in str(f.type):
                v = None if v is None else ImageRef.from_dict(v, load_images)
            elif isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kwargs[f.name] = v
        try:
            return target(**kwargs)
        except (TypeError, ValueError, OverflowError) as exc:
            raise JobError(f"The job settings do not fit a {target.kind!r} job: {exc}") from exc

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)


def check_spec(d: Any, cls: type[JobSpec] | None = None) -> type[JobSpec]:
    """The spec class of dict ``d`` (``cls`` when given) once the dict's shape, types and
    sizes fit it (core.spec_check); JobError otherwise. Reads no file, decodes no image, and
    leaves the ranges of settings to the spec (a panel adjusts what is out of its range)."""
    from core.spec_check import check_spec_dict

    if not isinstance(d, dict) or not isinstance(d.get("kind", ""), str):
        raise JobError("The job settings are not in Easel's format.")
    target = cls or _SPEC_KINDS.get(d.get("kind", ""))
    if target is None:
        raise JobError(f"Unknown job kind {d.get('kind')!r}.")
    check_spec_dict(d, dataclasses.fields(target))
    return target


def spec_from_dict(d: dict[str, Any]) -> JobSpec:
    return JobSpec.from_dict(d)


def read_spec(path: str | os.PathLike | bytes) -> JobSpec | None:
    """The job spec recorded in an Easel PNG, or None when there is none.

    Raises JobError for a spec that cannot be rebuilt (unknown kind, a referenced input image
    that changed) and ImageError for a referenced image that cannot be read or for metadata too
    large to read.
    """
    from core.imageio import strict_metadata

    meta = strict_metadata(path)
    spec = meta.get("spec") if meta else None
    if not isinstance(spec, dict):
        return None
    import core.specs  # noqa: F401  (importing registers every spec kind)

    return spec_from_dict(spec)


def spec_class(kind: object) -> type[JobSpec] | None:
    """The spec class registered for ``kind`` (None if there is none)."""
    import core.specs  # noqa: F401  (importing registers every spec kind)

    return _SPEC_KINDS.get(kind) if isinstance(kind, str) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, ImageRef):
        return v.to_dict()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def pipeline(kind: str) -> Callable:
    """Decorator: register ``run(spec, ctx)`` as the pipeline for specs of ``kind``."""

    def deco(fn: Callable) -> Callable:
        _PIPELINES[kind] = fn
        return fn

    return deco


def registered_pipeline(kind: str) -> Callable[..., Generator[Progress, None, Result]]:
    """The pipeline registered for ``kind`` (core.pipelines.pipeline_for imports them all
    first: jobs sit below the pipelines and never import them)."""
    try:
        return _PIPELINES[kind]
    except KeyError:
        raise JobError(f"No pipeline runs jobs of kind {kind!r} (importing core.pipelines "
                       "registers them).") from None


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """What a running job gets besides its spec."""

    device: Any  # torch.device; kept as Any so jobs.py does not import torch at module load
    generator: Any  # torch.Generator seeded from spec.seed
    rng: np.random.Generator  # numpy generator seeded from spec.seed
    models: Any = None  # core.weights.ModelCache
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Whether a preview yielded now would be shown: the app's service throttles previews, so a
    # pipeline asks before decoding one (decoding and copying it to the host cost a step's sync).
    preview_wanted: Callable[[], bool] = field(default=lambda: True, repr=False)

    def wants_preview(self) -> bool:
        return bool(self.preview_wanted())

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @staticmethod
    def for_spec(spec: JobSpec, device: Any = None, models: Any = None,
                 cancel_event: threading.Event | None = None) -> Context:
        import torch

        from core.device import pick_device, reproducible

        dev = torch.device(device) if device is not None else pick_device()
        reproducible(dev)
        gen = torch.Generator(device="cpu").manual_seed(int(spec.seed))
        return Context(device=dev, generator=gen, rng=np.random.default_rng(int(spec.seed)),
                       models=models, cancel_event=cancel_event or threading.Event())


def run_job(spec: JobSpec, ctx: Context,
            on_progress: Callable[[Progress], None] | None = None) -> Result:
    """Drive a pipeline to its Result, passing every Progress to ``on_progress``. The pipeline
    is the one registered for the spec's kind: import its module (or core.pipelines) first."""
    gen = registered_pipeline(spec.kind)(spec, ctx)
    t0 = time.perf_counter()
    result = yield_from(gen, on_progress)
    result.info.setdefault("seconds", round(time.perf_counter() - t0, 3))
    return result


def yield_from(gen: Iterator[Progress], on_progress: Callable[[Progress], None] | None) -> Any:
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(p)
