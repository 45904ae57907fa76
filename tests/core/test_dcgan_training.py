"""DCGAN training options that keep a small GAN from collapsing, and the attribute code
(core/training/families/dcgan.py, core/nets/dcgan.py): differentiable augmentation, the hinge
loss, R1, the auxiliary classifier over the latent's attribute code, and batch-norm statistics
measured for the exported EMA generator."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from core.data.faces import ATTRIBUTES
from core.nets.dcgan import DCGANConfig, Discriminator, Generator
from core.training.attribute_code import code_classes
from core.training.families.dcgan import augment, measure_batch_norm
from core.training.recipe import RecipeError, load_recipe
from core.training.trainer import train
from core.weights import load_model, read_card

FAST = ["data.workers=0", "train.steps=3", "train.checkpoint_every=100",
        "train.sample_every=100", "train.log_every=1"]


def test_augment_is_seeded_differentiable_and_does_what_it_says():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    a = augment(x, ["colour", "translation", "cutout"], torch.Generator().manual_seed(1))
    b = augment(x, ["colour", "translation", "cutout"], torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    ones = torch.ones(8, 3, 16, 16)
    cut = augment(ones, ["cutout"], torch.Generator().manual_seed(2))
    holes = (cut == 0).all(1).flatten(1).sum(1)  # a square of about half the side, per image
    assert ((holes > 0) & (holes <= 8 * 8)).all()
    shifted = augment(ones, ["translation"], torch.Generator().manual_seed(3))
    assert set(shifted.unique().tolist()) <= {0.0, 1.0}  # moved and zero-filled, not blurred
    assert (shifted == 0).any()


def test_attribute_code_names_classes_and_the_discriminator_classifies_them():
    groups = tuple(len(v) for v in ATTRIBUTES.values())
    cfg = DCGANConfig(image_size=16, z_dim=40, g_base=4, d_base=4, spectral_norm=True,
                      code_groups=groups)
    z = torch.zeros(2, 40)
    z[0, 1] = 1  # smiling: class 1
    z[1, 2 + 2 + 3] = 1  # hair colour: class 3 (red)
    classes = code_classes(z, groups)
    assert classes[0, 0] == 1 and classes[1, 2] == 3 and classes.shape == (2, len(groups))
    logits, aux = Discriminator(cfg).classify(Generator(cfg)(z))
    assert logits.shape == (2,) and aux.shape == (2, sum(groups))
    with pytest.raises(ValueError, match="code_groups"):
        DCGANConfig(z_dim=8, code_groups=groups)
    with pytest.raises(ValueError, match="no attribute code"):
        Discriminator(DCGANConfig(image_size=16, d_base=4)).classify(torch.zeros(1, 3, 16, 16))


def test_tiny_dcgan_trains_with_every_option_and_exports_the_code(tmp_path):
    r = load_recipe("tiny_dcgan", [*FAST, "model.z_dim=40", "model.spectral_norm=true",
                                   "task.loss=\"hinge\"", "task.r1=1.0",
                                   "task.augment=[\"colour\", \"translation\", \"cutout\"]",
                                   "task.attribute_code=true", "train.steps=4"])
    result = train(r, tmp_path / "run", device="cpu")
    with open(tmp_path / "run" / "losses.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"aux_real", "aux_fake", "r1"} <= set(rows[0]) | set(rows[-1])
    assert all(float(row["d"]) == float(row["d"]) for row in rows)  # finite, not NaN
    card = read_card(result.weights)
    assert card.config["code_groups"] == [len(v) for v in ATTRIBUTES.values()]
    g = load_model(result.weights, "cpu")
    assert g.config.code_groups == tuple(card.config["code_groups"])
    with pytest.raises(RecipeError, match="faces world"):
        from core.training.families.dcgan import DCGANTask

        scenes = load_recipe("tiny_dcgan", [*FAST, "data.source=\"scenes\"", "model.z_dim=40",
                                            "task.attribute_code=true"])
        DCGANTask(scenes, torch.device("cpu"), torch.Generator())


def test_unknown_options_are_refused():
    with pytest.raises(RecipeError, match="hinge"):
        load_recipe("tiny_dcgan", ["task.loss=\"wasserstein\""])
    with pytest.raises(RecipeError, match="blur"):
        load_recipe("tiny_dcgan", ["task.augment=[\"blur\"]"])


def test_batch_norm_statistics_are_measured_for_the_weights_they_serve():
    torch.manual_seed(0)
    g = Generator(DCGANConfig(image_size=16, z_dim=8, g_base=4))
    with torch.no_grad():
        for m in g.modules():  # as if an EMA copy got another network's statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(3.0)
                m.running_var.fill_(0.01)
    measure_batch_norm(g, 8, torch.device("cpu"), seed=0)
    z = torch.randn(256, 8)
    with torch.no_grad():
        g.eval()
        eval_out = g(z)
        g.train()
        train_out = g(z)
    assert (eval_out - train_out).abs().mean() < 0.02
    assert g.training  # its mode is kept


def test_tiny_vae_trains_with_the_attribute_code_and_the_adversarial_term(tmp_path):
    r = load_recipe("tiny_vae", [*FAST, "model.latent_dim=40", "task.attribute_code=true",
                                 "task.adversarial=0.1", "task.adversarial_start=2",
                                 "task.d_base=4", "train.steps=4"])
    result = train(r, tmp_path / "run", device="cpu")
    with open(tmp_path / "run" / "losses.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["code"] and not rows[0]["g_adv"]  # the adversarial term starts at step 2
    assert rows[-1]["g_adv"] and rows[-1]["d"]
    vae = load_model(result.weights, "cpu")  # the discriminator is not exported
    assert vae.config.latent_dim == 40
    with pytest.raises(RecipeError, match="needs 32 latent numbers"):
        from core.training.families.vae import VAETask

        VAETask(load_recipe("tiny_vae", [*FAST, "task.attribute_code=true"]),
                torch.device("cpu"), torch.Generator())


def test_the_code_loss_teaches_each_group_its_class():
    from core.training.attribute_code import code_loss, label_classes

    groups = [2, 3]
    attributes = [("smiling", ["neutral", "smiling"]), ("hat", ["a", "b", "c"])]
    classes = label_classes([{"smiling": "smiling", "hat": "c"}], attributes,
                            torch.device("cpu"))
    assert classes.tolist() == [[1, 2]]
    right = torch.tensor([[0.0, 9.0, 0.0, 0.0, 9.0]])
    wrong = torch.tensor([[9.0, 0.0, 9.0, 0.0, 0.0]])
    assert code_loss(right, classes, groups) < 0.01 < 5 < code_loss(wrong, classes, groups)


def test_label_smoothing_bounds_the_gap_the_code_loss_asks_for():
    """Without smoothing the loss keeps falling as two classes' logits move apart (a VAE's
    code means would run away from its prior); with 0.1 it is least at a gap of
    log(0.95 / 0.05), about 2.9, and rises beyond."""
    from core.training.attribute_code import code_loss

    classes = torch.tensor([[1]])

    def loss(gap: float, smoothing: float) -> float:
        return float(code_loss(torch.tensor([[0.0, gap]]), classes, [2], smoothing))

    assert loss(20, 0.0) < loss(6, 0.0) < loss(3, 0.0)
    gaps = np.linspace(0, 10, 101)
    best = gaps[np.argmin([loss(g, 0.1) for g in gaps])]
    assert abs(best - np.log(0.95 / 0.05)) < 0.1
    assert loss(8, 0.1) > loss(3, 0.1) + 0.1
    with pytest.raises(RecipeError, match="code_smoothing"):
        load_recipe("tiny_vae", [*FAST, "task.code_smoothing=1.0"])
