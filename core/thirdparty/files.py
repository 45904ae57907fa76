"""Reading users' third-party model files into a state dict, without ever unpickling.

A ``.safetensors`` file is parsed by the safetensors library (which has no code path that runs
anything). A ``.pth``/``.ckpt``/``.bin``/``.pt`` file is a torch.save archive; it is opened only
with ``torch.load(weights_only=True)``, whose unpickler builds tensors, plain containers and
numbers and refuses every other object. Checkpoints that carry training-framework objects are
therefore refused, with the one remedy that works: save the weights as safetensors first.

Files such as Real-ESRGAN's keep the tensors under a wrapper key (``params_ema``, ``params``,
``state_dict``...); :func:`read_state_dict` unwraps those, so every detector sees the
network's own key names.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from core.weights import MAX_WEIGHTS_BYTES, WeightsError, read_regular

SAFETENSORS = (".safetensors",)
PICKLED = (".pth", ".pt", ".ckpt", ".bin")
SUFFIXES = SAFETENSORS + PICKLED

# Keys under which training code stores the network's tensors, most specific first: BasicSR
# writes both ``params`` and ``params_ema`` and the EMA copy is the one its authors release.
WRAPPERS = ("params_ema", "params", "state_dict", "model", "generator", "module")
MAX_TENSORS = 100_000  # a full-size SD checkpoint has about 1,200


class ThirdPartyError(Exception):
    """A user's model file that Easel cannot open; the message names the file and why."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {"state_dict": {"model": {...}}}
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor)
                                                 for v in obj.values()):
            break
        inner = next((obj[k] for k in WRAPPERS if isinstance(obj, dict) and k in obj
                      and isinstance(obj[k], dict)), None)
        if inner is None:
            break
        obj = inner
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)
               } if isinstance(obj, dict) else {}
    if not tensors:
        raise ThirdPartyError(f"{path.name} holds no tensors Easel can read.")
    if len(tensors) > MAX_TENSORS:
        raise ThirdPartyError(f"{path.name} holds {len(tensors):,} tensors, more than any "
                              "model Easel opens.")
    return tensors


def read_state_dict(path: str | os.PathLike, limit: int = MAX_WEIGHTS_BYTES,
                    ) -> dict[str, torch.Tensor]:
    """The named tensors of a user's model file (on the CPU), unwrapped from the usual
    training wrappers; ThirdPartyError naming the file when it cannot be read safely."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ThirdPartyError(f"{path.name}: Easel opens model files ending in "
                              f"{', '.join(SUFFIXES)}.")
    try:
        data = read_regular(path, limit)
    except FileNotFoundError:
        raise ThirdPartyError(f"{path} not found.") from None
    except (OSError, WeightsError) as exc:
        raise ThirdPartyError(str(exc)) from None
    return parse_state_dict(data, path)


def parse_state_dict(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    """:func:`read_state_dict` of bytes already read from ``path`` (which names the file in
    messages and gives its suffix): a caller that hashes the file parses the very bytes it
    hashed."""
    suffix = path.suffix.lower()
    if data[:4] != b"PK\x03\x04" and data[:1] != b"\x80" and data[8:9] == b"{":
        try:  # a safetensors file whatever its suffix (.bin files are sometimes either)
            return _unwrap(st_load(data), path)
        except (SafetensorError, ValueError) as exc:
            raise ThirdPartyError(f"{path.name} is not a valid safetensors file ({exc}).") \
                from None
    if suffix in SAFETENSORS:
        raise ThirdPartyError(f"{path.name} is not a valid safetensors file.")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ThirdPartyError(
            f"{path.name} holds more than weights ({_first_line(exc)}); Easel reads only weights "
            "from pickled files. Save it as .safetensors first.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise ThirdPartyError(f"{path.name} is truncated or not a PyTorch checkpoint "
                              f"({_first_line(exc)}).") from None
    return _unwrap(obj, path)
