"""Users' own third-party model files: upscalers and LaMa through Easel's own loaders, Stable
Diffusion through diffusers. ``files.read_state_dict`` reads any of them without unpickling;
each family module's ``detect(state_dict)`` says whether a file is one of its own."""

from core.thirdparty import lama

# detect(state_dict) -> {"family", "architecture", "config", "prefix", "kind"} or None; the
# import (importing.py) asks each in turn.
DETECTORS = [lama.detect]
# What the import opens, for the message that refuses any other file.
OPENS = ["LaMa inpainting models (big-lama)"]
# The model families imported files go into.
FAMILIES = [lama.FAMILY]
