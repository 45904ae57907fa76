"""``easel eval`` for the diffusion models: the KL autoencoder and the (latent) diffusion UNet.

- Autoencoder: reconstruction PSNR/SSIM on held-out renders and the FJD of the
  reconstructions (the best FJD a diffusion model in its latent space can reach).
- Diffusion: FJD of samples drawn with 10, 20 and 50 DDIM steps against held-out renders; the
  seconds one 64 px sample takes at 20 steps; and ``ood_threshold``, the 99th percentile of
  the model's denoising error on the known part of held-out renders, above which the inpaint
  pipeline notes that a picture is far from the model's world.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.evaluation import metrics
from core.evaluation.common import BATCH, evaluator, held_out_of
from core.tensors import to_tensor, to_uint8
from core.weights import ModelCard, load_model

FJD_STEPS = (10, 20, 50)
OOD_IMAGES = 200


@evaluator("autoencoder")
@torch.no_grad()
def evaluate_autoencoder(path: Path, card: ModelCard, n: int, device: torch.device
                         ) -> dict[str, Any]:
    held = held_out_of(card)
    ae = load_model(path, device)
    real = held.images(n, ae.config.image_size)
    n = len(real)
    recon = np.concatenate([to_uint8(ae.decode(ae.encode(to_tensor(real[i:i + BATCH])
                                                         .to(device))))
                            for i in range(0, n, BATCH)])
    out = {"recon_psnr": metrics.psnr(real, recon), "recon_ssim": metrics.ssim(real, recon),
           "latent_std": float(ae.latent_std), "images": n}
    fjd = held.fjd(recon, None if held.is_world else real, device)
    return {**out, "recon_fjd": fjd["fjd"]} if fjd else out


def diffusion_model(path: Path, device: torch.device) -> Any:
    """A saved UNet with its autoencoder, loaded and hash-checked as the inpaint job does."""
    from core.jobs import Context
    from core.pipelines.inpaint import load_diffusion

    return load_diffusion(str(path), Context(device, None, np.random.default_rng(0))).model


@evaluator("diffusion")
@torch.no_grad()
def evaluate_diffusion(path: Path, card: ModelCard, n: int, device: torch.device
                       ) -> dict[str, Any]:
    from core.pipelines.inpaint import denoising_error

    held = held_out_of(card)
    model = diffusion_model(path, device)
    out: dict[str, Any] = {}
    real = None if held.is_world else held.images(n, model.image_size)
    n = n if real is None else len(real)
    for steps in FJD_STEPS if held.judge else ():
        g = torch.Generator().manual_seed(0)
        images = np.concatenate([to_uint8(model.generate(min(BATCH, n - i), steps, g))
                                 for i in range(0, n, BATCH)])
        out[f"fjd_ddim{steps}"] = held.fjd(images, real, device)["fjd"]
    t0 = time.perf_counter()
    model.generate(1, 20, torch.Generator().manual_seed(1))
    out["sample_seconds_20_steps"] = time.perf_counter() - t0
    # Denoising error on held-out renders with a centred box unknown, as the pipeline measures it.
    real = held.images(OOD_IMAGES, model.image_size)
    grid = model.unet.config.image_size
    keep = torch.ones(1, 1, grid, grid)
    keep[..., grid // 4:3 * grid // 4, grid // 4:3 * grid // 4] = 0
    errs = [denoising_error(model, model.encode(to_tensor(img[None]).to(device)), keep,
                            torch.Generator().manual_seed(0)) for img in real]
    out["ood_threshold"] = float(np.percentile(errs, 99))
    return out
