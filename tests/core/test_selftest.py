"""``easel --self-test`` (core/selftest.py) on the shipped weights, a corrupted copy, and an
engine that breaks."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core import cli, selftest
from core.selftest import CHECK_NAMES, PANEL_CHECKS, WEIGHTS_CHECK, Check, run_self_test

SHIPPED = Path(__file__).resolve().parents[2] / "weights"


@pytest.fixture(autouse=True)
def _shipped(monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(SHIPPED))
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    monkeypatch.delenv("EASEL_DEBUG", raising=False)


def test_passes_on_the_shipped_weights():
    lines: list[str] = []
    checks = run_self_test("cpu", report=lines.append)
    assert [c.name for c in checks] == list(CHECK_NAMES)
    assert all(isinstance(c, Check) for c in checks)
    assert [c for c in checks if not c.ok] == []
    assert all(c.seconds >= 0 and "\n" not in c.message for c in checks)
    # one line per check, then the summary
    assert len(lines) == len(CHECK_NAMES) + 1
    for line, name in zip(lines, CHECK_NAMES, strict=False):
        assert line.startswith("ok ") and name in line
    assert lines[-1].startswith(f"self-test passed: {len(CHECK_NAMES)} checks")


def test_every_panel_engine_is_checked():
    kinds = " ".join(PANEL_CHECKS)
    for panel in ("inpaint (patchmatch)", "inpaint (diffusion)", "latent (vae_faces)",
                  "latent (dcgan_faces)", "scene", "style (optimisation)", "style (fast)",
                  "upscale"):
        assert panel in kinds
    assert CHECK_NAMES[0] == WEIGHTS_CHECK


def test_cli_names_a_model_with_a_flipped_byte(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "weights"
    shutil.copytree(SHIPPED, shipped)
    target = shipped / "diffusion" / "diffusion_faces.safetensors"
    data = bytearray(target.read_bytes())
    data[-100] ^= 0x01  # inside the tensor data: parses, but the sha256 no longer matches
    target.write_bytes(bytes(data))
    monkeypatch.setenv("EASEL_WEIGHTS", str(shipped))

    assert cli.main(["--self-test", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    for name in CHECK_NAMES:  # every check is listed, whatever failed
        assert any(name in line for line in lines), (name, out)
    weights_line = next(line for line in lines if WEIGHTS_CHECK in line)
    assert weights_line.startswith("FAIL") and "diffusion_faces" in weights_line
    assert "diffusion/diffusion_faces (shipped)" in out and "sha256" in out
    # the diffusion fill uses that model, so it fails too; the other engines still pass
    failed = {name for name in CHECK_NAMES for line in lines
              if line.startswith("FAIL") and line[6:].startswith(name + " ")}
    assert failed == {"weights", "inpaint (diffusion)"}, out
    assert lines[-1].startswith("self-test FAILED: 2 of")
    assert "inpaint (diffusion)" in lines[-1]


def test_a_broken_engine_does_not_stop_the_others(monkeypatch):
    def boom(runner):
        raise RuntimeError("the engine\nbroke")

    monkeypatch.setitem(PANEL_CHECKS, "inpaint (patchmatch)", boom)
    lines: list[str] = []
    checks = run_self_test("cpu", report=lines.append,
                           only=["inpaint (patchmatch)", "upscale (upscale_faces)"])
    assert [(c.name, c.ok) for c in checks] == [("inpaint (patchmatch)", False),
                                                ("upscale (upscale_faces)", True)]
    assert checks[0].message == "RuntimeError: the engine broke"
    assert lines[0].startswith("FAIL") and lines[-1].startswith("self-test FAILED: 1 of 2")


def test_no_shipped_models_fails_the_weights_check(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "nothing"))
    (check,) = run_self_test("cpu", report=None, only=[WEIGHTS_CHECK])
    assert not check.ok and "no shipped models found" in check.message


def test_unknown_check_name_is_refused():
    with pytest.raises(ValueError, match="unknown self-test check"):
        run_self_test("cpu", report=None, only=["teleport"])


def test_a_flat_result_is_caught():
    flat = SimpleNamespace(images=[np.full((8, 8, 3), 7, np.uint8)])
    with pytest.raises(selftest.CheckFailed, match="flat"):
        selftest.expect_image(flat, (8, 8, 3))
    with pytest.raises(selftest.CheckFailed, match="expected a"):
        selftest.expect_image(flat, (16, 16, 3))


def test_cli_flag_is_in_help_and_refuses_a_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "--self-test" in capsys.readouterr().out
    assert cli.main(["--self-test", "info"]) == 2
    assert "runs on its own" in capsys.readouterr().err


def test_cli_unknown_device_exits_2(capsys):
    assert cli.main(["--self-test", "--device", "tpu"]) == 2
    assert "Unknown device" in capsys.readouterr().err
