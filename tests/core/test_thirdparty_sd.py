"""Stable Diffusion 1.x/2.x through diffusers, offline: the tokenizer, which checkpoint is
which, single file against diffusers folder, registering in place, jobs, cancel, bad files and
the command line.

The models are tiny random-weight SDs (tests/sd_models.py) in the real key layouts. Their
configs are tiny too, so the tests that register them point Easel's config folders
(``core.thirdparty.sd.CONFIGS``) at tiny ones and accept their text width; everything else runs
the real code. The full-size layouts are checked from their key names and shapes alone
(meta tensors), and once with real weights by the ``full_size`` test (not run in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.pipelines  # noqa: F401  (registers the pipelines, sd's among them)
import core.thirdparty.sd as sd
import core.thirdparty.sd.checkpoint as checkpoint
from core import cli, imageio
from core.device import torch_threads
from core.jobs import Cancelled, Context, ImageRef, JobError, run_job
from core.model_manager import check_hash, import_model
from core.specs.inpaint import InpaintSpec
from core.specs.sd import SDSceneSpec
from core.thirdparty.files import ThirdPartyError
from core.thirdparty.sd.tokenizer import clip_tokenizer
from core.weights import list_models, read_card, verify_all
from tests.core.test_offline import no_network  # noqa: F401  (a fixture)
from tests.sd_models import meta_layout, save_folder, save_single_file, tiny, to_ldm

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("diffusers", "transformers")


@pytest.fixture
def network(no_network):  # noqa: F811  (test_offline's fixture: records refused attempts)
    return no_network


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and torch's spinning threads on a shared 2-core
    machine would make every op wait."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Per kind: a diffusers folder, its configs alone, and the single-file checkpoint."""
    root = tmp_path_factory.mktemp("tiny_sd")
    out = {}
    for kind in ("v1", "v2", "inpainting"):
        models = tiny(kind)
        out[kind] = {"folder": save_folder(models, root / kind / "diffusers", kind),
                     "configs": save_folder(models, root / kind / "configs", kind,
                                            weights=False),
                     "file": save_single_file(models, root / kind / f"tiny_{kind}.safetensors",
                                              kind)}
    return out


@pytest.fixture
def tiny_configs(built, tmp_path, monkeypatch) -> dict[str, dict[str, Path]]:
    """Easel's config folders made the tiny ones (the variants' names), and a tiny text width
    accepted as SD 1.x's."""
    configs = tmp_path / "configs"
    for kind, variant in (("v1", "sd1"), ("inpainting", "sd1_inpainting")):
        target = configs / variant
        target.mkdir(parents=True)
        for src in built[kind]["configs"].rglob("*.json"):
            dest = target / src.relative_to(built[kind]["configs"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
    monkeypatch.setattr(sd, "CONFIGS", configs)
    monkeypatch.setattr(checkpoint, "TEXT_WIDTH", {"v1": 16, "v2": 1024})
    return built


@pytest.fixture
def installed(tiny_configs, tmp_path, network) -> dict[str, str]:
    """The tiny SD 1.x and its inpainting model, imported (registered in place), with the
    network refused from here on."""
    names = {}
    for kind in ("v1", "inpainting"):
        src = tmp_path / "files" / tiny_configs[kind]["file"].name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(tiny_configs[kind]["file"].read_bytes())
        names[kind] = import_model(src).name
    return names


def card_of(name: str):
    return read_card(next(m.path for m in list_models("sd") if m.name == name))


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_gives_clips_ids_and_each_versions_padding():
    sd1, sd2 = clip_tokenizer(), clip_tokenizer(pad_token="!")
    assert len(sd1) == 49408
    # (The issue text lists [49406, 320, 1125, 539, 2368, 49407]: that is "a photo of cat".)
    assert sd1("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert sd1("a photo of cat").input_ids == [49406, 320, 1125, 539, 2368, 49407]
    assert sd1("A  Photo of a CAT").input_ids == sd1("a photo of a cat").input_ids
    padded = sd1("a cat", padding="max_length").input_ids
    assert len(padded) == 77 and padded[:4] == [49406, 320, 2368, 49407]
    assert set(padded[4:]) == {49407}  # SD 1.x pads with end-of-text
    padded = sd2("a cat", padding="max_length").input_ids
    assert padded[:4] == [49406, 320, 2368, 49407] and set(padded[4:]) == {0}  # "!"


def test_old_tokenizer_keywords_are_ignored_by_transformers_5(tmp_path):
    """Why the tokenizer is given its vocabulary itself: file keywords build an empty one."""
    from transformers import CLIPTokenizer

    vocab, merges = tmp_path / "vocab.json", tmp_path / "merges.txt"
    vocab.write_text(json.dumps({"a</w>": 0}))
    merges.write_text("#version: 0.2\n")
    assert len(CLIPTokenizer(vocab_file=str(vocab), merges_file=str(merges))) < 10


def test_the_vocabulary_ships_with_its_licence():
    notice = (REPO / "resources" / "clip" / "LICENSE").read_text()
    assert "Copyright (c) 2021 OpenAI" in notice and "MIT License" in notice
    assert "bpe_simple_vocab_16e6" in (REPO / "README.md").read_text()


# --------------------------------------------------------------------------- which model


@pytest.mark.parametrize("kind, variant", [("v1", "sd1"), ("v2", "sd2_768"),
                                           ("inpainting", "sd1_inpainting"),
                                           ("inpainting_v2", "sd2_inpainting")])
def test_full_size_layouts_are_told_apart_and_map_whole(kind, variant):
    tensors = meta_layout(kind)
    found = checkpoint.model_type(tensors, "x.safetensors")
    assert found == kind
    pick = sd.variant_for(found, sd.VARIANTS[variant].prediction)
    assert pick.name == variant
    assert checkpoint.unmapped(tensors, pick) == ""
    del tensors[next(k for k in tensors if k.endswith("attn2.to_v.weight"))]
    assert "UNet tensors missing: down_blocks.0.attentions.0" in checkpoint.unmapped(
        tensors, pick)


def test_sd2_base_and_768_share_a_layout_and_the_prediction_picks_the_config():
    assert sd.variant_for("v2", "epsilon").name == "sd2_base"
    assert sd.variant_for("v2", "v").name == "sd2_768"
    for name in sd.VARIANTS:  # every shipped config folder is whole
        folder = sd.VARIANTS[name].config_dir
        for part in ("model_index.json", "unet/config.json", "vae/config.json",
                     "text_encoder/config.json", "scheduler/scheduler_config.json",
                     "tokenizer/tokenizer_config.json"):
            assert (folder / part).is_file(), (name, part)


def test_sdxl_unknown_and_partial_checkpoints_are_refused_with_a_line():
    with pytest.raises(ThirdPartyError, match="SDXL checkpoint; Easel does not open SDXL"):
        checkpoint.model_type(meta_layout("xl"), "xl.safetensors")
    odd = {k: v for k, v in meta_layout("v1").items() if "attn2.to_k" not in k}
    with pytest.raises(ThirdPartyError, match="odd.safetensors: its version cannot be told"):
        checkpoint.model_type(odd, "odd.safetensors")
    unet_only = {k: v for k, v in meta_layout("v1").items()
                 if k.startswith("model.diffusion_model.")}
    with pytest.raises(ThirdPartyError, match="no text encoder and no VAE"):
        checkpoint.model_type(unet_only, "unet.safetensors")


# --------------------------------------------------------------------------- loading


def _outputs(pipe) -> list[torch.Tensor]:
    """The text encoder's, UNet's and VAE's outputs on fixed inputs."""
    gen = torch.Generator().manual_seed(0)
    ids = pipe.tokenizer("a photo of a cat", padding="max_length",
                         return_tensors="pt").input_ids
    channels = pipe.unet.config.in_channels
    x = torch.randn(1, channels, 8, 8, generator=gen)
    picture = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
    with torch.no_grad():
        text = pipe.text_encoder(ids)[0]
        noise = pipe.unet(x, 500, encoder_hidden_states=text).sample
        vae = pipe.vae.decode(pipe.vae.encode(picture).latent_dist.mean).sample
    return [text, noise, vae]


@pytest.mark.parametrize("kind", ["v1", "v2", "inpainting"])
def test_single_file_loads_the_same_model_as_the_diffusers_folder(built, kind, network):
    from core.thirdparty.sd.load import load_pipeline

    files = built[kind]
    folder = load_pipeline(files["folder"], False, files["configs"])
    single = load_pipeline(files["file"], True, files["configs"])
    for a, b in zip(_outputs(folder), _outputs(single), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert network == []


def test_a_wrong_key_mapping_changes_the_outputs(built, tmp_path):
    """The comparison above can fail: two tensors swapped in the single file show."""
    from safetensors.torch import save_file

    from core.thirdparty.sd.load import load_pipeline

    files = built["v1"]
    state = to_ldm(tiny("v1"))
    q = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
    k = q.replace("to_q", "to_k")
    state[q], state[k] = state[k], state[q]
    save_file(state, str(tmp_path / "swapped.safetensors"))
    good = _outputs(load_pipeline(files["file"], True, files["configs"]))
    bad = _outputs(load_pipeline(tmp_path / "swapped.safetensors", True, files["configs"]))
    assert torch.equal(good[0], bad[0]) and not torch.allclose(good[1], bad[1], atol=1e-5)


# --------------------------------------------------------------------------- import


def test_import_registers_the_checkpoint_in_place(installed, tiny_configs, tmp_path, capsys):
    card = card_of("tiny_v1")
    source = tmp_path / "files" / "tiny_v1.safetensors"
    assert card.name == installed["v1"] == "tiny_v1" and card.family == "sd"
    assert card.config == {"format": "single_file", "model_type": "v1", "variant": "sd1",
                           "prediction": "epsilon"}
    record = card.extra["registered"]
    assert record["path"] == str(source) and record["size"] == source.stat().st_size
    assert record["mtime_ns"] == source.stat().st_mtime_ns
    import hashlib

    assert card.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert not list((tmp_path / "home").rglob("*.safetensors"))  # nothing was copied
    assert cli.main(["models", "verify", "--family", "sd"]) == 0
    assert "tiny_v1 (user): ok (sha256" in capsys.readouterr().out
    assert cli.main(["models", "list", "--family", "sd", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    assert {r["name"]: r["path"] for r in rows}["tiny_v1"] == str(source)
    # A changed file: refused at use by size and date, and by verify by its hash.
    data = bytearray(source.read_bytes())
    data[-1] ^= 1
    source.write_bytes(bytes(data))
    info = next(m for m in list_models("sd") if m.name == "tiny_v1")
    assert check_hash(info) == "mismatch"
    spec = SDSceneSpec(prompt="x", model="tiny_v1", steps=1, width=64, height=64)
    with pytest.raises(JobError, match="tiny_v1.safetensors changed since it was imported"):
        run_job(spec, Context.for_spec(spec, device="cpu"))
    assert cli.main(["models", "verify", "--family", "sd"]) == 1
    assert "modified or is corrupt" in capsys.readouterr().out


def test_prediction_from_a_sibling_yaml_and_the_command_line(tiny_configs, tmp_path, capsys):
    src = tmp_path / "model.safetensors"
    src.write_bytes(tiny_configs["v1"]["file"].read_bytes())
    src.with_suffix(".yaml").write_text("model:\n  params:\n    parameterization: \"v\"\n")
    assert import_model(src).card.config["prediction"] == "v"
    assert cli.main(["models", "import", str(src), "--name", "eps", "--prediction",
                     "epsilon", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "eps"
    card = card_of("eps")
    assert card.config["prediction"] == "epsilon" and "set on import" in card.notes


def test_a_diffusers_folder_is_registered_and_runs_offline(tiny_configs, network):
    info = import_model(tiny_configs["v1"]["folder"])
    assert info.card.config == {"format": "diffusers", "model_type": "v1", "variant": "sd1",
                                "prediction": "epsilon"}
    assert check_hash(info) == "ok"
    spec = SDSceneSpec(prompt="a cat", model=info.name, steps=2, width=64, height=64)
    assert run_job(spec, Context.for_spec(spec, device="cpu")).images[0].shape == (64, 64, 3)
    assert network == []


def _sd_like_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _sd_like_file(p, {"model.diffusion_model.x": torch.zeros(1),
                                 "conditioner.embedders.1.model.transformer.resblocks.9.mlp."
                                 "c_proj.bias": torch.zeros(1)}), "SDXL checkpoint"),
    (lambda p: _sd_like_file(p, {"model.diffusion_model.x": torch.zeros(1)}),
     "its version cannot be told"),
])
def test_bad_checkpoints_give_one_clear_line(tmp_path, capsys, make, message):
    path = make(tmp_path / "bad.safetensors")
    assert cli.main(["models", "import", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.safetensors" in err and message in err
    assert "Easel opens Stable Diffusion 1.x and 2.x" in err
    assert not list_models("sd")


def test_truncated_and_pickled_checkpoints_are_refused(tiny_configs, tmp_path, capsys):
    data = tiny_configs["v1"]["file"].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:len(data) // 2])
    assert cli.main(["models", "import", str(cut)]) == 2
    assert "cut.safetensors" in capsys.readouterr().err
    # A .ckpt that holds more than weights (a training run's objects) is never unpickled.
    ckpt = tmp_path / "run.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)},
                "callbacks": zipfile.ZipInfo("x")}, ckpt)
    assert cli.main(["models", "import", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "run.ckpt holds more than weights" in err and "as .safetensors first" in err


def test_a_weights_only_ckpt_is_converted_once(tiny_configs, tmp_path):
    from safetensors.torch import load_file

    ckpt = tmp_path / "old.ckpt"
    torch.save({"state_dict": load_file(str(tiny_configs["v1"]["file"]))}, ckpt)
    info = import_model(ckpt)
    record = info.card.extra["registered"]
    assert record["path"] == str(info.path) and info.path.is_file()  # in the models folder
    assert check_hash(info) == "ok" and verify_all("sd")[0][1]


# --------------------------------------------------------------------------- jobs


def test_text_to_image_job_previews_reproduces_and_cancels(installed, network):
    spec = SDSceneSpec(prompt="a photo of a cat", negative_prompt="blurry",
                       model=installed["v1"], steps=3, width=80, height=64, seed=5)
    progress = []
    result = run_job(spec, Context.for_spec(spec, device="cpu"), progress.append)
    image = result.images[0]
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8 and image.std() > 0
    assert [p.step for p in progress] == [0, 1, 2, 3]
    assert all(p.preview.shape == (64, 80, 3) for p in progress[1:])
    assert result.info["models"] == {"tiny_v1": card_of("tiny_v1").sha256}
    again = run_job(spec, Context.for_spec(spec, device="cpu"))
    assert np.array_equal(again.images[0], image)
    six = spec.replace(seed=6)
    other = run_job(six, Context.for_spec(six, device="cpu"))
    assert not np.array_equal(other.images[0], image)
    ctx = Context.for_spec(spec, device="cpu")
    seen = []
    with pytest.raises(Cancelled):  # a cancel during step 1: step 2 never starts
        run_job(spec.replace(steps=20), ctx,
                lambda p: seen.append(p.step) or p.step == 1 and ctx.cancel_event.set())
    assert seen == [0, 1]
    assert network == []


def test_every_sampler_and_a_v_prediction_override_run(installed):
    for sampler in ("ddim", "euler", "dpm++"):
        spec = SDSceneSpec(prompt="a cat", model=installed["v1"], steps=2, width=64, height=64,
                           sampler=sampler, prediction="v" if sampler == "euler" else "")
        result = run_job(spec, Context.for_spec(spec, device="cpu"))
        assert result.info["sampler"] == sampler and result.images[0].shape == (64, 64, 3)
        assert result.info["prediction"] == ("v" if sampler == "euler" else "epsilon")


@pytest.mark.parametrize("kind, strength", [("inpainting", 1.0), ("v1", 0.5)])
def test_inpaint_job_changes_only_the_mask(installed, kind, strength, network):
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    mask = np.zeros((70, 90), np.uint8)
    mask[20:45, 30:60] = 255
    spec = InpaintSpec(image=ImageRef.of(picture), mask=ImageRef.of(mask, embed=True),
                       engine="sd", model=installed[kind], prompt="a red ball", steps=4,
                       strength=strength, variations=2, seed=1)
    progress = []
    result = run_job(spec, Context.for_spec(spec, device="cpu"), progress.append)
    assert len(result.images) == 2 and progress[-1].preview.shape == picture.shape
    for filled in result.images:
        assert np.array_equal(filled[mask == 0], picture[mask == 0])
        assert (filled[mask > 0] != picture[mask > 0]).mean() > 0.5
    assert result.info["variant"] == ("sd1_inpainting" if kind == "inpainting" else "sd1")
    ctx = Context.for_spec(spec, device="cpu")
    ctx.cancel_event.set()
    with pytest.raises(Cancelled):
        run_job(spec, ctx)
    assert network == []


def test_an_inpainting_model_is_not_offered_for_text_to_image(installed):
    spec = SDSceneSpec(prompt="x", model=installed["inpainting"], steps=1)
    with pytest.raises(JobError, match="is an inpainting model"):
        run_job(spec, Context.for_spec(spec, device="cpu"))
    with pytest.raises(JobError, match="No Stable Diffusion model called 'nope'"):
        run_job(spec.replace(model="nope"), Context.for_spec(spec, device="cpu"))


# --------------------------------------------------------------------------- command line


def test_cli_scene_with_an_sd_model_writes_the_spec_in_the_png(installed, tmp_path, capsys):
    out = tmp_path / "cat.png"
    assert cli.main(["scene", "a photo of a cat", "--model", installed["v1"], "--negative",
                     "dark", "--steps", "2", "--cfg", "5", "--size", "80x64", "--seed", "3",
                     "--sampler", "euler", "-o", str(out), "--device", "cpu"]) == 0
    assert Image.open(out).size == (80, 64)
    meta = imageio.read_metadata(out)
    assert meta["spec"]["kind"] == "sd_scene" and meta["spec"]["negative_prompt"] == "dark"
    assert meta["spec"]["cfg"] == 5 and meta["models"] == {"tiny_v1": meta["models"]["tiny_v1"]}
    assert Image.open(out).text["parameters"].startswith("a photo of a cat\nNegative prompt: dark")
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_cli_scene_refuses_prior_options_for_an_sd_model(installed, tmp_path, capsys):
    for argv in (["--top-k", "5"], ["--temperature", "0.5"], ["--edit", "x.png"],
                 ["--guidance", "3"], ["--n", "2"], ["--no-rerank"],
                 ["--layout", "layout.json"]):
        code = cli.main(["scene", "a cat", "--model", installed["v1"], "-o",
                         str(tmp_path / "o.png"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and f"{argv[0]} is a setting of Easel's scene prior" in err
        assert ("its guidance scale is --cfg" in err) == (argv[0] == "--guidance")


def test_cli_refuses_sd_options_elsewhere(tmp_path, capsys):
    assert cli.main(["scene", "a red star", "--cfg", "5", "-o", str(tmp_path / "o.png")]) == 2
    assert "--cfg is a setting of Stable Diffusion models" in capsys.readouterr().err
    picture, mask = tmp_path / "p.png", tmp_path / "m.png"
    Image.new("RGB", (16, 16)).save(picture)
    Image.new("L", (16, 16), 255).save(mask)
    base = ["inpaint", str(picture), "--mask", str(mask), "-o", str(tmp_path / "o.png")]
    assert cli.main([*base, "--prompt", "a cat"]) == 2
    assert "--prompt is a setting of the sd engine: add --engine sd" in capsys.readouterr().err
    assert cli.main([*base, "--engine", "sd", "--model", "m", "--guidance", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--guidance is a setting of the diffusion engine" in err and "--cfg" in err
    assert cli.main([*base, "--engine", "sd"]) == 2
    assert "--engine sd needs --model" in capsys.readouterr().err


def test_cli_inpaint_and_outpaint_with_the_sd_engine(installed, tmp_path):
    picture = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "p.png")
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "filled.png"
    assert cli.main(["inpaint", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"),
                     "--engine", "sd", "--model", installed["inpainting"], "--prompt", "a cat",
                     "--cfg", "4", "--steps", "2", "-o", str(out), "--device", "cpu"]) == 0
    filled = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(filled[mask == 0], picture[mask == 0])
    assert imageio.read_metadata(out)["spec"]["prompt"] == "a cat"
    wide = tmp_path / "wide.png"
    assert cli.main(["outpaint", str(tmp_path / "p.png"), "--right", "16", "--engine", "sd",
                     "--model", installed["v1"], "--steps", "2", "-o", str(wide),
                     "--device", "cpu"]) == 0
    extended = np.asarray(Image.open(wide).convert("RGB"))
    assert extended.shape == (40, 66, 3) and np.array_equal(extended[:, :50], picture)


def test_help_and_the_window_never_import_diffusers(tmp_path):
    code = (
        "import sys\n"
        "from core.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from desktop.window import MainWindow\n"
        "app = QApplication([])\n"
        "win = MainWindow()\nwin.show()\napp.processEvents()\n"
        "win.close()\napp.processEvents()\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "assert not heavy, heavy[:5]\n"
        "print('ok')\n")
    env = {**os.environ, "EASEL_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=False,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


# --------------------------------------------------------------------------- full size


@pytest.mark.full_size
def test_full_size_sd15_layout_maps_and_runs_a_unet_step(tmp_path):
    """A full-size SD 1.5 checkpoint layout with random float16 weights (about 2 GB in a temp
    folder): every key maps onto the shipped config, it loads, and one UNet step runs at
    512 px. Not run in CI: ``pytest -m full_size tests/core/test_thirdparty_sd.py``."""
    import time

    from safetensors.torch import save_file

    from core.thirdparty.sd.load import load_pipeline

    tensors = meta_layout("v1")
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=gen) * 0.02).half() for k, v in tensors.items()}
    path = tmp_path / "sd15.safetensors"
    save_file(state, str(path))
    del state
    found = checkpoint.model_type(checkpoint.header_tensors(path), path.name)
    variant = sd.variant_for(found, "epsilon")
    assert (found, variant.name) == ("v1", "sd1")
    assert checkpoint.unmapped(checkpoint.header_tensors(path), variant) == ""
    t0 = time.perf_counter()
    pipe = load_pipeline(path, True, variant.config_dir)
    loaded = time.perf_counter() - t0
    text = torch.zeros(1, 77, 768)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = pipe.unet(torch.zeros(1, 4, 64, 64), 999, encoder_hidden_states=text).sample
    print(f"full-size SD 1.5: {len(tensors)} tensors, load {loaded:.1f} s, one UNet step at "
          f"512 px {time.perf_counter() - t0:.1f} s")
    assert out.shape == (1, 4, 64, 64) and torch.isfinite(out).all()

