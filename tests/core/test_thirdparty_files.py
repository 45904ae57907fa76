"""Reading users' model files: tensors only, never an object a pickle would build."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from core.thirdparty.files import ThirdPartyError, read_state_dict


def tensors() -> dict[str, torch.Tensor]:
    return {"conv_first.weight": torch.randn(4, 3, 3, 3), "conv_first.bias": torch.randn(4)}


@pytest.mark.parametrize("wrapper", [None, "params_ema", "params", "state_dict"])
@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".bin"])
def test_pickled_weights_are_read_and_unwrapped(tmp_path, wrapper, suffix):
    sd = tensors()
    path = tmp_path / f"model{suffix}"
    torch.save(sd if wrapper is None else {wrapper: sd, "iter": 5}, path)
    got = read_state_dict(path)
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_params_ema_is_preferred_to_params(tmp_path):
    ema, raw = tensors(), tensors()
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "x4.pth")
    got = read_state_dict(tmp_path / "x4.pth")
    assert torch.equal(got["conv_first.weight"], ema["conv_first.weight"])


def test_safetensors_are_read_whatever_the_suffix(tmp_path):
    sd = tensors()
    save_file(sd, tmp_path / "a.safetensors")
    save_file(sd, tmp_path / "b.bin")
    for name in ("a.safetensors", "b.bin"):
        assert read_state_dict(tmp_path / name).keys() == sd.keys()


class Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned > hostile_ran",))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": tensors(), "trainer": Hostile()}, tmp_path / "evil.ckpt")
    with pytest.raises(ThirdPartyError, match="evil.ckpt.*Save it as .safetensors first"):
        read_state_dict(tmp_path / "evil.ckpt")
    assert not (tmp_path / "hostile_ran").exists()
    (tmp_path / "bare.pth").write_bytes(pickle.dumps(Hostile()))
    with pytest.raises(ThirdPartyError, match="bare.pth"):
        read_state_dict(tmp_path / "bare.pth")
    assert not (tmp_path / "hostile_ran").exists()


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b""), "truncated or not"),
    (lambda p: (torch.save(tensors(), p), p.write_bytes(p.read_bytes()[:300])), "truncated"),
    (lambda p: torch.save({"lr": 0.1, "epoch": 3}, p), "no tensors"),
    (lambda p: torch.save([torch.ones(2)], p), "no tensors"),
])
def test_bad_files_get_one_line_naming_the_file(tmp_path, make, match):
    path = tmp_path / "bad.pth"
    make(path)
    with pytest.raises(ThirdPartyError, match=match) as err:
        read_state_dict(path)
    assert "bad.pth" in str(err.value) and "\n" not in str(err.value)


def test_other_files_are_refused_by_name(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\0" * 16)
    with pytest.raises(ThirdPartyError, match="x.onnx: Easel opens"):
        read_state_dict(tmp_path / "x.onnx")
    with pytest.raises(ThirdPartyError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "fake.safetensors").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ThirdPartyError, match="fake.safetensors is not a valid safetensors"):
        read_state_dict(tmp_path / "fake.safetensors")
    os.mkfifo(tmp_path / "pipe.pth")
    with pytest.raises(ThirdPartyError, match="not a regular file"):
        read_state_dict(tmp_path / "pipe.pth")
