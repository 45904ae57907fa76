"""Architecture registry: a name in a model card -> the nn.Module class and its config dataclass.

    @register("vae", config=VAEConfig)
    class VAE(nn.Module): ...

``build(name, config_dict)`` makes the module from a model card's ``config``. The registry
sits below the networks: importing ``core.nets`` registers every architecture, so a caller that
looks a name up imports ``core.nets`` first (core.weights does when it builds a model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class UnknownArchitecture(KeyError):
    pass


@dataclass(frozen=True)
class Architecture:
    name: str
    cls: type
    config: type


_ARCHS: dict[str, Architecture] = {}


def register(name: str, config: type) -> Callable[[type], type]:
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config for {name!r} must be a dataclass")

    def deco(cls: type) -> type:
        if name in _ARCHS and _ARCHS[name].cls is not cls:
            raise ValueError(f"architecture {name!r} is registered twice")
        _ARCHS[name] = Architecture(name, cls, config)
        return cls

    return deco


def get(name: str) -> Architecture:
    try:
        return _ARCHS[name]
    except KeyError:
        raise UnknownArchitecture(
            f"Unknown architecture {name!r}; known: {', '.join(sorted(_ARCHS)) or 'none'}"
        ) from None


def names() -> list[str]:
    return sorted(_ARCHS)


def make_config(name: str, values: dict[str, Any]) -> Any:
    arch = get(name)
    known = {f.name for f in dataclasses.fields(arch.config)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"config for {name!r} has unknown fields: {', '.join(sorted(unknown))}")
    return arch.config(**values)


def build(name: str, values: dict[str, Any]) -> Any:
    """Instantiate architecture ``name`` from its config values (as stored in a model card)."""
    arch = get(name)
    return arch.cls(make_config(name, values))
