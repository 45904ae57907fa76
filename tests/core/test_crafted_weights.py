"""Crafted model files and model archives: each is refused with a clear error, in bounded
memory and time. Inputs are built here, tiny, in tmp_path; three cases also run as a fresh
`easel` process held to the budget (tests/crafted.py)."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core import paths
from core.model_manager import ModelManagerError, export_model, import_model
from core.nets.vae import VAE, VAEConfig
from core.weights import (
    ModelCard,
    WeightsError,
    card_path,
    find_model,
    list_models,
    load_model,
    read_card,
    read_regular,
    save_model,
    verify_all,
)
from tests.crafted import run_cli

TINY = {"image_size": 8, "channels": 1, "latent_dim": 2, "base": 2}
BOMB = {**TINY, "image_size": 64, "base": 4096}  # tens of GB if it were built for real


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))


def tiny_vae(folder: Path, name: str = "tiny") -> Path:
    torch.manual_seed(0)
    card = ModelCard(name=name, family="vae", architecture="vae", config=dict(TINY))
    return save_model(folder / "vae", name, VAE(VAEConfig(**TINY)), card)


def edit_card(path: Path, **changes) -> None:
    card = json.loads(card_path(path).read_text())
    for key, value in changes.items():
        if key == "config":
            card["config"].update(value)
        else:
            card[key] = value
    card_path(path).write_text(json.dumps(card))


def as_older_file(path: Path) -> Path:
    """``path`` as files were written before the card was recorded in the header (the
    shipped ones still are), with its card's sha256 updated: only the shape check guards it."""
    import hashlib

    path.write_bytes(st_save(st_load(path.read_bytes()), metadata={"format": "pt"}))
    edit_card(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --------------------------------------------------------------------------- weights


def test_valid_model_loads():
    path = tiny_vae(paths.models_dir())
    assert isinstance(load_model(path), VAE)
    assert [ok for _, ok, _ in verify_all()] == [True]


def test_a_config_bomb_in_a_card_is_refused_by_the_recorded_config():
    path = tiny_vae(paths.models_dir())
    edit_card(path, config=BOMB)  # the sha256 still matches: it covers the file only
    with pytest.raises(WeightsError, match="differs from the one recorded in tiny.safetensors"):
        load_model(path)


def test_a_config_bomb_in_an_older_file_is_refused_by_the_shapes():
    path = as_older_file(tiny_vae(paths.models_dir()))
    edit_card(path, config=BOMB)
    with pytest.raises(WeightsError, match=r"does not match architecture 'vae': .*wrong shape"):
        load_model(path)


def test_a_config_with_thousands_of_layers_stops_early():
    path = as_older_file(tiny_vae(paths.models_dir()))
    edit_card(path, config={"image_size": 2 ** 3000})  # 3000 stride-2 stages
    with pytest.raises(WeightsError, match="far larger 'vae' network"):
        load_model(path)
    assert torch.is_grad_enabled()  # the stopped build left no mode behind (no_grad's exit ran)


@pytest.mark.parametrize("which", ["weights", "card"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_non_regular_files_are_not_read(tmp_path, which, kind):
    path = tiny_vae(paths.models_dir())
    target = path if which == "weights" else card_path(path)
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)  # opening it for reading would wait for a writer forever
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")  # reading it never ends
    else:
        target.mkdir()
    with pytest.raises(WeightsError, match="not a regular file"):
        load_model(path)


def test_reads_stop_at_the_limit(tmp_path):
    big = tmp_path / "big.safetensors"
    big.write_bytes(bytes(1000))
    assert len(read_regular(big, 1000)) == 1000
    with pytest.raises(WeightsError, match="more than the 999"):
        read_regular(big, 999)


MISTYPED = '{"name": "x", "family": "vae", "architecture": "vae", "sha256": 5}'


@pytest.mark.parametrize("text", [nested(100_000), MISTYPED])
def test_a_deeply_nested_or_mistyped_card_is_corrupt(text):
    path = tiny_vae(paths.models_dir())
    card_path(path).write_text(text)
    with pytest.raises(WeightsError, match="is corrupt"):
        read_card(path)


def test_verify_fails_for_weights_without_a_card():
    path = tiny_vae(paths.models_dir())
    card_path(path).unlink()
    [(_, ok, message)] = verify_all()
    assert not ok and "tiny.safetensors has no model card" in message


@pytest.mark.parametrize("move", ["other family folder", "card names another model"])
def test_verify_fails_for_a_misplaced_model(move):
    path = tiny_vae(paths.models_dir())
    if move == "other family folder":
        dest = paths.models_dir() / "dcgan"
        dest.mkdir()
        for p in (path, card_path(path)):
            p.rename(dest / p.name)
    else:
        for p in (path, card_path(path)):
            p.rename(p.with_name("copy" + p.suffix))
    [(info, ok, message)] = verify_all()
    assert not ok and "describes vae/tiny" in message
    assert find_model(info.name) is None  # nothing uses it


# --------------------------------------------------------------------------- model archives


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def exported(tmp_path: Path) -> dict[str, bytes]:
    path = tiny_vae(tmp_path / "src")
    return {p.name: p.read_bytes() for p in (path, card_path(path))}


def zip_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = exported(tmp_path)
    torch.save({"w": torch.zeros(2)}, buf := io.BytesIO())
    return {
        "bomb": (zip_of(tmp_path / "bomb.zip", {"m.safetensors": bytes(20 << 20)},
                        zipfile.ZIP_DEFLATED), "expand more than 100 times"),
        "parent path": (zip_of(tmp_path / "up.zip", {f"../{k}": v for k, v in good.items()}),
                        "outside the archive"),
        "absolute path": (zip_of(tmp_path / "abs.zip", {f"/{k}": v for k, v in good.items()}),
                          "outside the archive"),
        "too many members": (zip_of(tmp_path / "many.zip", {
            **good, **{f"n{i}.txt": b"" for i in range(64)}}), "more than the 64"),
        "pickle as safetensors": (zip_of(tmp_path / "pt.zip", {
            "m.safetensors": buf.getvalue()}), "pickle checkpoint"),
        "only a pickle": (zip_of(tmp_path / "pt2.zip", {"m.pt": buf.getvalue()}),
                          "exactly one .safetensors"),
        "nested card": (zip_of(tmp_path / "deep.zip", {
            **good, "tiny.json": nested(100_000).encode()}), "nested too deeply"),
    }


@pytest.mark.parametrize("case", ["bomb", "parent path", "absolute path", "too many members",
                                  "pickle as safetensors", "only a pickle", "nested card"])
def test_crafted_archives_are_refused(tmp_path, case):
    path, words = zip_cases(tmp_path)[case]
    with pytest.raises(ModelManagerError, match=words):
        import_model(path)
    assert list_models() == []


@pytest.mark.parametrize("content", [b"PK\x03\x04 but no archive", b"plain text"])
def test_a_file_named_zip_that_is_not_one(tmp_path, content):
    path = tmp_path / "m.zip"
    path.write_bytes(content)
    with pytest.raises(ModelManagerError, match="not a usable zip archive") as err:
        import_model(path)
    assert "pickle" not in str(err.value)


def test_a_fifo_named_zip_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "m.zip")
    with pytest.raises(ModelManagerError, match="not a regular file"):
        import_model(tmp_path / "m.zip")


def test_an_exported_model_imports(tmp_path):
    path = tiny_vae(paths.models_dir(), "mine")
    archive = export_model(list_models()[0], tmp_path / "mine.zip")
    info = import_model(archive, name="again")
    assert info.path.read_bytes() == path.read_bytes()
    assert isinstance(load_model(info.path), VAE)
    with pytest.raises(ModelManagerError, match="called 'again' already exists"):
        import_model(archive, name="again")


# --------------------------------------------------------------------------- fresh processes


def zeros_bomb(path: Path, gib: int) -> Path:
    """A zip of a few MB whose one member inflates to ``gib`` GiB of zeros. Deflate after a
    full flush starts afresh, so one compressed 16 MiB block repeated is a valid stream."""
    block = bytes(16 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    count = gib * 64
    data = seg * count + b"\x03\x00"  # an empty final block
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    name, size = b"m.safetensors", count * len(block)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size,
                        len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc,
                          len(data), size, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)
    return path


def test_cli_refuses_a_zip_bomb_in_budget(tmp_path):
    bomb = zeros_bomb(tmp_path / "bomb.zip", 2)
    assert bomb.stat().st_size < 4 << 20
    run_cli(["models", "import", str(bomb)], tmp_path / "home").assert_clean_refusal(
        "bomb.zip", "expand more than 100 times")


def test_cli_refuses_a_config_bomb_in_budget(tmp_path):
    home = tmp_path / "home"
    path = as_older_file(tiny_vae(home / "models", "bombed"))
    edit_card(path, config=BOMB)
    run_cli(["latent", "sample", "--model", "bombed", "-o", str(tmp_path / "out")],
            home).assert_clean_refusal("bombed.safetensors", "wrong shape")
    run = run_cli(["models", "verify"], home)
    assert run.code == 1 and "vae/bombed" in run.stderr, run.stderr
    assert run.peak_mb < 1024 and run.seconds < 20, (run.peak_mb, run.seconds)


# --------------------------------------------------------------------------- commands


def test_cli_import_prints_what_was_installed_or_one_line(tmp_path, capsys):
    from core.cli import main

    source = tiny_vae(tmp_path / "src", "faces")
    assert main(["models", "import", str(source), "--name", "mine"]) == 0
    assert capsys.readouterr().out.startswith("Installed vae/mine at ")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 nothing")
    for args in (["models", "import", str(tmp_path / "bad.zip")], ["models", "import"],
                 ["models", "list", "x"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_self_test_fails_naming_a_model_without_its_card():
    from core.selftest import CheckFailed, check_weights

    card_path(tiny_vae(paths.shipped_weights_dir(), "shipped")).unlink()
    with pytest.raises(CheckFailed) as failed:
        check_weights()
    assert "vae/shipped" in str(failed.value)
    assert "shipped.safetensors has no model card" in failed.value.details[0]


@pytest.mark.parametrize("older", [False, True])
def test_import_refuses_a_card_whose_network_does_not_fit_its_weights(tmp_path, older):
    """Caught at import, not later in a panel: the edited config differs from the one recorded
    in the file, or (a file without that record) its network's shapes differ."""
    source = tiny_vae(tmp_path / "outside")
    if older:
        as_older_file(source)
    edit_card(source, config=BOMB)
    with pytest.raises(ModelManagerError, match="Not imported"):
        import_model(source)
    assert list_models("vae") == []
