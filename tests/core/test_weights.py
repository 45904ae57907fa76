from __future__ import annotations

import hashlib
import json
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from core import registry
from core.weights import (
    ModelCache,
    ModelCard,
    WeightsError,
    list_models,
    load_model,
    load_state,
    module_nbytes,
    save_model,
    verify_all,
)


@dataclass(frozen=True)
class MLPConfig:
    width: int = 4
    depth: int = 1


@registry.register("test-mlp", config=MLPConfig)
class TinyMLP(nn.Module):
    """Test-only architecture: a few linear layers plus a buffer."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(cfg.width, cfg.width) for _ in range(cfg.depth)])
        self.register_buffer("scale", torch.ones(cfg.width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) * self.scale


def make(width: int = 4, depth: int = 1, seed: int = 0) -> TinyMLP:
    torch.manual_seed(seed)
    return TinyMLP(MLPConfig(width, depth))


def card(width: int = 4, depth: int = 1, **kw) -> ModelCard:
    return ModelCard(name="x", family="mlp", architecture="test-mlp",
                     config={"width": width, "depth": depth}, **kw)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))


def saved(tmp_path: Path, name: str = "m", width: int = 4, depth: int = 1, seed: int = 0) -> Path:
    return save_model(tmp_path / "mlp", name, make(width, depth, seed), card(width, depth))


def test_round_trip_keeps_tensors_and_card(tmp_path):
    model = make(width=6, depth=2, seed=3)
    c = card(6, 2, recipe="recipes/x.py", steps=10, metrics={"fid": 1.5}, notes="hi")
    path = save_model(tmp_path, "tiny", model, c)
    assert path == tmp_path / "tiny.safetensors"
    on_disk = json.loads((tmp_path / "tiny.json").read_text())
    assert on_disk["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert on_disk["created"]

    state, back = load_state(path)
    assert back.name == "tiny" and back.metrics == {"fid": 1.5} and back.steps == 10
    assert set(state) == set(model.state_dict())
    loaded = load_model(path)
    assert not loaded.training
    x = torch.randn(3, 6)
    assert torch.equal(loaded(x), model(x))


def test_card_keeps_unknown_fields():
    d = {**card().to_dict(), "future_field": [1, 2]}
    back = ModelCard.from_dict(d)
    assert back.extra == {"future_field": [1, 2]}
    assert back.to_dict()["future_field"] == [1, 2]


def test_tied_weights_can_be_saved(tmp_path):
    model = make(depth=2)
    model.layers[1].weight = model.layers[0].weight  # shared storage
    path = save_model(tmp_path, "tied", model, card(depth=2))
    assert torch.equal(load_model(path).layers[1].weight, model.layers[0].weight)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found.*nothing.safetensors"):
        load_state(tmp_path / "nothing.safetensors")


def test_missing_card(tmp_path):
    path = saved(tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="has no model card"):
        load_state(path)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"name": "x"}',
                                  ('{"name": "x", "family": "f", "architecture": "a", '
                                   '"config": 3}')])
def test_corrupt_card(tmp_path, text):
    path = saved(tmp_path)
    path.with_suffix(".json").write_text(text)
    with pytest.raises(WeightsError, match=r"m\.json is corrupt"):
        load_state(path)


def test_flipped_byte_is_a_sha_mismatch(tmp_path):
    path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="m.safetensors has been modified or is corrupt"):
        load_model(path)


def _fix_hash(path: Path) -> None:
    c = json.loads(path.with_suffix(".json").read_text())
    c["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(c))


def as_older_file(path: Path) -> Path:
    """Rewrite ``path`` as files were written before the card was recorded in the header
    (the shipped ones still are), with its card's sha256 updated."""
    from safetensors.torch import load, save

    path.write_bytes(save(load(path.read_bytes()), metadata={"format": "pt"}))
    _fix_hash(path)
    return path


def test_truncated_file_with_fixed_hash_fails_to_parse(tmp_path):
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    _fix_hash(path)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_state(path)


class _Boom:
    """Unpickling this creates a marker file: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.mkdir, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_renamed_is_refused_and_never_unpickled(tmp_path, writer):
    marker = tmp_path / "unpickled"
    path = saved(tmp_path)
    payload = {"layers.0.weight": _Boom(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    _fix_hash(path)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_model(path)
    assert not marker.exists()


def test_shape_mismatch_names_the_tensors(tmp_path):
    path = as_older_file(saved(tmp_path, width=4))
    c = json.loads(path.with_suffix(".json").read_text())
    c["config"]["width"] = 5
    path.with_suffix(".json").write_text(json.dumps(c))
    with pytest.raises(WeightsError, match=r"wrong shape layers\.0\.bias \[4\] \(expected \[5\]"):
        load_model(path)


def test_missing_and_unexpected_keys(tmp_path):
    path = as_older_file(saved(tmp_path, depth=1))
    c = json.loads(path.with_suffix(".json").read_text())
    c["config"]["depth"] = 2
    path.with_suffix(".json").write_text(json.dumps(c))
    with pytest.raises(WeightsError, match=r"missing layers\.1\.bias, layers\.1\.weight"):
        load_model(path)
    extra = make(depth=2).state_dict()
    path = save_model(tmp_path, "more", extra, card(depth=1))
    with pytest.raises(WeightsError, match=r"unexpected layers\.1\.bias"):
        load_model(path)


def test_unknown_architecture_and_bad_config(tmp_path):
    path = save_model(tmp_path, "u", make(), ModelCard("u", "mlp", "no-such-net", {}))
    with pytest.raises(WeightsError, match="u.safetensors: Unknown architecture 'no-such-net'"):
        load_model(path)
    bad = card()
    bad.config["colour"] = "red"
    path = save_model(tmp_path, "v", make(), bad)
    with pytest.raises(WeightsError, match="config does not fit.*colour"):
        load_model(path)


def test_bad_model_name_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="not a usable model name"):
        save_model(tmp_path, "../evil", make(), card())


def test_list_and_verify_shipped_and_user(tmp_path):
    from core import paths

    assert list_models() == [] and verify_all() == []
    save_model(paths.shipped_weights_dir() / "mlp", "ship", make(), card())
    user = save_model(paths.models_dir() / "mlp", "mine", make(), card())
    (paths.models_dir() / "other").mkdir()
    (paths.models_dir() / "other" / "broken.json").write_text("{")
    infos = list_models()
    assert [(i.source, i.family, i.name) for i in infos] == [
        ("shipped", "mlp", "ship"), ("user", "mlp", "mine"), ("user", "other", "broken")]
    assert infos[1].path == user and infos[1].card.architecture == "test-mlp"
    assert "corrupt" in infos[2].error
    assert [i.name for i in list_models("mlp")] == ["ship", "mine"]
    user.write_bytes(user.read_bytes() + b"x")
    results = {info.name: (ok, msg) for info, ok, msg in verify_all()}
    assert results["ship"][0] and results["ship"][1].startswith("ok")
    assert not results["mine"][0] and "modified or is corrupt" in results["mine"][1]
    assert not results["broken"][0]


def test_cache_hits_and_lru_eviction_under_cap(tmp_path):
    paths = [saved(tmp_path, f"m{i}", seed=i) for i in range(3)]
    one = module_nbytes(make())
    cache = ModelCache(cap_bytes=2 * one)
    a = cache.get(paths[0])
    assert cache.get(paths[0]) is a and len(cache) == 1 and cache.nbytes == one
    cache.get(paths[1])
    cache.get(paths[0])  # m0 is now the most recently used
    cache.get(paths[2])  # over the cap: m1 goes
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert cache.cached(paths[0]) and cache.cached(paths[2]) and not cache.cached(paths[1])
    assert cache.get(paths[0]) is a
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_cache_returns_but_does_not_keep_a_model_over_the_cap(tmp_path):
    path = saved(tmp_path)
    cache = ModelCache(cap_bytes=10)
    m = cache.get(path)
    assert isinstance(m, TinyMLP) and len(cache) == 0


def test_cache_reloads_a_rewritten_file_and_reports_errors(tmp_path):
    path = saved(tmp_path, seed=1)
    cache = ModelCache()
    first = cache.get(path)
    save_model(tmp_path / "mlp", "m", make(seed=2), card())
    second = cache.get(path)
    assert second is not first
    assert not torch.equal(first.layers[0].weight, second.layers[0].weight)
    with pytest.raises(WeightsError, match="not found"):
        cache.get(tmp_path / "gone.safetensors")


def test_cache_cap_from_environment(monkeypatch):
    monkeypatch.setenv("EASEL_MODEL_CACHE_MB", "1.5")
    assert ModelCache().cap_bytes == int(1.5 * 1024 * 1024)
    monkeypatch.setenv("EASEL_MODEL_CACHE_MB", "lots")
    assert ModelCache().cap_bytes == 2048 * 1024 * 1024


def test_cache_is_thread_safe(tmp_path):
    paths = [saved(tmp_path, f"m{i}", seed=i) for i in range(4)]
    cache = ModelCache(cap_bytes=2 * module_nbytes(make()))
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(30):
                m = cache.get(paths[(i + k) % 4])
                assert isinstance(m, TinyMLP)
                assert cache.nbytes <= cache.cap_bytes
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(cache) <= 2


def test_user_folders_follow_easel_home(tmp_path, monkeypatch):
    from core import paths

    home = tmp_path / "home"
    assert not home.exists()  # created on first use, not on import
    assert paths.data_dir() == home and home.is_dir()
    assert paths.models_dir() == home / "models" and paths.models_dir().is_dir()
    assert paths.autosave_dir() == home / "autosave" and paths.autosave_dir().is_dir()
    assert paths.log_dir().is_relative_to(home) and paths.config_dir().is_relative_to(home)
    assert paths.shipped_weights_dir() == tmp_path / "shipped"
    monkeypatch.delenv("EASEL_WEIGHTS")
    repo = Path(__file__).resolve().parents[2]
    assert paths.shipped_weights_dir() == repo / "weights"
