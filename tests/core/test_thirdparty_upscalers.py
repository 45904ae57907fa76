"""Users' upscaler files: Real-ESRGAN/ESRGAN RRDB nets, SRVGG compact and SPAN, built tiny with
random weights in the exact key layouts of the files artists have (tests/upscaler_models.py),
saved as .pth (bare or under ``params_ema``) and .safetensors, imported through
``core.model_manager.import_model`` and run by the upscale job, whose pixels must be the
reference code's. Detection from shapes, tiling, cancel and bad files; one full-size
Real-ESRGAN x4plus (marked full_size: not run unless asked for)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from upscaler_models import (
    BasicSRRRDBNet,
    OldESRGAN,
    RefSPAN,
    SRVGGCompact,
    picture,
    randomise,
    realesrganer,
    run,
)

from core import cli, imageio
from core.device import is_out_of_memory
from core.jobs import Cancelled, Context, ImageRef, JobError, OutOfMemory
from core.model_manager import ModelManagerError, check_hash, import_model
from core.pipelines import upscale as up
from core.pipelines.upscale import UpscaleSpec, load_upscaler, upscale_tiles
from core.tensors import to_tensor, to_uint8
from core.thirdparty import OPENS, upscalers
from core.weights import ModelCache, list_models, read_card, verify_all


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))  # no shipped models
    monkeypatch.delenv("EASEL_MAX_PIXELS", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# name: (reference net, input fold of the Real-ESRGAN inference, scale, weight std, file kind)
CASES = {
    "x4plus": (lambda: BasicSRRRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=4),
               1, 4, 0.08, "params_ema"),
    "x2plus": (lambda: BasicSRRRDBNet(scale=2, num_feat=8, num_block=2, num_grow_ch=4),
               2, 2, 0.08, "pth"),
    "x1": (lambda: BasicSRRRDBNet(scale=1, num_feat=8, num_block=1, num_grow_ch=4),
           4, 1, 0.08, "safetensors"),
    "old_esrgan_x4": (lambda: OldESRGAN(nf=8, nb=2, gc=4, scale=4), 1, 4, 0.08, "pth"),
    "old_esrgan_x2": (lambda: OldESRGAN(nf=8, nb=1, gc=4, scale=2), 1, 2, 0.08, "params"),
    "compact_x4": (lambda: SRVGGCompact(num_feat=8, num_conv=2, upscale=4), 1, 4, 0.1,
                   "safetensors"),
    "compact_x2": (lambda: SRVGGCompact(num_feat=6, num_conv=1, upscale=2), 1, 2, 0.1,
                   "params_ema"),
    "span_x4": (lambda: RefSPAN(feature_channels=8, upscale=4), 1, 4, 0.02, "safetensors"),
    "span_x2_no_norm": (lambda: RefSPAN(feature_channels=6, upscale=2, norm=False), 1, 2, 0.1,
                        "pth"),
}


def save_user_file(state: dict, folder, name: str, kind: str):
    """``state`` written as a user's file: .safetensors, a bare .pth, or a .pth with the
    tensors under a training wrapper (``params_ema``...) as BasicSR writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in state.items()}
    if kind == "safetensors":
        path = folder / f"{name}.safetensors"
        save_file(state, str(path))
    else:
        path = folder / f"{name}.pth"
        torch.save(state if kind == "pth" else {kind: state, "iter": 1000}, path)
    return path


def reference(case: str, seed: int = 0):
    build, fold, scale, std, kind = CASES[case]
    return randomise(build(), std, seed), fold, scale, kind


def whole(gen):
    """The value a generator returns (its yields drained)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def one_line(exc: pytest.ExceptionInfo, *names: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and all(n in text for n in names), text
    return text


# --------------------------------------------------------------------------- import and run


@pytest.mark.parametrize("case", list(CASES))
def test_a_users_file_imports_and_upscales_like_the_reference(case, tmp_path):
    net, fold, scale, kind = reference(case)
    src = save_user_file(net.state_dict(), tmp_path / "downloads", f"my_{case}", kind)
    info = import_model(src)
    assert (info.family, info.name, info.source) == ("upscale", f"my_{case}", "user")
    card = read_card(info.path)
    assert card.config["scale"] == scale
    assert (card.config["in_channels"], card.config["out_channels"]) == (3, 3)
    data = src.read_bytes()
    assert card.extra["source"] == {"file": src.name, "bytes": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}
    assert check_hash(info) == "ok"

    rgb = picture(13, 11, seed=1)
    x = to_tensor(rgb)
    expected = realesrganer(net, (x + 1) / 2, fold, scale) * 2 - 1
    # the imported model, tiled as the job tiles it, computes the reference's numbers
    got = whole(upscale_tiles(load_upscaler(info.name), x, tile=8))
    assert got.shape == expected.shape == (1, 3, 13 * scale, 11 * scale)
    assert (got - expected).abs().max() < 1e-5
    assert expected.std() > 0.01  # the comparison is not between two flat pictures
    # and the job (same model, picture in and out as uint8) gives the reference's pixels
    result = run(UpscaleSpec(image=ImageRef.of(rgb), model=info.name))
    assert np.abs(result.images[0].astype(int) - to_uint8(expected)[0]).max() <= 1
    assert result.info["scale"] == scale and result.info["models"] == {info.name: card.sha256}


def test_imports_are_listed_verified_and_named_apart(tmp_path):
    net, *_ = reference("compact_x4")
    src = save_user_file(net.state_dict(), tmp_path, "realesr-general-x4v3", "pth")
    first, second = import_model(src), import_model(src)
    assert (first.name, second.name) == ("realesr-general-x4v3", "realesr-general-x4v3-2")
    named = import_model(src, name="general")
    assert [(m.name, m.family) for m in list_models("upscale")] == [
        ("general", "upscale"), ("realesr-general-x4v3", "upscale"),
        ("realesr-general-x4v3-2", "upscale")]
    assert all(ok for _, ok, _ in verify_all("upscale"))
    with pytest.raises(ModelManagerError, match="'general' already exists"):
        import_model(src, name="general")
    with pytest.raises(ModelManagerError,
                       match=r"is SRVGG compact x4 .* \(family upscale\), not a vae model"):
        import_model(src, family="vae")
    card = read_card(named.path)
    assert card.architecture == "compact" and card.extra["layout"] == "Real-ESRGAN compact"


def test_the_old_esrgan_layout_is_renamed_to_basicsr_names(tmp_path):
    old, *_ = reference("old_esrgan_x4")
    found = upscalers.detect_esrgan(old.state_dict())
    new = BasicSRRRDBNet(scale=4, num_feat=8, num_block=2, num_grow_ch=4)
    assert found.layout == "old ESRGAN"
    assert set(found.state_dict) == set(new.state_dict())
    new.load_state_dict(found.state_dict)  # the same weights, in BasicSR's net
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.allclose(new(x), old(x), atol=1e-6)
    # the ESRGAN repository's later names (RRDB_trunk, trunk_conv, upconv, HRconv) too
    renames = {"body.": "RRDB_trunk.", "conv_body.": "trunk_conv.", "conv_up": "upconv",
               "conv_hr.": "HRconv."}
    esrgan = {next((v + k[len(p):] for p, v in renames.items() if k.startswith(p)), k)
              .replace(".rdb", ".RDB"): t for k, t in new.state_dict().items()}
    assert "RRDB_trunk.1.RDB3.conv5.bias" in esrgan
    found = upscalers.detect_esrgan(esrgan)
    assert found.layout == "ESRGAN" and set(found.state_dict) == set(new.state_dict())


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(("net", "config"), [
    # Real-ESRGAN x4plus, x2plus and the anime 6B model (full size, on the meta device)
    (lambda: BasicSRRRDBNet(scale=4), {"scale": 4, "num_feat": 64, "num_block": 23,
                                       "num_grow_ch": 32, "pixel_unshuffle": 1}),
    (lambda: BasicSRRRDBNet(scale=2), {"scale": 2, "num_block": 23, "pixel_unshuffle": 2,
                                       "in_channels": 3}),
    (lambda: BasicSRRRDBNet(scale=4, num_block=6), {"scale": 4, "num_block": 6}),
    (lambda: OldESRGAN(nf=32, nb=5, gc=16, scale=8), {"scale": 8, "num_feat": 32,
                                                      "num_block": 5, "num_grow_ch": 16}),
    # realesr-general-x4v3 and realesr-animevideov3
    (lambda: SRVGGCompact(num_feat=64, num_conv=32, upscale=4), {"scale": 4, "num_feat": 64,
                                                                 "num_conv": 32}),
    (lambda: SRVGGCompact(num_feat=64, num_conv=16, upscale=2), {"scale": 2, "num_conv": 16}),
    (lambda: RefSPAN(feature_channels=48, upscale=4), {"scale": 4, "feature_channels": 48,
                                                       "norm": True}),
    (lambda: RefSPAN(feature_channels=52, upscale=2, norm=False), {"scale": 2, "norm": False,
                                                                   "feature_channels": 52}),
])
def test_detection_reads_the_config_from_tensor_shapes(net, config):
    with torch.device("meta"):
        state = net().state_dict()
    found = [d(state) for d in upscalers.DETECTORS]
    hits = [f for f in found if f is not None]
    assert len(hits) == 1  # exactly one family claims each layout
    assert config.items() <= hits[0].config.items(), hits[0].config


def test_x2plus_unshuffles_its_input_and_pads_odd_sizes_by_reflection(tmp_path):
    net, *_ = reference("x2plus")
    info = import_model(save_user_file(net.state_dict(), tmp_path, "x2plus", "pth"))
    assert read_card(info.path).config["pixel_unshuffle"] == 2
    model = load_upscaler(info.name)
    assert model.conv_first.in_channels == 12
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect")
        assert torch.equal(model(x), net(padded)[..., :14, :18])


# --------------------------------------------------------------------------- tiling, cancel


@pytest.mark.parametrize("case", ["x2plus", "compact_x4", "span_x2_no_norm"])
def test_tiles_give_the_pixels_of_one_pass(case, tmp_path, monkeypatch):
    net, _, scale, _ = reference(case)
    info = import_model(save_user_file(net.state_dict(), tmp_path, case, "pth"))
    model = load_upscaler(info.name)
    monkeypatch.setattr(up, "MAX_CONTEXT", 64)  # the whole reach of these tiny nets
    x = torch.rand(1, 3, 30, 27) * 2 - 1
    once = whole(upscale_tiles(model, x, tile=1000))
    tiled = whole(upscale_tiles(model, x, tile=9))  # 4 x 3 tiles (3 x 3 of 10 for x2plus)
    assert tiled.shape == once.shape == (1, 3, 30 * scale, 27 * scale)
    assert (tiled - once).abs().max() < 1e-5


def test_the_job_shows_progress_and_previews_per_tile_and_keeps_alpha(tmp_path, monkeypatch):
    net, *_ = reference("compact_x2")
    info = import_model(save_user_file(net.state_dict(), tmp_path, "c2", "safetensors"))
    rgba = picture(12, 20, alpha=True)
    events: list = []
    result = run(UpscaleSpec(image=ImageRef.of(rgba), model=info.name, tile=8), events)
    tiles = [e for e in events if e.message.startswith("Upscaling tile")]
    assert [(e.step, e.total) for e in tiles] == [(i, 6) for i in range(1, 7)]
    assert all(e.preview.shape == (24, 40, 3) for e in tiles)
    # the first preview is the enlarged input but for the finished tile; the last, the result
    assert np.array_equal(tiles[0].preview[16:, 16:], rgba[8:, 8:, :3].repeat(2, 0).repeat(2, 1))
    assert np.array_equal(tiles[-1].preview, result.images[0])
    assert result.images[0].shape == (24, 40, 3) and result.alpha.shape == (24, 40)


def test_cancel_stops_between_tiles_and_within_a_tile(tmp_path, monkeypatch):
    net, *_ = reference("x4plus")
    info = import_model(save_user_file(net.state_dict(), tmp_path, "rrdb", "pth"))
    spec = UpscaleSpec(image=ImageRef.of(picture(12, 12)), model=info.name, tile=4)
    events: list = []
    with pytest.raises(Cancelled):
        run(spec, events, cancel_after=1)
    assert [e.step for e in events if e.message.startswith("Upscaling")] == [1]
    # a cancel during a tile stops it at the next layer (a big RRDB tile takes a minute)
    ctx = Context.for_spec(spec, device="cpu", models=ModelCache())
    model = load_upscaler(info.name, ctx)
    convs: list = []

    def count(*_):
        convs.append(1)
        if len(convs) == 3:
            ctx.cancel_event.set()

    hook = model.conv_first.register_forward_hook(count)
    hooks = [hook] + [m.register_forward_hook(count) for m in model.body.modules()
                      if isinstance(m, torch.nn.Conv2d)]
    try:
        with pytest.raises(Cancelled):
            run(spec, ctx=ctx)
    finally:
        for h in hooks:
            h.remove()
    assert len(convs) == 3
    assert not any(m._forward_pre_hooks for m in model.modules())  # the job's are gone


def test_out_of_memory_names_smaller_tiles_and_the_cpu(tmp_path, monkeypatch, capsys):
    net, *_ = reference("compact_x2")
    info = import_model(save_user_file(net.state_dict(), tmp_path, "c2", "safetensors"))
    spec = UpscaleSpec(image=ImageRef.of(picture(12, 20)), model=info.name, tile=8)
    assert run(spec).images[0].shape == (24, 40, 3)  # the tiles fit

    def oom(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(load_upscaler(info.name)), "forward", oom)
    with pytest.raises(OutOfMemory) as exc:
        run(spec)
    assert one_line(exc, "Out of memory on cpu upscaling 20x12 in 8 px tiles",
                    "smaller tiles (e.g. 4 px", "the CPU")
    assert is_out_of_memory(exc.value)  # so the app runs a GPU job again on the CPU
    src = tmp_path / "in.png"
    imageio.save_png(src, picture(12, 20))
    assert cli.main(["upscale", str(src), "-o", str(tmp_path / "out.png"), "--model",
                     info.name, "--tile", "8"]) == 2
    assert "in 8 px tiles: use smaller tiles" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("tile", [0, 3, 5000])
def test_a_tile_size_out_of_range_is_refused(tile, tmp_path):
    net, *_ = reference("compact_x2")
    info = import_model(save_user_file(net.state_dict(), tmp_path, "c2", "safetensors"))
    with pytest.raises(JobError, match=f"tile size must be 4 to 2048 pixels, not {tile}"):
        run(UpscaleSpec(image=ImageRef.of(picture(8, 8)), model=info.name, tile=tile))


# --------------------------------------------------------------------------- bad files


def test_a_file_of_no_known_architecture_is_one_clear_line(tmp_path):
    src = tmp_path / "classifier.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), src)
    with pytest.raises(ModelManagerError) as exc:
        import_model(src)
    assert one_line(exc, "classifier.pth") == (
        f"classifier.pth is not a model Easel can open (it opens {OPENS}).")
    assert "SPAN" in OPENS and "LaMa" in OPENS
    assert list_models() == []


def test_truncated_and_mis_shaped_files_are_refused(tmp_path):
    net, *_ = reference("x4plus")
    state = net.state_dict()
    full = save_user_file(state, tmp_path, "full", "pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[:len(full.read_bytes()) // 2])
    with pytest.raises(ModelManagerError) as exc:
        import_model(cut)
    assert "truncated" in one_line(exc, "cut.pth")
    st = save_user_file(state, tmp_path, "cut_st", "safetensors")
    st.write_bytes(st.read_bytes()[:-100])
    with pytest.raises(ModelManagerError) as exc:
        import_model(st)
    assert "not a valid safetensors file" in one_line(exc, "cut_st.safetensors")

    wrong = dict(state, **{"body.0.rdb1.conv2.weight": torch.zeros(4, 9, 3, 3)})
    with pytest.raises(ModelManagerError) as exc:
        import_model(save_user_file(wrong, tmp_path, "wrong", "pth"))
    assert "wrong shape body.0.rdb1.conv2.weight [4, 9, 3, 3] (expected [4, 12, 3, 3])" in \
        one_line(exc, "wrong.pth", "ESRGAN RRDB x4")
    missing = {k: v for k, v in state.items() if k != "conv_hr.bias"}
    with pytest.raises(ModelManagerError) as exc:
        import_model(save_user_file(missing, tmp_path, "missing", "pth"))
    assert "missing conv_hr.bias" in one_line(exc, "missing.pth")
    assert list_models() == []


@pytest.mark.parametrize(("state", "message"), [
    # a compact net whose last conv cannot be 3 channels x scale**2
    ({"body.0.weight": torch.zeros(4, 3, 3, 3), "body.1.weight": torch.zeros(4),
      "body.2.weight": torch.zeros(20, 4, 3, 3)}, "scale cannot be told"),
    # a greyscale compact net
    ({"body.0.weight": torch.zeros(4, 1, 3, 3), "body.0.bias": torch.zeros(4),
      "body.1.weight": torch.zeros(4), "body.2.weight": torch.zeros(4, 4, 3, 3),
      "body.2.bias": torch.zeros(4)}, "Easel upscales RGB pictures"),
    # an RRDB net whose first conv is not a conv
    ({"conv_first.weight": torch.zeros(8), "body.0.rdb1.conv1.weight": torch.zeros(4, 8, 3, 3),
      "conv_body.weight": torch.zeros(8, 8, 3, 3)}, "conv_first.weight is [8], not a conv"),
    # an old ESRGAN net whose layer indices are not the ESRGAN sequence
    ({"model.0.weight": torch.zeros(8, 3, 3, 3), "model.1.sub.0.RDB1.conv1.0.weight":
      torch.zeros(4, 8, 3, 3), "model.1.sub.1.weight": torch.zeros(8, 8, 3, 3),
      "model.6.weight": torch.zeros(3, 8, 3, 3)}, "not the ESRGAN sequence"),
])
def test_files_that_resemble_an_upscaler_say_what_does_not_add_up(state, message, tmp_path):
    with pytest.raises(ModelManagerError) as exc:
        import_model(save_user_file(state, tmp_path, "odd", "pth"))
    assert message in one_line(exc, "odd.pth")


def test_a_hostile_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("the pickle ran",))

    src = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(1)}, "x": Payload()}, src)
    with pytest.raises(ModelManagerError) as exc:
        import_model(src)
    assert "Save it as .safetensors first" in one_line(exc, src.name)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(ModelManagerError):
        import_model(legacy)
    assert not marker.exists() and list_models() == []


def test_an_easel_model_that_comes_with_its_card_is_still_refused_as_a_pickle(tmp_path):
    net, *_ = reference("compact_x4")
    src = save_user_file(net.state_dict(), tmp_path, "c", "pth")
    (tmp_path / "c.json").write_text(json.dumps({
        "name": "c", "family": "upscale", "architecture": "compact",
        "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}))
    with pytest.raises(ModelManagerError, match="pickle checkpoint"):
        import_model(src)


# --------------------------------------------------------------------------- command line


def test_cli_imports_a_pth_and_upscales_with_it(tmp_path, capsys):
    net, *_ = reference("span_x4")
    src = save_user_file(net.state_dict(), tmp_path, "4x-span", "pth")
    assert cli.main(["models", "import", str(src), "--name", "span4"]) == 0
    assert "Installed upscale/span4" in capsys.readouterr().out
    png = tmp_path / "in.png"
    rgba = picture(5, 7, alpha=True)
    imageio.save_png(png, rgba[..., :3], alpha=rgba[..., 3])
    out = tmp_path / "out.png"
    assert cli.main(["upscale", str(png), "-o", str(out), "--model", "span4"]) == 0
    loaded = imageio.load_image(out)
    assert loaded.size == (28, 20) and loaded.alpha is not None
    junk = tmp_path / "notes.pth"
    torch.save({"w": torch.zeros(3)}, junk)
    capsys.readouterr()
    assert cli.main(["models", "import", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"easel: error: notes.pth is not a model Easel can open (it opens {OPENS})."


# --------------------------------------------------------------------------- full size


@pytest.mark.full_size
@pytest.mark.timeout(1800)
def test_full_size_real_esrgan_x4plus_maps_every_key_and_runs_a_tile(tmp_path, monkeypatch):
    """Real-ESRGAN x4plus at full size (23 blocks, 64 features, 16.7 M parameters) with random
    weights, saved in fp16 under ``params_ema`` as its release is: every key maps and one
    tile runs. Run with: pytest -m full_size -s tests/core/test_thirdparty_upscalers.py"""
    torch.set_num_threads(min(4, os.cpu_count() or 1))  # the fixture restores it
    net = randomise(BasicSRRRDBNet(scale=4), 0.01)
    state = {k: v.half() for k, v in net.state_dict().items()}
    src = save_user_file(state, tmp_path, "RealESRGAN_x4plus", "params_ema")
    t0 = time.perf_counter()
    info = import_model(src)
    t_import = time.perf_counter() - t0
    card = read_card(info.path)
    assert card.config == {"in_channels": 3, "out_channels": 3, "scale": 4, "num_feat": 64,
                           "num_block": 23, "num_grow_ch": 32, "pixel_unshuffle": 1}
    model = load_upscaler(info.name)
    mapped = model.state_dict()
    assert set(mapped) == set(state)
    assert all(torch.equal(mapped[k], state[k].float()) for k in state)
    rgb = picture(32, 32)
    events: list = []
    t0 = time.perf_counter()
    result = run(UpscaleSpec(image=ImageRef.of(rgb), model=info.name, tile=32), events)
    t_tile = time.perf_counter() - t0
    assert result.images[0].shape == (128, 128, 3)
    x = (to_tensor(rgb) + 1) / 2
    expected = to_uint8(realesrganer(net.half().float(), x) * 2 - 1)[0]
    assert np.abs(result.images[0].astype(int) - expected).max() <= 1
    print(f"\nfull-size x4plus: {len(state)} tensors, "
          f"{sum(v.numel() for v in state.values()):,} parameters, source "
          f"{src.stat().st_size / 1e6:.1f} MB fp16 -> {info.path.stat().st_size / 1e6:.1f} MB; "
          f"every key maps; import {t_import:.1f} s; one 32 px tile -> 128 px in "
          f"{t_tile:.1f} s; {card.extra['description']}")
