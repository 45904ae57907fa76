"""Model weights: safetensors files with JSON model cards, sha256 checks, and a model cache.

A model is two files side by side::

    <family>/<name>.safetensors   the tensors (safetensors only: no pickle, no torch.load)
    <family>/<name>.json          its ModelCard: architecture, config, sha256, how it was made

The sha256 of the safetensors bytes is checked before the tensors are parsed, so a modified or
truncated file is refused with a message naming it. Shipped models live in
``paths.shipped_weights_dir()``, user-trained ones in ``paths.models_dir()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from core import paths, registry
from core.imageio import atomic_write

log = logging.getLogger("easel.weights")

SUFFIX = ".safetensors"


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
        extra = {k: v for k, v in d.items() if k not in known}
        return ModelCard(**{k: v for k, v in d.items() if k in known}, extra=extra)


def card_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of ``path`` (the .safetensors or the .json file)."""
    json_path = card_path(path)
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(f"{Path(path).with_suffix(SUFFIX)} has no model card "
                           f"(expected {json_path}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"Cannot read model card {json_path}: {exc}") from None
    try:
        return ModelCard.from_dict(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
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
    # sha256 must be the same for the same weights.
    data = st_save(tensors, metadata={"format": "pt"})
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


def load_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """Read a model's tensors (on the CPU) and card, refusing files whose sha256 does not match."""
    path = Path(path).with_suffix(SUFFIX)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"Model file not found: {path}") from None
    except OSError as exc:
        raise WeightsError(f"Cannot read model file {path}: {exc}") from None
    card = read_card(path)
    if not card.sha256:
        raise WeightsError(f"Model card {card_path(path)} has no sha256, so {path} cannot be "
                           "verified.")
    # Hash the very bytes that get parsed: checking the file and then re-reading it would let
    # a file changed in between slip through.
    if hashlib.sha256(data).hexdigest() != card.sha256.lower():
        raise WeightsError(f"{path} has been modified or is corrupt: its sha256 does not match "
                           "its model card.")
    try:
        state = st_load(data)
    except Exception as exc:  # noqa: BLE001 - the safetensors parser raises several types
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from None
    return state, card


def _mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """Why ``state`` does not fit ``model`` ('' when it does), naming a few offending tensors."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
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


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Build the card's architecture, load the verified tensors into it, eval(), move to device."""
    state, card = load_state(path)
    path = Path(path).with_suffix(SUFFIX)
    try:
        model = registry.build(card.architecture, card.config)
    except registry.UnknownArchitecture as exc:
        raise WeightsError(f"{path}: {exc.args[0]}") from None
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: its model card's config does not fit architecture "
                           f"{card.architecture!r}: {exc}") from None
    problem = _mismatch(model, state)
    if problem:
        raise WeightsError(f"{path} does not match architecture {card.architecture!r}: "
                           f"{problem}.")
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
    """Shipped models first, then the user's, each sorted by family and name."""
    found: list[ModelInfo] = []
    for source, root in (("shipped", paths.shipped_weights_dir()), ("user", paths.models_dir())):
        if not root.is_dir():
            continue
        families = [root / family] if family else sorted(p for p in root.iterdir() if p.is_dir())
        for fam_dir in families:
            for json_path in sorted(fam_dir.glob("*.json")) if fam_dir.is_dir() else []:
                if json_path.name.endswith(".directions.json"):  # latent directions, no card
                    continue
                info = ModelInfo(json_path.stem, fam_dir.name, source,
                                 json_path.with_suffix(SUFFIX))
                try:
                    info.card = read_card(json_path)
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
        try:
            load_model(info.path, "cpu")
        except WeightsError as exc:
            results.append((info, False, str(exc)))
        else:
            results.append((info, True, f"ok (sha256 {info.card.sha256[:12]})"))
    return results


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
