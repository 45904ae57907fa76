"""The x4 upscaler: net shapes, training on real 64/256-style pairs (tiny), evaluation, the
pipeline (tiles, alpha, progress, cancel, refusals) and ``easel upscale``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from upscaler_models import picture, run

from core import cli, imageio, paths
from core.evaluation.evaluate import evaluate
from core.jobs import Cancelled, ImageRef, JobError, read_spec
from core.nets.upscale import UpscaleConfig, Upscaler
from core.pipelines.upscale import UpscaleSpec, load_upscaler, upscale_tensor
from core.training.recipe import RecipeError, load_recipe
from core.training.trainer import train
from core.weights import ModelCard, load_model, read_card, save_model


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))  # no shipped models
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    monkeypatch.delenv("EASEL_MAX_PIXELS", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_net(blocks: int = 1, channels: int = 8, seed: int = 0) -> Upscaler:
    """A tiny upscaler whose last conv is random too (the real init makes it exactly bicubic,
    which would hide tiling mistakes)."""
    torch.manual_seed(seed)
    net = Upscaler(UpscaleConfig(scale=4, channels=channels, blocks=blocks))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return net.eval()


def install(name: str = "tiny_up", net: Upscaler | None = None):
    net = net or random_net()
    card = ModelCard(name=name, family="upscale", architecture="upscale",
                     config={"scale": 4, "channels": net.config.channels,
                             "blocks": net.config.blocks})
    return save_model(paths.models_dir() / "upscale", name, net, card)


# --------------------------------------------------------------------------- the net


@pytest.mark.parametrize(("scale", "h", "w"), [(4, 7, 13), (4, 1, 1), (2, 5, 3), (8, 3, 6)])
def test_any_size_comes_out_scale_times_larger(scale, h, w):
    net = Upscaler(UpscaleConfig(scale=scale, channels=4, blocks=1)).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w) * 2 - 1)
    assert y.shape == (2, 3, h * scale, w * scale)


def test_untrained_net_is_bicubic_upsampling():
    net = Upscaler(UpscaleConfig(channels=4, blocks=2)).eval()
    x = torch.rand(1, 3, 9, 11) * 2 - 1
    with torch.no_grad():
        expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        assert torch.equal(net(x), expected)


@pytest.mark.parametrize("bad", [{"scale": 3}, {"channels": 0}, {"blocks": -1}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        UpscaleConfig(**bad)


def test_tiled_equals_untiled():
    net = random_net(blocks=2)
    x = torch.rand(1, 3, 23, 31) * 2 - 1
    whole = upscale_tensor(net, x, tile=1000)
    tiled = upscale_tensor(net, x, tile=6)
    assert tiled.shape == whole.shape == (1, 3, 92, 124)
    assert (tiled - whole).abs().max() < 1e-4


# --------------------------------------------------------------------------- training


def test_tiny_recipe_trains_exports_and_evaluates(tmp_path):
    result = train(load_recipe("tiny_upscale", ["train.steps=3"]), tmp_path / "run",
                   device="cpu", command="easel train tiny_upscale")
    assert result.step == 3 and np.isfinite(result.last_losses["l1"])
    card = read_card(result.weights)
    assert (card.family, card.architecture) == ("upscale", "upscale")
    assert card.config == {"scale": 4, "channels": 8, "blocks": 1}
    net = load_model(result.weights)
    assert isinstance(net, Upscaler)
    assert (tmp_path / "run" / "samples" / "step_000003.png").is_file()

    report = evaluate(result.weights, n=3)["metrics"]
    assert (report["low_size"], report["high_size"]) == (8, 32)
    for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"):
        assert np.isfinite(report[key]), key
    assert 0 < report["ms_per_image"] < 1000
    # Three steps from the bicubic start: still close to bicubic, not something else.
    assert abs(report["psnr"] - report["bicubic_psnr"]) < 3


def test_training_pairs_are_aligned_renders():
    from core.data.worlds import get_world
    from core.training.families.upscale import UpscaleTask
    from core.training.task import Batch

    recipe = load_recipe("tiny_upscale", ["data.size=64", "task.crop=32"])
    task = UpscaleTask(recipe, torch.device("cpu"), torch.Generator().manual_seed(0))
    seeds = [11, 12, 13, 14]
    high = np.stack([get_world("faces").render(s, size=64).image for s in seeds])
    x = torch.from_numpy(high).permute(0, 3, 1, 2).float() / 127.5 - 1
    low, high_crop = task.crops(task.low_res(Batch(x, seeds=seeds)), x, step=5)
    assert low.shape == (4, 3, 8, 8) and high_crop.shape == (4, 3, 32, 32)
    # The high-resolution crop shrunk 4x is (nearly) the low-resolution crop: the same place
    # of the same face, and clearly closer than the crop one low-resolution pixel off.
    shrunk = F.avg_pool2d(high_crop, 4)[..., 1:-1, 1:-1]
    aligned = (shrunk - low[..., 1:-1, 1:-1]).abs().mean()
    for dy, dx in ((0, 1), (1, 0)):
        shifted = torch.roll(low, (dy, dx), dims=(2, 3))[..., 1:-1, 1:-1]
        assert (shrunk - shifted).abs().mean() > 1.5 * aligned
    assert aligned < 0.08


@pytest.mark.parametrize(("override", "message"), [
    ("task.crop=18", "multiples"), ("task.crop=64", "must not exceed"),
    ("data.flip=true", "aligned")])
def test_bad_upscale_recipes_are_refused(tmp_path, override, message):
    with pytest.raises(RecipeError, match=message):
        train(load_recipe("tiny_upscale", [override]), tmp_path / "run", device="cpu")


# --------------------------------------------------------------------------- the pipeline


def test_pipeline_upscales_with_alpha_and_progress_per_tile(monkeypatch):
    install()
    rgba = picture(10, 19, alpha=True)
    events: list = []
    result = run(UpscaleSpec(image=ImageRef.of(rgba), model="tiny_up", tile=8), events)
    (image,) = result.images
    assert image.shape == (40, 76, 3) and image.dtype == np.uint8
    assert result.alpha.shape == (40, 76)
    expected_alpha = np.asarray(Image.fromarray(rgba[..., 3]).resize(
        (76, 40), Image.Resampling.BICUBIC))
    assert np.array_equal(result.alpha, expected_alpha)
    tile_steps = [p for p in events if p.message.startswith("Upscaling tile")]
    assert [p.step for p in tile_steps] == list(range(1, 7)) and tile_steps[0].total == 6
    assert result.info["output_size"] == [76, 40] and "tiny_up" in result.info["models"]
    # The same pixels as the helper other pipelines call (which does not tile here).
    net = load_upscaler("tiny_up")
    x = torch.from_numpy(rgba[..., :3]).permute(2, 0, 1)[None].float() / 127.5 - 1
    direct = upscale_tensor(net, x)[0].add(1).mul(127.5).round().byte().permute(1, 2, 0)
    assert np.abs(direct.numpy().astype(int) - image.astype(int)).max() <= 1


def test_pipeline_is_deterministic_and_accepts_a_path():
    path = install()
    spec = UpscaleSpec(image=ImageRef.of(picture(6, 5)), model=str(path))
    a, b = run(spec).images[0], run(spec).images[0]
    assert np.array_equal(a, b)
    assert spec.to_dict()["model"] == str(path)


def test_cancel_stops_between_tiles(monkeypatch):
    install()
    events: list = []
    with pytest.raises(Cancelled):
        run(UpscaleSpec(image=ImageRef.of(picture(12, 12)), model="tiny_up", tile=4), events,
            cancel_after=1)
    assert [(p.step, p.total) for p in events if p.message.startswith("Upscaling tile")] == [
        (1, 9)]


def test_refusals_are_clear(monkeypatch, tmp_path):
    with pytest.raises(JobError, match="open an image"):
        run(UpscaleSpec(image=None))
    install("mine")
    with pytest.raises(JobError, match=r"Unknown upscale model 'nope'; known: mine"):
        run(UpscaleSpec(image=ImageRef.of(picture(4, 4)), model="nope"))
    with pytest.raises(JobError, match="does not exist"):
        run(UpscaleSpec(image=ImageRef.of(picture(4, 4)), model=str(tmp_path / "x.safetensors")))
    monkeypatch.setenv("EASEL_MAX_PIXELS", "1000")
    with pytest.raises(JobError, match=r"Upscaling 10x9 by 4 gives 40x36 .* over the limit"):
        run(UpscaleSpec(image=ImageRef.of(picture(9, 10)), model="mine"))
    monkeypatch.delenv("EASEL_MAX_PIXELS")
    with pytest.raises(JobError, match="8-bit RGB"):
        run(UpscaleSpec(image=ImageRef.of(np.zeros((4, 4), np.uint8)), model="mine"))


def test_a_model_of_another_family_is_refused():
    from core.nets.vae import VAE, VAEConfig

    cfg = VAEConfig(image_size=8, latent_dim=2, base=2)
    card = ModelCard(name="v", family="vae", architecture="vae",
                     config={"image_size": 8, "latent_dim": 2, "base": 2})
    path = save_model(paths.models_dir() / "vae", "v", VAE(cfg), card)
    with pytest.raises(JobError, match="not an upscaler"):
        run(UpscaleSpec(image=ImageRef.of(picture(4, 4)), model=str(path)))


def test_a_damaged_model_file_is_a_job_error():
    path = install()
    path.write_bytes(path.read_bytes()[:-8] + b"garbage!")
    with pytest.raises(JobError, match="modified or is corrupt"):
        run(UpscaleSpec(image=ImageRef.of(picture(4, 4)), model="tiny_up"))


# --------------------------------------------------------------------------- CLI


def test_cli_upscale_writes_a_png_with_metadata_and_alpha(tmp_path, capsys):
    install()
    src = tmp_path / "in.png"
    rgba = picture(7, 9, alpha=True)
    imageio.save_png(src, rgba[..., :3], alpha=rgba[..., 3])
    out = tmp_path / "out.png"
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "tiny_up", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(out) and report["spec"]["kind"] == "upscale"
    loaded = imageio.load_image(out)
    assert loaded.size == (36, 28) and loaded.alpha is not None
    assert read_spec(out).model == "tiny_up"
    # The recorded job replays to the same pixels (the alpha is resized the same way).
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again)]) == 0
    replay = imageio.load_image(again)
    assert np.array_equal(replay.rgb, loaded.rgb) and np.array_equal(replay.alpha, loaded.alpha)


def test_cli_upscale_unknown_model_is_exit_2(tmp_path, capsys):
    src = tmp_path / "in.png"
    imageio.save_png(src, picture(4, 4))
    assert cli.main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--model", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("easel: error: Unknown upscale model 'x'") and "\n" not in err
    assert not (tmp_path / "o.png").exists()
