"""Tiny random-weight latent models installed as user models, for pipeline and panel tests.

``install(home)`` saves a 16 px VAE ("tiny_vae_faces") and a 16 px DCGAN ("tiny_dcgan_faces")
into ``<home>/models``, each with a card that says it was trained on the faces world, so the
pipelines treat them exactly like trained ones (attribute directions included).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.nets.dcgan import DCGANConfig, Generator
from core.nets.vae import VAE, VAEConfig
from core.weights import ModelCard, save_model

VAE_NAME = "tiny_vae_faces"
DCGAN_NAME = "tiny_dcgan_faces"


def install(home: Path) -> dict[str, Path]:
    """Save both models under ``home`` (the EASEL_HOME of the test); returns name -> path."""
    torch.manual_seed(0)
    out = {}
    for name, family, cfg, net in (
            (VAE_NAME, "vae", c := VAEConfig(image_size=16, latent_dim=8, base=8), VAE(c)),
            (DCGAN_NAME, "dcgan", d := DCGANConfig(image_size=16, z_dim=8, g_base=8, d_base=8),
             Generator(d))):
        card = ModelCard(name=name, family=family, architecture=family,
                         config=dataclasses.asdict(cfg), data="faces",
                         extra={"recipe_resolved": {"data": {"source": "faces"}}})
        out[name] = save_model(home / "models" / family, name, net.eval(), card)
    return out
