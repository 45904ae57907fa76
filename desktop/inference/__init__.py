"""The background inference core: one worker thread that runs job pipelines for the GUI."""

from desktop.inference.handle import JobHandle
from desktop.inference.service import InferenceService

__all__ = ["InferenceService", "JobHandle"]
