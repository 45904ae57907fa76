"""Plain nn.Modules, one family per file. Importing this package registers every architecture."""

from core.nets import dcgan, judge, prior, reranker, upscale, vae, vqvae  # noqa: F401
