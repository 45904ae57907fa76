"""Model families the trainer can run. Importing this package registers them."""

from core.training.families import dcgan, judge, upscale, vae  # noqa: F401
