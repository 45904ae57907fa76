"""Every panel's job and every tiny training recipe obey CUDA's and MPS's placement rules,
checked on the CPU with a simulated device (tests/device_harness.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np
import pytest
import torch

from core.jobs import Context, ImageRef, run_job
from tests import diffusion_models, judge_models, latent_models, scene_models
from tests.device_harness import simulated_device

DEVICES = ["cuda", "mps"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Tiny random models of every family a job needs, installed once for the module."""
    from core.nets.transform import TransformConfig, TransformNet
    from core.nets.upscale import UpscaleConfig, Upscaler
    from core.weights import ModelCard, save_model

    home = tmp_path_factory.mktemp("devhome")
    diffusion_models.install(home)
    latent_models.install(home)
    scene_models.install(home)
    judge_models.install(home)
    torch.manual_seed(0)
    for world in ("faces", "scenes"):
        cfg = UpscaleConfig(scale=4, channels=4, blocks=1)
        save_model(home / "models" / "upscale", f"up_{world}", Upscaler(cfg).eval(),
                   ModelCard(name=f"up_{world}", family="upscale", architecture="upscale",
                             config=dataclasses.asdict(cfg), data=f"{world}, 128 px"))
    tcfg = TransformConfig(base=4, res_blocks=1, style="procedural:mosaic")
    save_model(home / "models" / "style_fast", "tiny_fast", TransformNet(tcfg).eval(),
               ModelCard(name="tiny_fast", family="style_fast", architecture="transform",
                         config=dataclasses.asdict(tcfg)))
    return home


@pytest.fixture
def installed(home, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(home))
    monkeypatch.setenv("EASEL_WEIGHTS", str(home / "no-shipped-weights"))
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    return home


def face(size: int) -> np.ndarray:
    from core.data.worlds import get_world

    return get_world("faces").render(5, size=size).image


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def _z(n: int) -> tuple[tuple[float, ...], ...]:
    rng = np.random.default_rng(0)
    return tuple(tuple(float(v) for v in row) for row in rng.normal(size=(n, 8)))


def _mixed(d):
    return torch.ones(3, device=d) + torch.ones(3)


def _cpu_table_device_index(d):
    return torch.arange(5.0)[torch.tensor([1, 2], device=d)]


def _cpu_generator(d):
    return torch.randn(3, generator=torch.Generator().manual_seed(0), device=d)


def _float64(d):
    return torch.ones(3, device=d).double()


def _numpy(d):
    return torch.ones(3, device=d).numpy()


def _bicubic(d):
    return torch.nn.functional.interpolate(torch.ones(1, 1, 2, 2, device=d), scale_factor=2,
                                           mode="bicubic")


@pytest.mark.parametrize(("device", "op", "rule"), [
    ("cuda", _mixed, "operands on cuda and on the CPU"),
    ("cuda", _cpu_table_device_index, "a cuda index indexes a CPU tensor"),
    ("cuda", _cpu_generator, "a cpu generator draws on cuda"),
    ("mps", _float64, "torch.float64 tensor on mps"),
    ("cuda", _numpy, "numpy() of a cuda tensor"),
    ("mps", _bicubic, "has no MPS kernel")])
def test_the_harness_catches_each_rule(device, op, rule):
    with simulated_device(device) as dev, contextlib.suppress(TypeError):
        op(device)
    assert len(dev.violations) == 1 and rule in dev.violations[0]


def test_the_harness_allows_what_the_devices_allow_and_counts_syncs():
    with simulated_device("cuda") as dev:
        net = torch.nn.Linear(3, 2).to("cuda")
        x = torch.ones(4, 3, device="cuda")
        loss = (net(x) * torch.tensor(2.0)).sum()  # a 0-dim CPU scalar is fine
        loss.backward()
        torch.optim.Adam(net.parameters()).step()
        picked = x[torch.tensor([0, 2])]  # a CPU index into a device tensor is fine
        host = picked.cpu()
        assert net.weight.device.type == "cuda" and net.weight.grad.device.type == "cuda"
        assert host.device.type == "cpu" and host.numpy().shape == (2, 3)
        assert float(loss.detach()) == pytest.approx(loss.detach().item())
    assert dev.violations == []
    assert dev.syncs == {"to_cpu": 1, "float": 1, "item": 1}


def job_specs() -> dict[str, object]:
    """One job of every kind each panel sends (built lazily: specs import the pipelines)."""
    from core.pipelines.inpaint import InpaintSpec, OutpaintSpec
    from core.pipelines.judge import JudgeDreamSpec, JudgeFoolSpec, JudgeInvertSpec
    from core.pipelines.latent import (
        LatentDirectionSpec,
        LatentEditSpec,
        LatentEncodeSpec,
        LatentSampleSpec,
        LatentWalkSpec,
    )
    from core.pipelines.scene import SceneEditSpec, SceneSpec
    from core.pipelines.style import StyleSpec
    from core.pipelines.upscale import UpscaleSpec

    img, small = face(48), face(24)
    mask = ImageRef.of(box(48, 48, 28, 40, 14, 34), embed=True)
    rgba = np.dstack([small, np.full((24, 24), 200, np.uint8)])
    z = _z(12)
    return {
        "inpaint_patchmatch": InpaintSpec(image=ImageRef.of(img), mask=mask, seed=1),
        "inpaint_diffusion": InpaintSpec(image=ImageRef.of(img), mask=mask, engine="diffusion",
                                         steps=3, seed=1),
        "inpaint_guided": InpaintSpec(image=ImageRef.of(img), mask=mask, engine="diffusion",
                                      steps=2, resample=1, attribute="smiling=smiling", seed=1),
        "inpaint_pixel": InpaintSpec(image=ImageRef.of(small), engine="diffusion", steps=3,
                                     model="tiny_pixel_diffusion",
                                     mask=ImageRef.of(box(24, 24, 4, 12, 4, 12), embed=True)),
        "outpaint": OutpaintSpec(image=ImageRef.of(rgba), engine="diffusion", steps=3, left=8,
                                 right=4),
        "latent_sample": LatentSampleSpec(model="tiny_vae_faces", count=2),
        "latent_encode": LatentEncodeSpec(model="tiny_vae_faces", image=ImageRef.of(small)),
        "latent_invert": LatentEncodeSpec(model="tiny_dcgan_faces", image=ImageRef.of(small),
                                          steps=3),
        "latent_edit": LatentEditSpec(model="tiny_vae_faces", a=z[:1], b=z[1:2], c=z[2:3]),
        "latent_walk": LatentWalkSpec(model="tiny_vae_faces", start=z[0], end=z[1], frames=3),
        "latent_direction": LatentDirectionSpec(model="tiny_vae_faces", name="mine",
                                                these=z[:6], those=z[6:]),
        "scene": SceneSpec(prompt="a red star", n=2),
        "scene_edit": SceneEditSpec(prompt="a star", n=2, image=ImageRef.of(small),
                                    box=(0.25, 0.25, 0.75, 0.75)),
        "style": StyleSpec(image=ImageRef.of(small), styles=(ImageRef.of(face(20)),), size=64,
                           steps=2),
        "style_fast": StyleSpec(image=ImageRef.of(small), fast="tiny_fast"),
        "upscale": UpscaleSpec(image=ImageRef.of(small[:8, :8]), model="up_faces"),
        "judge_fool": JudgeFoolSpec(image=ImageRef.of(small), model=judge_models.NAME,
                                    attribute="mood", budget=16, steps=3),
        "judge_invert": JudgeInvertSpec(image=ImageRef.of(small), model=judge_models.NAME,
                                        steps=3),
        "judge_dream": JudgeDreamSpec(image=ImageRef.of(small), model=judge_models.NAME,
                                      attribute="glasses=glasses", steps=2, octaves=2),
        "judge_dream_grey": JudgeDreamSpec(image=ImageRef.of(small), model=judge_models.NAME,
                                           start="grey", steps=2),
    }


JOBS = ["inpaint_patchmatch", "inpaint_diffusion", "inpaint_guided", "inpaint_pixel", "outpaint",
        "latent_sample", "latent_encode", "latent_invert", "latent_edit", "latent_walk",
        "latent_direction", "scene", "scene_edit", "style", "style_fast", "upscale",
        "judge_fool", "judge_invert", "judge_dream", "judge_dream_grey"]


def run_on(device: str, spec) -> tuple:
    with simulated_device(device) as dev:
        result = run_job(spec, Context.for_spec(spec, device=device))
    return dev, result


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("job", JOBS)
def test_every_job_keeps_to_the_devices_rules(installed, job, device):
    if job == "inpaint_guided":  # the faces judge steers the fill (the shipped one: small)
        from tests.shipped_weights import copy_judges

        copy_judges(installed / "no-shipped-weights")
    dev, result = run_on(device, job_specs()[job])
    assert not dev.violations, "\n".join(dev.violations)
    assert all(im.dtype == np.uint8 for im in result.images)


TINY_RECIPES = ["tiny_autoencoder", "tiny_dcgan", "tiny_diffusion", "tiny_layout_prior",
                "tiny_prior", "tiny_reranker", "tiny_style_fast", "tiny_upscale", "tiny_vae",
                "tiny_vqvae"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", TINY_RECIPES)
def test_three_training_steps_of_every_tiny_recipe_keep_to_the_rules(installed, tmp_path, name,
                                                                     device):
    from core.training.recipe import load_recipe
    from core.training.trainer import train

    overrides = ["train.steps=3", "train.checkpoint_every=3", "train.sample_every=3",
                 "train.sample_count=2", "data.workers=0"]
    if name in ("tiny_prior", "tiny_layout_prior"):
        overrides.append('task.vqvae="tiny_vqvae_scenes"')
    with simulated_device(device) as dev:
        result = train(load_recipe(name, overrides), tmp_path / "run", device=device)
    assert result.step == 3 and result.weights is not None
    assert not dev.violations, "\n".join(dev.violations)


# --------------------------------------------------------------------------- host syncs


def test_a_diffusion_fill_syncs_only_for_the_previews_that_will_be_shown(installed):
    spec = job_specs()["inpaint_diffusion"]
    seen = []
    with simulated_device("cuda") as dev:
        ctx = Context.for_spec(spec, device="cuda")
        ctx.preview_wanted = lambda: False  # what the app's throttle says between previews
        quiet = run_job(spec, ctx, seen.append)
    assert len(seen) > spec.steps and all(p.preview is None for p in seen)
    assert sum(dev.syncs.values()) <= 2, dev.sync_sites  # the result, not a copy per step
    with simulated_device("cuda") as dev:
        shown = run_job(spec, Context.for_spec(spec, device="cuda"), seen.append)
    assert seen[-1].preview is not None and seen[-1].preview.shape == (48, 48, 3)
    np.testing.assert_array_equal(quiet.images[0], shown.images[0])


@pytest.mark.parametrize("name", ["tiny_vqvae", "tiny_autoencoder", "tiny_reranker"])
def test_training_steps_do_not_wait_for_the_device(installed, tmp_path, name):
    """Losses are read on log steps only: more steps between logs add no host syncs."""
    from core.training.recipe import load_recipe
    from core.training.trainer import train

    counts = []
    for steps in (4, 7):
        recipe = load_recipe(name, [f"train.steps={steps}", "train.log_every=1000",
                                    "train.checkpoint_every=1000", "train.sample_every=1000",
                                    "data.workers=0"])
        with simulated_device("cuda") as dev:
            train(recipe, tmp_path / f"run{steps}", device="cuda")
        counts.append(dev.sync_sites)
    assert counts[0] == counts[1]


# --------------------------------------------------------------------------- determinism


@pytest.fixture
def backend_settings():
    b = torch.backends
    saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark,
             b.cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = b.cudnn.benchmark = True
    b.cudnn.deterministic = False
    torch.use_deterministic_algorithms(False)
    yield
    (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark,
     b.cudnn.deterministic) = saved[:4]
    torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_job_runs_under_the_reproducibility_settings(installed, backend_settings,
                                                       monkeypatch, device):
    from core.pipelines.latent import LatentSampleSpec

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    spec = LatentSampleSpec(model="tiny_vae_faces", count=2, seed=3)
    with simulated_device("cuda"):
        Context.for_spec(spec, device=device)
        deterministic = torch.are_deterministic_algorithms_enabled()
        cublas = "CUBLAS_WORKSPACE_CONFIG" in os.environ
    b = torch.backends
    assert not b.cuda.matmul.allow_tf32 and not b.cudnn.allow_tf32
    assert b.cudnn.deterministic and not b.cudnn.benchmark
    assert deterministic == cublas == (device == "cuda")


def test_same_spec_same_device_same_pixels_for_jobs_that_backpropagate(installed):
    """The CPU half of the policy, for the jobs that run a backward pass."""
    specs = job_specs()
    for name in ("style", "latent_invert", "judge_invert", "judge_dream"):
        a, b = (run_job(specs[name], Context.for_spec(specs[name], device="cpu"))
                for _ in range(2))
        assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images, strict=True))
