"""Stable Diffusion jobs: text to image (``sd_scene``) and the inpaint engine ``sd``.

The networks, schedulers and prompt encoding are diffusers'; the sampling loop is Easel's, so
a job is a generator like every other: a Progress (with a preview) each step, ``ctx.check()``
before each step, so a cancel takes effect within one step, and the starting noise drawn from
the job's seeded CPU generator, so the same spec on the same device gives the same pixels.

- Classifier-free guidance (Ho & Salimans 2022): noise = uncond + cfg * (cond - uncond).
- Previews: each step's estimate of the clean latents, x0 = (x_t - sqrt(1 - a_t) eps) /
  sqrt(a_t) (from v: x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v), mapped to RGB by a fixed 4x3
  linear map of SD's latent space (the factors ComfyUI's latent preview uses), at 1/8 size.
- Inpainting: the picture is cropped to a square of context around the mask, drawn at the
  model's own size and pasted back inside the mask (pixels outside it are untouched). A
  9-channel inpainting model sees the mask and the masked picture at every step; a plain
  model gets the known latents put back (noised to the step's level) after every step, as
  diffusers' StableDiffusionInpaintPipeline does. ``strength`` < 1 starts from the picture
  noised part of the way instead of from pure noise.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.jobs import Context, JobError, Progress, Result, pipeline
from core.specs.sd import SD_SAMPLERS, SDSceneSpec, check_sd_settings
from core.tensors import to_tensor, to_uint8
from core.thirdparty.files import ThirdPartyError

# SD 1.x/2.x latent channels -> approximate RGB in [-1, 1] (ComfyUI, comfy/latent_formats.py).
LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350),
              (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
TOKENS = 75  # CLIP reads 77 tokens: start, 75 words' tokens, end


def load_model(name: str, ctx: Context, spec: Any) -> Any:
    """The SD model on the job's device (core/thirdparty/sd/load.py); JobError when it cannot
    be used."""
    from core.thirdparty.sd.load import load

    try:
        return load(name, ctx.device, getattr(spec, "attention_slicing", False),
                    getattr(spec, "vae_tiling", False))
    except ThirdPartyError as exc:
        raise JobError(str(exc)) from None


def scheduler_for(model: Any, sampler: str, prediction: str) -> Any:
    """A fresh scheduler of ``sampler`` from the model's scheduler config, predicting
    ``prediction`` ("epsilon" or "v")."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    config = dict(model.pipe.scheduler.config)
    config["prediction_type"] = "v_prediction" if prediction == "v" else "epsilon"
    if sampler == "ddim":
        return DDIMScheduler.from_config(config)
    if sampler == "euler":
        return EulerDiscreteScheduler.from_config(config)
    return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                   solver_order=2)


def prediction_of(model: Any, spec: Any) -> str:
    return spec.prediction or str(model.card.config.get("prediction", "epsilon"))


class Sampler:
    """One job's prompt embeddings, scheduler and guidance: ``run`` denoises latents."""

    def __init__(self, model: Any, spec: Any, ctx: Context, batch: int = 1) -> None:
        self.model, self.ctx = model, ctx
        self.unet = model.pipe.unet
        self.cfg = float(spec.cfg)
        self.prediction = prediction_of(model, spec)
        self.scheduler = scheduler_for(model, spec.sampler, self.prediction)
        self.notes: list[str] = []
        tokens = len(model.pipe.tokenizer(spec.prompt).input_ids) - 2
        if tokens > TOKENS:
            self.notes.append(f"The prompt is {tokens} tokens long; Stable Diffusion reads the "
                              f"first {TOKENS}, the rest was left out.")
        with torch.no_grad():
            cond, uncond = model.pipe.encode_prompt(
                spec.prompt, ctx.device, batch, self.guided, spec.negative_prompt or None)
        self.embeddings = torch.cat([uncond, cond]) if self.guided else cond

    @property
    def guided(self) -> bool:
        return self.cfg > 1  # as diffusers: a scale of 1 or less runs the prompt alone

    def timesteps(self, steps: int, strength: float = 1.0) -> torch.Tensor:
        """The timesteps to run: the last ``strength`` share of a ``steps`` schedule."""
        self.scheduler.set_timesteps(steps, device=self.ctx.device)
        start = steps - min(int(steps * strength), steps)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start * self.scheduler.order)
        return self.scheduler.timesteps[start * self.scheduler.order:]

    def noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Starting noise from the job's seeded CPU generator: the same on every device."""
        return torch.randn(shape, generator=self.ctx.generator).to(self.ctx.device,
                                                                    self.model.dtype)

    def run(self, latents: torch.Tensor, timesteps: torch.Tensor,
            extra: torch.Tensor | None = None,
            after_step: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
            preview: Callable[[np.ndarray], np.ndarray] | None = None,
            ) -> Generator[Progress, None, torch.Tensor]:
        """Denoise ``latents`` over ``timesteps``. ``extra``: channels appended to the UNet's
        input (a 9-channel inpainting model's mask and masked picture); ``after_step``:
        latents, step index -> latents; ``preview``: the step's RGB guess -> what to show."""
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            self.ctx.check()
            both = torch.cat([latents] * 2) if self.guided else latents
            scaled = self.scheduler.scale_model_input(both, t)
            inputs = scaled if extra is None else torch.cat([scaled, extra], dim=1)
            with torch.no_grad():
                out = self.unet(inputs, t, encoder_hidden_states=self.embeddings,
                                return_dict=False)[0]
            if self.guided:
                uncond, cond = out.chunk(2)
                out = uncond + self.cfg * (cond - uncond)
            shown = None
            if preview is not None and self.ctx.wants_preview():
                shown = preview(self.rgb_guess(scaled[:1], out[:1], t))
            latents = self.scheduler.step(out, t, latents, generator=self.ctx.generator,
                                          return_dict=False)[0]
            if after_step is not None:
                latents = after_step(latents, i)
            yield Progress(i + 1, total, f"Denoising step {i + 1} of {total}", shown)
        self.ctx.check()
        return latents

    def rgb_guess(self, x_t: torch.Tensor, out: torch.Tensor, t: torch.Tensor) -> np.ndarray:
        """The step's estimate of the finished picture, cheaply: x0 from the model's output,
        then the linear latent-to-RGB map (H/8 x W/8 uint8)."""
        a = self.scheduler.alphas_cumprod[int(t)].to(x_t.device, torch.float32)
        x_t, out = x_t.float(), out.float()
        if self.prediction == "v":
            x0 = a.sqrt() * x_t - (1 - a).sqrt() * out
        else:
            x0 = (x_t - (1 - a).sqrt() * out) / a.sqrt()
        rgb = torch.einsum("nchw,cd->ndhw", x0, torch.tensor(LATENT_RGB, device=x0.device))
        return to_uint8(rgb)[0]

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents -> NHWC uint8 pictures (one VAE decode each, cancellable between)."""
        vae = self.model.pipe.vae
        out = []
        for z in latents:
            self.ctx.check()
            with torch.no_grad():
                x = vae.decode(z[None].to(vae.dtype) / vae.config.scaling_factor,
                               return_dict=False)[0]
            out.append(to_uint8(x)[0])
        return np.stack(out)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> the VAE's latents (the mean: no sampling noise)."""
        vae = self.model.pipe.vae
        with torch.no_grad():
            z = vae.encode(pixels.to(self.ctx.device, vae.dtype)).latent_dist.mode()
        return (z * vae.config.scaling_factor).to(self.model.dtype)

    def info(self, spec: Any, size: tuple[int, int]) -> dict[str, Any]:
        m = self.model
        return {"model": m.name, "models": {m.name: m.card.sha256}, "variant": m.variant.name,
                "prediction": self.prediction, "sampler": spec.sampler, "steps": spec.steps,
                "cfg": self.cfg, "size": list(size), "device": str(m.device),
                "dtype": str(m.dtype).removeprefix("torch."), "notes": self.notes}


def upscaled(preview: np.ndarray, factor: int = 8) -> np.ndarray:
    return np.repeat(np.repeat(preview, factor, axis=0), factor, axis=1)


# --------------------------------------------------------------------------- text to image


@pipeline("sd_scene")
def run(spec: SDSceneSpec, ctx: Context) -> Generator[Progress, None, Result]:
    check_sd_settings(spec)
    ctx.check()
    yield Progress(0, spec.steps, f"Loading {spec.model}")
    model = load_model(spec.model, ctx, spec)
    if model.inpainting:
        raise JobError(f"{spec.model} is an inpainting model: use it in the Inpaint panel "
                       "(easel inpaint --engine sd).")
    width, height = spec.width or model.native_size, spec.height or model.native_size
    sampler = Sampler(model, spec, ctx)
    timesteps = sampler.timesteps(spec.steps)
    latents = sampler.noise((1, 4, height // 8, width // 8)) * sampler.scheduler.init_noise_sigma
    final = yield from sampler.run(latents, timesteps, preview=upscaled)
    images = sampler.decode(final)
    return Result(images=list(images), spec=spec, info=sampler.info(spec, (width, height)))


# --------------------------------------------------------------------------- inpaint engine


def sd_fill(rgb: np.ndarray, hole: np.ndarray, spec: Any, ctx: Context
            ) -> Generator[Progress, None, tuple[list[np.ndarray], dict[str, Any]]]:
    """Fill ``hole`` (HxW bool) of ``rgb`` with the spec's SD model: (filled pictures, info).
    Called by core/pipelines/inpaint.py for the ``sd`` engine (inpaint and outpaint)."""
    from core.pipelines.inpaint import (
        _resize,
        _resize_mask,
        _window,
        crop_box,
        crop_unknown,
        paste,
        preview_paste,
    )

    model = load_model(spec.model, ctx, spec)
    frame = model.native_size
    box = crop_box(hole, frame, least=min(frame, max(hole.shape)))
    top, left, side = box
    crop = _resize(_window(rgb, top, left, side), frame)
    draw_px = torch.from_numpy(_resize_mask(crop_unknown(hole, box), frame))[None, None].float()
    # a latent cell is drawn anew when any of its pixels is to be drawn
    cell = model.pipe.vae_scale_factor
    draw = F.max_pool2d(draw_px, cell).to(ctx.device, model.dtype)
    ctx.check()
    n = int(spec.variations)
    sampler = Sampler(model, spec, ctx, n)
    pixels = to_tensor(crop)
    known = sampler.encode(pixels)
    timesteps = sampler.timesteps(int(spec.steps), float(spec.strength))
    noise = sampler.noise((n, 4, frame // cell, frame // cell))
    if float(spec.strength) >= 1:
        latents = noise * sampler.scheduler.init_noise_sigma
    else:
        latents = sampler.scheduler.add_noise(known.repeat(n, 1, 1, 1), noise, timesteps[:1])
    extra = after_step = None
    if model.inpainting:
        masked = sampler.encode(pixels * (1 - draw_px))  # the picture with the hole blanked
        extra = torch.cat([draw, masked], dim=1).repeat(n, 1, 1, 1)
        if sampler.guided:
            extra = torch.cat([extra] * 2)
    else:
        def after_step(x: torch.Tensor, i: int) -> torch.Tensor:
            kept = known if i + 1 >= len(timesteps) else sampler.scheduler.add_noise(
                known, noise, timesteps[i + 1:i + 2])
            return draw * x + (1 - draw) * kept

    def preview(guess: np.ndarray) -> np.ndarray:
        return preview_paste(rgb, hole, guess, box, ctx.check)

    final = yield from sampler.run(latents, timesteps, extra, after_step, preview)
    drawn = sampler.decode(final)
    seam = max(int(spec.feather), -(-side // frame))
    fills = []
    for d in drawn:  # each a pass over the box: a cancel is seen between them
        ctx.check()
        fills.append(paste(rgb, hole, d, box, seam))
    info = sampler.info(spec, (frame, frame))
    info.update({"crop": [left, top, side], "seam_px": seam})
    if side > frame:
        info["notes"].append(f"{spec.model} draws {frame} px pictures: the fill was drawn at "
                             f"{frame} px for a {side} px square and scaled up.")
    return fills, info


__all__ = ["SD_SAMPLERS", "Sampler", "run", "sd_fill"]
