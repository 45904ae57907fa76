"""Inpainting and outpainting job specs and the limits of their settings.

Torch-free: the desktop panels build and restore these specs on the GUI thread, and importing
this module registers their kinds. The pipeline that runs them is core/pipelines/inpaint.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.jobs import ImageRef, JobSpec

ENGINES = ("patchmatch", "diffusion", "lama", "sd")  # sd: a user's Stable Diffusion model
DEFAULT_MODEL = "diffusion_faces"
PATCH_SIZES = (3, 15)  # inclusive range of odd patch sizes
MAX_ITERATIONS = 50
MAX_CONTEXT = 16384  # PatchMatch: pixels around the mask it may copy from (0 = automatic)
MAX_RADIUS = 512  # grow / feather, pixels
MAX_STEPS = 250  # diffusion sampling steps
MAX_VARIATIONS = 8
MAX_JUMP = 10  # RePaint jump length, steps
# chosen on held-out faces: clear smiles without the marks only a judge reads
DEFAULT_GUIDANCE = 0.2
MAX_GUIDANCE = 1.0
MAX_RESAMPLE = 10  # RePaint resample count
MAX_EXTEND = 2048  # outpainting, pixels per side
DIFFUSION_FAMILY = "diffusion"
LAMA_FAMILY = "lama"  # LaMa models imported from users' files (core/thirdparty/lama.py)


@dataclass(frozen=True)
class InpaintSpec(JobSpec):
    kind = "inpaint"
    panel = "inpaint"

    image: ImageRef | None = None  # HxWx3 uint8 RGB
    mask: ImageRef | None = None  # HxW uint8, nonzero = fill (embedded in metadata)
    engine: str = "patchmatch"
    patch_size: int = 7  # PatchMatch: odd, pixels
    iterations: int = 4  # PatchMatch: search/vote rounds per scale
    # PatchMatch: how far around the mask's bounding box the fill may copy from, pixels; 0 lets
    # it choose (twice the hole's size, or the whole picture when that holds too little)
    context: int = 0
    # PatchMatch: HxW uint8, nonzero = the fill may copy from here (None: anywhere outside the
    # mask; embedded in metadata)
    source: ImageRef | None = None
    grow: int = 0  # dilate the mask by this many pixels before filling
    feather: int = 0  # blend the fill into the surround over this many pixels (inside the mask)
    model: str = DEFAULT_MODEL  # diffusion, lama: an installed model's name or a .safetensors path
    sampler: str = "ddim"  # diffusion: "ddim" (Song et al. 2021) or "ddpm" (Ho et al. 2020)
    steps: int = 20  # diffusion: sampling steps
    strength: float = 1.0  # diffusion: 1 draws the masked area anew; less keeps some of it
    variations: int = 1  # diffusion: fills drawn at once, one result each
    jump: int = 5  # RePaint jump length (steps)
    # RePaint resample count; 1 = plain known-region replacement. 3 (with jump 5) keeps a fill's
    # colours with its surround far better for ~2.5x the time (bench/inpaint.py).
    resample: int = 3
    # diffusion: "head=class" of the model's world ("smiling=smiling"), asked of the fill: the
    # world's judge steers every step towards it; "" asks for nothing.
    attribute: str = ""
    guidance: float = DEFAULT_GUIDANCE  # how hard it steers (latent standard deviations a step)
    # sd (core/pipelines/sd.py, with model, sampler, steps, strength, variations): what to draw
    prompt: str = ""
    negative_prompt: str = ""
    cfg: float = 7.5  # classifier-free guidance scale
    prediction: str = ""  # "epsilon" or "v" overrides the model card's


@dataclass(frozen=True)
class OutpaintSpec(InpaintSpec):
    """Extend the canvas by ``left``/``right``/``top``/``bottom`` pixels and fill the new area
    (``mask`` and ``grow`` are not used)."""

    kind = "outpaint"
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
