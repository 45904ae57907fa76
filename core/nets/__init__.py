"""Plain nn.Modules, one family per file. Importing this package registers every architecture."""

from core.nets import (  # noqa: F401
    adain,
    autoencoder,
    compact,
    dcgan,
    esrgan,
    judge,
    lama,
    prior,
    reranker,
    span,
    transform,
    unet,
    upscale,
    vae,
    vqvae,
)
