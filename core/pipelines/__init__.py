"""One pipeline per panel. Importing this package registers every pipeline with core.jobs (which
sits below the pipelines and never imports them): core.jobs.run_job runs a spec through the one
registered for its kind."""

from __future__ import annotations

from collections.abc import Callable, Generator

from core.jobs import JobSpec, Progress, Result, registered_pipeline
from core.pipelines import inpaint, inpaint_batch, judge, latent, scene, sd, style, upscale  # noqa: F401


def pipeline_for(spec: JobSpec) -> Callable[..., Generator[Progress, None, Result]]:
    """The pipeline that runs ``spec`` (JobError when no pipeline runs its kind)."""
    return registered_pipeline(spec.kind)
