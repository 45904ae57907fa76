"""Text-to-scene and region-edit job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/scene.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.jobs import ImageRef, JobError, JobSpec

# The default draws a layout first (the layout prior); the caption prior draws image codes
# straight from the words, as DALL-E v1 does, and stays selectable.
DEFAULT_PRIOR = "layout_prior_scenes"
CAPTION_PRIOR = "prior_scenes"
DEFAULT_RERANKER = "rerank_scenes"
DEFAULT_UPSCALER = "upscale_scenes"
# Where scene models are installed: caption priors, and layout priors that draw a layout first.
PRIOR_FAMILIES = ("prior", "layout_prior")
MAX_CANDIDATES = 32
MAX_PROMPT_CHARS = 2000
MAX_LAYOUT_CHARS = 8192  # a spec's layout JSON (compact: three objects take about 400)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class SceneSpec(JobSpec):
    """Text to scene: ``n`` candidates for ``prompt``, best first."""

    kind = "scene"
    panel = "scene"

    prompt: str = ""
    n: int = 8
    model: str = DEFAULT_PRIOR  # a scene prior's name (shipped or user) or .safetensors path
    # Defaults chosen on validation prompts (not the held-out ones the benchmark scores):
    # top-k 32 and guidance 2 gave the best best-of-8 faithfulness of the settings tried.
    temperature: float = 1.0
    top_k: int = 32  # 0: no top-k cut
    top_p: float = 1.0  # 1: no nucleus cut
    guidance: float = 2.0  # classifier-free guidance scale; 1: plain conditional sampling
    rerank: bool = True
    upscale: bool = True
    # A layout prior's explicit layout as JSON text (core/data/layouts.py: background and each
    # object's shape, colour, size and box); "" lets the layout stage plan one from the prompt.
    layout: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.prompt, str):
            raise JobError("The prompt must be text.")
        if not isinstance(self.layout, str) or len(self.layout) > MAX_LAYOUT_CHARS:
            raise JobError(f"The layout must be JSON text of at most {MAX_LAYOUT_CHARS} "
                           "characters.")
        if not isinstance(self.n, int) or not 1 <= self.n <= MAX_CANDIDATES:
            raise JobError(f"Ask for 1 to {MAX_CANDIDATES} candidates, not {self.n!r}.")
        if not isinstance(self.model, str) or not self.model.strip():
            raise JobError("Choose a scene model.")
        if not 0.05 <= float(self.temperature) <= 5:
            raise JobError(f"The temperature must lie between 0.05 and 5, not "
                           f"{self.temperature}.")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise JobError(f"top-k must be 0 (off) or a positive whole number, not "
                           f"{self.top_k!r}.")
        if not 0 < float(self.top_p) <= 1:
            raise JobError(f"top-p must lie in (0, 1], not {self.top_p}.")
        if not 0 <= float(self.guidance) <= 20:
            raise JobError(f"The guidance scale must lie between 0 and 20, not {self.guidance}.")


@dataclass(frozen=True)
class SceneEditSpec(SceneSpec):
    """Region editing: resample the codes under ``box`` of ``image`` for ``prompt``."""

    kind = "scene_edit"

    image: ImageRef | None = None
    box: tuple[float, ...] = ()  # (left, top, right, bottom) as fractions of the image
    codes: tuple[int, ...] = ()  # the picture's codes when known (an Easel scene), else ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "codes", tuple(int(v) for v in self.codes))
        if len(self.box) != 4:
            raise JobError("Select a rectangle on the scene to edit.")
        x0, y0, x1, y1 = self.box
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise JobError(f"The rectangle {self.box} must lie inside the picture with "
                           "positive width and height.")


# --------------------------------------------------------------------------- restoring


def picture_spec(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The job spec dict to restore a picture from its Easel metadata (imageio.read_metadata),
    or None when it carries none. A scene (or region edit) drawn by a layout prior stores its
    own candidate's layout beside the spec (``meta["layout"]``, the JSON form); a spec without
    a layout of its own gets that one as its compact JSON text, so the restored panel redraws
    the picture's composition. The layout is not checked here (the panel checks it)."""
    spec = meta.get("spec") if isinstance(meta, dict) else None
    if not isinstance(spec, dict):
        return None
    layout = meta.get("layout")
    if spec.get("kind") in (SceneSpec.kind, SceneEditSpec.kind) and not spec.get("layout") \
            and isinstance(layout, dict):
        return {**spec, "layout": json.dumps(layout, separators=(",", ":"))}
    return dict(spec)
