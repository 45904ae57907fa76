"""Model families the trainer can run. Importing this package registers them."""

from core.training.families import (  # noqa: F401
    autoencoder,
    dcgan,
    diffusion,
    judge,
    prior,
    reranker,
    style,
    style_onepass,
    upscale,
    vae,
    vqvae,
)
