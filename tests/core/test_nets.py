"""DCGAN and VAE networks: shapes at every supported size, registry round trips, configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core import registry
from core.nets.dcgan import DCGANConfig, Discriminator, Generator
from core.nets.vae import VAE, VAEConfig, kl_divergence
from core.weights import ModelCard, load_model, save_model


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_dcgan_shapes(size):
    torch.manual_seed(0)
    cfg = DCGANConfig(image_size=size, z_dim=8, g_base=4, d_base=4)
    g, d = Generator(cfg), Discriminator(cfg)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    assert d(x).shape == (3,)


def test_dcgan_64_is_the_papers_size_and_spectral_norm_works():
    cfg = DCGANConfig()
    assert 3e6 < n_params(Generator(cfg)) < 4e6 and 2e6 < n_params(Discriminator(cfg)) < 4e6
    sn = Discriminator(DCGANConfig(image_size=16, d_base=4, spectral_norm=True))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sn.modules())
    assert any("parametrizations" in k for k in sn.state_dict())
    assert torch.isfinite(sn(torch.randn(2, 3, 16, 16))).all()


@pytest.mark.parametrize("size", [8, 16, 64])
def test_vae_shapes_and_losses(size):
    torch.manual_seed(0)
    vae = VAE(VAEConfig(image_size=size, latent_dim=6, base=4))
    x = torch.rand(2, 3, size, size) * 2 - 1
    recon, mu, logvar = vae(x, torch.randn(2, 6))
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 6)
    assert vae.decode(torch.zeros(1, 6)).shape == (1, 3, size, size)
    assert vae.nll(x, recon).shape == (2,) and torch.isfinite(vae.nll(x, recon)).all()
    assert kl_divergence(torch.zeros(2, 6), torch.zeros(2, 6)).abs().max() == 0
    assert (kl_divergence(mu, logvar) >= 0).all()
    assert vae.sample(2, torch.Generator().manual_seed(1)).shape == (2, 3, size, size)


def test_vae_64_has_a_few_million_parameters():
    assert 2e6 < n_params(VAE(VAEConfig())) < 6e6


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match="power of two"):
        VAEConfig(image_size=4)
    with pytest.raises(ValueError, match="decoder_std"):
        VAEConfig(decoder_std=0)


@pytest.mark.parametrize(("arch", "cfg"), [
    ("dcgan", DCGANConfig(image_size=16, z_dim=8, g_base=4, d_base=4)),
    ("dcgan_discriminator", DCGANConfig(image_size=16, d_base=4, spectral_norm=True)),
    ("vae", VAEConfig(image_size=16, latent_dim=4, base=4)),
])
def test_registry_and_weights_round_trip(tmp_path, arch, cfg):
    torch.manual_seed(0)
    model = registry.build(arch, dataclasses.asdict(cfg)).eval()
    card = ModelCard(name="m", family=arch, architecture=arch, config=dataclasses.asdict(cfg))
    path = save_model(tmp_path, "m", model, card)
    loaded = load_model(path)
    x = torch.randn(2, 8) if arch == "dcgan" else torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    a, b = (a[0], b[0]) if arch == "vae" else (a, b)
    assert torch.equal(a, b)
