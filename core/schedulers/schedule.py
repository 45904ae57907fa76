"""Noise schedules and the DDPM and DDIM samplers that share them (no learned parameters).

A :class:`NoiseSchedule` fixes beta_t for t = 0 .. T-1 and the products alpha_bar_t of
(1 - beta) it implies. Training noises a clean x0 to x_t = sqrt(alpha_bar_t) x0 +
sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4) and the network predicts eps; sampling walks
back from pure noise with a scheduler:

    sched = DDIMScheduler(NoiseSchedule.cosine(1000))
    sched.set_timesteps(20)
    x = torch.randn(shape, generator=g)
    for t in sched.timesteps:
        x = sched.step(net(x, t), t, x, generator=g)

Both schedulers keep the diffusers shape (``set_timesteps`` then ``step`` per timestep), so one
sampling loop serves both and inpainting (RePaint) adds only :meth:`Scheduler.renoise`, the
forward jump from a less to a more noisy step.
"""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """beta_t and alpha_bar_t for t = 0 .. T-1 (float64 on the CPU; steps cast as needed).

    :meth:`alpha_bar` reads a copy of the table cast and moved once per (device, dtype): no
    float64 ever reaches the device (MPS has none) and a denoising step copies nothing to it.
    """

    def __init__(self, betas: torch.Tensor) -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 1:
            raise ValueError("a noise schedule needs at least one beta")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1 - betas, 0)
        self._tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    @property
    def steps(self) -> int:
        return len(self.betas)

    @staticmethod
    def linear(steps: int = 1000, start: float = 1e-4, end: float = 0.02) -> NoiseSchedule:
        """Ho et al. 2020: betas linear from 1e-4 to 0.02 over 1000 steps."""
        return NoiseSchedule(torch.linspace(start, end, steps, dtype=torch.float64))

    @staticmethod
    def cosine(steps: int = 1000, s: float = 0.008) -> NoiseSchedule:
        """Nichol & Dhariwal 2021, eq. 17: alpha_bar follows a squared cosine, betas capped at
        0.999 so the last step stays finite."""
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return NoiseSchedule(betas)

    @staticmethod
    def named(kind: str, steps: int = 1000) -> NoiseSchedule:
        if kind == "linear":
            return NoiseSchedule.linear(steps)
        if kind == "cosine":
            return NoiseSchedule.cosine(steps)
        raise ValueError(f"unknown noise schedule {kind!r}; use linear or cosine")

    def alpha_bar(self, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar at timesteps ``t`` (an int or a (N,) tensor; -1 means no noise at all),
        shaped to broadcast against ``like`` (N, ...)."""
        table = self._table(like.device, like.dtype)
        if isinstance(t, int):  # a sampling step: a view into the table, no copy, no sync
            return table[min(max(t + 1, 0), self.steps)]
        t = torch.as_tensor(t, dtype=torch.long).to(table.device)  # training: t on the device
        a = table[(t + 1).clamp(0, self.steps)]
        return a.reshape(-1, *([1] * (like.ndim - 1))) if a.ndim else a

    def _table(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """alpha_bar with a leading 1 (t = -1), as ``dtype`` on ``device``, made once."""
        key = (device, dtype)
        if key not in self._tables:
            padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
            self._tables[key] = padded.to(dtype).to(device)  # cast on the CPU first
        return self._tables[key]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int
                  ) -> torch.Tensor:
        """q(x_t | x0): sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise (Ho et al. eq. 4)."""
        a = self.alpha_bar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


class Scheduler:
    """Shared by DDPM and DDIM: the schedule, the chosen timesteps, the forward jump.

    ``clip`` keeps predictions of x0 in the image range [-1, 1]; latent diffusion turns it off
    (latents are not bounded there).
    """

    def __init__(self, schedule: NoiseSchedule, clip: bool = True) -> None:
        self.schedule = schedule
        self.clip = clip
        self.timesteps: list[int] = []

    def set_timesteps(self, n: int) -> list[int]:
        """``n`` timesteps evenly spaced over 0 .. T-1, highest first (Song et al. 2021's
        "linear" sub-sequence; n = T gives every step)."""
        total = self.schedule.steps
        if not isinstance(n, int) or not 1 <= n <= total:
            raise ValueError(f"choose 1 to {total} sampling steps, not {n!r}")
        stride = total / n
        self.timesteps = sorted({round(i * stride) for i in range(n)}, reverse=True)
        return self.timesteps

    def previous(self, t: int) -> int:
        """The timestep after ``t`` in the sampling order (-1 after the last: the clean image)."""
        i = self.timesteps.index(int(t))
        return self.timesteps[i + 1] if i + 1 < len(self.timesteps) else -1

    def predict_x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        """x0 implied by a noise prediction (Ho et al. eq. 15), clipped to the image range
        unless ``clip`` is off."""
        a = self.schedule.alpha_bar(t, sample)
        x0 = (sample - (1 - a).sqrt() * eps) / a.sqrt()
        return x0.clamp(-1, 1) if self.clip else x0

    def renoise(self, sample: torch.Tensor, t_from: int, t_to: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Jump forward from x_{t_from} to the noisier x_{t_to} with q(x_to | x_from):
        the "undo" of RePaint's resampling (Lugmayr et al. 2022, eq. 9 over several steps)."""
        if t_to <= t_from:
            raise ValueError(f"renoise goes from a less to a more noisy step, not {t_from} to "
                             f"{t_to}")
        a_from, a_to = self.schedule.alpha_bar(t_from, sample), self.schedule.alpha_bar(t_to,
                                                                                        sample)
        ratio = a_to / a_from
        noise = _randn(sample, generator)
        return ratio.sqrt() * sample + (1 - ratio).sqrt() * noise

    def step(self, eps: torch.Tensor, t: int, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """x_prev from the network's noise prediction ``eps`` at ``t``."""
        return self.step_x0(self.predict_x0(eps, t, sample), t, sample, generator)

    def step_x0(self, x0: torch.Tensor, t: int, sample: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x_prev from a prediction of the clean picture ``x0`` (both samplers are functions
        of x0 and x_t alone), so a caller may correct x0 first (inpainting's known pixels)."""
        raise NotImplementedError


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Drawn on the CPU with the caller's generator: the same seed gives the same pictures on
    # every device.
    return torch.randn(like.shape, generator=generator, dtype=torch.float32).to(like.device,
                                                                              like.dtype)


class DDPMScheduler(Scheduler):
    """Ancestral sampling of Ho et al. 2020 (eq. 6-7), on any sub-sequence of timesteps: the
    posterior q(x_prev | x_t, x0) with x0 predicted from eps, variance beta-tilde."""

    def step_x0(self, x0: torch.Tensor, t: int, sample: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        prev = self.previous(t)
        a_t, a_prev = self.schedule.alpha_bar(t, sample), self.schedule.alpha_bar(prev, sample)
        beta = 1 - a_t / a_prev  # the effective beta of the jump t -> prev
        # Posterior mean (eq. 7): coefficients of x0 and x_t.
        mean = (a_prev.sqrt() * beta / (1 - a_t)) * x0 + \
            ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)) * sample
        if prev < 0:
            return mean
        var = beta * (1 - a_prev) / (1 - a_t)
        return mean + var.sqrt() * _randn(sample, generator)


class DDIMScheduler(Scheduler):
    """Song et al. 2021, eq. 12: deterministic with ``eta`` = 0; eta = 1 is DDPM's variance."""

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, clip: bool = True) -> None:
        super().__init__(schedule, clip)
        if eta < 0:
            raise ValueError(f"eta must not be negative, not {eta}")
        self.eta = eta

    def step_x0(self, x0: torch.Tensor, t: int, sample: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        prev = self.previous(t)
        a_t, a_prev = self.schedule.alpha_bar(t, sample), self.schedule.alpha_bar(prev, sample)
        # The eps consistent with the (clipped) x0, so the step stays on the data manifold.
        eps = (sample - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        direction = (1 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        out = a_prev.sqrt() * x0 + direction
        if self.eta > 0 and prev >= 0:
            out = out + sigma * _randn(sample, generator)
        return out
