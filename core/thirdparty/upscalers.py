"""Telling upscalers apart by their state dicts: ESRGAN/Real-ESRGAN RRDB nets, Real-ESRGAN's
SRVGG compact nets and SPAN (the modules are core/nets/esrgan.py, compact.py and span.py).

Each ``detect_*(state_dict)`` returns None when the keys are not that family's, and otherwise
a Detected (core/thirdparty/detected.py): the architecture, its config read from the tensor
shapes (scale, channels, features, blocks) and the state dict in the module's own key names.
Nothing is guessed: a scale is derived from the layers that make it (the number of x2 stages
and the input fold of an RRDB net; the pixel-shuffle conv of the others, whose output has
``channels * scale**2`` maps), and a file whose shapes allow no consistent reading raises
ThirdPartyError saying what does not add up.
The detection follows what chaiNNer's spandrel reads from the same files.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from core.thirdparty.detected import Detected
from core.thirdparty.files import ThirdPartyError

FAMILY = "upscale"  # core/specs/upscale.py: where Easel's own upscalers live too
OPENS = "Real-ESRGAN/ESRGAN RRDB, SRVGG compact and SPAN upscalers"
RGB = 3

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_BODY_CONV = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)$")
_BLOCK = re.compile(r"body\.(\d+)\.rdb1\.conv1\.weight$")
_UP = re.compile(r"conv_up(\d+)\.weight$")
_COMPACT = re.compile(r"body\.(\d+)\.(weight|bias)$")

# The ESRGAN repository's later layout (its RRDB_ESRGAN_x4.pth, and BSRGAN and RealSR files):
# BasicSR's names under other words (and RDB1-3 in capitals).
_ESRGAN_NAMES = (("RRDB_trunk.", "body."), ("trunk_conv.", "conv_body."),
                 ("upconv", "conv_up"), ("HRconv.", "conv_hr."))


def _result(architecture: str, config: dict[str, Any], state: dict[str, torch.Tensor],
            layout: str, description: str) -> Detected:
    """The reading of an upscaler: ThirdPartyError unless it takes and gives RGB pictures."""
    channels = (config["in_channels"], config["out_channels"])
    if channels != (RGB, RGB):
        raise ThirdPartyError(f"is an upscaler for {channels[0]}-channel pictures giving "
                              f"{channels[1]} channels; Easel upscales RGB pictures (3 "
                              "channels)")
    return Detected(FAMILY, architecture, config, state, description, layout)


def _shape(state: dict[str, torch.Tensor], key: str, dims: int, what: str) -> torch.Size:
    """The shape of conv (``dims`` 4) or vector (1) ``key``, or ThirdPartyError."""
    tensor = state.get(key)
    if tensor is None or tensor.dim() != dims:
        raise ThirdPartyError(f"looks like {what}, but its {key} is "
                              f"{'missing' if tensor is None else list(tensor.shape)}, not a "
                              f"{'conv weight' if dims == 4 else 'vector'}")
    return tensor.shape


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _square_scale(maps: int, channels: int, what: str) -> int:
    """The scale of a pixel-shuffle conv with ``maps`` outputs for ``channels``-channel
    pictures: ``maps == channels * scale**2``, or ThirdPartyError."""
    scale = math.isqrt(maps // channels) if channels > 0 and maps % channels == 0 else 0
    if scale < 1 or channels * scale * scale != maps:
        raise ThirdPartyError(f"looks like {what}, but its last conv gives {maps} maps, not "
                              f"{channels} channels times a square (the scale squared), so "
                              "its scale cannot be told")
    return scale


# --------------------------------------------------------------------------- ESRGAN / RRDB


def _from_old_esrgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The old ESRGAN layout (one ``model`` Sequential: ``model.0`` the first conv,
    ``model.1.sub`` the RRDB trunk and its conv, then per x2 stage an Upsample, a conv and a
    LeakyReLU, then the two output convs) renamed to RRDBNet's keys; None when a key does not
    fit that layout."""
    top = [int(m.group(1)) for k in state if (m := _OLD_TOP.match(k))]
    trunk = [int(m.group(1)) for k in state if (m := _OLD_BODY_CONV.match(k))]
    if not top or not trunk or (max(top) - 4) % 3:
        return None
    last, blocks, ups = max(top), max(trunk), (max(top) - 4) // 3
    names = {0: "conv_first", last - 2: "conv_hr", last: "conv_last",
             **{3 * k: f"conv_up{k}" for k in range(1, ups + 1)}}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := _OLD_RDB.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif (m := _OLD_BODY_CONV.match(key)) and int(m[1]) == blocks:
            out[f"conv_body.{m[2]}"] = value
        elif (m := _OLD_TOP.match(key)) and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            out[key] = value  # reported as unexpected when the net is checked against it
    return out


def detect_esrgan(state: dict[str, torch.Tensor]) -> Detected | None:
    """RRDBNet: Real-ESRGAN x4plus/x2plus/anime 6B (BasicSR names), the ESRGAN repository's
    names, or the old ESRGAN layout."""
    if "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state:
        layout, renamed = "old ESRGAN", _from_old_esrgan(state)
        if renamed is None:
            raise ThirdPartyError("looks like an old-layout ESRGAN model, but its layers are "
                                  "not the ESRGAN sequence (first conv, trunk, x2 stages, two "
                                  "output convs)")
        state = renamed
    elif "conv_first.weight" in state and "RRDB_trunk.0.RDB1.conv1.weight" in state:
        layout = "ESRGAN"
        state = {_rename(k): v for k, v in state.items()}
    elif "conv_first.weight" in state and "conv_body.weight" in state \
            and any(_BLOCK.match(k) for k in state):
        layout = "Real-ESRGAN (BasicSR)"
    else:
        return None
    what = "an ESRGAN RRDB model"
    feat, folded = _shape(state, "conv_first.weight", 4, what)[:2]
    out_ch = _shape(state, "conv_last.weight", 4, what)[0]
    first_block = [k for k in state if _BLOCK.match(k)]
    blocks = 1 + max((int(_BLOCK.match(k)[1]) for k in first_block), default=-1)
    grow = _shape(state, first_block[0], 4, what)[0] if first_block else 32
    ups = max((int(m[1]) for k in state if (m := _UP.match(k))), default=0)
    # Real-ESRGAN folds the input of its x2 and x1 nets with a pixel unshuffle of 2 or 4,
    # keeping the net's two x2 stages: conv_first then sees 4 or 16 maps per output channel.
    fold = {1: 1, 4: 2, 16: 4}.get(folded // out_ch, 1) if out_ch and folded % out_ch == 0 else 1
    if ups > 4 or 2 ** ups < fold:
        raise ThirdPartyError(f"looks like {what}, but {ups} x2 stages and an input fold of "
                              f"{fold} give no scale Easel can run")
    config = {"in_channels": folded // (fold * fold), "out_channels": out_ch,
              "scale": 2 ** ups // fold, "num_feat": feat, "num_block": blocks,
              "num_grow_ch": grow, "pixel_unshuffle": fold}
    return _result("esrgan", config, state, layout,
                   f"ESRGAN RRDB x{config['scale']} ({_count(blocks, 'block')}, {feat} "
                   f"features, {layout} layout)")


def _rename(key: str) -> str:
    for old, new in _ESRGAN_NAMES:
        if key.startswith(old):
            return (new + key[len(old):]).replace(".RDB", ".rdb")
    return key


# --------------------------------------------------------------------------- compact


def detect_compact(state: dict[str, torch.Tensor]) -> Detected | None:
    """Real-ESRGAN's SRVGGNetCompact: ``body.N`` convs and PReLUs only."""
    indices = [int(m[1]) if (m := _COMPACT.match(k)) else -1 for k in state]
    first, prelu = state.get("body.0.weight"), state.get("body.1.weight")
    if min(indices, default=-1) < 0 or first is None or prelu is None \
            or first.dim() != 4 or prelu.dim() != 1:
        return None
    last = max(indices)
    what = "an SRVGG compact upscaler"
    if last < 2 or last % 2:
        raise ThirdPartyError(f"looks like {what}, but its last layer (body.{last}) is not a "
                              "conv after a PReLU")
    feat, in_ch = first.shape[:2]
    scale = _square_scale(_shape(state, f"body.{last}.weight", 4, what)[0], in_ch, what)
    config = {"in_channels": in_ch, "out_channels": in_ch, "num_feat": feat,
              "num_conv": (last - 2) // 2, "scale": scale}
    return _result("compact", config, state, "Real-ESRGAN compact",
                   f"SRVGG compact x{scale} ({_count(config['num_conv'], 'conv')}, {feat} "
                   "features)")


# --------------------------------------------------------------------------- SPAN


def detect_span(state: dict[str, torch.Tensor]) -> Detected | None:
    """SPAN (hongyuanyu/SPAN, and the traiNNer/neosr files that add a ``no_norm`` buffer)."""
    keys = ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "upsampler.0.weight")
    if not all(k in state for k in keys):
        return None
    what = "a SPAN upscaler"
    feat, in_ch = _shape(state, "conv_1.sk.weight", 4, what)[:2]
    scale = _square_scale(_shape(state, "upsampler.0.weight", 4, what)[0], in_ch, what)
    norm = "no_norm" not in state
    config = {"in_channels": in_ch, "out_channels": in_ch, "feature_channels": feat,
              "scale": scale, "norm": norm}
    return _result("span", config, state, "SPAN",
                   f"SPAN x{scale} ({feat} features"
                   f"{'' if norm else ', no input normalisation'})")


DETECTORS = (detect_esrgan, detect_compact, detect_span)
