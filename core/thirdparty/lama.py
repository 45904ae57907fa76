"""Recognising a LaMa inpainting model (big-lama and its relatives) among users' files.

The released checkpoints are PyTorch Lightning files whose ``state_dict`` holds the generator
under ``generator.model.<index>...`` beside the discriminator's and the losses' tensors;
files re-saved by other tools put the same ``model.<index>...`` names under ``model.`` or no
prefix at all. :func:`detect` finds the generator by its first layer's key, reads its size
from the tensor shapes and takes the generator's tensors out from under their prefix; the
network is core/nets/lama.py.
"""

from __future__ import annotations

import re
from dataclasses import asdict

import torch

from core.thirdparty.detected import Detected
from core.thirdparty.files import ThirdPartyError

FAMILY = "lama"
OPENS = "LaMa inpainting models (big-lama)"
ARCHITECTURE = "lama"
# The first FFC layer's local convolution: (channels, in_channels, 7, 7) in every LaMa.
FIRST = "model.1.ffc.convl2l.weight"


def detect(state: dict[str, torch.Tensor]) -> Detected | None:
    """A LaMa generator's reading (see core/thirdparty/detected.py), else None;
    ThirdPartyError when the tensors are a LaMa's but their sizes make no network."""
    from core.nets.lama import LaMaConfig

    prefix = next((k[:-len(FIRST)] for k in state if k.endswith(FIRST)
                   and (k == FIRST or k[-len(FIRST) - 1] == ".")), None)
    if prefix is None:
        return None
    seq = prefix + "model."
    index = re.compile(re.escape(seq) + r"(\d+)\.")
    layers = {int(m.group(1)) for k in state if (m := index.match(k))}

    def shape(i: int, name: str) -> tuple[int, ...]:
        t = state.get(f"{seq}{i}.{name}")
        return tuple(t.shape) if t is not None and t.dim() == 4 else ()

    strided = [i for i in layers if i > 1 and shape(i, "ffc.convl2l.weight")]
    blocks = [i for i in layers if shape(i, "conv1.ffc.convl2l.weight")]
    first, out = shape(1, "ffc.convl2l.weight"), shape(max(layers), "weight")
    if not (strided and blocks and first and out):
        return None
    local = shape(blocks[0], "conv1.ffc.convl2l.weight")[1]
    glob = shape(blocks[0], "conv1.ffc.convg2l.weight")
    bottleneck = local + (glob[1] if glob else 0)
    channels, downsamplings = first[0], len(strided)
    try:
        config = LaMaConfig(
            in_channels=first[1], out_channels=out[0], channels=channels,
            downsamplings=downsamplings, blocks=len(blocks),
            # a bottleneck narrower than the doublings make means the widths were capped
            max_channels=bottleneck if bottleneck < channels * 2 ** downsamplings else 1024,
            global_channels=glob[1] if glob else 0)
    except ValueError as exc:
        raise ThirdPartyError("looks like a LaMa inpainting model, but its sizes make no "
                              f"network Easel can build ({exc})") from None
    tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    # Batch norm's step counters are never used in inference; some re-saved files drop them.
    for key in [k for k in tensors if k.endswith(".running_mean")]:
        tensors.setdefault(key.removesuffix("running_mean") + "num_batches_tracked",
                           torch.zeros((), dtype=torch.long))
    layout = "LaMa (Lightning checkpoint)" if prefix == "generator." else "LaMa"
    return Detected(FAMILY, ARCHITECTURE, asdict(config), tensors,
                    f"LaMa inpainting model ({len(blocks)} blocks, {channels} channels)", layout)


DETECTORS = (detect,)
