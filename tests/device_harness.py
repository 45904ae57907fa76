"""A simulated accelerator for tests: CUDA's and MPS's placement rules, checked on the CPU.

Inside ``with simulated_device("cuda") as dev:`` tensors moved or created on "cuda" (or "mps")
are :class:`DeviceTensor`\\ s: CPU tensors that report the simulated device. Every torch call
made by Easel's code passes through :class:`SimulatedDevice` (a ``TorchFunctionMode``), which
checks the rules a real device would enforce and records each break in ``dev.violations``:

- operands of one op share a device (0-dim CPU scalars aside; a CPU index may index a device
  tensor, never the other way round);
- a random generator lives on the device of the op that draws from it;
- no float64 tensor is created on the device (MPS has none);
- no ``.numpy()`` (or ``np.asarray``) of a device tensor;
- on "mps", no op without an MPS kernel (bicubic upsampling).

It also counts host syncs (``dev.syncs``): ``.item()``, ``.tolist()``, ``bool()``/``float()``/
``int()`` and copies of a device tensor to the CPU. ``torch.cuda``/``torch.mps`` calls Easel
makes are patched to harmless stand-ins for the duration.

Autograd works unchanged (the data is real CPU data); gradients read through ``.grad`` are
device tensors like their parameters. Only calls made by Easel's code are checked: what torch
does inside one call (``F.interpolate``'s own ops) runs on the CPU unobserved.
"""

from __future__ import annotations

import collections
import contextlib
import os
import traceback
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

Tensor = torch.Tensor

# Calls that move data between devices: mixing devices is their purpose.
_MOVES = {Tensor.to, Tensor.cuda, Tensor.cpu, Tensor.copy_, Tensor.type}
# Indexing: a CPU index may index a device tensor, a device index never a CPU tensor.
_INDEXING = {Tensor.__getitem__, Tensor.__setitem__, Tensor.index_select, torch.index_select,
             Tensor.gather, torch.gather, Tensor.take, torch.take}
_SCALARS = {Tensor.item, Tensor.__bool__, Tensor.__float__, Tensor.__int__, Tensor.__index__}
_TO_NUMPY = {Tensor.numpy, Tensor.__array__}
# Read a device name or compare tensor kinds; compute nothing.
_PARSERS = {torch.device, torch._C._nn._parse_to, torch._has_compatible_shallow_copy_type,
            Tensor.as_subclass}
_GETTERS = {Tensor.grad.__get__, Tensor.data.__get__}


class DeviceTensor(Tensor):
    """A CPU tensor that reports a simulated device (see the module's docstring)."""

    _sim_device: torch.device
    __torch_function__ = torch._C._disabled_torch_function_impl  # the mode does the work

    def __deepcopy__(self, memo: dict) -> DeviceTensor:
        # (an EMA copy of a model) The default needs new_empty() to keep the subclass.
        if id(self) not in memo:
            with torch.no_grad():
                data = self.as_subclass(Tensor).clone()
            out = on_device(data, self._sim_device).requires_grad_(self.requires_grad)
            out.__dict__.update(self.__dict__)
            memo[id(self)] = out
        return memo[id(self)]

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return self._sim_device

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return self._sim_device.type == "cuda"

    @property
    def is_mps(self) -> bool:  # type: ignore[override]
        return self._sim_device.type == "mps"


def on_device(t: Tensor, device: torch.device) -> DeviceTensor:
    """``t``'s data as a tensor on the simulated ``device`` (the same autograd node)."""
    if isinstance(t, DeviceTensor):
        return t
    out = t.as_subclass(DeviceTensor)
    out._sim_device = device
    return out


class SimulatedDevice(TorchFunctionMode):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = torch.device(device)
        if self.device.index is None and self.device.type == "cuda":
            self.device = torch.device("cuda", 0)
        self.violations: list[str] = []
        self.syncs: collections.Counter[str] = collections.Counter()
        self.sync_sites: collections.Counter[str] = collections.Counter()  # "core/x.py:12"
        self.counting = True

    # ------------------------------------------------------------------ helpers

    def _is_ours(self, d: Any) -> bool:
        if isinstance(d, str):
            d = torch.device(d) if d.split(":")[0] in ("cuda", "mps", "cpu") else None
        return isinstance(d, torch.device) and d.type == self.device.type

    def _violate(self, func: Any, why: str) -> None:
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", str(func))
        self.violations.append(f"{_caller()} {name}: {why}")

    def _sync(self, kind: str) -> None:
        if self.counting:
            self.syncs[kind] += 1
            self.sync_sites[_caller()] += 1

    def _target(self, func: Any, args: tuple, kwargs: dict) -> torch.device | None:
        """The device a call asks for explicitly (a device argument), if any."""
        for a in [*args, kwargs.get("device")]:
            if isinstance(a, torch.device) or (isinstance(a, str) and
                                               a.split(":")[0] in ("cuda", "mps", "cpu")):
                return torch.device(a)
        if func is Tensor.cuda:
            return self.device
        if func is Tensor.cpu:
            return torch.device("cpu")
        if func is Tensor.to:
            for a in args[1:]:
                if isinstance(a, Tensor):
                    return a.device
        return None

    def _check(self, func: Any, args: tuple, kwargs: dict, on_dev: bool) -> None:
        leaves = tree_flatten((args, kwargs))[0]
        tensors = [t for t in leaves if isinstance(t, Tensor)]
        dev = [t for t in tensors if isinstance(t, DeviceTensor)]
        cpu = [t for t in tensors if not isinstance(t, DeviceTensor) and t.dim() > 0]
        if func in _INDEXING:
            base = args[0] if args and isinstance(args[0], Tensor) else None
            if base is not None and not isinstance(base, DeviceTensor) and dev:
                self._violate(func, f"a {self.device.type} index indexes a CPU tensor")
            elif base is not None and isinstance(base, DeviceTensor):
                cpu = [t for t in cpu if t is base]
        elif dev and cpu and func not in _MOVES:
            self._violate(func, f"operands on {self.device.type} and on the CPU "
                                f"(CPU shapes {[tuple(t.shape) for t in cpu]})")
        gens = [g for g in leaves if isinstance(g, torch.Generator)]
        for g in gens:
            if on_dev and g.device.type != self.device.type:
                self._violate(func, f"a {g.device.type} generator draws on {self.device.type}")
        if self.device.type == "mps" and on_dev and _no_mps_kernel(func, args, kwargs):
            self._violate(func, "has no MPS kernel")

    # ------------------------------------------------------------------ the mode

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _PARSERS:
            return func(*args, **kwargs)
        if func in _GETTERS:
            out = func(*args, **kwargs)
            return on_device(out, self.device) if (
                isinstance(out, Tensor) and isinstance(args[0], DeviceTensor)) else out
        first_on_dev = bool(args) and isinstance(args[0], DeviceTensor)
        if func in _TO_NUMPY and first_on_dev:
            self._violate(func, f"numpy() of a {self.device.type} tensor")
            raise TypeError(f"can't convert {self.device.type} tensor to numpy. Use "
                            "Tensor.cpu() to copy the tensor to host memory first.")
        if func in _SCALARS and first_on_dev:
            self._sync(func.__name__.strip("_"))
        if func is Tensor.tolist and first_on_dev:
            self._sync("tolist")
        target = self._target(func, args, kwargs)
        leaves = tree_flatten((args, kwargs))[0]
        any_dev = any(isinstance(t, DeviceTensor) for t in leaves)
        if target is not None:
            on_dev = target.type == self.device.type
            if func in _MOVES and first_on_dev and not on_dev:
                self._sync("to_cpu")
        else:
            on_dev = any_dev
        if func is Tensor.copy_ and not isinstance(args[0], DeviceTensor) and any_dev:
            self._sync("to_cpu")
            on_dev = False
        self._check(func, args, kwargs, on_dev)
        args, kwargs = tree_map(self._to_cpu, (args, kwargs))
        out = func(*args, **kwargs)
        if not on_dev:  # e.g. .cpu() of a device tensor: a plain CPU tensor, never itself
            return tree_map(lambda t: t.as_subclass(Tensor) if isinstance(t, DeviceTensor)
                            else t, out)
        if func is Tensor.copy_ or (func in _MOVES and first_on_dev and out is args[0]):
            return out  # in place, or already there
        return tree_map(self._wrap, out)

    def _to_cpu(self, a: Any) -> Any:
        if isinstance(a, torch.device) and a.type == self.device.type:
            return torch.device("cpu")
        if isinstance(a, str) and self._is_ours(a):
            return "cpu"
        return a

    def _wrap(self, t: Any) -> Any:
        if not isinstance(t, Tensor) or isinstance(t, DeviceTensor):
            return t
        if t.dtype in (torch.float64, torch.complex128):
            self._violate("create", f"a {t.dtype} tensor on {self.device.type}")
        return on_device(t, self.device)


def _caller() -> str:
    """The innermost line of Easel's core/ on the stack ("core/jobs.py:12")."""
    for f in reversed(traceback.extract_stack()):
        if f"{os.sep}core{os.sep}" in f.filename:
            return f"core/{f.filename.rsplit(os.sep + 'core' + os.sep, 1)[-1]}:{f.lineno}"
    return "?"


def _no_mps_kernel(func: Any, args: tuple, kwargs: dict) -> bool:
    """Ops the torch versions Easel allows cannot run on MPS (there is no CPU fallback unless
    PYTORCH_ENABLE_MPS_FALLBACK was set before torch started)."""
    if os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK") == "1":
        return False
    if func is F.interpolate:
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        return mode == "bicubic"
    return func is getattr(torch._C._nn, "upsample_bicubic2d", None)


@contextlib.contextmanager
def simulated_device(device: str = "cuda") -> Iterator[SimulatedDevice]:
    """Run the block with ``device`` simulated (see the module's docstring)."""
    mode = SimulatedDevice(device)
    kind = mode.device.type
    patches = [mock.patch("torch.cuda.is_available", lambda: kind == "cuda"),
               mock.patch("torch.backends.mps.is_available", lambda: kind == "mps"),
               mock.patch("torch.cuda.device_count", lambda: int(kind == "cuda")),
               mock.patch("torch.cuda.get_device_name", lambda *a: "Simulated GPU"),
               mock.patch("torch.cuda._lazy_init", lambda: None)]
    for name in ("synchronize", "empty_cache", "manual_seed", "manual_seed_all",
                 "set_rng_state_all", "reset_peak_memory_stats"):
        patches.append(mock.patch(f"torch.cuda.{name}", lambda *a, **k: None))
    patches += [mock.patch("torch.cuda.get_rng_state_all", list),
                mock.patch("torch.cuda.max_memory_allocated", lambda *a: 0),
                mock.patch("torch.mps.empty_cache", lambda: None),
                mock.patch("torch.mps.synchronize", lambda: None)]
    # Optimizers and clip_grad_norm_ group tensors by device in C++, which sees the CPU.
    group = torch.utils._foreach_utils._group_tensors_by_device_and_dtype

    def grouped(tensorlistlist: Any, with_indices: bool = False) -> dict:
        groups = group(tensorlistlist, with_indices)
        return {(mode.device if any(isinstance(t, DeviceTensor) for ts in lists for t in ts)
                 else dev, dtype): (lists, idx) for (dev, dtype), (lists, idx) in groups.items()}

    patches += [mock.patch(f"{where}._group_tensors_by_device_and_dtype", grouped)
                for where in ("torch.optim.optimizer", "torch.nn.utils.clip_grad")]
    swap = torch.__future__.get_swap_module_params_on_conversion()
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        # Module.to() swaps in the moved parameters rather than setting .data, so a module's
        # parameters become device tensors as they do on a real device.
        torch.__future__.set_swap_module_params_on_conversion(True)
        stack.callback(torch.__future__.set_swap_module_params_on_conversion, swap)
        # Jobs on CUDA turn deterministic algorithms on for the process: not beyond the block.
        stack.callback(torch.use_deterministic_algorithms,
                       torch.are_deterministic_algorithms_enabled(),
                       warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
        stack.enter_context(mock.patch.dict(os.environ))
        with mode:
            yield mode
