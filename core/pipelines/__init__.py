"""One module per panel. Importing this package registers every pipeline with core.jobs."""

from core.pipelines import inpaint, latent, scene, style, upscale  # noqa: F401
