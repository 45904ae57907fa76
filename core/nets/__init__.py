"""Plain nn.Modules, one family per file. Importing this package registers every architecture."""

from core.nets import dcgan, judge, upscale, vae  # noqa: F401
