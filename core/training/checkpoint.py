"""Training checkpoints: one safetensors file holding every tensor, with the rest as JSON.

``<out>/checkpoint.safetensors`` holds the modules, EMA copies, optimizer tensors (Adam's
moments) and the torch RNG states as tensors; its safetensors header metadata holds one JSON
document with the step, the resolved recipe, optimizer hyper-parameters, grad-scaler and
Python/NumPy RNG states and the data position. One file is written atomically
(core.imageio.atomic_write: temp file, fsync, os.replace), so an interrupted or failed write
leaves the previous checkpoint whole. Nothing is pickled and nothing is read with torch.load.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core.imageio import atomic_write
from core.training.task import Task, TrainingError

NAME = "checkpoint.safetensors"
FORMAT = 1
_META_KEY = "easel_checkpoint"


class CheckpointError(TrainingError):
    """A checkpoint that cannot be written, read, or does not fit this run."""


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
                       ) -> dict[str, Any]:
    """Optimizer state -> tensors under ``optim.<name>.<param>.<key>`` + a JSON-safe rest."""
    sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{pid}.{key}"] = _cpu(value)
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(name: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
                         ) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, sub = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[sub] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(out: Path, task: Task, optimizers: dict[str, torch.optim.Optimizer],
                    step: int, recipe: dict[str, Any], data: dict[str, Any]) -> Path:
    """Write ``out/checkpoint.safetensors`` atomically; returns its path."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in task.modules().items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = _cpu(value)
    for name, module in task.runtime.ema.items():
        for key, value in module.state_dict().items():
            tensors[f"ema.{name}.{key}"] = _cpu(value)
    optim_meta = {name: _flatten_optimizer(name, opt, tensors) for name, opt in optimizers.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "format": FORMAT,
        "step": step,
        "family": task.family,
        "recipe": recipe,
        "modules": sorted(task.modules()),
        "ema": sorted(task.runtime.ema),
        "optimizers": optim_meta,
        "scalers": {k: s.state_dict() for k, s in task.runtime.scalers.items()},
        "rng": {"python": _jsonable(random.getstate()),
                "numpy": [np_state[0], np_state[1].tolist(), *map(_plain, np_state[2:])]},
        "data": data,
        "extra": task.state_dict_extra(),
    }
    blob = st_save(tensors, metadata={_META_KEY: json.dumps(meta)})
    path = Path(out) / NAME
    try:
        atomic_write(path, blob)
    except OSError as exc:
        raise CheckpointError(f"could not write checkpoint {path} ({exc}); the previous "
                              "checkpoint, if any, is unchanged.") from None
    return path


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def read_recipe(path: Path) -> dict[str, Any]:
    """The resolved recipe a checkpoint was written with (reads the header only)."""
    path = Path(path)
    if path.is_dir():
        path = path / NAME
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
        return json.loads(header["__metadata__"][_META_KEY])["recipe"]
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist.") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same to the user
        raise CheckpointError(f"{path} is not an Easel training checkpoint ({exc}).") from None


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON metadata, tensors) of a checkpoint file, with clear errors for bad files."""
    path = Path(path)
    if path.is_dir():
        path = path / NAME
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist.") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    try:
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8:8 + n])
        meta = json.loads(header["__metadata__"][_META_KEY])
        tensors = st_load(blob)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same to the user
        raise CheckpointError(f"{path} is not an Easel training checkpoint ({exc}).") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format')}; this "
                              f"version reads format {FORMAT}.")
    return meta, tensors


def check_compatible(meta: dict[str, Any], task: Task, recipe: dict[str, Any], path: Path
                     ) -> None:
    """Refuse a checkpoint of another family or architecture before touching any state."""
    theirs, ours = meta.get("recipe", {}), json.loads(json.dumps(recipe))
    if meta.get("family") != task.family:
        raise CheckpointError(f"{path} is a checkpoint of a {meta.get('family')!r} model; "
                              f"this recipe trains {task.family!r}. Use the recipe it was made "
                              "with, or a new --out folder.")
    if theirs.get("model") != ours.get("model") or sorted(task.modules()) != meta.get("modules"):
        diff = sorted(k for k in set(theirs.get("model", {})) | set(ours.get("model", {}))
                      if theirs.get("model", {}).get(k) != ours.get("model", {}).get(k))
        raise CheckpointError(f"{path} was made with another {task.family} architecture "
                              f"(model settings differ: {', '.join(diff) or 'modules'}). Use the "
                              "recipe it was made with, or a new --out folder.")


_HYPER = ("lr", "betas", "weight_decay")


def _match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each loaded state tensor (exp_avg, ...) its parameter's memory format.

    Checkpoints hold contiguous tensors, while channels_last parameters start their state as
    channels_last; a fused step over mixed layouts rounds differently, and a resumed run
    would drift from an uninterrupted one.
    """
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def restore(meta: dict[str, Any], tensors: dict[str, torch.Tensor], task: Task,
            optimizers: dict[str, torch.optim.Optimizer], path: Path) -> int:
    """Load everything a checkpoint holds into the task; returns the step it was taken at."""
    for prefix, modules in (("module", task.modules()), ("ema", task.runtime.ema)):
        for name, module in modules.items():
            key = f"{prefix}.{name}."
            state = {k[len(key):]: v for k, v in tensors.items() if k.startswith(key)}
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"{path} does not fit this {task.family} model "
                                      f"({name}): {str(exc).splitlines()[0]}") from None
    if sorted(optimizers) != sorted(meta["optimizers"]):
        raise CheckpointError(f"{path} holds optimizers {sorted(meta['optimizers'])}, this "
                              f"run has {sorted(optimizers)}.")
    for name, opt in optimizers.items():
        # The fresh optimizer was built from this run's recipe (resume overrides included);
        # load_state_dict would bring back the old lr/betas/weight_decay, so keep the new ones.
        # (Families that schedule the lr, like the judge, set it again at every step.)
        settings = [{k: g[k] for k in _HYPER if k in g} for g in opt.param_groups]
        try:
            opt.load_state_dict(_unflatten_optimizer(name, meta["optimizers"][name], tensors))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimizer {name!r} does not fit: {exc}") from None
        for group, kept in zip(opt.param_groups, settings, strict=True):
            group.update(kept)
        _match_layouts(opt)
    for name, scaler in task.runtime.scalers.items():
        if name in meta.get("scalers", {}):
            scaler.load_state_dict(meta["scalers"][name])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(_tuples(meta["rng"]["python"]))
    kind, keys, *rest = meta["rng"]["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    task.load_state_dict_extra(meta.get("extra", {}))
    return int(meta["step"])
