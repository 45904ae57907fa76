"""Diffusion: the autoencoder and UNet nets, the one sampling loop (known-region replacement,
RePaint resampling, strength), and training + evaluating both families from tiny recipes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from core.jobs import yield_from
from core.nets.autoencoder import Autoencoder, AutoencoderConfig
from core.nets.judge import Judge, JudgeConfig
from core.nets.unet import UNet, UNetConfig
from core.sampling.diffusion import DiffusionModel, repaint_path
from core.schedulers import NoiseSchedule
from core.training.recipe import load_recipe
from core.training.trainer import train
from core.weights import read_card
from tests.shipped_weights import copy_judges


class Oracle(nn.Module):
    """A "UNet" that knows the clean picture ``target`` and predicts the exact noise of any x_t
    with respect to it: a perfect model, so sampling must land exactly on ``target``."""

    def __init__(self, target: torch.Tensor, timesteps: int = 100) -> None:
        super().__init__()
        self.config = UNetConfig(image_size=target.shape[-1], channels=target.shape[1], base=8,
                                 mults=[1], attention=[], timesteps=timesteps)
        self.target = target
        self.schedule = NoiseSchedule.named(self.config.schedule, timesteps)
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls.append(int(t[0]))
        a = self.schedule.alpha_bar(t, x)
        return (x - a.sqrt() * self.target) / (1 - a).sqrt()


def picture(seed: int, size: int = 8) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


def run_all(gen):
    """(the generator's result, everything it yielded)."""
    steps = []
    return yield_from(gen, steps.append), steps


def test_repaint_path_walks_down_and_jumps_back_by_the_jump_length():
    ts = [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    plain = repaint_path(ts)
    assert [(m.t, m.to) for m in plain] == list(zip(ts, [*ts[1:], -1], strict=True))
    moves = repaint_path(ts, jump=3, resample=3)
    ups = [m for m in moves if not m.denoise]
    # Jump points after 3, 6 and 9 steps, each revisited twice (resample - 1).
    assert len(ups) == 6 and all(ts.index(m.to) == ts.index(m.t) - 3 for m in ups)
    assert sum(m.denoise for m in moves) == 10 + 6 * 3
    for a, b in itertools.pairwise(moves):  # a continuous path...
        assert b.t == a.to
    assert moves[-1].to == -1  # ...that ends on the clean picture
    with pytest.raises(ValueError, match="at least 1"):
        repaint_path(ts, jump=0)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainting_keeps_the_known_part_exactly_and_draws_the_rest(sampler):
    target, known = picture(1), picture(2)
    keep = torch.zeros(1, 1, 8, 8)
    keep[..., :, :4] = 1  # the left half is known
    model = DiffusionModel(Oracle(target))
    out, steps = run_all(model.denoise(2, 10, torch.Generator().manual_seed(0), known=known,
                                       keep=keep, sampler=sampler, jump=2, resample=2))
    assert out.shape == (2, 3, 8, 8) and len(steps) == steps[-1][1] == 10 + 4 * 2
    torch.testing.assert_close(out[..., :4], known.expand(2, -1, -1, -1)[..., :4])
    torch.testing.assert_close(out[..., 4:], target.expand(2, -1, -1, -1)[..., 4:],
                               atol=1e-4, rtol=0)
    # Previews are the model's current guess of the clean picture.
    torch.testing.assert_close(steps[-1][2][..., 4:], target.expand(2, -1, -1, -1)[..., 4:],
                               atol=1e-4, rtol=0)


def test_a_guide_corrects_every_guess_of_the_clean_picture():
    target, fixed = picture(1), picture(4)
    seen = []

    def guide(x0):
        seen.append(x0.clone())
        return fixed.expand_as(x0)

    model = DiffusionModel(Oracle(target))
    out, steps = run_all(model.denoise(2, 5, torch.Generator().manual_seed(0), guide=guide))
    assert len(seen) == 5
    torch.testing.assert_close(seen[0], target.expand(2, -1, -1, -1), atol=1e-4, rtol=0)
    torch.testing.assert_close(out, fixed.expand(2, -1, -1, -1))  # the last step lands on it
    torch.testing.assert_close(steps[-1][2], fixed.expand(2, -1, -1, -1))


def test_attribute_guide_climbs_the_judges_reading_only_where_allowed():
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(image_size=32, base=8, downsample=4, latent_channels=4,
                                       res_blocks=1)).eval()
    with torch.no_grad():  # an untrained decoder draws nearly flat grey: make this one draw
        ae.decoder[-1].weight.mul_(20)
    unet = UNet(UNetConfig(image_size=8, channels=4, base=8, mults=[1], attention=[],
                           timesteps=100, autoencoder="ae")).eval()
    judge = Judge(JudgeConfig(heads={"smiling": ["neutral", "smiling"]}, width=8,
                              size=64)).eval()  # another size than the pictures: resized
    model = DiffusionModel(unet, ae)
    where = torch.zeros(1, 1, 8, 8)
    where[..., 4:, 2:6] = 1
    x0 = torch.randn(3, 4, 8, 8)

    def smiling(z):
        with torch.no_grad():
            image = nn.functional.interpolate(ae.decode(z), size=(64, 64), mode="bilinear")
            return torch.log_softmax(judge(image)["smiling"], -1)[:, 1]

    for index, scale in ((1, 0.2), (0, 0.5)):
        y = model.attribute_guide(judge, "smiling", index, scale, where)(x0)
        assert torch.equal(y * (1 - where), x0 * (1 - where))  # nothing moves outside
        # Each of the two gradient steps has RMS ``scale`` over the cells that may change.
        norms = ((y - x0) * where).pow(2).sum(dim=(1, 2, 3)).sqrt()
        assert (norms > 0).all() and (norms <= 2 * scale * (where.sum() * 4).sqrt() + 1e-4).all()
        if index == 1:
            assert (smiling(y) > smiling(x0)).all()
        else:
            assert (smiling(y) < smiling(x0)).all()  # asking for "neutral" goes the other way
    assert torch.equal(model.attribute_guide(judge, "smiling", 1, 0.0)(x0), x0)


def test_strength_skips_the_noisiest_steps_and_needs_a_picture():
    oracle = Oracle(picture(1))
    model = DiffusionModel(oracle)
    out, steps = run_all(model.denoise(1, 20, torch.Generator().manual_seed(0),
                                       known=picture(2), keep=torch.zeros(1, 1, 8, 8),
                                       strength=0.3))
    assert len(steps) == len([t for t in range(0, 100, 5) if t <= 0.3 * 99])
    assert max(oracle.calls) <= 30
    torch.testing.assert_close(out, picture(1), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="known picture"):
        next(model.denoise(1, 20, torch.Generator(), strength=0.5))
    with pytest.raises(ValueError, match="strength"):
        next(model.denoise(1, 20, torch.Generator(), known=picture(2), strength=0.0))


def test_same_generator_same_samples_and_cancel_between_steps():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(image_size=8, base=8, mults=[1, 2], attention=[4], timesteps=50))
    model = DiffusionModel(unet.eval())
    a = model.generate(2, 5, torch.Generator().manual_seed(7))
    b = model.generate(2, 5, torch.Generator().manual_seed(7))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)

    class Stop(Exception):
        pass

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_all(model.denoise(1, 5, torch.Generator(), check=check))


def test_latent_model_needs_its_autoencoder_and_round_trips_through_it():
    ae = Autoencoder(AutoencoderConfig(image_size=16, base=8, downsample=4, res_blocks=1)).eval()
    ae.latent_std.fill_(2.0)
    x = picture(3, 16)
    z = ae.encode(x)
    assert z.shape == (1, 4, 4, 4)
    torch.testing.assert_close(z * 2.0, ae.moments(x)[0])
    assert ae.decode(z).shape == x.shape and ae.decode(z).abs().max() <= 1
    unet = UNet(UNetConfig(image_size=4, channels=4, base=8, mults=[1], attention=[],
                           autoencoder="ae"))
    with pytest.raises(ValueError, match="latent space of ae"):
        DiffusionModel(unet)
    model = DiffusionModel(unet, ae)
    assert (model.image_size, model.cell) == (16, 4)
    assert model.generate(1, 2, torch.Generator()).shape == (1, 3, 16, 16)


def test_unet_config_rejects_what_cannot_be_built():
    with pytest.raises(ValueError, match="halved"):
        UNetConfig(image_size=12, mults=[1, 2, 2, 2])
    with pytest.raises(ValueError, match="schedule"):
        UNetConfig(schedule="quadratic")
    unet = UNet(UNetConfig(image_size=16, base=24, mults=[1, 2], attention=[8]))
    assert unet(torch.randn(2, 3, 16, 16), torch.tensor([3, 900])).shape == (2, 3, 16, 16)


def test_tiny_recipes_train_latent_diffusion_and_evaluate(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    from core import paths
    from core.evaluation import diffusion as diffusion_eval
    from core.evaluation.evaluate import evaluate

    copy_judges(tmp_path / "shipped")
    models = paths.models_dir()
    ae = train(load_recipe("tiny_autoencoder"), tmp_path / "ae", device="cpu",
               weights_dir=models / "autoencoder")
    assert ae.last_losses["psnr"] > 0 and ae.last_losses["std"] > 0
    unet = train(load_recipe("tiny_diffusion", ["task.autoencoder=tiny_autoencoder"]),
                 tmp_path / "unet", device="cpu", weights_dir=models / "diffusion")
    card = read_card(unet.weights)
    assert card.config["autoencoder"] == "tiny_autoencoder"
    assert card.config["autoencoder_sha256"] == read_card(ae.weights).sha256
    assert (card.config["image_size"], card.config["channels"]) == (4, 4)
    assert (tmp_path / "unet" / "samples").is_dir()
    pixel = train(load_recipe("tiny_diffusion"), tmp_path / "pixel", device="cpu")
    assert read_card(pixel.weights).config["autoencoder"] == ""

    assert set(evaluate(ae.weights, n=4)["metrics"]) >= {"recon_psnr", "recon_fjd"}
    monkeypatch.setattr(diffusion_eval, "OOD_IMAGES", 4)
    metrics = evaluate(unet.weights, n=4)["metrics"]
    assert {"fjd_ddim10", "fjd_ddim20", "fjd_ddim50"} <= set(metrics)
    assert metrics["ood_threshold"] > 0 and np.isfinite(metrics["fjd_ddim20"])
