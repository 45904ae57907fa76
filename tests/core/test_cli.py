from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import types
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import cli, imageio
from core.cli import inpaint
from core.cli.common import ProgressBar
from core.cli.info import version_text
from core.jobs import Context, JobSpec, Progress, Result, pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    monkeypatch.delenv("EASEL_DEBUG", raising=False)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("easel: error: ")
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- a fake job kind


@dataclass(frozen=True)
class NoiseSpec(JobSpec):
    """Test-only job: seeded noise, or a cancel/interrupt in the middle of the run."""

    kind = "test-noise"
    size: int = 8
    behaviour: str = "finish"  # finish | sigint | interrupt | crash


@pipeline("test-noise")
def _noise(spec: NoiseSpec, ctx: Context) -> Generator[Progress, None, Result]:
    for step in range(20):
        ctx.check()
        if step == 2 and spec.behaviour == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
        if step == 2 and spec.behaviour == "interrupt":
            raise KeyboardInterrupt
        if step == 2 and spec.behaviour == "crash":
            raise RuntimeError("boom")
        yield Progress(step + 1, 20, "noise")
    img = ctx.rng.integers(0, 256, (spec.size, spec.size, 3), dtype=np.uint8)
    return Result(images=[img], spec=spec)


def noise_png(tmp_path: Path, **kw) -> Path:
    path = tmp_path / f"noise-{kw.get('behaviour', 'finish')}.png"
    spec = NoiseSpec(seed=5, **kw)
    imageio.save_png(path, np.zeros((8, 8, 3), np.uint8), spec=spec.to_dict())
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


# --------------------------------------------------------------------------- basics


def test_help_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "inpaint" in proc.stdout and "rerun" in proc.stdout


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("easel ")
    assert "PyTorch" in version_text() and "PySide6" in version_text()


@pytest.mark.parametrize("argv", [["bogus"], ["inpaint"], ["models"], ["inpaint", "x.png"],
                                  ["inpaint", "a", "--mask", "b", "-o", "c", "--patch-size",
                                   "two"]])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_device_exits_2(capsys):
    assert cli.main(["--device", "tpu", "info"]) == 2
    assert "Unknown device 'tpu'" in one_error_line(capsys.readouterr().err)


def test_internal_error_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    png = noise_png(tmp_path, behaviour="crash")
    assert cli.main(["rerun", str(png), "-o", str(tmp_path / "o.png")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "internal error: RuntimeError: boom" in line
    monkeypatch.setenv("EASEL_DEBUG", "1")
    assert cli.main(["rerun", str(png), "-o", str(tmp_path / "o.png")]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_no_command_opens_the_app(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("desktop.app")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "desktop.app", fake)
    assert cli.main([]) == 0
    assert cli.main(["--device", "cpu"]) == 0
    picture = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(picture)
    assert cli.main([str(picture)]) == 0
    assert calls == [[], ["--device", "cpu"], [str(picture)]]


def test_app_that_cannot_import_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "desktop.app", None)  # makes the import fail
    assert cli.main([]) == 1
    assert "desktop app cannot start" in one_error_line(capsys.readouterr().err)


def test_subcommands_never_import_qt(tmp_path):
    code = ("import sys\nfrom core.cli import main\n"
            "codes = [main(['info']), main(['models', 'list']), main(['models', 'verify'])]\n"
            "qt = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'PyQt'))]\n"
            "assert not qt, qt\nassert 'desktop' not in sys.modules\n"
            "sys.exit(max(codes))\n")
    env = {**os.environ, "EASEL_HOME": str(tmp_path / "home"),
           "EASEL_WEIGHTS": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_shipped_model_verifies_in_a_fresh_process(tmp_path):
    """What an installed app sees: no test has imported anything first, so each shipped
    model's architecture must be registered by core.nets alone, and each hash must match."""
    env = {k: v for k, v in os.environ.items() if k != "EASEL_WEIGHTS"}
    env["EASEL_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-m", "core", "models", "verify"], cwd=REPO,
                          env=env, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "style_fast/style_fast_mosaic (shipped): ok" in proc.stdout


def test_progress_bar_draws_percent_eta_and_message():
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    bar(Progress(5, 10, "filling"))
    bar(Progress(10, 10, "done"))
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r[#####.....]  50%  ETA ") and "filling" in text
    assert "[##########] 100%" in text and text.endswith("\n")


# --------------------------------------------------------------------------- rerun & cancel


def test_rerun_reproduces_a_generic_job(tmp_path, capsys):
    png = noise_png(tmp_path)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli.main(["rerun", str(png), "-o", str(a)]) == 0
    assert cli.main(["rerun", str(a), "-o", str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["output"] == str(b.resolve()) and out["spec"]["kind"] == "test-noise"
    assert np.array_equal(pixels(a), pixels(b)) and pixels(a).any()
    assert imageio.read_metadata(b)["spec"] == NoiseSpec(seed=5).to_dict()


def test_rerun_without_metadata_exits_2(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert cli.main(["rerun", str(plain), "-o", str(tmp_path / "o.png")]) == 2
    assert "carries no Easel metadata" in one_error_line(capsys.readouterr().err)
    assert cli.main(["rerun", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")]) == 2


@pytest.mark.parametrize("behaviour", ["sigint", "interrupt"])
def test_ctrl_c_cancels_with_130(tmp_path, capsys, behaviour):
    png = noise_png(tmp_path, behaviour=behaviour)
    out = tmp_path / "o.png"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    assert cli.main(["rerun", str(png), "-o", str(out)]) == 130
    assert "cancelled" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is before


# --------------------------------------------------------------------------- inpaint


def make_inputs(tmp_path: Path, size: int = 48) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    rgb = np.dstack([xx * 4, yy * 4, (xx + yy) * 2]).astype(np.uint8)
    rgb = (rgb + rng.integers(0, 8, rgb.shape)).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[18:30, 20:32] = 255
    img, msk = tmp_path / "in.png", tmp_path / "mask.png"
    Image.fromarray(rgb).save(img)
    Image.fromarray(mask).save(msk)
    return img, msk, rgb, mask


def test_inpaint_end_to_end_and_rerun(tmp_path, capsys):
    img, msk, rgb, mask = make_inputs(tmp_path)
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out), "--seed", "3",
                     "--json", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    report = json.loads(captured.out)
    result = pixels(out)
    assert result.shape == rgb.shape
    assert np.array_equal(result[mask == 0], rgb[mask == 0])
    meta = imageio.read_metadata(out)
    assert meta["spec"] == report["spec"] and meta["models"] == {}
    assert meta["spec"]["kind"] == "inpaint" and meta["spec"]["seed"] == 3
    assert meta["spec"]["image"]["path"] == str(img.resolve())
    assert "png" in meta["spec"]["mask"]  # embedded, so the run can be replayed

    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again), "--device", "cpu"]) == 0
    assert np.array_equal(pixels(again), result)


def test_inpaint_keeps_input_alpha(tmp_path):
    img, msk, rgb, mask = make_inputs(tmp_path)
    alpha = np.full(mask.shape, 200, np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(img)
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out)]) == 0
    assert np.array_equal(pixels(out)[..., 3], alpha)


def test_inpaint_never_overwrites_an_input_or_an_existing_file(tmp_path, capsys):
    img, msk, _, _ = make_inputs(tmp_path)
    before = img.read_bytes()
    for target in (img, msk):
        assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(target),
                         "--overwrite"]) == 2
        assert "never overwrite an input" in one_error_line(capsys.readouterr().err)
    assert img.read_bytes() == before
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep me")
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(existing)]) == 2
    assert "--overwrite" in one_error_line(capsys.readouterr().err)
    assert existing.read_bytes() == b"keep me"
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(existing),
                     "--overwrite"]) == 0
    assert imageio.read_metadata(existing)["spec"]["kind"] == "inpaint"


@pytest.mark.parametrize("problem", ["corrupt", "mask-size", "not-png-out", "no-folder",
                                     "engine"])
def test_inpaint_bad_input_is_one_line_exit_2(tmp_path, capsys, problem):
    img, msk, _, _ = make_inputs(tmp_path)
    out = tmp_path / "out.png"
    extra: list[str] = []
    if problem == "corrupt":
        img.write_bytes(img.read_bytes()[:60])
    elif problem == "mask-size":
        Image.new("L", (10, 10)).save(msk)
    elif problem == "not-png-out":
        out = tmp_path / "out.jpg"
    elif problem == "no-folder":
        out = tmp_path / "nowhere" / "out.png"
    else:
        extra = ["--engine", "magic"]
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out), *extra]) == 2
    one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_diffusion_inpaint_writes_variations_and_outpaint_extends(tmp_path, capsys):
    from tests import diffusion_models

    diffusion_models.install(tmp_path / "home")
    img, msk, rgb, mask = make_inputs(tmp_path)
    out = tmp_path / "fill.png"
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out), "--engine",
                     "diffusion", "--model", "tiny_pixel_diffusion", "--steps", "4",
                     "--strength", "0.9", "--variations", "2", "--device", "cpu"]) == 0
    assert "1 more variations beside it: fill-2.png" in capsys.readouterr().out
    for path in (out, tmp_path / "fill-2.png"):
        assert np.array_equal(pixels(path)[mask == 0], rgb[mask == 0])
    spec = imageio.read_metadata(out)["spec"]
    assert (spec["engine"], spec["steps"], spec["strength"]) == ("diffusion", 4, 0.9)
    assert set(imageio.read_metadata(out)["models"]) == {"tiny_pixel_diffusion"}
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again)]) == 0
    assert np.array_equal(pixels(again), pixels(out))

    wide = tmp_path / "wide.png"
    assert cli.main(["outpaint", str(img), "--left", "6", "--bottom", "4", "-o", str(wide)]) == 0
    h, w = rgb.shape[:2]
    assert pixels(wide).shape[:2] == (h + 4, w + 6)
    assert np.array_equal(pixels(wide)[:h, 6:], rgb)
    assert cli.main(["outpaint", str(img), "-o", str(tmp_path / "none.png")]) == 2
    assert "at least one side" in one_error_line(capsys.readouterr().err)
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(tmp_path / "x.png"),
                     "--steps", "5"]) == 2
    assert "--engine diffusion" in one_error_line(capsys.readouterr().err)
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(tmp_path / "x.png"),
                     "--engine", "diffusion", "--attribute", "smiling"]) == 2
    assert "as name=class (smiling=smiling)" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- info & models


def test_info_names_folders_devices_and_models(tmp_path, capsys):
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    assert "Models: none" in text and str(tmp_path / "home") in text and "cpu" in text
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["folders"]["models"] == str(tmp_path / "home" / "models")
    assert "cpu" in info["devices"] and info["versions"]["easel"]
    assert info["models"] == []


@dataclass(frozen=True)
class _LinConfig:
    n: int = 2


def _register_linear() -> None:
    import torch

    from core import registry

    if "test-cli-linear" in registry.names():
        return

    @registry.register("test-cli-linear", config=_LinConfig)
    class _Lin(torch.nn.Linear):
        def __init__(self, cfg: _LinConfig) -> None:
            super().__init__(cfg.n, cfg.n)


def test_models_list_and_verify(tmp_path, capsys):
    import torch

    from core import paths
    from core.weights import ModelCard, save_model

    assert cli.main(["models", "verify"]) == 0
    assert "No models found" in capsys.readouterr().out

    _register_linear()
    torch.manual_seed(0)
    lin = torch.nn.Linear(2, 2)
    save_model(paths.shipped_weights_dir() / "misc", "good", lin,
               ModelCard("good", "misc", "test-cli-linear", {"n": 2}))
    bad = save_model(paths.models_dir() / "misc", "bad", lin,
                     ModelCard("bad", "misc", "no-such-arch", {}))
    assert cli.main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert [(m["name"], m["source"]) for m in listed] == [("good", "shipped"), ("bad", "user")]

    assert cli.main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "ok    misc/good (shipped)" in captured.out
    assert "FAIL  misc/bad (user)" in captured.out and "Unknown architecture" in captured.out
    assert "1 of 2 models failed verification: misc/bad" in one_error_line(captured.err)

    save_model(paths.models_dir() / "misc", "bad", lin,
               ModelCard("bad", "misc", "test-cli-linear", {"n": 2}))
    assert cli.main(["models", "verify"]) == 0
    bad.write_bytes(b"tampered")
    assert cli.main(["models", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not report["ok"] and "modified or is corrupt" in report["models"][1]["message"]
    assert cli.main(["info"]) == 0
    assert "FAIL  misc/bad (user)" in capsys.readouterr().out


def test_style_writes_a_restyled_picture_with_its_spec_and_refuses_bad_input(tmp_path, capsys):
    from core.data.styles import render_style

    img, msk, rgb, mask = make_inputs(tmp_path, 64)
    style = tmp_path / "mosaic.png"
    Image.fromarray(np.dstack([render_style("mosaic", 0, 20),
                               np.full((20, 20), 200, np.uint8)])).save(style)  # RGBA, small
    out = tmp_path / "styled.png"
    assert cli.main(["style", str(img), str(style), "-o", str(out), "--steps", "3",
                     "--mask", str(msk), "--preserve-color", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "much smaller" in captured.err and "Wrote" in captured.out
    styled = pixels(out)
    assert np.array_equal(styled[mask == 0], rgb[mask == 0])  # only the painted area changed
    spec = imageio.read_metadata(out)["spec"]
    assert spec["kind"] == "style" and spec["preserve_color"] == "luminance"
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again)]) == 0
    assert np.array_equal(pixels(again), styled)
    assert cli.main(["style", str(img), "-o", str(tmp_path / "x.png")]) == 2
    assert "at least one STYLE image" in one_error_line(capsys.readouterr().err)
    assert cli.main(["style", str(img), "-o", str(tmp_path / "x.png"), "--fast", "nope"]) == 2
    assert "No fast style called 'nope'" in one_error_line(capsys.readouterr().err)
    assert cli.main(["style", str(img), str(style), str(style), "--weights", "1",
                     "-o", str(tmp_path / "x.png")]) == 2
    assert "one number per style image (2)" in one_error_line(capsys.readouterr().err)


def test_an_output_that_appears_during_the_run_is_not_replaced(tmp_path, capsys, monkeypatch):
    # Two runs aimed at the same new file: the one that finishes second must not replace the
    # first one's result, and must say so.
    img, msk, _, _ = make_inputs(tmp_path)
    out = tmp_path / "out.png"
    real_run = inpaint.run_spec

    def other_run_finishes_first(spec, device):
        result = real_run(spec, device)
        out.write_bytes(b"the other run's picture")
        return result

    monkeypatch.setattr(inpaint, "run_spec", other_run_finishes_first)
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"easel: error: {out} already exists; pass --overwrite to replace it."
    assert out.read_bytes() == b"the other run's picture"
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out),
                     "--overwrite"]) == 0  # asked to replace it: replaced
    assert imageio.read_metadata(out)["spec"]["kind"] == "inpaint"


def test_a_command_removes_stale_temporary_files_only(tmp_path, monkeypatch):
    from core import paths

    models = paths.models_dir() / "vae"
    models.mkdir()
    stale = models / ".faces.safetensors.easel-0123abcd.tmp"
    fresh = paths.autosave_dir() / ".doc.easel.easel-89abcdef.tmp"
    other = paths.data_dir() / ".notes.txt.0123abcd.tmp"  # not a name Easel makes
    outside = tmp_path / "pictures" / ".photo.png.easel-0123abcd.tmp"
    outside.parent.mkdir()
    for f in (stale, fresh, other, outside):
        f.write_bytes(b"half a file")
    hours_ago = os.path.getmtime(fresh) - 2 * 3600
    for f in (stale, other, outside):
        os.utime(f, (hours_ago, hours_ago))
    assert cli.main(["info", "--json"]) == 0
    assert not stale.exists()
    assert fresh.exists() and other.exists() and outside.exists()


def test_style_bad_input_exits_2_with_the_reason_and_a_huge_picture_says_its_size(tmp_path,
                                                                                 capsys):
    from core.data.styles import render_style

    img, msk, rgb, _ = make_inputs(tmp_path, 64)
    style, flat, speck = tmp_path / "s.png", tmp_path / "flat.png", tmp_path / "speck.png"
    Image.fromarray(render_style("brush", 0, 64)).save(style)
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(flat)
    Image.fromarray(rgb[:8, :8]).save(speck)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(empty)
    out = tmp_path / "x.png"
    for argv, message in (
            ([str(img), str(flat)], "is one colour (RGB 128, 128, 128)"),
            ([str(img), str(speck)], "only 8x8 pixels: too small"),
            ([str(img), str(style), "--mask", str(empty)], "The mask is empty"),
            ([str(img), str(style), "--mask", str(msk), "--tile"], "leave out --mask")):
        assert cli.main(["style", *argv, "-o", str(out), "--steps", "1"]) == 2
        assert message in one_error_line(capsys.readouterr().err)
        assert not out.exists()
    big = tmp_path / "big.png"
    Image.fromarray(np.kron(rgb, np.ones((10, 8, 1), np.uint8))).save(big)  # 512x640
    assert cli.main(["style", str(big), str(style), "-o", str(out), "--steps", "1", "--size",
                     "64", "--tile"]) == 0
    assert "(512x640) was restyled at 51x64" in capsys.readouterr().err
    assert pixels(out).shape == (640, 512, 3)
    assert imageio.read_metadata(out)["spec"]["tile"] is True


def test_inpaint_context_and_source_flags(tmp_path, capsys):
    img, msk, rgb, mask = make_inputs(tmp_path)
    src = tmp_path / "source.png"
    source = np.zeros(mask.shape, np.uint8)
    source[:, :16] = 255
    Image.fromarray(source).save(src)
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(out), "--context",
                     "24", "--source", str(src)]) == 0
    meta = imageio.read_metadata(out)["spec"]
    assert meta["context"] == 24 and "png" in meta["source"]  # embedded, so reruns match
    assert np.array_equal(pixels(out)[mask == 0], rgb[mask == 0])
    for extra, words in ((["--source", str(src), "--engine", "diffusion"], "--source"),
                         (["--context", "8", "--engine", "lama", "--model", "x"], "--context")):
        assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o",
                         str(tmp_path / "bad.png"), *extra]) == 2
        assert words in one_error_line(capsys.readouterr().err)
    Image.fromarray(np.zeros(mask.shape, np.uint8)).save(src)
    assert cli.main(["inpaint", str(img), "--mask", str(msk), "-o", str(tmp_path / "b.png"),
                     "--source", str(src)]) == 2
    assert "source mask" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "b.png").exists()
    folder = tmp_path / "pictures"
    folder.mkdir()
    img.rename(folder / "in.png")
    assert cli.main(["inpaint", str(folder), "--mask", str(msk), "-o", str(tmp_path / "outs"),
                     "--source", str(src)]) == 2
    assert "--source" in one_error_line(capsys.readouterr().err)
