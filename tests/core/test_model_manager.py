"""core.model_manager: hash status, rename, delete, import and export of installed models.

Each test gets its own EASEL_HOME (user models) and EASEL_WEIGHTS (a tiny "shipped" folder),
so nothing touches the real home folder or the repository's weights.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import core.nets  # noqa: F401  (importing registers every architecture the tests build)
from core import paths, registry
from core.model_manager import (
    FamilyRequired,
    ModelManagerError,
    TrashFailed,
    check_hash,
    delete_model,
    directions_path,
    export_model,
    import_model,
    model_size,
    rename_model,
    validate_name,
)
from core.weights import ModelCard, card_path, list_models, load_state, read_card, save_model


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))


# Tiny configs of the architectures the tests' families use (a few thousand parameters).
TINY = {"vae": {"base": 4, "image_size": 16, "latent_dim": 4},
        "dcgan": {"g_base": 4, "d_base": 4, "image_size": 16, "z_dim": 4}}


def make_model(folder: Path, name: str, family: str = "vae", seed: int = 0,
               directions: bool = False, **card_kw) -> Path:
    """A tiny real model of ``family``'s architecture (its name is the family's)."""
    torch.manual_seed(seed)
    card = ModelCard(name=name, family=family, architecture=family, config=TINY[family],
                     metrics={"mse": 0.01 * (seed + 1)}, **card_kw)
    path = save_model(folder / family, name, registry.build(family, TINY[family]), card)
    if directions:
        sha = read_card(path).sha256
        directions_path(path).write_text(json.dumps(
            {"format": 1, "model": name, "model_sha256": sha, "directions": {}}))
    return path


def user(name: str, family: str = "vae", **kw) -> Path:
    return make_model(paths.models_dir(), name, family, **kw)


def shipped(name: str, family: str = "vae", **kw) -> Path:
    return make_model(paths.shipped_weights_dir(), name, family, **kw)


def info_of(name: str, source: str = "user"):
    found = [m for m in list_models() if m.name == name and m.source == source]
    assert len(found) == 1, [(m.name, m.source) for m in list_models()]
    return found[0]


def tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a tensor byte: the header still parses
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- size and hash


def test_size_and_hash_status():
    path = user("m", directions=True)
    info = info_of("m")
    assert model_size(info) == path.stat().st_size > 0
    assert check_hash(info) == "ok"
    tamper(path)
    assert check_hash(info) == "mismatch"
    path.unlink()
    assert check_hash(info) == "missing" and model_size(info) == 0


def test_hash_unverified_without_card_or_sha():
    path = user("m")
    card = json.loads(card_path(path).read_text())
    card["sha256"] = ""
    card_path(path).write_text(json.dumps(card))
    assert check_hash(info_of("m")) == "unverified"
    card_path(path).write_text("{not json")
    info = info_of("m")
    assert info.card is None and info.error
    assert check_hash(info) == "unverified"


# --------------------------------------------------------------------------- rename


def test_rename_moves_every_file_and_keeps_the_hash_valid():
    old = user("before", directions=True)
    weights = old.read_bytes()
    new = rename_model(info_of("before"), "after")
    folder = old.parent
    assert new == folder / "after.safetensors" and new.read_bytes() == weights
    assert sorted(p.name for p in folder.iterdir()) == [
        "after.directions.json", "after.json", "after.safetensors"]
    assert read_card(new).name == "after"
    assert json.loads(directions_path(new).read_text())["model"] == "after"
    info = info_of("after")
    assert check_hash(info) == "ok"
    assert info.card.metrics == {"mse": 0.01}
    load_state(new)  # the real loader accepts it
    assert [m.name for m in list_models()] == ["after"]


def test_rename_refuses_shipped_models():
    path = shipped("ship")
    with pytest.raises(ModelManagerError, match="shipped models are read-only"):
        rename_model(info_of("ship", "shipped"), "mine")
    assert path.is_file() and read_card(path).name == "ship"


def test_rename_refuses_a_taken_name():
    user("a")
    user("b", seed=1)
    shipped("ship")
    user("c", family="dcgan")
    info = info_of("a")
    for taken in ("b", "B", "ship"):  # user, other case, a shipped model of the family
        with pytest.raises(ModelManagerError, match="already exists"):
            rename_model(info, taken)
    assert info_of("a").path.is_file() and info_of("b").path.is_file()
    rename_model(info, "c")  # a name used in another family is free here
    assert sorted(m.family for m in list_models() if m.name == "c") == ["dcgan", "vae"]


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "a\\b", "..", ".hidden", "x.json",
                                 "x.safetensors", "x.directions", "con", "a:b", "x" * 101])
def test_rename_refuses_unusable_names(bad):
    path = user("m")
    with pytest.raises(ModelManagerError):
        rename_model(info_of("m"), bad)
    assert path.is_file() and [m.name for m in list_models()] == ["m"]


def test_validate_name_strips_and_accepts_ordinary_names():
    assert validate_name("  my model v2  ") == "my model v2"
    assert validate_name("faces.v2") == "faces.v2"


# --------------------------------------------------------------------------- delete


def test_delete_moves_each_file_to_the_trash(tmp_path):
    path = user("m", directions=True)
    user("keep", seed=1)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = []

    def trash(p: Path) -> bool:
        calls.append(p.name)
        p.rename(bin_ / p.name)
        return True

    delete_model(info_of("m"), trash=trash)
    # Card last: while it exists the model stays listed.
    assert calls == ["m.directions.json", "m.safetensors", "m.json"]
    assert sorted(p.name for p in bin_.iterdir()) == sorted(calls)
    assert not path.exists() and [m.name for m in list_models()] == ["keep"]


def test_delete_reports_a_failed_trash_then_deletes_for_good():
    path = user("m", directions=True)
    with pytest.raises(TrashFailed, match="could not be moved to the trash"):
        delete_model(info_of("m"), trash=lambda p: False)
    assert path.is_file() and card_path(path).is_file() and directions_path(path).is_file()
    delete_model(info_of("m"))
    assert not any(path.parent.iterdir())
    assert list_models() == []


def test_delete_finishes_a_half_done_trash():
    path = user("m", directions=True)
    moved = []

    def trash_once(p: Path) -> bool:
        if moved:
            return False
        moved.append(p)
        p.unlink()
        return True

    with pytest.raises(TrashFailed):
        delete_model(info_of("m"), trash=trash_once)
    assert [m.name for m in list_models()] == ["m"]  # still listed: the card went last
    delete_model(info_of("m"))
    assert not path.exists() and list_models() == []


def test_delete_refuses_shipped_models():
    path = shipped("ship")
    with pytest.raises(ModelManagerError, match="read-only"):
        delete_model(info_of("ship", "shipped"), trash=lambda p: True)
    assert path.is_file()


# --------------------------------------------------------------------------- import


def test_import_with_card(tmp_path):
    src = make_model(tmp_path / "outside", "faces", directions=True)
    info = import_model(src)
    dest = paths.models_dir() / "vae"
    assert info.path == dest / "faces.safetensors" and info.source == "user"
    assert info.path.read_bytes() == src.read_bytes()
    assert directions_path(info.path).read_bytes() == directions_path(src).read_bytes()
    assert check_hash(info_of("faces")) == "ok"
    assert src.is_file()  # copied, not moved
    # The same file again: the name is taken, so it gets a suffix (and a matching card).
    again = import_model(src)
    assert again.name == "faces-2" and read_card(again.path).name == "faces-2"
    assert json.loads(directions_path(again.path).read_text())["model"] == "faces-2"
    assert check_hash(info_of("faces-2")) == "ok"


def test_import_with_card_elsewhere_and_family_from_it(tmp_path):
    src = make_model(tmp_path / "a", "gan", family="dcgan")
    weights = tmp_path / "b" / "renamed.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(src.read_bytes())
    info = import_model(weights, card=card_path(src))
    assert (info.name, info.family) == ("gan", "dcgan")
    assert check_hash(info_of("gan")) == "ok"
    with pytest.raises(ModelManagerError, match="dcgan"):
        import_model(weights, card=card_path(src), family="vae")


def test_import_refuses_a_card_of_an_unknown_family(tmp_path):
    src = make_model(tmp_path / "outside", "odd")
    card = json.loads(card_path(src).read_text())
    card["family"] = "../../escape"
    card_path(src).write_text(json.dumps(card))
    with pytest.raises(ModelManagerError, match="does not know; not imported"):
        import_model(src)
    assert list_models() == [] and not any(paths.models_dir().rglob("*.*"))


def test_import_refuses_tampered_weights(tmp_path):
    src = make_model(tmp_path / "outside", "faces")
    tamper(src)
    with pytest.raises(ModelManagerError,
                       match=r"faces\.safetensors does not match its model card.*not imported"):
        import_model(src)
    assert list_models() == [] and not any(paths.models_dir().rglob("*.*"))


def test_import_without_card_is_unverified(tmp_path):
    data = make_model(tmp_path / "x", "tmp").read_bytes()
    src = tmp_path / "loose" / "mystery.safetensors"
    src.parent.mkdir()
    src.write_bytes(data)
    with pytest.raises(FamilyRequired):
        import_model(src)
    info = import_model(src, family="diffusion")
    card = read_card(info.path)
    assert (card.name, card.family, card.architecture) == ("mystery", "diffusion", "unet")
    assert card.sha256 == hashlib.sha256(data).hexdigest()
    assert card.extra == {"unverified": True, "imported_from": str(src)}
    assert check_hash(info_of("mystery")) == "unverified"
    tamper(info.path)
    assert check_hash(info_of("mystery")) == "mismatch"
    with pytest.raises(ModelManagerError, match="not a model family"):
        import_model(src, family="nonsense")


def test_import_refuses_non_safetensors_without_unpickling(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("import must never unpickle")

    state = nn.Linear(2, 2).state_dict()
    zipped, legacy, junk = (tmp_path / f"{n}.safetensors" for n in ("zipped", "legacy", "junk"))
    torch.save(state, zipped)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header at all")
    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    for path in (zipped, legacy):
        with pytest.raises(ModelManagerError, match="pickle checkpoint"):
            import_model(path, family="vae")
    with pytest.raises(ModelManagerError, match="not a valid safetensors file"):
        import_model(junk, family="vae")
    # A pickle that comes with a card naming its sha256 is still refused as a pickle.
    card = ModelCard(name="zipped", family="vae", architecture="vae",
                     sha256=hashlib.sha256(zipped.read_bytes()).hexdigest())
    card_path(zipped).write_text(json.dumps(card.to_dict()))
    with pytest.raises(ModelManagerError, match="pickle checkpoint"):
        import_model(zipped)
    assert list_models() == []


# --------------------------------------------------------------------------- export


def test_export_zip_holds_weights_card_and_sidecar(tmp_path):
    path = user("m", directions=True)
    (tmp_path / "out").mkdir()
    out = export_model(info_of("m"), tmp_path / "out" / "m.zip")
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["m.directions.json", "m.json", "m.safetensors"]
        for name in z.namelist():
            assert z.read(name) == (path.parent / name).read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["m.zip"]  # no temp file left


def test_export_then_import_round_trip(tmp_path, monkeypatch):
    user("m", directions=True)
    out = export_model(info_of("m"), tmp_path / "m.zip")
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "other_home"))
    assert list_models() == []
    info = import_model(out)
    assert info.name == "m" and check_hash(info_of("m")) == "ok"
    assert directions_path(info.path).is_file()


def test_export_refuses_a_damaged_model(tmp_path):
    tamper(user("m"))
    with pytest.raises(ModelManagerError, match="does not match its model card; not exported"):
        export_model(info_of("m"), tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_export_of_a_shipped_model_is_allowed(tmp_path):
    shipped("ship")
    out = export_model(info_of("ship", "shipped"), tmp_path / "ship.zip")
    assert zipfile.ZipFile(out).namelist() == ["ship.safetensors", "ship.json"]
