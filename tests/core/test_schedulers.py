"""The DDPM and DDIM schedulers' contract: timesteps, noising, and sampling with an exact
noise predictor (an oracle that knows the clean image) lands on the clean image."""

from __future__ import annotations

import itertools

import pytest
import torch

from core.schedulers import DDIMScheduler, DDPMScheduler, NoiseSchedule


def oracle(schedule: NoiseSchedule, x0: torch.Tensor):
    """A perfect eps-predictor for a known x0 (what a trained net approximates)."""

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        a = schedule.alpha_bar(t, x)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    return eps


def sample(scheduler, steps: int, x0: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scheduler.set_timesteps(steps)
    x = torch.randn(x0.shape, generator=g)
    net = oracle(scheduler.schedule, x0)
    for t in scheduler.timesteps:
        x = scheduler.step(net(x, t), t, x, generator=g)
    return x


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules_decrease_from_one_to_nearly_pure_noise(kind):
    s = NoiseSchedule.named(kind, 1000)
    a = s.alphas_cumprod
    assert s.steps == 1000 and bool((a[1:] < a[:-1]).all())
    assert 0.99 < float(a[0]) < 1 and float(a[-1]) < 1e-4
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule.named("square")
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        NoiseSchedule(torch.tensor([0.5, 1.0]))


def test_set_timesteps_spreads_steps_highest_first():
    sched = DDIMScheduler(NoiseSchedule.linear(1000))
    ts = sched.set_timesteps(20)
    assert len(ts) == 20 and ts == sorted(ts, reverse=True)
    assert ts[-1] == 0 and ts[0] == 950 and all(a - b == 50 for a, b in itertools.pairwise(ts))
    assert sched.set_timesteps(1000) == list(range(999, -1, -1))
    assert sched.previous(0) == -1
    for bad in (0, 1001, 2.5):
        with pytest.raises(ValueError, match="1 to 1000"):
            sched.set_timesteps(bad)


def test_add_noise_has_the_marginal_of_eq_4():
    s = NoiseSchedule.cosine(1000)
    x0 = torch.full((20000,), 0.5)
    noise = torch.randn(20000, generator=torch.Generator().manual_seed(0))
    xt = s.add_noise(x0, noise, 600)
    a = float(s.alphas_cumprod[600])
    assert float(xt.mean()) == pytest.approx(a ** 0.5 * 0.5, abs=0.02)
    assert float(xt.std()) == pytest.approx((1 - a) ** 0.5, abs=0.02)
    # Per-row timesteps broadcast over the image dimensions.
    batch = s.add_noise(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), torch.tensor([0, 999]))
    assert batch[0].max() < 0.02 and batch[1].min() > 0.99


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1, 10, 50])
def test_ddim_with_an_exact_predictor_recovers_the_image(kind, steps):
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    out = sample(DDIMScheduler(NoiseSchedule.named(kind)), steps, x0)
    assert torch.allclose(out, x0, atol=1e-4)


@pytest.mark.parametrize("steps", [10, 1000])
def test_ddpm_with_an_exact_predictor_recovers_the_image(steps):
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    out = sample(DDPMScheduler(NoiseSchedule.linear()), steps, x0)
    assert torch.allclose(out, x0, atol=1e-4)


def test_stochastic_steps_are_seeded():
    for sched in (DDPMScheduler(NoiseSchedule.cosine()),
                  DDIMScheduler(NoiseSchedule.cosine(), eta=1.0)):
        sched.set_timesteps(10)
        x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
        t = sched.timesteps[0]
        a = sched.step(torch.zeros_like(x), t, x, torch.Generator().manual_seed(5))
        b = sched.step(torch.zeros_like(x), t, x, torch.Generator().manual_seed(5))
        c = sched.step(torch.zeros_like(x), t, x, torch.Generator().manual_seed(6))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_ddim_eta_one_has_the_ddpm_posterior_variance():
    s = NoiseSchedule.linear()
    ddpm, ddim = DDPMScheduler(s), DDIMScheduler(s, eta=1.0)
    for sched in (ddpm, ddim):
        sched.set_timesteps(10)
    x = torch.zeros(1, 1, 100, 100)
    t = ddpm.timesteps[3]
    eps = torch.zeros_like(x)
    spread = [float(sched.step(eps, t, x, torch.Generator().manual_seed(0)).std())
              for sched in (ddpm, ddim)]
    assert spread[0] == pytest.approx(spread[1], rel=1e-3)


def test_renoise_jumps_forward_with_the_right_marginal():
    s = NoiseSchedule.cosine()
    sched = DDPMScheduler(s)
    x0 = torch.full((20000,), -0.4)
    g = torch.Generator().manual_seed(0)
    x300 = sched.renoise(x0, -1, 300, g)  # from the clean image: q(x_300 | x0)
    x700 = sched.renoise(x300, 300, 700, g)  # and on: the marginal of x_700 given x0
    for x, t in ((x300, 300), (x700, 700)):
        a = float(s.alphas_cumprod[t])
        assert float(x.mean()) == pytest.approx(a ** 0.5 * -0.4, abs=0.02)
        assert float(x.std()) == pytest.approx((1 - a) ** 0.5, abs=0.02)
    with pytest.raises(ValueError, match="less to a more noisy"):
        sched.renoise(x0, 500, 100)
