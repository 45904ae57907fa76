"""Inpainting and outpainting: fill the masked part of an image, or extend its canvas.

Engines:

- ``patchmatch`` (weight-free, core/algorithms/patchmatch.py): copies what the picture
  already has, at any size; ``context`` bounds how far around the mask it copies from and
  ``source`` (a mask the artist paints) where.
- ``lama``: a LaMa model imported from the user's file (core/nets/lama.py): a box of context
  around the mask (at least 512 px, or the whole picture) is painted in one pass, scaled to
  about 512x512 pixels when larger, and pasted back inside the mask.
- ``diffusion``: a trained diffusion model (core/sampling/diffusion.py) invents what is not
  there (a smile, a missing shape). The fill runs on a square crop around the mask with
  context, resized to the model's frame; the known part is replaced at every step and RePaint
  resampling (``jump``, ``resample``) lets the two agree. The result is resized back, its
  colour matched to the picture in a ring just outside the mask, and pasted with a feathered
  seam. ``variations`` draws several fills at once (one result each). ``attribute`` asks for
  something the model's world has a name for ("smiling=smiling"): the world's judge steers
  every denoising step towards it.

Whatever the engine, pixels outside the (grown) mask are bit-identical to the input;
``feather`` only blends the fill towards the original inside the mask. Outpainting pads the
canvas and fills the new area with the same engines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.algorithms import masks, patchmatch
from core.catalog import data_of
from core.jobs import (
    Context,
    JobError,
    OutOfMemory,
    Progress,
    Result,
    input_image,
    job_judge,
    job_model,
    job_weights,
    pipeline,
)
from core.sampling.diffusion import SAMPLERS
from core.specs.inpaint import (  # noqa: F401  (the panels' names, importable here too)
    DEFAULT_GUIDANCE,
    DEFAULT_MODEL,
    DIFFUSION_FAMILY,
    ENGINES,
    LAMA_FAMILY,
    MAX_CONTEXT,
    MAX_EXTEND,
    MAX_GUIDANCE,
    MAX_ITERATIONS,
    MAX_JUMP,
    MAX_RADIUS,
    MAX_RESAMPLE,
    MAX_STEPS,
    MAX_VARIATIONS,
    PATCH_SIZES,
    InpaintSpec,
    OutpaintSpec,
)
from core.specs.sd import check_sd_settings

STRIP_PIXELS = 1 << 20  # a step's preview is built in strips of rows this big (see preview_paste)
# LaMa was trained on 256 px crops and generalises upwards (Suvorov et al. 2022, sec. 4); it
# paints a context box of at least this size, and larger boxes scaled to about this many pixels.
LAMA_FRAME = 512


@pipeline("inpaint")
def run(spec: InpaintSpec, ctx: Context) -> Generator[Progress, None, Result]:
    rgb, alpha_channel, mask = _validate(spec)
    hole = masks.grow(mask, int(spec.grow)) > 0
    ctx.check()
    yield Progress(0, 1, "Preparing the fill")
    fills, info = yield from fill(rgb, hole, spec, ctx)
    return Result(images=fills, spec=spec, alpha=alpha_channel, info=info)


@pipeline("outpaint")
def run_outpaint(spec: OutpaintSpec, ctx: Context) -> Generator[Progress, None, Result]:
    image = input_image(spec.image, "No image to extend: open an image first.")
    check_settings(spec)
    sides = {name: getattr(spec, name) for name in ("top", "bottom", "left", "right")}
    for name, value in sides.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EXTEND:
            raise JobError(f"Extend {name} by 0 to {MAX_EXTEND} pixels, not {value!r}.")
    if not any(sides.values()):
        raise JobError("Choose how many pixels to add on at least one side.")
    pad = ((spec.top, spec.bottom), (spec.left, spec.right))
    # The new area starts as the nearest edge pixels; every engine draws over all of it.
    rgb = np.pad(np.ascontiguousarray(image[..., :3]), (*pad, (0, 0)), mode="edge")
    alpha = None
    if image.shape[2] == 4:
        alpha = np.pad(image[..., 3], pad, mode="constant", constant_values=255)
    hole = np.pad(np.zeros(image.shape[:2], bool), pad, mode="constant", constant_values=True)
    h, w = rgb.shape[:2]
    from core.imageio import max_pixels_setting

    if h * w > max_pixels_setting():
        raise JobError(f"The extended picture would be {w}x{h}, above the pixel limit of "
                       f"{max_pixels_setting():,}.")
    ctx.check()
    yield Progress(0, 1, f"Extending to {w}x{h}")
    fills, info = yield from fill(rgb, hole, spec, ctx)
    info["size"] = [w, h]
    return Result(images=fills, spec=spec, alpha=alpha, info=info)


def fill(rgb: np.ndarray, hole: np.ndarray, spec: InpaintSpec, ctx: Context
         ) -> Generator[Progress, None, tuple[list[np.ndarray], dict[str, Any]]]:
    """Fill ``hole`` (HxW bool) of ``rgb`` with the spec's engine: (filled pictures, info)."""
    t0 = time.perf_counter()
    if spec.engine == "diffusion":
        fills, info = yield from _diffusion_fill(rgb, hole, spec, ctx)
    elif spec.engine == "lama":
        fills, info = yield from _lama_fill(rgb, hole, spec, ctx)
    elif spec.engine == "sd":
        from core.pipelines.sd import sd_fill  # imports this module

        fills, info = yield from sd_fill(rgb, hole, spec, ctx)
    else:
        if hole.all():
            raise JobError("The mask covers the whole picture, so PatchMatch has nothing to "
                           "copy from: paint less, or choose the diffusion engine, which can "
                           "draw a new picture.")
        filled = yield from _patchmatch_fill(rgb, hole, spec, ctx)
        fills = [composite(rgb, filled, hole, int(spec.feather))]
        info = {}
    info.update({"engine": spec.engine, "filled_pixels": int(hole.sum()),
                 "coverage": round(float(hole.mean()), 6),
                 "fill_seconds": round(time.perf_counter() - t0, 3)})
    return fills, info


def _patchmatch_fill(rgb: np.ndarray, hole: np.ndarray, spec: InpaintSpec, ctx: Context
                     ) -> Generator[Progress, None, np.ndarray]:
    latest: list[np.ndarray] = []  # the newest preview from the engine, sent with the next step
    run = patchmatch.fill(rgb, hole, rng=ctx.rng, patch_size=int(spec.patch_size),
                          iterations=int(spec.iterations), context=int(spec.context),
                          source=source_mask(spec, rgb.shape[:2], hole), check=ctx.check,
                          preview=latest.append)
    while True:
        try:
            step, total, message = next(run)
        except StopIteration as done:
            filled: np.ndarray = done.value
            break
        preview = latest.pop() if latest else None
        latest.clear()
        yield Progress(step, total, message, preview)
    ctx.check()
    return filled


def source_mask(spec: InpaintSpec, shape: tuple[int, int], hole: np.ndarray
                ) -> np.ndarray | None:
    """Where the fill may copy from (HxW bool), or None for anywhere. An outpaint's source
    mask covers the picture before it was extended; the new area is never a source."""
    if spec.source is None:
        return None
    src = masks.as_bool(np.asarray(spec.source.array()))
    if isinstance(spec, OutpaintSpec) and src.shape != shape:
        src = np.pad(src, ((spec.top, spec.bottom), (spec.left, spec.right)))
    if src.shape != shape:
        raise JobError(f"The source mask is {src.shape[1]}x{src.shape[0]} but the image is "
                       f"{shape[1]}x{shape[0]}: they must match.")
    if not (src & ~hole).any():
        raise JobError("The source area lies wholly inside the mask: paint where the fill "
                       "may copy from outside the area to fill.")
    return src


# --------------------------------------------------------------------------- diffusion


@dataclass
class DiffusionModels:
    model: Any  # core.sampling.diffusion.DiffusionModel
    hashes: dict[str, str]
    world: str  # the data the model was trained on (its card)
    ood_threshold: float  # a known region's denoising error above this is "far from the world"


def load_diffusion(name: str, ctx: Context) -> DiffusionModels:
    """The named diffusion model and, for latent diffusion, the autoencoder it was trained
    with (hash-checked): JobError when either is missing, broken or another one."""
    from core.nets.autoencoder import Autoencoder
    from core.nets.unet import UNet
    from core.sampling.diffusion import DiffusionModel
    from core.weights import read_card

    path = job_weights(name, DIFFUSION_FAMILY, "diffusion model")
    unet, sha = job_model(path, ctx, UNet, "diffusion model")
    hashes = {path.stem: sha}
    ae = None
    cfg = unet.config
    if cfg.autoencoder:
        ae_path = job_weights(cfg.autoencoder, "autoencoder", "autoencoder")
        ae, ae_sha = job_model(ae_path, ctx, Autoencoder, "autoencoder")
        if cfg.autoencoder_sha256 and ae_sha != cfg.autoencoder_sha256:
            raise JobError(f"The diffusion model {path.stem} was trained in the latent space of "
                           f"another {cfg.autoencoder} (sha256 {cfg.autoencoder_sha256[:12]}); "
                           f"the installed one is {ae_sha[:12]}. Retrain the model or restore "
                           "that autoencoder.")
        hashes[ae_path.stem] = ae_sha
    card = read_card(path)
    threshold = float(card.metrics.get("ood_threshold", 0) or 0)
    return DiffusionModels(DiffusionModel(unet, ae), hashes, data_of(card.data), threshold)


def matching_upscaler(world: str, ctx: Context) -> tuple[Any, str, str] | None:
    """(upscaler, name, sha256) of an installed x4 upscaler trained on the same data as the
    diffusion model (its card's data line), or None: a fill for a crop larger than the model's
    frame is then only resized."""
    from core.nets.upscale import Upscaler
    from core.weights import list_models

    for m in list_models("upscale"):
        if m.card is not None and data_of(m.card.data) == world:
            net, sha = job_model(m.path, ctx, Upscaler, "upscaler")
            return net, m.name, sha
    return None


def crop_box(hole: np.ndarray, frame: int, least: int | None = None) -> tuple[int, int, int]:
    """(top, left, side) of the square the diffusion model sees: the mask's bounding box with
    half its size of context on every side, at least ``least`` (default the picture's short
    side: the worlds' models know whole pictures, not close-ups), centred on the mask and kept
    inside the picture where it fits (a side larger than the picture reaches past its
    edges)."""
    h, w = hole.shape
    y0, y1, x0, x1 = masks.bbox(hole)
    size = max(y1 - y0, x1 - x0)
    side = max(size + 2 * max(frame // 8, size // 2), min(h, w) if least is None else least)
    side = min(side, max(h, w))

    def place(lo: int, hi: int, extent: int) -> int:
        start = (lo + hi) // 2 - side // 2
        if side <= extent:
            return min(max(start, 0), extent - side)
        return (extent - side) // 2

    return place(y0, y1, h), place(x0, x1, w), side


def _window(a: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The side x side square of ``a`` at (top, left); parts past the edges repeat the edge."""
    h, w = a.shape[:2]
    ys = np.clip(np.arange(top, top + side), 0, h - 1)
    xs = np.clip(np.arange(left, left + side), 0, w - 1)
    return a[ys][:, xs]


def crop_unknown(hole: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """What the model must draw in the square ``box``: the hole and whatever of the square
    lies past the picture's edges."""
    top, left, side = box
    h, w = hole.shape
    unknown = _window(hole, top, left, side)
    if top < 0 or left < 0 or top + side > h or left + side > w:
        ys, xs = np.arange(top, top + side), np.arange(left, left + side)
        unknown |= ~(((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :])
    return unknown


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if a.shape[0] == size and a.shape[1] == size:
        return a
    return np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.LANCZOS))


def _resize_mask(unknown: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """HxW bool -> size x size (or (height, width)) bool: a pixel is unknown when any part of
    it is."""
    import torch
    import torch.nn.functional as F

    m = torch.from_numpy(unknown.astype(np.float32))[None, None]
    return (F.interpolate(m, size=size, mode="area") > 0)[0, 0].numpy()


def model_grid_mask(unknown: np.ndarray, frame: int, cell: int) -> np.ndarray:
    """HxW bool of what the model must draw (in the crop) -> (grid, grid) float32 "keep" mask
    at the model's resolution: a cell is kept only when none of its pixels, nor those of its
    neighbouring cells, is to be drawn (the decoder's reach spills over a cell)."""
    import torch
    import torch.nn.functional as F

    m = torch.from_numpy(_resize_mask(unknown, frame).astype(np.float32))[None, None]
    m = F.max_pool2d(m, cell) if cell > 1 else m
    m = F.max_pool2d(m, 3, stride=1, padding=1)
    return (1 - m)[0, 0].numpy()


def paste(rgb: np.ndarray, hole: np.ndarray, drawn: np.ndarray, box: tuple[int, int, int],
          feather_px: int, match_colour: bool = True) -> np.ndarray:
    """The model's square picture ``drawn`` (frame x frame uint8) resized onto ``box`` of
    ``rgb``, colour-matched to the picture in a ring just outside the hole, and composited
    inside ``hole`` only. Works in the box alone (the whole hole lies in it, see crop_box), so
    its cost is the box's size, not the picture's."""
    top, left, side = box
    h, w = hole.shape
    ys, xs = slice(max(top, 0), min(top + side, h)), slice(max(left, 0), min(left + side, w))
    sub = (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
    known, gap = rgb[ys, xs], hole[ys, xs]
    full = _resize(drawn, side)[sub].astype(np.float32)
    if match_colour:
        # The model redraws the known ring around the hole; any colour cast it has there (the
        # autoencoder's, the resize's) is taken out of the fill as a whole.
        reach = max(2, math.ceil(side / drawn.shape[0]) * 2)
        ring = (masks.grow(gap, reach) > 0) & ~gap
        if ring.any():
            full[gap] += (known[ring].astype(np.float32) - full[ring]).mean(0)
    full = np.clip(np.rint(full), 0, 255).astype(np.uint8)
    out = rgb.copy()
    out[ys, xs] = composite(known, full, gap, feather_px)
    return out


def preview_paste(rgb: np.ndarray, hole: np.ndarray, drawn: np.ndarray,
                  box: tuple[int, int, int], check: Any) -> np.ndarray:
    """A quick look at the fill so far: the model's square picture ``drawn`` scaled (nearest
    pixel) onto ``box`` inside ``hole``. Built in strips of rows with ``check()`` before each,
    since it runs every denoising step whatever the picture's size."""
    top, left, side = box
    h, w = hole.shape
    frame = drawn.shape[0]
    cols = np.clip((np.arange(w) - left) * frame // side, 0, frame - 1)
    out = np.empty_like(rgb)
    rows = max(1, STRIP_PIXELS // w)
    for a in range(0, h, rows):
        check()
        b = min(h, a + rows)
        out[a:b] = rgb[a:b]
        m = hole[a:b]
        if m.any():
            ys = np.clip((np.arange(a, b) - top) * frame // side, 0, frame - 1)
            out[a:b][m] = drawn[ys][:, cols][m]
    return out


def _diffusion_fill(rgb: np.ndarray, hole: np.ndarray, spec: InpaintSpec, ctx: Context
                    ) -> Generator[Progress, None, tuple[list[np.ndarray], dict[str, Any]]]:
    import torch

    from core.tensors import to_tensor, to_uint8

    models = load_diffusion(spec.model, ctx)
    model = models.model
    frame, cell = model.image_size, model.cell
    box = crop_box(hole, frame)
    top, left, side = box
    crop = _resize(_window(rgb, top, left, side), frame)
    ctx.check()
    unknown = crop_unknown(hole, box)
    keep = torch.from_numpy(model_grid_mask(unknown, frame, cell))[None, None]
    ctx.check()
    seam = max(int(spec.feather), math.ceil(side / frame))
    notes: list[str] = []
    upscaler = matching_upscaler(models.world, ctx) if side > frame else None
    if upscaler is not None:
        notes.append(f"The model draws {frame} px pictures: the fill was drawn at {frame} px "
                     f"for a {side} px square and upscaled with {upscaler[1]}.")
        models.hashes[upscaler[1]] = upscaler[2]
    elif side > frame:
        notes.append(f"The model draws {frame} px pictures: the fill was drawn at {frame} px "
                     f"for a {side} px square and scaled up.")
    pixels = to_tensor(crop).to(model.device)
    known = model.encode(pixels)
    guide = None
    if model.ae is not None:
        # Latent cells mix known and unknown pixels (a scattered mask leaves no cell wholly
        # known), so each step's guess of the clean picture also gets the known pixels put
        # back in image space and is encoded again.
        keep_px = torch.from_numpy(~_resize_mask(unknown, frame))[None, None].float()
        keep_px = keep_px.to(model.device)

        def guide(x0: torch.Tensor) -> torch.Tensor:
            drawn = model.decode(x0)
            return model.encode(keep_px * pixels + (1 - keep_px) * drawn)

    if spec.attribute:
        steer = attribute_guide(model, models, spec, 1 - keep, ctx)
        restore = guide
        guide = steer if restore is None else (lambda x0: restore(steer(restore(x0))))

    if models.ood_threshold and keep.sum() > 0:
        err = denoising_error(model, known, keep, torch.Generator().manual_seed(0))
        if err > models.ood_threshold:
            notes.append(f"This picture is far from what {spec.model} was trained on "
                         f"({models.world}); the fill may not fit it.")
    run = model.denoise(int(spec.variations), int(spec.steps), ctx.generator, known=known,
                        keep=keep, strength=float(spec.strength), jump=int(spec.jump),
                        resample=int(spec.resample), sampler=spec.sampler, guide=guide,
                        check=ctx.check)
    while True:
        try:
            done, total, x0 = next(run)
        except StopIteration as finished:
            final = finished.value
            break
        preview = None
        if ctx.wants_preview():
            preview = preview_paste(rgb, hole, to_uint8(model.decode(x0[:1]))[0], box,
                                    ctx.check)
        yield Progress(done, total, f"Denoising step {done} of {total}", preview)
    images = model.decode(final)
    if upscaler is not None:
        from core.pipelines.upscale import upscale_tensor

        images = upscale_tensor(upscaler[0], images)
    drawn = to_uint8(images)
    fills = []
    for d in drawn:  # each a pass over the box: a cancel is seen between them
        ctx.check()
        fills.append(paste(rgb, hole, d, box, seam))
    info = {"model": spec.model, "models": models.hashes, "steps": int(spec.steps),
            "sampler": spec.sampler, "attribute": spec.attribute,
            "crop": [left, top, side], "seam_px": seam, "notes": notes}
    return fills, info


def attribute_guide(model: Any, models: DiffusionModels, spec: InpaintSpec, where: Any,
                    ctx: Context) -> Any:
    """The guide that steers a fill towards ``spec.attribute`` ("smiling=smiling") with the
    judge of the model's world (its hash joins ``models.hashes``); JobError when the world has
    no judge installed or the judge no such attribute."""
    world = models.world.removesuffix(" world")
    found = job_judge(world, ctx)
    if found is None:
        raise JobError(f"Asking for {spec.attribute!r} needs a judge of what {spec.model} was "
                       f"trained on ({models.world}), and none is installed. Clear the "
                       "attribute, or use a model of the faces or scenes world.")
    judge, name, sha = found
    head, _, cls = spec.attribute.partition("=")
    classes = judge.config.heads.get(head, [])
    if cls not in classes:
        known = ", ".join(f"{h}={c}" for h, cs in judge.config.heads.items() for c in cs)
        raise JobError(f"The {world} judge has no attribute {spec.attribute!r}; it knows: "
                       f"{known}.")
    models.hashes[name] = sha
    return model.attribute_guide(judge, head, classes.index(cls), float(spec.guidance), where)


def denoising_error(model: Any, known: Any, keep: Any, generator: Any,
                    timesteps: tuple[int, ...] = (100, 300, 500)) -> float:
    """How badly the model predicts the noise added to the kept part of ``known`` (mean
    squared error over a few timesteps): low on pictures like its training data, high on
    pictures far from them. Compared against the card's ``ood_threshold``."""
    import torch

    errs = []
    k = keep.to(known.device)
    with torch.no_grad():
        for t in timesteps:
            eps = torch.randn(known.shape, generator=generator).to(known.device)
            xt = model.schedule.add_noise(known, eps, t)
            pred = model.unet(xt, torch.full((len(known),), t, device=known.device))
            errs.append(float(((pred - eps) ** 2 * k).sum() / (k.sum() * known.shape[1])))
    return float(np.mean(errs))


# --------------------------------------------------------------------------- LaMa


def context_box(hole: np.ndarray, frame: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the part of the picture LaMa sees: the mask's bounding
    box grown to twice its height and width (at least ``frame`` each), centred on the mask and
    moved inside the picture; the picture's whole height or width where it is smaller."""
    y0, y1, x0, x1 = masks.bbox(hole)

    def span(lo: int, hi: int, extent: int) -> tuple[int, int]:
        size = min(extent, max(2 * (hi - lo), frame))
        start = min(max((lo + hi - size) // 2, 0), extent - size)
        return start, start + size

    (top, bottom), (left, right) = span(y0, y1, hole.shape[0]), span(x0, x1, hole.shape[1])
    return top, bottom, left, right


def lama_size(h: int, w: int, frame: int) -> tuple[int, int]:
    """(height, width) LaMa paints an h x w crop at: scaled down to about frame x frame
    pixels when it holds more, never up."""
    s = min(1.0, frame / math.sqrt(h * w))
    return max(1, round(h * s)), max(1, round(w * s))


def lama_paint(net: Any, crop: np.ndarray, unknown: np.ndarray, device: Any) -> np.ndarray:
    """LaMa's picture (HxWx3 float32 in [0, 1]) for ``crop`` (HxWx3 uint8) with ``unknown``
    (HxW bool) to paint. The crop is mirrored out to sides LaMa takes (multiples of 8, at
    least 16 px: its reflection paddings need 2 px at the bottleneck), as LaMa's own
    prediction pads, and the painted picture is cut back."""
    import torch

    m = net.config.multiple
    h, w = unknown.shape
    pad = ((0, max(2 * m, -(-h // m) * m) - h), (0, max(2 * m, -(-w // m) * m) - w))
    image = torch.from_numpy(np.pad(crop, (*pad, (0, 0)), mode="symmetric"))
    mask = torch.from_numpy(np.pad(unknown, pad, mode="symmetric"))
    image = image.permute(2, 0, 1)[None].float().div(255).to(device)
    mask = mask[None, None].float().to(device)
    with torch.no_grad():
        painted = net(image, mask)
    return painted[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()


def _lama_fill(rgb: np.ndarray, hole: np.ndarray, spec: InpaintSpec, ctx: Context
               ) -> Generator[Progress, None, tuple[list[np.ndarray], dict[str, Any]]]:
    from core.device import free_memory, is_out_of_memory
    from core.nets.lama import LaMa
    from core.tensors import resize

    path = job_weights(spec.model, LAMA_FAMILY, "LaMa model")
    net, sha = job_model(path, ctx, LaMa, "LaMa model")
    top, bottom, left, right = context_box(hole, LAMA_FRAME)
    crop, gap = rgb[top:bottom, left:right], hole[top:bottom, left:right]
    h, w = gap.shape
    sh, sw = lama_size(h, w, LAMA_FRAME)
    scaled = (sh, sw) != (h, w)
    ctx.check()
    yield Progress(0, 1, f"LaMa is painting a {w}x{h} crop"
                   + (f" at {sw}x{sh}" if scaled else ""))
    small, unknown = (resize(crop, sh, sw), _resize_mask(gap, (sh, sw))) if scaled \
        else (crop, gap)
    try:
        painted = lama_paint(net, small, unknown, ctx.device)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        painted = None
    if painted is None:  # outside the handler: the traceback no longer holds the tensors
        free_memory(ctx.device)
        raise OutOfMemory(f"Out of memory on {ctx.device} while LaMa painted a {sw}x{sh} "
                          "crop: run it on the CPU (slower, but it fits) or close other "
                          "programs that use the GPU.")
    ctx.check()
    drawn = np.clip(np.rint(painted * 255), 0, 255).astype(np.uint8)
    if scaled:
        drawn = resize(drawn, h, w)
    # A fill scaled back up is soft for a pixel or two past the mask's edge: blend over that.
    seam = max(int(spec.feather), math.ceil(h / sh)) if scaled else int(spec.feather)
    out = rgb.copy()
    out[top:bottom, left:right] = composite(crop, drawn, gap, seam)
    yield Progress(1, 1, "LaMa painted the fill", out)
    info = {"model": spec.model, "models": {path.stem: sha}, "crop": [left, top, w, h],
            "painted_at": [sw, sh], "seam_px": seam, "notes": []}
    return [out], info


def composite(original: np.ndarray, filled: np.ndarray, hole: np.ndarray,
              feather_px: int) -> np.ndarray:
    """``filled`` inside ``hole``, blended towards ``original`` over ``feather_px`` pixels inside
    the hole's edge; everything outside the hole is copied from ``original`` untouched."""
    out = original.copy()
    alpha = masks.feather(hole, feather_px)[hole][:, None]
    inside = alpha * filled[hole].astype(np.float32) + (1.0 - alpha) * original[hole]
    out[hole] = np.clip(np.rint(inside), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- checks


def _validate(spec: InpaintSpec) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    image = input_image(spec.image, "No image to fill: open an image first.")
    h, w = image.shape[:2]
    if spec.mask is None:
        raise JobError("The mask is empty: paint the area to fill first.")
    mask = np.asarray(spec.mask.array())
    if mask.ndim != 2 or mask.shape != (h, w):
        size = f"{mask.shape[1]}x{mask.shape[0]}" if mask.ndim >= 2 else str(mask.shape)
        kind = "" if mask.ndim == 2 else f" with {mask.ndim} dimensions (it must be 2-D)"
        raise JobError(f"The mask is {size}{kind} but the image is {w}x{h}: they must match.")
    if masks.is_empty(mask):
        raise JobError("The mask is empty: paint the area to fill first.")
    check_settings(spec)
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = np.ascontiguousarray(image[..., 3]) if image.shape[2] == 4 else None
    return rgb, alpha, mask


def check_settings(spec: InpaintSpec) -> None:
    if spec.engine not in ENGINES:
        raise JobError(f"Unknown inpaint engine {spec.engine!r}; choose one of: "
                       f"{', '.join(ENGINES)}.")
    if spec.engine == "sd":
        check_sd_settings(spec)
    elif spec.sampler not in SAMPLERS:
        raise JobError(f"Unknown sampler {spec.sampler!r}; choose one of: "
                       f"{', '.join(SAMPLERS)}.")
    lo, hi = PATCH_SIZES
    size = spec.patch_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer) \
            or not lo <= size <= hi or size % 2 == 0:
        raise JobError(f"The patch size must be an odd number from {lo} to {hi}, got {size!r}.")
    ranges = {"iterations": (1, MAX_ITERATIONS), "context": (0, MAX_CONTEXT),
              "grow": (0, MAX_RADIUS), "feather": (0, MAX_RADIUS), "steps": (1, MAX_STEPS),
              "variations": (1, MAX_VARIATIONS), "jump": (1, MAX_JUMP),
              "resample": (1, MAX_RESAMPLE)}
    labels = {"grow": "Grow", "feather": "Feather", "context": "The context",
              "iterations": "Iterations", "steps": "Steps", "variations": "Variations",
              "jump": "The jump length", "resample": "The resample count"}
    for name, (lo, hi) in ranges.items():
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise JobError(f"{name} must be a whole number, got {value!r}.")
        unit = " pixels" if name in ("grow", "feather", "context") else ""
        if not lo <= value <= hi:
            raise JobError(f"{labels[name]} must be from {lo} to {hi}{unit}, got {value}.")
    if spec.source is not None and spec.engine != "patchmatch":
        raise JobError("A source area is a PatchMatch setting: the other engines do not copy "
                       "from the picture.")
    strength = spec.strength
    if isinstance(strength, bool) or not isinstance(strength, int | float) \
            or not 0 < strength <= 1:
        raise JobError(f"Strength must lie above 0 and at most 1, got {strength!r}.")
    guidance = spec.guidance
    if isinstance(guidance, bool) or not isinstance(guidance, int | float) \
            or not 0 <= guidance <= MAX_GUIDANCE:
        raise JobError(f"Guidance must lie from 0 to {MAX_GUIDANCE:g}, got {guidance!r}.")
    if spec.attribute:
        head, eq, cls = str(spec.attribute).partition("=")
        if not (eq and head and cls):
            raise JobError(f"An attribute is asked for as name=class (smiling=smiling), not "
                           f"{spec.attribute!r}.")
        if spec.engine != "diffusion":
            raise JobError("Asking for an attribute needs the diffusion engine: PatchMatch "
                           "only copies what the picture already has.")
