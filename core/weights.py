"""Model weights: safetensors files with JSON model cards, sha256 checks, and a model cache.

A model is two files side by side::

    <family>/<name>.safetensors   the tensors (safetensors only: no pickle, no torch.load)
    <family>/<name>.json          its ModelCard: architecture, config, sha256, how it was made

The sha256 of the safetensors bytes is checked before the tensors are parsed, so a modified or
truncated file is refused with a message naming it. The card's architecture and config are
recorded in the file's header metadata too (so the sha256 covers them) and a card that differs
is refused. Before any real memory is spent the network is built on the ``meta`` device and
every tensor shape is compared with the file's header, so a card claiming a huge network costs
nothing. Only regular files of bounded size are read. Shipped models live in
``paths.shipped_weights_dir()``, user-trained ones in ``paths.models_dir()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn
from torch.overrides import TorchFunctionMode

from core import paths, registry
from core.paths import atomic_write

log = logging.getLogger("easel.weights")

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


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of :func:`open_regular` ``(path, limit)``; the read stops at the size found."""
    with open_regular(path, limit) as f:
        data = f.read(os.fstat(f.fileno()).st_size + 1)
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


# --------------------------------------------------------------------------- save / load


def save_model(directory: str | os.PathLike, name: str, module_or_state_dict: Any,
               card: ModelCard) -> Path:
    """Write ``<directory>/<name>.safetensors`` and its card (sha256 filled in); both atomic."""
    if not name or Path(name).name != name or name.startswith("."):
        raise WeightsError(f"{name!r} is not a usable model name (it becomes a file name).")
    state = (module_or_state_dict.state_dict() if isinstance(module_or_state_dict, nn.Module)
             else module_or_state_dict)
    # safetensors refuses tensors that share storage (tied weights) and needs contiguous CPU
    # tensors; a copy per tensor is cheap for models of a few million parameters.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    # One metadata key: safetensors writes a map of several in no fixed order, and the file's
    # sha256 must be the same for the same weights. It records the card's architecture and
    # config, so the sha256 covers them too.
    data = st_save(tensors, metadata={CARD_KEY: _recorded(card)})
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card = dataclasses.replace(card, name=name, sha256=hashlib.sha256(data).hexdigest(),
                               created=card.created or datetime.now(UTC).isoformat(
                                   timespec="seconds"))
    path = directory / f"{name}{SUFFIX}"
    # Tensors first, card second: a card never describes bytes that are not on disk yet.
    atomic_write(path, data)
    atomic_write(card_path(path), (json.dumps(card.to_dict(), indent=2) + "\n").encode("utf-8"))
    return path


def _recorded(card: ModelCard) -> str:
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


def _read_verified(path: Path) -> tuple[bytes, dict[str, tuple[int, ...]], ModelCard]:
    """(file bytes, tensor shapes, card) of a model whose sha256 matches its card and whose
    card is the one recorded in the file (when the file records one)."""
    try:
        data = read_regular(path, MAX_WEIGHTS_BYTES)
    except FileNotFoundError:
        raise WeightsError(f"Model file not found: {path}") from None
    except OSError as exc:
        raise WeightsError(f"Cannot read model file {path}: {exc}") from None
    card = read_card(path)
    # Hash the very bytes that get parsed: checking the file and then re-reading it would let
    # a file changed in between slip through.
    return data, verify_bytes(data, card, path), card


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
            same = json.loads(recorded) == json.loads(_recorded(card))
        except (TypeError, ValueError, RecursionError):
            same = False
        if not same:
            raise WeightsError(f"The architecture or config in model card {card_path(path)} "
                               f"differs from the one recorded in {path.name}: the card was "
                               "edited or belongs to another file.")
    return shapes


def _parse(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except Exception as exc:  # noqa: BLE001 - the safetensors parser raises several types
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from None


def load_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """Read a model's tensors (on the CPU) and card, refusing files whose sha256 does not match."""
    path = Path(path).with_suffix(SUFFIX)
    data, _, card = _read_verified(path)
    return _parse(data, path), card


def _mismatch(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> str:
    """Why tensors of shapes ``got`` do not fit a model expecting ``expected`` ('' when they
    do), naming a few offending tensors."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    parts = []

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    if missing:
        parts.append(f"missing {few(missing)}")
    if unexpected:
        parts.append(f"unexpected {few(unexpected)}")
    if shapes:
        shown = [f"{k} {list(got[k])} (expected {list(expected[k])})" for k in shapes[:3]]
        more = f" and {len(shapes) - 3} more" if len(shapes) > 3 else ""
        parts.append("wrong shape " + ", ".join(shown) + more)
    return "; ".join(parts)


class _TooManyCalls(Exception):
    pass


class _CallBudget(TorchFunctionMode):
    """Stops a build after ``limit`` torch calls: on the meta device a network costs no
    memory, but a config with a million layers would still loop for hours."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.left = limit

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        self.left -= 1
        if self.left == -1:  # once: the calls of exits on the way out (no_grad's) must run
            raise _TooManyCalls
        return func(*args, **(kwargs or {}))


def _build(card: ModelCard, path: Path) -> nn.Module:
    import core.nets  # noqa: F401  (importing registers every architecture)

    try:
        return registry.build(card.architecture, card.config)
    except registry.UnknownArchitecture as exc:
        raise WeightsError(f"{path}: {exc.args[0]}") from None
    except _TooManyCalls:
        raise
    except Exception as exc:  # noqa: BLE001 - a card's config runs the network's constructor
        raise WeightsError(f"{path}: its model card's config does not fit architecture "
                           f"{card.architecture!r}: {exc}") from None


def check_fit(card: ModelCard, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """WeightsError unless the card's network, built on the meta device (no memory), has
    exactly the tensors ``shapes`` describes and no more values than they hold."""
    # Easel's networks make about 7 torch calls per tensor while being built.
    try:
        with torch.device("meta"), _CallBudget(64 * len(shapes) + 1024):
            model = _build(card, path)
    except _TooManyCalls:
        raise WeightsError(f"{path}: its model card's config describes a far larger "
                           f"{card.architecture!r} network than the file's {len(shapes)} "
                           "tensors.") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = _mismatch(expected, shapes)
    if problem:
        raise WeightsError(f"{path} does not match architecture {card.architecture!r}: "
                           f"{problem}.")
    values = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    if values > sum(math.prod(s) for s in shapes.values()):
        raise WeightsError(f"{path}: its model card's config builds a {card.architecture!r} "
                           f"network of {values:,} values, more than the file holds.")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Build the card's architecture, load the verified tensors into it, eval(), move to device.

    The network is built for real only once :func:`check_fit` found that it matches the file,
    so its memory is bounded by the file's size."""
    path = Path(path).with_suffix(SUFFIX)
    data, shapes, card = _read_verified(path)
    check_fit(card, shapes, path)
    state = _parse(data, path)
    model = _build(card, path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied; shapes were checked above
        raise WeightsError(f"{path} cannot be loaded into {card.architecture!r}: "
                           f"{str(exc).splitlines()[0]}") from None
    return model.eval().to(device)


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


def load_checked(path: str | os.PathLike, cls: type, what: str,
                 device: str | torch.device = "cpu", cache: ModelCache | None = None
                 ) -> tuple[Any, ModelCard]:
    """(module in eval mode, its card) for weights that must be a ``cls``, through ``cache``
    when given; WeightsError when they cannot be loaded or are another kind of model."""
    card = read_card(path)
    net = cache.get(path, device) if cache is not None else load_model(path, device)
    if not isinstance(net, cls):
        raise WeightsError(f"{Path(path).name} is a {card.architecture} model, not a {what}.")
    return net.eval(), card


def verify_all(family: str | None = None) -> list[tuple[ModelInfo, bool, str]]:
    """Fully check every model: card, sha256, safetensors parse, fit to its architecture."""
    results = []
    for info in list_models(family):
        if info.error:
            results.append((info, False, info.error))
            continue
        if registered(info.card) is not None:
            problem = check_registered(info.card, full=True)
            results.append((info, not problem, problem or f"ok (sha256 {info.card.sha256[:12]}"
                            f", used in place: {registered(info.card)['path']})"))
            continue
        try:
            load_model(info.path, "cpu")
        except WeightsError as exc:
            results.append((info, False, str(exc)))
        else:
            results.append((info, True, f"ok (sha256 {info.card.sha256[:12]})"))
    return results


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


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes; of a folder, the sha256 of the list of its files'
    relative paths, sizes and hashes."""
    if not path.is_dir():
        h = hashlib.sha256()
        with open_regular(path, 1 << 40) as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()
    lines = [f"{p.relative_to(path).as_posix()}\t{p.stat().st_size}\t{sha256_of(p)}\n"
             for p in folder_files(path)]
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


# --------------------------------------------------------------------------- cache


def module_nbytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size()
               for t in [*module.parameters(), *module.buffers()])


def _default_cap() -> int:
    raw = os.environ.get("EASEL_MODEL_CACHE_MB", "").strip()
    try:
        mb = float(raw) if raw else 2048.0
    except ValueError:
        log.warning("EASEL_MODEL_CACHE_MB=%r is not a number; using 2048", raw)
        mb = 2048.0
    return int(mb * 1024 * 1024)


@dataclass
class _Entry:
    model: nn.Module
    nbytes: int
    stamp: tuple[int, int]  # (mtime_ns, size) of the file when it was loaded


class ModelCache:
    """Loaded models, least recently used evicted beyond a memory cap. Thread-safe."""

    def __init__(self, cap_bytes: int | None = None) -> None:
        self.cap_bytes = _default_cap() if cap_bytes is None else int(cap_bytes)
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
        path = Path(path).with_suffix(SUFFIX).resolve()
        key = (str(path), str(torch.device(device)))
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)  # load_model reports the missing file
        # Loading happens under the lock: two threads asking for one model load it once, and
        # the jobs thread is the only heavy user anyway.
        with self._lock:
            entry = self._entries.get(key)
            # Retraining a user model rewrites its file in place; the stamp notices that.
            if entry is not None and entry.stamp == stamp:
                self._entries.move_to_end(key)
                return entry.model
            self._entries.pop(key, None)
            model = load_model(path, device)
            entry = _Entry(model, module_nbytes(model), stamp)
            if entry.nbytes <= self.cap_bytes:
                self._entries[key] = entry
                self._evict()
            return model

    def _evict(self) -> None:
        while self._entries and sum(e.nbytes for e in self._entries.values()) > self.cap_bytes:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def evict_device(self, device: str | torch.device) -> None:
        """Drop the models loaded on ``device`` (after it ran out of memory)."""
        with self._lock:
            for key in [k for k in self._entries if k[1] == str(torch.device(device))]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def cached(self, path: str | os.PathLike, device: str | torch.device = "cpu") -> bool:
        key = (str(Path(path).with_suffix(SUFFIX).resolve()), str(torch.device(device)))
        with self._lock:
            return key in self._entries

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())
