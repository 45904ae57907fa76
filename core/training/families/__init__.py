"""Model families the trainer can run. Importing this package registers them."""

from core.training.families import dcgan, judge, prior, reranker, upscale, vae, vqvae  # noqa: F401
