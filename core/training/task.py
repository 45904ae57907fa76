"""The family interface: what a model family gives the trainer, and what the trainer gives back.

One trainer (core/training/trainer.py) runs every family. A family is a :class:`Task` subclass
registered under the recipe's ``family`` name::

    @register_task("dcgan")
    class DCGANTask(Task):
        Options = DCGANOptions            # dataclass of the recipe's [task] table (or None)

        def __init__(self, recipe, device, generator):
            super().__init__(recipe, device, generator)
            cfg = DCGANConfig(**recipe.model)   # the recipe's [model] table
            self.g = Generator(cfg).to(device)  # build on the CPU with `generator`, then move
            self.d = Discriminator(cfg).to(device)

        def modules(self):           return {"generator": self.g, "discriminator": self.d}
        def optimizers(self):        return {"g": self.adam(self.g), "d": self.adam(self.d)}
        def ema_names(self):         return ["generator"]
        def training_step(self, batch, step):
            with self.autocast():
                loss_d = ...self.net("discriminator")(batch.images)...
            self.optimizer_step("d", loss_d)
            ...
            return {"d": loss_d.detach(), "g": loss_g.detach()}
        def sample_grid(self, n):    return make_grid(self.ema("generator")(z))
        def export(self):            return self.ema("generator"), "dcgan", asdict(cfg)

Call order, once per run: ``__init__`` -> ``modules()`` (the trainer moves them to the memory
format, wraps them for DistributedDataParallel, and makes EMA copies of ``ema_names()``) ->
``optimizers()`` -> [checkpoint restore] -> ``training_step(batch, step)`` for each step ->
``sample_grid(n)`` every ``train.sample_every`` steps (rank 0 only) -> ``export()`` (rank 0).

Rules every family keeps so that runs are deterministic, resumable and distributable:

- Build every module in ``__init__`` (seed its init from ``generator``) and return the *same*
  objects from ``modules()`` each time. Everything learned lives in ``modules()``, optimizers
  and EMA copies: that is what a checkpoint holds. Extra state goes in ``state_dict_extra``.
- In ``training_step`` call modules through ``self.net(name)`` (the DDP-wrapped module when
  distributed), do the forward passes under ``self.autocast()``, and finish each loss with
  ``self.optimizer_step(name, loss)`` (backward through the AMP grad scaler, gradient clipping,
  step, zero_grad). GANs call it once per optimizer.
- Draw training noise with ``self.randn(step, stream, *shape)``: it is a function of
  (recipe seed, step, stream) only, generated for the global batch and sliced to this rank, so
  a resumed run and a run on N processes see the same noise as one uninterrupted process.
- Return losses as floats or detached 0-dim tensors (the trainer only turns tensors into floats
  on logged steps, which keeps a GPU from syncing every step).
- ``sample_grid`` and ``export`` run on rank 0 only: they must never call ``self.net`` (a DDP
  forward on one rank alone would hang); use ``self.ema(name)`` or the raw module, and
  ``self.evaluating(module)`` around inference.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from core.tensors import to_uint8

if TYPE_CHECKING:
    from core.training.recipe import Recipe


class TrainingError(Exception):
    """Bad input or an unrecoverable condition in training, as one user-readable line."""


@dataclass
class Batch:
    """This rank's share of one step's batch.

    ``images`` is float32 NCHW in [-1, 1] on the training device (channels_last when the recipe
    asks for it). ``labels``/``captions``/``seeds`` are per image, in the same order: the world's
    label dicts (``Sample.labels``), captions (or None), and the world seed (or the folder index).
    """

    images: torch.Tensor
    labels: list[dict[str, Any]] = field(default_factory=list)
    captions: list[str | None] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Runtime:
    """What the trainer decides for a task: wrapped modules, AMP, EMA copies, distribution."""

    wrapped: dict[str, nn.Module] = field(default_factory=dict)
    ema: dict[str, nn.Module] = field(default_factory=dict)
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)
    amp_dtype: torch.dtype | None = None  # None: full precision
    grad_clip: float = 0.0
    rank: int = 0
    world_size: int = 1


class Task:
    """Base class of a model family. See the module docstring for the contract."""

    family: ClassVar[str] = ""
    # core.registry name whose config dataclass checks the recipe's [model] table ("" = none).
    architecture: ClassVar[str] = ""
    # Dataclass of the recipe's [task] table (loss weights and other family options), or None.
    Options: ClassVar[type | None] = None

    def __init__(self, recipe: Recipe, device: torch.device, generator: torch.Generator) -> None:
        self.recipe = recipe
        self.device = torch.device(device)
        self.generator = generator
        self.options: Any = recipe.task  # an instance of Options (validated by the recipe)
        self.runtime = Runtime()
        self._optimizers: dict[str, torch.optim.Optimizer] | None = None

    # ------------------------------------------------------------------ what a family writes

    def modules(self) -> dict[str, nn.Module]:
        """Every trained module by name (checkpointed, DDP-wrapped by the trainer)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per name (default: one Adam/AdamW over every module, from [train])."""
        params = [p for m in self.modules().values() for p in m.parameters()]
        return {"main": self.adam(params)}

    def ema_names(self) -> list[str]:
        """Modules that keep an exponential moving average when ``train.ema`` > 0."""
        return []

    def training_step(self, batch: Batch, step: int) -> dict[str, float | torch.Tensor]:
        """One optimisation step on this rank's batch (backward and optimizer steps included)."""
        raise NotImplementedError

    def sample_grid(self, n: int) -> np.ndarray | None:
        """A uint8 HxWx3 grid of ``n`` samples (or reconstructions) for the PNGs, or None."""
        return None

    def export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        """(module to save, core.registry architecture name, its config dict) for save_model."""
        raise NotImplementedError

    def state_dict_extra(self) -> dict[str, Any]:
        """JSON-safe state outside modules/optimizers that a resume needs (usually none)."""
        return {}

    def load_state_dict_extra(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ helpers for families

    @property
    def rank(self) -> int:
        return self.runtime.rank

    @property
    def world_size(self) -> int:
        return self.runtime.world_size

    def net(self, name: str) -> nn.Module:
        """The module to call in ``training_step`` (DDP-wrapped when distributed)."""
        m = self.runtime.wrapped.get(name)  # not `or`: a container module of length 0 is falsy
        return self.modules()[name] if m is None else m

    def ema(self, name: str) -> nn.Module:
        """The EMA copy of a module when there is one, else the module itself (never DDP)."""
        m = self.runtime.ema.get(name)
        return self.modules()[name] if m is None else m

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes on CUDA when the recipe enables it; else no-op."""
        if self.runtime.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.runtime.amp_dtype)

    def optimizer_step(self, name: str, loss: torch.Tensor,
                       params: Iterable[torch.Tensor] | None = None) -> None:
        """Backward ``loss`` and step optimizer ``name`` (AMP scaling, clipping, zero_grad).

        ``params`` (default: the optimizer's own) are the ones clipped to ``train.grad_clip``.
        """
        opt = self.get_optimizer(name)
        scaler = self.runtime.scalers.get(name)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.runtime.grad_clip > 0:
            if scaler is not None:
                scaler.unscale_(opt)
            clip = list(params) if params is not None else [
                p for g in opt.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(clip, self.runtime.grad_clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)

    def bind_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """The trainer hands back the optimizers it made with ``optimizers()`` (called once)."""
        self._optimizers = optimizers

    def get_optimizer(self, name: str) -> torch.optim.Optimizer:
        if self._optimizers is None:
            self._optimizers = self.optimizers()
        return self._optimizers[name]

    def adam(self, params: nn.Module | Iterable[torch.Tensor], **overrides: Any
             ) -> torch.optim.Optimizer:
        """Adam or AdamW from the recipe's [train] table, fused on CUDA and the CPU."""
        train = self.recipe.train
        if isinstance(params, nn.Module):
            params = params.parameters()
        kwargs: dict[str, Any] = {"lr": train.lr, "betas": tuple(train.betas),
                                  "weight_decay": train.weight_decay}
        kwargs.update(overrides)
        # Fused kernels do the whole update in one pass over each tensor. On the CPU (torch
        # 2.13, 2 cores) the fused step of the 3M-parameter VAE takes ~2 ms against ~9 ms for
        # foreach or the default loop (bench/training.py); other devices (MPS) use foreach.
        if self.device.type in ("cuda", "cpu"):
            kwargs["fused"] = True
        else:
            kwargs["foreach"] = True
        cls = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
        return cls(params, **kwargs)

    def schedule_lr(self, name: str, step: int, warmup_steps: int, final_lr: float) -> float:
        """Set optimizer ``name``'s learning rate for ``step``: a linear warm-up over
        ``warmup_steps``, then cosine decay to ``final_lr`` x train.lr at the last step
        (Loshchilov & Hutter 2017, without restarts). A function of the step alone, so a
        resumed run follows the same schedule. Returns the rate set."""
        base, total = self.recipe.train.lr, self.recipe.train.steps
        if step < warmup_steps:
            lr = base * (step + 1) / warmup_steps
        else:
            t = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
            lr = base * (final_lr + (1 - final_lr) * 0.5 * (1 + math.cos(math.pi * t)))
        for group in self.get_optimizer(name).param_groups:
            group["lr"] = lr
        return lr

    def randn(self, step: int, stream: str, *shape: int, local: int | None = None
              ) -> torch.Tensor:
        """Standard normal noise for this rank's part of the step's global batch.

        The noise for the whole global batch, ``(train.batch_size, *shape)``, is a function of
        (recipe seed, step, stream); this rank gets rows ``[rank * local, (rank + 1) * local)``.
        Generated on the CPU (small) so every device and process count sees the same numbers.
        """
        total = self.recipe.train.batch_size
        local = total // self.world_size if local is None else local
        g = torch.Generator().manual_seed(stream_seed(self.recipe.seed, step, stream))
        noise = torch.randn((total, *shape), generator=g)
        start = self.rank * local
        return noise[start:start + local].to(self.device, non_blocking=True)

    @staticmethod
    @contextlib.contextmanager
    def evaluating(*modules: nn.Module) -> Iterator[None]:
        """Eval mode and no grad for inference inside training, restoring train mode after."""
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for m, mode in zip(modules, modes, strict=True):
                m.train(mode)

    # ------------------------------------------------------------------ used by the trainer

    def make_ema(self, decay: float) -> None:
        if decay <= 0:
            return
        for name in self.ema_names():
            m = copy.deepcopy(self.modules()[name])
            m.requires_grad_(False)
            m.eval()
            self.runtime.ema[name] = m

    @torch.no_grad()
    def update_ema(self, decay: float, step: int | None = None) -> None:
        """ema = d * ema + (1 - d) * online, per parameter; buffers are copied.

        With ``step`` the decay ramps up as d = min(decay, (1 + step) / (10 + step)) (the
        ``num_updates`` rule of TensorFlow's ExponentialMovingAverage), so early samples and
        short runs are not dominated by the random initialisation.
        """
        if step is not None:
            decay = min(decay, (1 + step) / (10 + step))
        for name, ema_m in self.runtime.ema.items():
            online = self.modules()[name]
            e_params = list(ema_m.parameters())
            o_params = [p.detach() for p in online.parameters()]
            torch._foreach_lerp_(e_params, o_params, 1.0 - decay)
            for eb, ob in zip(ema_m.buffers(), online.buffers(), strict=True):
                eb.copy_(ob)


def load_frozen(name_or_path: str, cls: type, families: tuple[str, ...], what: str,
                recipe: str, device: torch.device) -> tuple[Any, str, str]:
    """(model, name, sha256) of an installed model another family builds on (a VQ-VAE under
    a prior, an autoencoder under latent diffusion), frozen; a RecipeError that names the
    ``recipe`` to train first when it is missing or of another kind."""
    from core.training.recipe import RecipeError
    from core.weights import WeightsError, load_checked, resolve_weights

    try:
        path = resolve_weights(name_or_path, families, what)
        model, card = load_checked(path, cls, what, device)
    except WeightsError as exc:
        raise RecipeError(f"{exc} Train one first (easel train {recipe}) or give a "
                          ".safetensors path.") from None
    model.requires_grad_(False)
    return model, card.name, card.sha256


def stream_seed(seed: int, step: int, stream: str) -> int:
    """A 63-bit seed that depends only on (seed, step, stream)."""
    digest = hashlib.blake2b(f"{seed}:{step}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def image_grid(images: torch.Tensor | np.ndarray, cols: int | None = None) -> np.ndarray:
    """NCHW float in [-1, 1] (or NHWC uint8) -> one uint8 HxWx3 grid with 2 px gutters."""
    if isinstance(images, torch.Tensor):
        arr = to_uint8(images)
    else:
        arr = np.asarray(images, dtype=np.uint8)
    n, h, w, _ = arr.shape
    cols = cols or max(1, int(np.ceil(np.sqrt(n))))
    rows = int(np.ceil(n / cols))
    pad = 2
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x0 = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x0:x0 + w] = arr[i]
    return grid


# --------------------------------------------------------------------------- registry

_TASKS: dict[str, type[Task]] = {}


def register_task(family: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: make ``family`` (a recipe's ``family = "..."``) build this Task."""

    def deco(cls: type[Task]) -> type[Task]:
        if family in _TASKS and _TASKS[family] is not cls:
            raise ValueError(f"training family {family!r} is registered twice")
        cls.family = family
        _TASKS[family] = cls
        return cls

    return deco


def _import_families() -> None:
    import core.training.families  # noqa: F401  (importing registers the families)


def get_task(family: str) -> type[Task]:
    _import_families()
    try:
        return _TASKS[family]
    except KeyError:
        raise TrainingError(f"unknown training family {family!r}; known: "
                            f"{', '.join(sorted(_TASKS))}") from None


def task_families() -> list[str]:
    _import_families()
    return sorted(_TASKS)
