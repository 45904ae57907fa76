"""Users' own third-party model files: upscalers and LaMa through Easel's own loaders, Stable
Diffusion through diffusers. ``files.read_state_dict`` reads any of them without unpickling;
each family module's detectors (``detect(state_dict) -> Detected | None``, see detected.py)
say whether a file is one of its own, and ``importing.import_thirdparty`` makes the first
match an Easel model.

Each family module names its ``FAMILY`` (the models folder), its ``DETECTORS`` (tried in
order) and ``OPENS`` (how the refusal of any other file names it); a new family is one more
entry in :data:`MODULES`.
"""

from __future__ import annotations

from core.thirdparty import lama, sd, upscalers
from core.thirdparty.detected import Detector

MODULES = (upscalers, lama)
DETECTORS: list[Detector] = [detect for module in MODULES for detect in module.DETECTORS]
FAMILIES = tuple(sorted({module.FAMILY for module in MODULES}))
# Stable Diffusion files take their own path (registered in place, never read by a detector)
OPENS = ", ".join([*(module.OPENS for module in MODULES), sd.OPENS])
