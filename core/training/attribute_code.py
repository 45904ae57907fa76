"""The attribute code: labels that shape a latent space, and the model still samples from N(0, I).

The first ``sum(groups)`` numbers of a latent are split into one group per attribute of the
training world (the faces world's 9); an attribute's class is its group's largest number. Under
the N(0, I) prior every class is then equally likely, as the faces world draws them. Training
teaches the network to honour the code: a DCGAN's generator through an auxiliary classifier in
its discriminator (core/training/families/dcgan.py), a VAE's encoder by reading the classes off
its posterior means (core/training/families/vae.py). Directions and A - B + C then act on the
same latent the prior samples.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from core.training.recipe import RecipeError


def world_attributes(source: str) -> list[tuple[str, list[str]]]:
    """(attribute, classes) in code order for a recipe's data source: the faces world's."""
    if source != "faces":
        raise RecipeError("task.attribute_code needs the faces world (data.source = "
                          "\"faces\"), whose labels the code names.")
    from core.data.faces import ATTRIBUTES

    return [(name, list(classes)) for name, classes in ATTRIBUTES.items()]


def code_classes(z: torch.Tensor, groups: tuple[int, ...] | list[int]) -> torch.Tensor:
    """(N, len(groups)) long: the class each attribute code of latents ``z`` names."""
    out, start = [], 0
    for k in groups:
        out.append(z[:, start:start + k].argmax(1))
        start += k
    return torch.stack(out, 1)


def code_loss(logits: torch.Tensor, classes: torch.Tensor,
              groups: tuple[int, ...] | list[int], smoothing: float = 0.0) -> torch.Tensor:
    """Mean over the attributes of the cross-entropy of each group of ``logits`` (N, sum) with
    ``classes`` (N, len(groups)); ``smoothing``: label smoothing, which bounds the logit gap
    the loss asks for (so a VAE's code stays within its prior's bulk)."""
    losses, start = [], 0
    for k, size in enumerate(groups):
        losses.append(F.cross_entropy(logits[:, start:start + size].float(), classes[:, k],
                                      label_smoothing=smoothing))
        start += size
    return torch.stack(losses).mean()


def label_classes(labels: list[dict[str, Any]], attributes: list[tuple[str, list[str]]],
                  device: torch.device) -> torch.Tensor:
    """(N, len(attributes)) long: the class index of each image's label per attribute."""
    return torch.tensor([[classes.index(lab[name]) for name, classes in attributes]
                         for lab in labels], device=device)
