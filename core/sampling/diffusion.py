"""Diffusion sampling shared by generation, inpainting, training grids and evaluation.

:class:`DiffusionModel` pairs a UNet noise predictor with its latent space (a KL autoencoder,
or none for pixel-space models) and the noise schedule it was trained with. :meth:`denoise`
is the one sampling loop: DDIM (Song et al. 2021) or DDPM steps over a timestep sub-sequence,
with optional known-region replacement and RePaint resampling (Lugmayr et al. 2022) for
inpainting, and an optional start part-way down the schedule (``strength`` < 1, as in SDEdit,
Meng et al. 2022) so the masked area keeps some of what it had. :meth:`attribute_guide` steers
a sample towards a class a judge reads (classifier guidance on the clean-sample estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.nets.autoencoder import Autoencoder
from core.nets.unet import UNet
from core.schedulers import DDIMScheduler, DDPMScheduler, NoiseSchedule, Scheduler

SAMPLERS = ("ddim", "ddpm")
# Attribute guidance: gradient steps per denoising step, and the small shifts of the picture its
# gradient is averaged over (so a step draws the attribute, not a pattern only the judge reads).
GUIDE_ITERATIONS = 2
GUIDE_SHIFTS = ((0, 0), (1, -2), (-2, 1), (2, 2), (-1, -1), (0, 2), (2, -1), (-2, -2))


@dataclass(frozen=True)
class Move:
    """One move of a sampling path: denoise from ``t`` to ``to`` (to < t) or renoise
    (to > t, RePaint's jump back)."""

    t: int
    to: int

    @property
    def denoise(self) -> bool:
        return self.to < self.t


def repaint_path(timesteps: list[int], jump: int = 1, resample: int = 1) -> list[Move]:
    """The moves of RePaint's schedule (Lugmayr et al. 2022, section 4.2) over ``timesteps``
    (highest first): walk down one step at a time and, every ``jump`` steps, jump back up
    ``jump`` steps, ``resample - 1`` times, so what is generated and what is known can agree.
    ``resample = 1`` is plain known-region replacement."""
    if jump < 1 or resample < 1:
        raise ValueError("jump length and resample count must be at least 1")
    ts = [*timesteps, -1]
    moves: list[Move] = []
    jumps: dict[int, int] = {}
    i = 0
    while i < len(timesteps):
        moves.append(Move(ts[i], ts[i + 1]))
        i += 1
        if (resample > 1 and i % jump == 0 and jump <= i < len(timesteps)
                and jumps.get(i, 0) < resample - 1):
            jumps[i] = jumps.get(i, 0) + 1
            moves.append(Move(ts[i], ts[i - jump]))
            i -= jump
    return moves


class DiffusionModel:
    """A UNet with its schedule and (for latent diffusion) its autoencoder."""

    def __init__(self, unet: UNet, autoencoder: Autoencoder | None = None) -> None:
        cfg = unet.config
        if cfg.autoencoder and autoencoder is None:
            raise ValueError(f"this model runs in the latent space of {cfg.autoencoder}; "
                             "pass that autoencoder")
        self.unet = unet
        self.ae = autoencoder if cfg.autoencoder else None
        self.schedule = NoiseSchedule.named(cfg.schedule, cfg.timesteps)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def image_size(self) -> int:
        """The size of picture the model draws (pixels)."""
        return self.ae.config.image_size if self.ae is not None else self.unet.config.image_size

    @property
    def cell(self) -> int:
        """Pixels per side of one cell of the model's grid (1 in pixel space)."""
        return self.ae.config.downsample if self.ae is not None else 1

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, S, S) in [-1, 1] -> the space the UNet works in."""
        with torch.no_grad():
            return self.ae.encode(images) if self.ae is not None else images

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ae.decode(x) if self.ae is not None else x.clamp(-1, 1)

    def scheduler(self, sampler: str = "ddim", eta: float = 0.0) -> Scheduler:
        clip = self.ae is None  # pixels lie in [-1, 1]; latents do not
        if sampler == "ddim":
            return DDIMScheduler(self.schedule, eta, clip=clip)
        if sampler == "ddpm":
            return DDPMScheduler(self.schedule, clip=clip)
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")

    def denoise(self, n: int, steps: int, generator: torch.Generator,
                known: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                strength: float = 1.0, jump: int = 1, resample: int = 1,
                sampler: str = "ddim", eta: float = 0.0,
                guide: Callable[[torch.Tensor], torch.Tensor] | None = None,
                check: Callable[[], None] | None = None
                ) -> Generator[tuple[int, int, torch.Tensor], None, torch.Tensor]:
        """Draw ``n`` samples in model space, yielding (move, moves, predicted x0) after each
        denoising move; returns the final samples.

        ``known`` (1 or N, C, s, s) in model space with ``keep`` (1 or N, 1, s, s), 1 where
        known: after every move the known part is replaced by ``known`` noised to the same
        level (RePaint eq. 8), so only the rest is generated. ``strength`` < 1 starts from
        ``known`` noised to that share of the schedule instead of from pure noise (the whole
        grid then starts from ``known``). ``guide`` corrects every prediction of the clean
        sample before the step is taken (inpainting puts the known pixels back into it).
        """
        if not 0 < strength <= 1:
            raise ValueError(f"strength must lie in (0, 1], not {strength}")
        if strength < 1 and known is None:
            raise ValueError("a strength below 1 needs a known picture to start from")
        cfg = self.unet.config
        sched = self.scheduler(sampler, eta)
        sched.set_timesteps(steps)
        if strength < 1:  # SDEdit: skip the noisiest steps, start from the picture noised
            start = strength * (cfg.timesteps - 1)
            sched.timesteps = [t for t in sched.timesteps if t <= start] or [sched.timesteps[-1]]
        moves = repaint_path(sched.timesteps, jump, resample)
        dev = self.device
        shape = (n, cfg.channels, cfg.image_size, cfg.image_size)
        noise = torch.randn(shape, generator=generator).to(dev)
        if known is not None:
            known = known.to(dev).expand(shape)
            keep = (torch.ones(1, 1, *shape[2:]) if keep is None else keep).to(dev)
        t0 = sched.timesteps[0]
        x = self.schedule.add_noise(known, noise, t0) if strength < 1 else noise
        done = 0
        total = sum(m.denoise for m in moves)
        for move in moves:
            if check is not None:
                check()
            if not move.denoise:
                x = sched.renoise(x, move.t, move.to, generator)
                continue
            if known is not None:  # the known part at this noise level (RePaint eq. 8)
                x = keep * self.schedule.add_noise(
                    known, torch.randn(shape, generator=generator).to(dev), move.t) \
                    + (1 - keep) * x
            with torch.no_grad():
                eps = self.unet(x, torch.full((n,), move.t, device=dev))
            x0 = sched.predict_x0(eps, move.t, x)
            if guide is not None:
                x0 = guide(x0)
            x = sched.step_x0(x0, move.t, x, generator)
            done += 1
            yield done, total, x0
        if known is not None:
            x = keep * known + (1 - keep) * x
        return x

    def attribute_guide(self, judge: torch.nn.Module, head: str, index: int, scale: float,
                        where: torch.Tensor | None = None,
                        iterations: int = GUIDE_ITERATIONS) -> Callable[[torch.Tensor],
                                                                        torch.Tensor]:
        """A ``guide`` for :meth:`denoise` that moves each prediction of the clean sample up the
        judge's log-probability of class ``index`` of its ``head`` (classifier guidance,
        Dhariwal & Nichol 2021, taken on the clean-sample estimate as in Bansal et al. 2023):
        ``iterations`` gradient steps, each of RMS ``scale`` in model space (latent standard
        deviations), averaged over small shifts of the decoded picture. ``where`` (1, 1, s, s),
        1 where the sample may change, confines the steps to the area being drawn."""
        decode = self.ae.decode if self.ae is not None else (lambda x: x)
        size = judge.config.size
        mask = None if where is None else where.to(self.device)

        def guide(x0: torch.Tensor) -> torch.Tensor:
            z = x0.detach()
            for _ in range(iterations):
                z.requires_grad_(True)
                with torch.enable_grad():
                    image = decode(z)
                    if image.shape[-1] != size:
                        image = F.interpolate(image, size=(size, size), mode="bilinear",
                                              align_corners=False)
                    logp = sum(torch.log_softmax(
                        judge(torch.roll(image, shift, (2, 3)))[head], -1)[:, index].sum()
                        for shift in GUIDE_SHIFTS) / len(GUIDE_SHIFTS)
                    (grad,) = torch.autograd.grad(logp, z)
                if mask is not None:
                    grad = grad * mask
                # RMS over what may change, so ``scale`` means the same for any mask size.
                n = grad[0].numel() if mask is None else float(mask.sum()) * grad.shape[1]
                rms = (grad.pow(2).sum(dim=(1, 2, 3), keepdim=True) / max(n, 1.0)).sqrt()
                z = (z + scale * grad / (rms + 1e-12)).detach()
            return z

        return guide

    def generate(self, n: int, steps: int, generator: torch.Generator, **options
                 ) -> torch.Tensor:
        """``n`` new pictures (N, 3, S, S) in [-1, 1]."""
        from core.jobs import yield_from

        return self.decode(yield_from(self.denoise(n, steps, generator, **options), None))
