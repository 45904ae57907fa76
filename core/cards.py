"""Model cards and the listing of installed models: everything about a model that its JSON
card and its safetensors header say, read without torch.

The desktop panels list models on the GUI thread while the window is built, before the
inference worker has loaded torch (core/catalog.py); core/weights.py, which loads the tensors,
builds on this module and re-exports its names. See core/weights.py for the two files a model
is made of and the checks made before its tensors are parsed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from core import paths

SUFFIX = ".safetensors"
MAX_WEIGHTS_BYTES = 4 << 30  # Easel's own models are a few MB; nothing of its own nears this
MAX_JSON_BYTES = 16 << 20  # a model card or a latent-directions sidecar
CARD_KEY = "easel_model"  # header metadata: the card's architecture and config, as JSON


class WeightsError(Exception):
    """A model file that cannot be used (missing, modified, corrupt, mismatched). Names the file."""


# --------------------------------------------------------------------------- model card


@dataclass
class ModelCard:
    name: str
    family: str  # "vae", "dcgan", ... (also the folder name)
    architecture: str  # core.registry name
    config: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""  # of the .safetensors file bytes; filled in by save_model
    recipe: str = ""
    command: str = ""
    data: str = ""
    steps: int = 0
    wall_time_s: float = 0.0
    device: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **d}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelCard:
        if not isinstance(d, dict):
            raise TypeError("a model card must be a JSON object")
        known = {f.name for f in dataclasses.fields(ModelCard)} - {"extra"}
        missing = [k for k in ("name", "family", "architecture") if k not in d]
        if missing:
            raise ValueError(f"missing field(s): {', '.join(missing)}")
        for k in ("config", "metrics"):
            if not isinstance(d.get(k, {}), dict):
                raise TypeError(f"{k!r} must be a JSON object")
        for f in dataclasses.fields(ModelCard):
            if f.type == "str" and not isinstance(d.get(f.name, ""), str):
                raise TypeError(f"{f.name!r} must be a string")
        extra = {k: v for k, v in d.items() if k not in known}
        return ModelCard(**{k: v for k, v in d.items() if k in known}, extra=extra)


def card_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def open_regular(path: str | os.PathLike, limit: int) -> BinaryIO:
    """``path`` opened for reading; it must be a regular file of at most ``limit`` bytes.

    A FIFO blocks and a device such as /dev/zero never ends, so the type and size are checked
    on the resolved path before it is opened (without blocking) and again on the open file.
    WeightsError for a file of the wrong kind or size; OSError (FileNotFoundError...) is left
    to the caller, which knows what the file is."""
    path = Path(path)
    real = path.resolve()
    if not stat.S_ISREG(os.stat(real).st_mode):
        raise WeightsError(f"{path} is not a regular file (a pipe, device or folder); "
                           "not read.")
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    f = os.fdopen(fd, "rb")
    st = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(st.st_mode)  # swapped meanwhile
               else f"is {st.st_size:,} bytes, more than the {limit:,} Easel reads for such "
                    "a file" if st.st_size > limit else "")
    if problem:
        f.close()
        raise WeightsError(f"{path} {problem}; not read.")
    return f


READ_CHUNK = 16 << 20  # bytes read at a time when the reader wants progress


def read_regular(path: str | os.PathLike, limit: int,
                 progress: Callable[[int, int], None] | None = None) -> bytes:
    """The bytes of :func:`open_regular` ``(path, limit)``; the read stops at the size found.
    ``progress(bytes read, size)`` is called after every READ_CHUNK (it may raise, e.g. to
    cancel: the read stops there)."""
    with open_regular(path, limit) as f:
        size = os.fstat(f.fileno()).st_size
        if progress is None:
            data = f.read(size + 1)
        else:
            parts, done = [], 0
            while done <= size:
                part = f.read(min(READ_CHUNK, size + 1 - done))
                if not part:
                    break
                parts.append(part)
                done += len(part)
                progress(min(done, size), size)
            data = b"".join(parts)
    if len(data) > limit:  # it grew while being read
        raise WeightsError(f"{path} is more than {limit:,} bytes; not read.")
    return data


def parse_card(data: bytes) -> ModelCard:
    """A ModelCard from JSON bytes; ValueError/TypeError saying what is wrong."""
    try:
        return ModelCard.from_dict(json.loads(data.decode("utf-8")))
    except RecursionError:  # a card nested thousands deep
        raise ValueError("it is nested too deeply") from None


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of ``path`` (the .safetensors or the .json file)."""
    json_path = card_path(path)
    try:
        data = read_regular(json_path, MAX_JSON_BYTES)
    except FileNotFoundError:
        raise WeightsError(f"{Path(path).with_suffix(SUFFIX)} has no model card "
                           f"(expected {json_path}).") from None
    except OSError as exc:
        raise WeightsError(f"Cannot read model card {json_path}: {exc}") from None
    try:
        return parse_card(data)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise WeightsError(f"Model card {json_path} is corrupt: {exc}") from None


# --------------------------------------------------------------------------- checks


def card_record(card: ModelCard) -> str:
    """What save_model records of ``card`` in the file's header metadata."""
    return json.dumps({"architecture": card.architecture, "config": card.config},
                      sort_keys=True)


def _header(data: bytes, path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, Any]]:
    """(tensor name -> shape, metadata) from the safetensors header, without the tensors."""
    try:
        n = int.from_bytes(data[:8], "little")
        if len(data) < 8 or n > len(data) - 8:
            raise ValueError("no safetensors header")
        header = json.loads(data[8:8 + n])
        if not isinstance(header, dict):
            raise TypeError("the header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        shapes = {}
        for name, entry in header.items():
            shape = entry.get("shape") if isinstance(entry, dict) else None
            if not isinstance(shape, list) or not all(
                    isinstance(d, int) and d >= 0 for d in shape):
                raise TypeError(f"tensor {name!r} has no valid shape")
            shapes[name] = tuple(shape)
        if not isinstance(meta, dict):
            raise TypeError("its metadata is not a JSON object")
    except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError too
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from None
    return shapes, meta


def read_header(path: str | os.PathLike, limit: int = 1 << 40
                ) -> tuple[dict[str, tuple[int, ...]], dict[str, Any]]:
    """(tensor name -> shape, metadata) of a safetensors file of at most ``limit`` bytes,
    reading only its header (a few hundred KB even for a multi-GB checkpoint). WeightsError
    when it is not one, or is shorter or longer than its header says (truncated); OSError
    when it cannot be read."""
    path = Path(path)
    with open_regular(path, limit) as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= MAX_JSON_BYTES * 8:
            raise WeightsError(f"{path} is not a valid safetensors file: no header.")
        data = head + f.read(n)
        size = os.fstat(f.fileno()).st_size
    shapes, meta = _header(data, path)
    try:
        entries = json.loads(data[8:]).values()
        end = max((int(e["data_offsets"][1]) for e in entries if "data_offsets" in e),
                  default=0)
    except (ValueError, TypeError, KeyError, IndexError):
        end = -1
    if size != 8 + n + end:
        raise WeightsError(f"{path} is truncated or damaged: its header describes "
                           f"{8 + n + end:,} bytes, the file has {size:,}.")
    return shapes, meta


def verify_bytes(data: bytes, card: ModelCard, path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of weights ``data`` (of file ``path``) once their sha256 is the
    card's and the card is the one recorded in them (when they record one); else
    WeightsError."""
    if not card.sha256:
        raise WeightsError(f"Model card {card_path(path)} has no sha256, so {path} cannot be "
                           "verified.")
    if hashlib.sha256(data).hexdigest() != card.sha256.lower():
        raise WeightsError(f"{path} has been modified or is corrupt: its sha256 does not match "
                           "its model card.")
    shapes, meta = _header(data, path)
    recorded = meta.get(CARD_KEY)
    # Files written before the card was recorded have none: the shape check alone covers them.
    if recorded is not None:
        try:
            same = json.loads(recorded) == json.loads(card_record(card))
        except (TypeError, ValueError, RecursionError):
            same = False
        if not same:
            raise WeightsError(f"The architecture or config in model card {card_path(path)} "
                               f"differs from the one recorded in {path.name}: the card was "
                               "edited or belongs to another file.")
    return shapes


# --------------------------------------------------------------------------- used in place

# A model card may describe a user's file (or diffusers folder) that stays where it is, too
# big to copy (Stable Diffusion checkpoints): card.extra[REGISTERED] records its path, size and
# modification time, and card.sha256 its hash. Size and time are checked at every use; the
# hash by verify_all (`easel models verify`).
REGISTERED = "registered"


def registered(card: ModelCard | None) -> dict[str, Any] | None:
    """The record of the file a card describes in place, or None for an Easel model file."""
    record = card.extra.get(REGISTERED) if card is not None else None
    return record if isinstance(record, dict) and isinstance(record.get("path"), str) else None


def folder_files(folder: Path) -> list[Path]:
    """The regular files under ``folder`` that a registered folder is made of (hidden ones and
    links left out), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def fingerprint(path: Path) -> dict[str, int]:
    """Size and modification time of a file, or the total size and newest time of a folder."""
    files = folder_files(path) if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    return {"size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def sha256_of(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    """The sha256 of a file's bytes; of a folder, the sha256 of the list of its files'
    relative paths, sizes and hashes. ``progress(bytes hashed, size)`` follows it (it may
    raise, e.g. to cancel)."""
    if not path.is_dir():
        h, done = hashlib.sha256(), 0
        with open_regular(path, 1 << 40) as f:
            size = os.fstat(f.fileno()).st_size
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, size)
        return h.hexdigest()
    files = folder_files(path)
    sizes = [p.stat().st_size for p in files]
    lines, before = [], 0
    for p, size in zip(files, sizes, strict=True):
        def step(done: int, _: int, before: int = before) -> None:
            progress(before + done, sum(sizes))  # type: ignore[misc]

        digest = sha256_of(p, step if progress is not None else None)
        lines.append(f"{p.relative_to(path).as_posix()}\t{size}\t{digest}\n")
        before += size
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def check_registered(card: ModelCard, full: bool = False) -> str:
    """Why the file a card registers cannot be used as recorded ('' when it can): missing, or
    changed since it was imported (by size and time; by sha256 too when ``full``)."""
    record = registered(card) or {}
    path = Path(record.get("path", ""))
    again = f"import it again (easel models import {path})"
    try:
        now = fingerprint(path) if path.exists() else None
    except OSError:
        now = None
    if now is None:
        return f"{path} is missing: it was used where it lay; put it back or {again}."
    if now["size"] != record.get("size") or (not full
                                             and now["mtime_ns"] != record.get("mtime_ns")):
        return f"{path} changed since it was imported (size or date differ); {again}."
    if full:
        try:
            digest = sha256_of(path)
        except (OSError, WeightsError) as exc:
            return f"{path} cannot be read: {exc}"
        if digest != card.sha256.lower():
            return f"{path} has been modified or is corrupt: its sha256 differs; {again}."
    return ""


# --------------------------------------------------------------------------- listing


@dataclass
class ModelInfo:
    name: str
    family: str
    source: str  # "shipped" or "user"
    path: Path  # the .safetensors file
    card: ModelCard | None = None
    error: str = ""  # why the card could not be read


def list_models(family: str | None = None) -> list[ModelInfo]:
    """Shipped models first, then the user's, each sorted by family and name.

    A weights file without a card, and a card that names another model or family than its
    file and folder do (a pair copied to the wrong place), are listed with ``error`` set and
    no card, so nothing uses them and ``verify_all`` reports them."""
    found: list[ModelInfo] = []
    for source, root in (("shipped", paths.shipped_weights_dir()), ("user", paths.models_dir())):
        if not root.is_dir():
            continue
        families = [root / family] if family else sorted(p for p in root.iterdir() if p.is_dir())
        for fam_dir in families:
            files = sorted(fam_dir.iterdir()) if fam_dir.is_dir() else []
            cards = {p.stem for p in files if p.suffix == ".json"
                     and not p.name.endswith(".directions.json")}  # latent directions, no card
            stems = sorted(cards | {p.stem for p in files if p.suffix == SUFFIX
                                    and not p.name.startswith(".")})  # a temp file
            for stem in stems:
                info = ModelInfo(stem, fam_dir.name, source, fam_dir / f"{stem}{SUFFIX}")
                try:
                    card = read_card(info.path)
                    if card.name != stem or card.family != fam_dir.name:
                        raise WeightsError(
                            f"Model card {card_path(info.path)} describes {card.family}/"
                            f"{card.name}, not {fam_dir.name}/{stem}: the model was copied or "
                            "renamed by hand.")
                    info.card = card
                except WeightsError as exc:
                    info.error = str(exc)
                found.append(info)
    return found


def find_model(name: str, families: tuple[str, ...] | None = None) -> ModelInfo | None:
    """The installed model called ``name`` (in one of ``families``, if given) whose card
    reads; shipped models come first, so a shipped name wins over a user model's."""
    for info in list_models():
        if info.name == name and not info.error and (families is None
                                                    or info.family in families):
            return info
    return None


def resolve_weights(name_or_path: str, families: tuple[str, ...], what: str) -> Path:
    """The weights file of the installed model called ``name_or_path`` in one of ``families``
    (shipped first, :func:`find_model`), or the ``.safetensors`` file it names; WeightsError
    naming the installed ones. ``what`` names the kind of model in messages."""
    if name_or_path.endswith(SUFFIX):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise WeightsError(f"No {what} file at {path}.")
        return path
    found = find_model(name_or_path, families)
    if found is None:
        known = ", ".join(sorted({m.name for f in families for m in list_models(f)
                                  if not m.error})) or "none"
        raise WeightsError(f"No {what} called {name_or_path!r} is installed; installed: "
                           f"{known}.")
    return found.path
