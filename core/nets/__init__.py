"""Plain nn.Modules, one family per file. Importing this package registers every architecture."""

from core.nets import (  # noqa: F401
    autoencoder,
    dcgan,
    judge,
    lama,
    prior,
    reranker,
    transform,
    unet,
    upscale,
    vae,
    vqvae,
)
