"""One module per panel. Importing this package registers every pipeline with core.jobs."""

from core.pipelines import inpaint, latent, scene, upscale  # noqa: F401
