"""Tiny random-weight scene models installed as user models, for pipeline and panel tests.

``install(home)`` saves a 16 px VQ-VAE (4x4 codes), a one-layer layout prior over its codes
(the default scene model, DEFAULT_PRIOR), a one-layer caption prior with the words of 300 scene
captions (CAPTION_PRIOR), and a 16 px reranker, under the names the scene pipeline looks for,
so the pipelines treat them exactly like the shipped ones. ``install_layout_prior`` saves
another one-layer layout prior (LAYOUT_NAME by default) over the same VQ-VAE's codes (or
another's).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.data.captions import sample_scene
from core.nets.prior import LayoutPrior, LayoutPriorConfig, PriorConfig, ScenePrior
from core.nets.reranker import Reranker, RerankerConfig
from core.nets.text import build_vocab
from core.nets.vqvae import VQVAE, VQVAEConfig
from core.pipelines.scene import DEFAULT_PRIOR, DEFAULT_RERANKER
from core.specs.scene import CAPTION_PRIOR
from core.weights import ModelCard, save_model

VQ_NAME = "tiny_vqvae_scenes"
LAYOUT_NAME = "tiny_layout_prior_scenes"


def install(home: Path) -> dict[str, Path]:
    """Save the three models under ``home`` (the EASEL_HOME of the test); name -> path."""
    torch.manual_seed(0)
    vocab = build_vocab(sample_scene(s).caption for s in range(300))
    vq_cfg = VQVAEConfig(image_size=16, base=8, downsample=4, res_blocks=1, codebook_size=16,
                         code_dim=8)
    vq = VQVAE(vq_cfg)
    vq.quantizer.codebook.normal_()
    models = home / "models"
    out = {VQ_NAME: save_model(models / "vqvae", VQ_NAME, vq.eval(), _card(VQ_NAME, "vqvae",
                                                                            vq_cfg))}
    from core.weights import read_card

    prior_cfg = PriorConfig(vocab=vocab, text_len=12, grid=4, codebook_size=16, width=16,
                            layers=1, heads=2, vqvae=VQ_NAME,
                            vqvae_sha256=read_card(out[VQ_NAME]).sha256)
    out[CAPTION_PRIOR] = save_model(models / "prior", CAPTION_PRIOR, ScenePrior(prior_cfg).eval(),
                                    _card(CAPTION_PRIOR, "prior", prior_cfg))
    rr_cfg = RerankerConfig(vocab=vocab, text_len=12, image_size=16, base=8, width=16, layers=1,
                            heads=2, embed_dim=8)
    out[DEFAULT_RERANKER] = save_model(models / "reranker", DEFAULT_RERANKER,
                                       Reranker(rr_cfg).eval(),
                                       _card(DEFAULT_RERANKER, "reranker", rr_cfg))
    out[DEFAULT_PRIOR] = install_layout_prior(home, name=DEFAULT_PRIOR)
    return out


def install_layout_prior(home: Path, vq_path: Path | None = None, name: str = LAYOUT_NAME
                         ) -> Path:
    """Save a tiny layout prior under ``home`` over the VQ-VAE that :func:`install` saved
    there, or over the one at ``vq_path`` (e.g. the shipped 64 px one, for the benchmark)."""
    from core.weights import read_card

    torch.manual_seed(1)
    vq_path = vq_path or home / "models" / "vqvae" / f"{VQ_NAME}.safetensors"
    vq_card = read_card(vq_path)
    vq_cfg = VQVAEConfig(**vq_card.config)
    cfg = LayoutPriorConfig(grid=vq_cfg.grid, codebook_size=vq_cfg.codebook_size, width=16,
                            layers=1, heads=2, vqvae=vq_path.stem, vqvae_sha256=vq_card.sha256)
    return save_model(home / "models" / "layout_prior", name, LayoutPrior(cfg).eval(),
                      _card(name, "layout_prior", cfg))


def _card(name: str, family: str, cfg: object) -> ModelCard:
    return ModelCard(name=name, family=family, architecture=family,
                     config=dataclasses.asdict(cfg), data="scenes",
                     extra={"recipe_resolved": {"data": {"source": "scenes"}}})
