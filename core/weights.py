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

Cards, the checks that need no tensors and the listing of installed models are torch-free, in
core/cards.py (the desktop lists models before torch is loaded); their names are importable
from here too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn
from torch.overrides import TorchFunctionMode

from core import registry
from core.cards import (  # noqa: F401  (the torch-free part of this module, importable here too)
    CARD_KEY,
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    REGISTERED,
    SUFFIX,
    ModelCard,
    ModelInfo,
    WeightsError,
    card_path,
    card_record,
    check_registered,
    find_model,
    fingerprint,
    folder_files,
    list_models,
    open_regular,
    parse_card,
    read_card,
    read_header,
    read_regular,
    registered,
    resolve_weights,
    sha256_of,
    verify_bytes,
)
from core.paths import atomic_write

log = logging.getLogger("easel.weights")

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
    data = st_save(tensors, metadata={CARD_KEY: card_record(card)})
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


def load_checked(path: str | os.PathLike, cls: type | tuple[type, ...], what: str,
                 device: str | torch.device = "cpu", cache: ModelCache | None = None
                 ) -> tuple[Any, ModelCard]:
    """(module in eval mode, its card) for weights that must be a ``cls`` (or one of them),
    through ``cache`` when given; WeightsError when they cannot be loaded or are another kind
    of model."""
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
