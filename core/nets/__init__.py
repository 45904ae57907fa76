"""Plain nn.Modules, one family per file. Importing this package registers every architecture."""

from core.nets import dcgan, judge, vae  # noqa: F401
