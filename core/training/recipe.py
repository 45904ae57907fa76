"""Training recipes: TOML files (core/training/recipes/*.toml) plus command-line overrides.

A recipe::

    name = "dcgan_faces"        # names the run and the weights
    family = "dcgan"            # the Task (core/training/task.py) that trains it
    seed = 0

    [data]                      # DataSection
    source = "faces"            # a world name or a folder path
    size = 64

    [train]                     # TrainSection: steps, batch, optimiser, EMA, AMP, intervals
    steps = 20000
    batch_size = 64

    [model]                     # the family architecture's config dataclass (core/nets)
    [task]                      # the family's Options dataclass (loss weights...)

Every key is checked against its dataclass: an unknown key or a value of the wrong type is a
one-line :class:`RecipeError` naming the key and the expected type. ``--set train.lr=1e-3``
overrides any key; the value is read as a TOML value (so ``1e-3`` is a float, ``true`` a bool,
``[0.5, 0.99]`` a list) and as a plain string when it is not one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.training.task import TrainingError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


class RecipeError(TrainingError):
    """A recipe that cannot be used: unknown key, wrong type, missing file. One line."""


@dataclass
class DataSection:
    source: str = "faces"  # "faces", "scenes" (any registered world) or a folder path
    size: int = 64
    flip: bool = False  # random horizontal flips (a deterministic function of seed and step)
    images: int = 0  # >0: cycle over this many fixed training images; 0: a fresh render each
    fit: str = "crop"  # a folder's non-square pictures: "crop" (centre) or "pad" (to a square)
    workers: int = 1  # background processes rendering batches ahead (0: in the loop)
    prefetch: int = 4  # batches rendered ahead per worker
    # A folder's files set aside for evaluation (a fixed fraction, chosen by a hash of each
    # file's relative path, so adding pictures never moves an old one across the split).
    held_out: float = 0.0
    min_images: int = 0  # a folder with fewer usable training images is refused (0: any)


@dataclass
class TrainSection:
    steps: int = 1000
    batch_size: int = 64  # global: split across processes under torchrun
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    ema: float = 0.0  # EMA decay for the family's ema_names(); 0 = off
    amp: bool = True  # mixed precision (float16 + grad scaling), CUDA only
    channels_last: bool = True  # NHWC memory format for convolutions (CUDA and CPU)
    checkpoint_every: int = 500
    sample_every: int = 500
    sample_count: int = 16
    log_every: int = 10
    # A time budget: stop (and export) once the run's wall time, over every session of a
    # resumed run, reaches this many minutes; 0 = none. ``steps`` still caps the run.
    minutes: float = 0.0


@dataclass
class Recipe:
    name: str
    family: str
    seed: int = 0
    description: str = ""
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    model: dict[str, Any] = field(default_factory=dict)  # checked by the family's config class
    task: Any = None  # the family's Options instance (None when it has none)
    source: str = ""  # where the recipe came from (a path), for the model card

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe, JSON-safe (goes into checkpoints and model cards)."""
        task = dataclasses.asdict(self.task) if dataclasses.is_dataclass(self.task) else {}
        return {"name": self.name, "family": self.family, "seed": self.seed,
                "description": self.description, "data": dataclasses.asdict(self.data),
                "train": dataclasses.asdict(self.train), "model": dict(self.model),
                "task": task}


_TOP = {"name": str, "family": str, "seed": int, "description": str}
_SECTIONS = {"data": DataSection, "train": TrainSection}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}s" if args else "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "nothing", dict: "a table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against annotation ``tp`` (ints accepted for floats), or RecipeError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except RecipeError as exc:
                errors.append(str(exc))
        finite = [e for e in errors if "finite" in e]
        if finite:
            raise RecipeError(finite[0])
    elif origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if isinstance(value, (list, tuple)):
            items = [_coerce(v, args[0], key) for v in value] if args else list(value)
            return items if origin is list else tuple(items)
    elif tp is Any:
        return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML reads nan and inf; no setting means either
                raise RecipeError(f"recipe key {key!r} must be a finite number, not {value}.")
            return float(value)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is dict:
        if isinstance(value, dict):
            return value
    elif isinstance(tp, type) and isinstance(value, tp) and not (
            tp is int and isinstance(value, bool)):
        return value
    raise RecipeError(f"recipe key {key!r} must be {_type_name(tp)}, not {value!r} "
                      f"({type(value).__name__}).")


def check_dataclass(cls: type, values: Any, section: str) -> Any:
    """Build dataclass ``cls`` from ``values``, naming any unknown key or wrong type."""
    if not isinstance(values, dict):
        raise RecipeError(f"recipe key {section!r} must be a table, not {values!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise RecipeError(f"unknown recipe key {section + '.' + key!r}; {section} knows: "
                              f"{', '.join(sorted(fields)) or 'nothing'}.")
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a config's own __post_init__ check
        raise RecipeError(f"recipe table {section!r}: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001); values are TOML, else plain strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=1e-3.")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def find_recipe(name_or_path: str) -> Path:
    """A recipe file path, or the bundled recipe ``core/training/recipes/<name>.toml``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    # "style-fast" names the recipe style_fast.toml, as the command line is usually typed.
    bundled = RECIPES_DIR / f"{name_or_path.replace('-', '_')}.toml"
    if "/" not in name_or_path and bundled.is_file():
        return bundled
    known = ", ".join(bundled_recipes())
    raise RecipeError(f"no recipe {name_or_path!r}: not a file and not a bundled recipe "
                      f"({known}).")


def bundled_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> Recipe:
    """Read, override (``--set`` strings) and validate a recipe.

    ``base`` (a resolved recipe stored in a checkpoint) replaces the file's contents, so a
    resumed run continues with the settings it was started with, plus the new overrides.
    """
    path = find_recipe(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path} is not valid TOML: {exc}") from None
    raw.setdefault("name", path.stem)
    if base is not None:
        if (base.get("name"), base.get("family")) != (raw["name"], raw.get("family")):
            raise RecipeError(f"the run to resume was made with recipe {base.get('name')!r} "
                              f"({base.get('family')}), not {raw['name']!r} "
                              f"({raw.get('family')}).")
        raw = copy.deepcopy(base)
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {text!r}: {k!r} is not a table.")
        node[keys[-1]] = value
    recipe = recipe_from_dict(raw)
    recipe.source = str(path)
    return recipe


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """Validate a recipe's parsed TOML (also used for the copy stored in checkpoints)."""
    import core.nets  # noqa: F401  (importing registers every architecture)
    from core import registry
    from core.training.task import get_task

    known = set(_TOP) | set(_SECTIONS) | {"model", "task"}
    for key in raw:
        if key not in known:
            raise RecipeError(f"unknown recipe key {key!r}; a recipe knows: "
                              f"{', '.join(sorted(known))}.")
    top = {k: _coerce(raw[k], tp, k) for k, tp in _TOP.items() if k in raw}
    for k in ("name", "family"):
        if k not in top:
            raise RecipeError(f"recipe key {k!r} is missing.")
    task_cls = get_task(top["family"])
    sections = {k: check_dataclass(cls, raw.get(k, {}), k) for k, cls in _SECTIONS.items()}
    model = raw.get("model", {})
    arch = getattr(task_cls, "architecture", "")
    if arch:  # check [model] against the family's architecture config now, not mid-run,
        # and record every field (defaults included) so checkpoints compare whole configs
        model = dataclasses.asdict(check_dataclass(registry.get(arch).config, model, "model"))
    elif not isinstance(model, dict):
        raise RecipeError("recipe key 'model' must be a table.")
    if task_cls.Options is not None:
        options = check_dataclass(task_cls.Options, raw.get("task", {}), "task")
    elif raw.get("task"):
        raise RecipeError(f"family {top['family']!r} has no [task] options.")
    else:
        options = None
    recipe = Recipe(**top, **sections, model=dict(model), task=options)
    _check_values(recipe)
    return recipe


def _check_values(r: Recipe) -> None:
    t, d = r.train, r.data
    positive = {"train.steps": t.steps, "train.batch_size": t.batch_size,
                "train.checkpoint_every": t.checkpoint_every, "train.log_every": t.log_every,
                "train.sample_every": t.sample_every, "data.size": d.size,
                "data.prefetch": d.prefetch}
    for key, value in positive.items():
        if value < 1:
            raise RecipeError(f"recipe key {key!r} must be at least 1, not {value}.")
    for key, value in {"data.images": d.images, "data.workers": d.workers,
                       "train.sample_count": t.sample_count, "seed": r.seed}.items():
        if value < 0:
            raise RecipeError(f"recipe key {key!r} must not be negative, not {value}.")
    if t.optimizer not in ("adam", "adamw"):
        raise RecipeError(f"recipe key 'train.optimizer' must be \"adam\" or \"adamw\", "
                          f"not {t.optimizer!r}.")
    if not (0.0 <= t.ema < 1.0):
        raise RecipeError(f"recipe key 'train.ema' must be in [0, 1), not {t.ema}.")
    if len(t.betas) != 2 or not all(0.0 <= b < 1.0 for b in t.betas):
        raise RecipeError(f"recipe key 'train.betas' must be two numbers in [0, 1), "
                          f"not {t.betas}.")
    if not t.lr > 0:
        raise RecipeError(f"recipe key 'train.lr' must be positive, not {t.lr}.")
    if not 0.0 <= d.held_out < 1.0:
        raise RecipeError(f"recipe key 'data.held_out' must be in [0, 1), not {d.held_out}.")
    for key, value in {"train.weight_decay": t.weight_decay, "train.minutes": t.minutes,
                       "data.min_images": d.min_images,
                       "train.grad_clip": t.grad_clip}.items():
        if value < 0:
            raise RecipeError(f"recipe key {key!r} must not be negative, not {value}.")
    if d.fit not in ("crop", "pad"):
        raise RecipeError(f"recipe key 'data.fit' must be \"crop\" or \"pad\", not {d.fit!r}.")
