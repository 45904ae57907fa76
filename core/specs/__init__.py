"""Every job spec, torch-free. Importing this package registers every spec kind (core.jobs
reads a spec dict back by its kind); the pipelines that run them live in core/pipelines/."""

from core.specs import inpaint, inpaint_batch, judge, latent, scene, sd, style, upscale  # noqa: F401
