"""Tiny random-weight diffusion models installed as user models, for pipeline and panel tests.

``install(home)`` saves a 32 px KL autoencoder (an 8x8x4 latent grid) and a latent UNet over
it under the inpaint pipeline's default model name, plus a 16 px pixel-space UNet
(``PIXEL_NAME``), so the pipelines treat them exactly like the shipped ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.nets.autoencoder import Autoencoder, AutoencoderConfig
from core.nets.unet import UNet, UNetConfig
from core.pipelines.inpaint import DEFAULT_MODEL
from core.weights import ModelCard, read_card, save_model

AE_NAME = "tiny_ae_faces"
PIXEL_NAME = "tiny_pixel_diffusion"


def install(home: Path, metrics: dict | None = None) -> dict[str, Path]:
    """Save the models under ``home`` (the EASEL_HOME of the test); name -> path.
    ``metrics`` go into the latent model's card (e.g. an ``ood_threshold``)."""
    torch.manual_seed(0)
    models = home / "models"
    ae_cfg = AutoencoderConfig(image_size=32, base=8, downsample=4, latent_channels=4,
                               res_blocks=1)
    ae = Autoencoder(ae_cfg)
    with torch.no_grad():  # untrained decoders draw nearly flat grey: make this one draw
        ae.decoder[-1].weight.mul_(20)
        ae.latent_std.fill_(0.13)  # the spread of its encoder's means on pictures
    out = {AE_NAME: save_model(models / "autoencoder", AE_NAME, ae.eval(),
                               _card(AE_NAME, "autoencoder", "autoencoder", ae_cfg))}
    unet_cfg = UNetConfig(image_size=8, channels=4, base=8, mults=[1, 2], attention=[4],
                          timesteps=100, autoencoder=AE_NAME,
                          autoencoder_sha256=read_card(out[AE_NAME]).sha256)
    card = _card(DEFAULT_MODEL, "diffusion", "unet", unet_cfg)
    card.metrics = dict(metrics or {})
    out[DEFAULT_MODEL] = save_model(models / "diffusion", DEFAULT_MODEL, _live(UNet(unet_cfg)),
                                    card)
    pix_cfg = UNetConfig(image_size=16, channels=3, base=8, mults=[1, 2], attention=[],
                         timesteps=100)
    out[PIXEL_NAME] = save_model(models / "diffusion", PIXEL_NAME, _live(UNet(pix_cfg)),
                                 _card(PIXEL_NAME, "diffusion", "unet", pix_cfg))
    return out


def _live(unet: UNet) -> UNet:
    """A fresh UNet's zero-initialised output convolutions would predict no noise at all;
    random ones make every step change the picture, as a trained model does."""
    for m in unet.modules():
        if isinstance(m, torch.nn.Conv2d) and not m.weight.any():
            torch.nn.init.normal_(m.weight, std=0.05)
    return unet.eval()


def _card(name: str, family: str, architecture: str, cfg: object) -> ModelCard:
    return ModelCard(name=name, family=family, architecture=architecture,
                     config=dataclasses.asdict(cfg), data="faces")
