"""One pass for any painting: the AdaIN net, its training family and tiny recipe, the style
sources it learns from (held-out ones kept out), and the one-pass path of the style pipeline
(strength, several styles, bad input, the spec in the PNG, the CLI)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from core import imageio, paths
from core.data.styles import HELD_OUT_PAINTINGS, STYLES, render_style, varied_painting
from core.jobs import Context, ImageRef, JobError, JobSpec, run_job
from core.nets.adain import AdaINConfig, AdaINNet, adain
from core.nets.features import FeatureConfig, RandomFeatures, StyleLoss, mean_std
from core.pipelines.style import StyleSpec
from core.specs.style import ONE_PASS_MODEL
from tests.style_models import install_one_pass


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets run fastest on one thread; CI's 2 cores are shared
    yield
    torch.set_num_threads(threads)


def photo(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    img = np.stack([60 + 2 * x, 90 + y, 200 - x], -1).astype(np.float64)
    img[h // 2:, w // 4:3 * w // 4] = (120, 70, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def run(spec: StyleSpec):
    return run_job(spec, Context.for_spec(spec, device="cpu"))


def one_pass_spec(content: np.ndarray, *styles: np.ndarray, **kw) -> StyleSpec:
    return StyleSpec(image=ImageRef.of(content), styles=tuple(ImageRef.of(s) for s in styles),
                     one_pass=kw.pop("one_pass", ONE_PASS_MODEL), **kw)


# --------------------------------------------------------------------------- the net


def test_the_net_keeps_any_size_and_its_encoder_is_the_style_loss_network():
    net = AdaINNet(AdaINConfig(layer=5, width=0.25)).eval()
    features = RandomFeatures(FeatureConfig(seed=0))
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    with torch.no_grad():
        for h, w in ((37, 53), (64, 64), (5, 130), (1, 1)):
            content = torch.rand(2, 3, h, w) * 2 - 1
            out = net(content, torch.rand(2, 3, 29, 41) * 2 - 1)  # a style of another size
            assert out.shape == content.shape and out.abs().max() <= 1
        f, sizes = net.encode(x)
        # The encoder is the front of the loss's feature network: AdaIN works where the loss
        # measures, and the decoder's sizes can come from the loss's own features.
        feats = features(x)
        assert torch.allclose(f, feats[5])
        assert net.encoder.pool_sizes(feats) == sizes == [(37, 53), (18, 26)]
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.decoder.parameters())
    with pytest.raises(ValueError, match="layer must be"):
        AdaINConfig(layer=99)


def test_adain_gives_the_style_statistics_at_strength_one_and_the_content_at_zero():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(2, 8, 12, 10, generator=g) * 3 + 1
    style = torch.randn(2, 8, 7, 9, generator=g) * 0.5 - 2
    full = adain(content, style, 1.0)
    for a, b in zip(mean_std(full), mean_std(style), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert torch.equal(adain(content, style, 0.0), content)
    half = adain(content, style, torch.tensor([0.0, 1.0]))  # per item
    assert torch.equal(half[0], content[0]) and torch.allclose(half[1], full[1])
    # In between, the means move linearly from the content's to the style's.
    m = mean_std(adain(content, style, 0.25))[0]
    torch.testing.assert_close(m, 0.75 * mean_std(content)[0] + 0.25 * mean_std(style)[0],
                               atol=1e-4, rtol=1e-4)


def test_the_paired_style_loss_scores_each_picture_against_its_own_style():
    net = RandomFeatures(FeatureConfig(seed=0))
    a = torch.from_numpy(render_style("brush", 0, 32)).permute(2, 0, 1)[None].float() / 127.5 - 1
    b = torch.from_numpy(render_style("mosaic", 0, 32)).permute(2, 0, 1)[None].float() / 127.5 - 1
    styles = torch.cat([a, b])
    loss = StyleLoss.paired(net, net(styles))
    assert float(loss.style(net(styles))) < 1e-6
    swapped = float(loss.style(net(torch.cat([b, a]))))
    assert swapped > 0.1
    # Each item is relative to its own style: a style twice as bright does not outweigh the other.
    scaled = StyleLoss.paired(net, net(torch.cat([a, b * 0.5])))
    assert float(scaled.style(net(torch.cat([b, a * 0.5])))) == pytest.approx(swapped, rel=0.6)


# --------------------------------------------------------------------------- style sources


def test_varied_paintings_come_from_their_seed_and_vary_in_palette_and_marks():
    assert set(HELD_OUT_PAINTINGS) < set(STYLES)
    for name in STYLES:
        a, b = varied_painting(name, 3, 48), varied_painting(name, 3, 48)
        assert a.shape == (48, 48, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert np.ptp(a) > 40  # never a blank canvas
    means = [varied_painting("brush", s, 48).reshape(-1, 3).mean(0) for s in range(8)]
    assert np.ptp(np.array(means), axis=0).max() > 30  # palettes differ across seeds


def test_texture_styles_are_cropped_tinted_and_some_are_held_out():
    pytest.importorskip("skimage")
    from core.data.textures import HELD_OUT_TEXTURES, TEXTURES, varied_texture

    assert set(HELD_OUT_TEXTURES) < set(TEXTURES)
    a, b = varied_texture("brick", 1, 40), varied_texture("brick", 1, 40)
    assert a.shape == (40, 40, 3) and np.array_equal(a, b)
    tints = [varied_texture("brick", s, 40).reshape(-1, 3).mean(0) for s in range(6)]
    assert np.ptp(np.array(tints), axis=0).max() > 20  # the grey photo comes in colours


def test_held_out_styles_cannot_be_trained_on():
    from core.training.recipe import RecipeError, load_recipe

    r = load_recipe("style_onepass")
    assert not set(r.task.paintings) & set(HELD_OUT_PAINTINGS)
    with pytest.raises(RecipeError, match="'hatching' is held out"):
        load_recipe("tiny_style_onepass", ['task.paintings=["brush", "hatching"]'])
    with pytest.raises(RecipeError, match="unknown 'oils'"):
        load_recipe("tiny_style_onepass", ['task.paintings=["oils"]'])


# --------------------------------------------------------------------------- training


def _losses(out) -> list[float]:
    with open(out / "losses.csv", encoding="utf-8") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_the_tiny_recipe_lowers_the_loss_resumes_exactly_and_exports_a_usable_net(tmp_path):
    from core.training.recipe import load_recipe
    from core.training.trainer import train
    from core.weights import load_model, read_card

    models = paths.models_dir() / "style_onepass"
    result = train(load_recipe("tiny_style_onepass"), tmp_path / "run", device="cpu",
                   weights_dir=models)
    losses = _losses(tmp_path / "run")
    assert len(losses) == 6 and np.mean(losses[-2:]) < 0.85 * np.mean(losses[:2])
    assert list((tmp_path / "run" / "samples").glob("*.png"))  # picture, style, restyled
    # Stopped at step 3 and resumed: the same pairs of pictures and styles, the same weights.
    part = tmp_path / "part"
    train(load_recipe("tiny_style_onepass", ["train.steps=3"]), part, device="cpu",
          weights_dir=tmp_path / "w3")
    train(load_recipe("tiny_style_onepass"), part, device="cpu", resume=True,
          weights_dir=tmp_path / "w6")
    a, b = load_file(result.weights), load_file(tmp_path / "w6" / "tiny_style_onepass.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    net = load_model(result.weights)
    assert isinstance(net, AdaINNet) and net.config.layer == 3
    card = read_card(result.weights)
    assert card.family == "style_onepass" and "brush" in card.config["style"]
    content = photo()
    res = run(one_pass_spec(content, render_style("wash", 0, 64), one_pass="tiny_style_onepass"))
    assert res.images[0].shape == content.shape
    assert "tiny_style_onepass" in res.info["models"]


# --------------------------------------------------------------------------- pipeline


def test_the_one_pass_path_restyles_blends_by_strength_and_mixes_styles():
    install_one_pass(paths.data_dir())
    content, brush, mosaic = photo(), render_style("brush", 0, 64), render_style("mosaic", 0, 64)
    full = run(one_pass_spec(content, brush)).images[0]
    assert full.shape == content.shape and not np.array_equal(full, content)
    again = run(one_pass_spec(content, brush)).images[0]
    assert np.array_equal(full, again)  # the same spec, the same pixels
    # Strength 0 decodes the picture's own features: no style in it at all.
    none = run(one_pass_spec(content, brush, alpha=0.0)).images[0]
    other = run(one_pass_spec(content, mosaic, alpha=0.0)).images[0]
    assert np.array_equal(none, other) and not np.array_equal(none, full)
    half = run(one_pass_spec(content, brush, alpha=0.5)).images[0].astype(float)
    assert 0 < np.abs(half - full).mean() < np.abs(none.astype(float) - full).mean()
    # Two styles with weights: the mean of their targets; weight on one style alone is it.
    only = run(one_pass_spec(content, brush, mosaic, style_weights=(1.0, 0.0))).images[0]
    assert np.array_equal(only, full)
    mixed = run(one_pass_spec(content, brush, mosaic, style_weights=(1.0, 1.0))).images[0]
    assert not np.array_equal(mixed, full)


def test_one_pass_bad_input_gets_clear_messages():
    content = photo()
    with pytest.raises(JobError, match="The one-pass net is not installed: train it with "
                                       "easel train style_onepass"):
        run(one_pass_spec(content, render_style("brush", 0, 32)))
    install_one_pass(paths.data_dir())
    flat = np.full((40, 40, 3), (200, 30, 30), np.uint8)
    with pytest.raises(JobError, match=r"is one colour \(RGB 200, 30, 30\)"):
        run(one_pass_spec(content, flat))
    with pytest.raises(JobError, match="strength must be from 0"):
        run(one_pass_spec(content, render_style("brush", 0, 32), alpha=1.5))
    with pytest.raises(JobError, match="Add a style image"):
        run(one_pass_spec(content))
    with pytest.raises(JobError, match="not both"):
        run(one_pass_spec(content, render_style("brush", 0, 32), fast="style_fast_brush"))
    # A tiny style image and a large picture: restyled, with notes saying what was done.
    res = run(one_pass_spec(photo(300, 200), render_style("mosaic", 0, 16), size=128))
    assert res.images[0].shape == (300, 200, 3)
    notes = " ".join(res.info["notes"])
    assert "much smaller" in notes and "restyled at 85x128" in notes


def test_easel_style_one_pass_writes_a_png_that_carries_its_spec(tmp_path, capsys):
    from core.cli import main

    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(photo()).save(content)
    Image.fromarray(render_style("mosaic", 0, 64)).save(style)
    out = tmp_path / "out.png"
    assert main(["style", str(content), str(style), "--one-pass", "-o", str(out)]) == 2
    assert "one-pass net is not installed" in capsys.readouterr().err
    install_one_pass(paths.data_dir())
    assert main(["style", str(content), str(style), "--one-pass", "--strength", "0.6",
                 "-o", str(out)]) == 0
    spec = JobSpec.from_dict(imageio.read_metadata(out)["spec"])
    assert spec.one_pass == ONE_PASS_MODEL and spec.alpha == 0.6 and len(spec.styles) == 1
    first = imageio.load_image(out).rgb
    rerun = tmp_path / "rerun.png"
    assert main(["rerun", str(out), "-o", str(rerun)]) == 0
    assert np.array_equal(imageio.load_image(rerun).rgb, first)
    capsys.readouterr()
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(flat)
    for args, message in (
            (["--strength", "3"], "--strength is from 0"),
            (["--fast", "x"], "choose one"),
            ([str(flat)], "is one colour")):
        extra = [a for a in args if a == str(flat)]
        rest = [a for a in args if a != str(flat)]
        argv = ["style", str(content), *(extra or [str(style)]), "--one-pass", *rest,
                "-o", str(tmp_path / "bad.png")]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
