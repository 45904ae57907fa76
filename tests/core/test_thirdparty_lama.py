"""LaMa models from users' files: detection, import through the real path, the Inpaint engine.

The oracle is a tiny random-weight generator written the way advimman/lama writes
``FFCResNetGenerator`` (saicinpainting/training/modules/ffc.py: channel ratios, ``nn.Identity``
for missing paths, tuples with ``0`` for an absent group, the FFT's real/imaginary parts
stacked last and permuted), so its ``state_dict`` has the released key layout. Files are
saved the way users have them: a Lightning ``.ckpt`` with ``state_dict`` -> ``generator.model...``
beside a discriminator and losses, and a plain safetensors of ``model...`` keys.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from core import cli, imageio
from core.jobs import Cancelled, Context, ImageRef, JobError, run_job
from core.model_manager import ModelManagerError, import_model
from core.nets.lama import LaMa, LaMaConfig
from core.pipelines.inpaint import InpaintSpec
from core.thirdparty.lama import detect
from core.weights import load_model, read_card, verify_all

# --------------------------------------------------------------------------- reference layout


class RefFourierUnit(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_layer = nn.Conv2d(cin * 2, cout * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        b = x.shape[0]
        f = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        f = torch.stack((f.real, f.imag), dim=-1).permute(0, 1, 4, 2, 3).contiguous()
        f = self.relu(self.bn(self.conv_layer(f.view((b, -1) + f.size()[3:]))))
        f = f.view((b, -1, 2) + f.size()[2:]).permute(0, 1, 3, 4, 2).contiguous()
        return torch.fft.irfftn(torch.complex(f[..., 0], f[..., 1]), s=x.shape[-2:],
                                dim=(-2, -1), norm="ortho")


class RefSpectralTransform(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.downsample = nn.Identity()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False),
                                   nn.BatchNorm2d(cout // 2), nn.ReLU(inplace=True))
        self.fu = RefFourierUnit(cout // 2, cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x):
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


class RefFFC(nn.Module):
    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        in_cg, out_cg = int(cin * ratio_gin), int(cout * ratio_gout)
        in_cl, out_cl = cin - in_cg, cout - out_cg
        self.ratio_gout = ratio_gout

        def conv(i, o):
            if i == 0 or o == 0:
                return nn.Identity()
            return nn.Conv2d(i, o, k, stride, padding, 1, 1, False, padding_mode="reflect")

        self.convl2l, self.convl2g = conv(in_cl, out_cl), conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        self.convg2g = (nn.Identity() if in_cg == 0 or out_cg == 0
                        else RefSpectralTransform(in_cg, out_cg))

    def forward(self, x):
        x_l, x_g = x if type(x) is tuple else (x, 0)
        out_l, out_g = 0, 0
        if self.ratio_gout != 1:
            out_l = self.convl2l(x_l) + self.convg2l(x_g)
        if self.ratio_gout != 0:
            out_g = self.convl2g(x_l) + self.convg2g(x_g)
        return out_l, out_g


class RefFFCBnAct(nn.Module):
    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        self.ffc = RefFFC(cin, cout, k, ratio_gin, ratio_gout, stride, padding)
        g = int(cout * ratio_gout)
        self.bn_l = nn.Identity() if ratio_gout == 1 else nn.BatchNorm2d(cout - g)
        self.bn_g = nn.Identity() if ratio_gout == 0 else nn.BatchNorm2d(g)
        self.act_l = nn.Identity() if ratio_gout == 1 else nn.ReLU(inplace=True)
        self.act_g = nn.Identity() if ratio_gout == 0 else nn.ReLU(inplace=True)

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        return self.act_l(self.bn_l(x_l)), self.act_g(self.bn_g(x_g))


class RefResnetBlock(nn.Module):
    def __init__(self, dim, ratio):
        super().__init__()
        self.conv1 = RefFFCBnAct(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = RefFFCBnAct(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x):
        x_l, x_g = self.conv2(self.conv1(x))
        return x[0] + x_l, x[1] + x_g


class RefConcat(nn.Module):
    def forward(self, x):
        return torch.cat(x, dim=1) if torch.is_tensor(x[1]) else x[0]


class RefGenerator(nn.Module):
    """advimman/lama's FFCResNetGenerator with big-lama's settings (ffc_resnet_075)."""

    def __init__(self, input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=18,
                 max_features=1024, ratio=0.75):
        super().__init__()
        model = [nn.ReflectionPad2d(3), RefFFCBnAct(input_nc, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            model.append(RefFFCBnAct(min(max_features, ngf * 2 ** i),
                                     min(max_features, ngf * 2 ** (i + 1)), 3, 0,
                                     ratio if i == n_downsampling - 1 else 0, 2, 1))
        dim = min(max_features, ngf * 2 ** n_downsampling)
        model += [RefResnetBlock(dim, ratio) for _ in range(n_blocks)] + [RefConcat()]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            out = min(max_features, int(ngf * mult / 2))
            model += [nn.ConvTranspose2d(min(max_features, ngf * mult), out, 3, 2, 1, 1),
                      nn.BatchNorm2d(out), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*model)

    def forward(self, img):
        return self.model(img)


TINY = {"ngf": 4, "n_blocks": 2}  # widths 4, 8, 16, 32; 24 of the 32 bottleneck channels global
TINY_CONFIG = LaMaConfig(channels=4, blocks=2, global_channels=24)


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Every weight and batch-norm statistic random, so a swapped tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return net.eval()


def lightning_checkpoint(net: nn.Module) -> dict:
    """What a LaMa training run saves: the generator beside a discriminator and losses."""
    state = OrderedDict((f"generator.{k}", v) for k, v in net.state_dict().items())
    state["discriminator.model0.0.weight"] = torch.zeros(8, 3, 4, 4)
    state["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(8, 3, 7, 7)
    return {"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9",
            "state_dict": state}


def reference_paint(ref: nn.Module, img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The reference generator's picture (float HxWx3 in [0, 1]) for a whole uint8 picture,
    mirrored out to multiples of 8 as LaMa's own prediction pads."""
    h, w = hole.shape
    pad = ((0, -h % 8), (0, -w % 8))
    x = torch.from_numpy(np.pad(img, (*pad, (0, 0)), mode="symmetric")).permute(2, 0, 1)
    x = x[None].float() / 255
    m = torch.from_numpy(np.pad(hole, pad, mode="symmetric"))[None, None].float()
    with torch.no_grad():
        out = ref(torch.cat([x * (1 - m), m], dim=1))
    return out[0, :, :h, :w].permute(1, 2, 0).numpy()


@pytest.fixture
def ref() -> nn.Module:
    return randomised(RefGenerator(**TINY))


@pytest.fixture
def installed(ref, tmp_path, monkeypatch) -> str:
    """The tiny reference LaMa imported from a Lightning .ckpt; its installed name."""
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    src = tmp_path / "tiny-lama.ckpt"
    torch.save(lightning_checkpoint(ref), src)
    return import_model(src).name


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    rng = np.random.default_rng(seed)
    base = np.stack([x * 200 // max(w, 1), y * 200 // max(h, 1), (x + y) % 50 * 4], -1)
    return (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)


def hole_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def lama_spec(img: np.ndarray, mask: np.ndarray, model: str, **kw) -> InpaintSpec:
    return InpaintSpec(image=ImageRef.of(img), mask=ImageRef.of(mask, embed=True),
                       engine="lama", model=model, **kw)


def run(spec: InpaintSpec, on_progress=None, ctx: Context | None = None):
    return run_job(spec, ctx or Context.for_spec(spec, device="cpu"), on_progress)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("kw, config", [
    (TINY, TINY_CONFIG),
    ({"ngf": 4, "n_blocks": 1, "max_features": 16, "input_nc": 5, "output_nc": 4},
     LaMaConfig(in_channels=5, out_channels=4, channels=4, blocks=1, max_channels=16,
                global_channels=12)),
])
@pytest.mark.parametrize("prefix", ["", "generator.", "model."])
def test_detection_derives_the_config_from_names_and_shapes(kw, config, prefix):
    state = {prefix + k: v for k, v in RefGenerator(**kw).state_dict().items()}
    found = detect(state)
    assert found is not None
    assert (found.family, found.architecture) == ("lama", "lama")
    assert LaMaConfig(**found.config) == config
    # The derived config builds a module with exactly the reference's keys and shapes, which
    # are the file's generator tensors with their prefix taken off.
    mine = {k: v.shape for k, v in LaMa(config).state_dict().items()}
    assert mine == {k.removeprefix(prefix): v.shape for k, v in state.items()}
    assert {k: v.shape for k, v in found.state_dict.items()} == mine


def test_other_files_are_not_lama():
    from core.nets.upscale import UpscaleConfig, Upscaler

    assert detect(Upscaler(UpscaleConfig()).state_dict()) is None
    assert detect({"conv_first.weight": torch.zeros(64, 3, 3, 3)}) is None
    assert detect({}) is None
    # A first layer alone, without the rest of the generator, is not a LaMa either.
    assert detect({"model.1.ffc.convl2l.weight": torch.zeros(4, 4, 7, 7)}) is None


# --------------------------------------------------------------------------- import


def test_ckpt_and_safetensors_import_to_the_same_network_as_the_reference(ref, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    ckpt = tmp_path / "big-lama.ckpt"
    torch.save(lightning_checkpoint(ref), ckpt)
    plain = tmp_path / "lama-plain.safetensors"
    # Re-saved files often drop batch norm's step counters; the import puts them back.
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()
               if not k.endswith("num_batches_tracked")}, plain)
    x = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    m = (torch.rand(2, 1, 40, 48, generator=torch.Generator().manual_seed(2)) > 0.6).float()
    with torch.no_grad():
        expected = ref(torch.cat([x * (1 - m), m], dim=1))
    for src in (ckpt, plain):
        info = import_model(src)
        assert (info.family, info.name) == ("lama", src.stem)
        card = read_card(info.path)
        assert card.architecture == "lama" and LaMaConfig(**card.config) == TINY_CONFIG
        assert card.extra["source"] == {
            "file": src.name, "bytes": src.stat().st_size,
            "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
        net = load_model(info.path)
        assert isinstance(net, LaMa)
        with torch.no_grad():
            torch.testing.assert_close(net(x, m), expected, atol=1e-5, rtol=0)
    # Listed and verified like every model; a second import of the same file gets a new name.
    assert [(i.name, ok) for i, ok, _ in verify_all("lama")] == [
        ("big-lama", True), ("lama-plain", True)]
    assert import_model(ckpt).name == "big-lama-2"
    with pytest.raises(ModelManagerError, match="'big-lama' already exists"):
        import_model(ckpt, name="big-lama")
    with pytest.raises(ModelManagerError, match=r"\(family lama\), not a vae model"):
        import_model(ckpt, family="vae")


class NotWeights:  # any object torch.load(weights_only=True) refuses to build
    pass


def test_bad_files_are_refused_with_one_line_naming_them(ref, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    good = io.BytesIO()
    torch.save(lightning_checkpoint(ref), good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    wrong = tmp_path / "wrong.ckpt"
    ckpt = lightning_checkpoint(ref)
    ckpt["state_dict"]["generator.model.5.conv1.ffc.convg2g.fu.conv_layer.weight"] = \
        torch.zeros(24, 12, 1, 1)
    torch.save(ckpt, wrong)
    unknown = tmp_path / "unknown.pth"
    torch.save(nn.Linear(3, 2).state_dict(), unknown)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": ref.state_dict(), "hparams": NotWeights()}, pickled)
    cases = {truncated: "truncated or not a PyTorch checkpoint",
             wrong: "wrong shape model.5.conv1.ffc.convg2g.fu.conv_layer.weight [24, 12, 1, 1]",
             unknown: "is not a model Easel can open",
             pickled: "Save it as .safetensors first"}
    for path, expected in cases.items():
        with pytest.raises(ModelManagerError) as err:
            import_model(path)
        message = str(err.value)
        assert path.name in message and expected in message and "\n" not in message
        assert cli.main(["models", "import", str(path)]) == 2
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and path.name in err_lines[0]
    # A safetensors said to be a LaMa is refused too, rather than installed unverified.
    linear = tmp_path / "linear.safetensors"
    save_file(nn.Linear(3, 2).state_dict(), linear)
    with pytest.raises(ModelManagerError, match="linear.safetensors is not a model Easel can open"):
        import_model(linear, family="lama")
    assert verify_all("lama") == []


# --------------------------------------------------------------------------- the engine


def test_a_lama_fill_is_the_reference_generators_and_keeps_every_other_pixel(ref, installed):
    img = picture(45, 38)  # not multiples of 8: mirrored out, as LaMa's own prediction does
    mask = hole_mask(45, 38, 12, 30, 9, 25)
    hole = mask > 0
    res = run(lama_spec(img, mask, installed))
    (out,) = res.images
    np.testing.assert_array_equal(out[~hole], img[~hole])
    expected = np.clip(np.rint(reference_paint(ref, img, hole) * 255), 0, 255)
    diff = np.abs(out.astype(np.int16) - expected)[hole]
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # equal up to rounding
    assert (out[hole] != img[hole]).any()
    assert res.info["engine"] == "lama" and res.info["crop"] == [0, 0, 38, 45]
    assert res.info["painted_at"] == [38, 45] and set(res.info["models"]) == {installed}


def test_large_pictures_paint_a_context_box_and_scale_it_to_the_models_size(installed):
    img = picture(700, 900, seed=3)
    small = hole_mask(700, 900, 300, 340, 600, 660)
    res = run(lama_spec(img, small, installed))
    left, top, w, h = res.info["crop"]
    assert (w, h) == (512, 512) and res.info["painted_at"] == [512, 512]
    assert top <= 300 and top + h >= 340 and left <= 600 and left + w >= 660
    np.testing.assert_array_equal(res.images[0][small == 0], img[small == 0])

    big = hole_mask(700, 900, 100, 600, 100, 600)  # twice its box is the whole picture
    res = run(lama_spec(img, big, installed, feather=2))
    assert res.info["crop"] == [0, 0, 900, 700]
    pw, ph = res.info["painted_at"]
    assert abs(pw * ph - 512 * 512) < 2000 and res.info["seam_px"] == 2
    np.testing.assert_array_equal(res.images[0][big == 0], img[big == 0])


def test_cancel_before_and_after_the_model_step(installed):
    img, mask = picture(40, 40), hole_mask(40, 40, 10, 20, 10, 20)
    spec = lama_spec(img, mask, installed)
    ctx = Context.for_spec(spec, device="cpu")
    ctx.cancel_event.set()
    with pytest.raises(Cancelled):
        run(spec, ctx=ctx)
    ctx = Context.for_spec(spec, device="cpu")
    seen = []

    def cancel_when_painting(p):
        seen.append(p.message)
        if p.message.startswith("LaMa is painting"):
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run(spec, cancel_when_painting, ctx)
    assert seen[-1] == "LaMa is painting a 40x40 crop"


def test_missing_model_and_out_of_memory_are_clear_job_errors(installed, monkeypatch):
    img, mask = picture(32, 32), hole_mask(32, 32, 8, 16, 8, 16)
    with pytest.raises(JobError, match="No LaMa model called 'nope' is installed; installed: "
                       "tiny-lama"):
        run(lama_spec(img, mask, "nope"))

    def oom(self, image, mask):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(LaMa, "forward", oom)
    with pytest.raises(JobError, match="Out of memory on cpu while LaMa painted a 32x32 crop"):
        run(lama_spec(img, mask, installed))


def test_the_cli_fills_with_lama_and_the_png_records_the_model(installed, tmp_path, capsys):
    img, mask = picture(40, 48, seed=5), hole_mask(40, 48, 10, 25, 12, 30)
    src, msk, out = tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    Image.fromarray(mask).save(msk)
    assert cli.main(["inpaint", str(src), "--mask", str(msk), "-o", str(out), "--engine",
                     "lama", "--model", installed, "--device", "cpu"]) == 0
    meta = imageio.read_metadata(out)
    spec = InpaintSpec.from_dict(meta["spec"])
    assert (spec.engine, spec.model) == ("lama", installed)
    assert spec.to_dict() == meta["spec"] and set(meta["models"]) == {installed}
    filled = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(filled[mask == 0], img[mask == 0])
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again).convert("RGB")), filled)
    capsys.readouterr()
    assert cli.main(["inpaint", str(src), "--mask", str(msk), "-o", str(tmp_path / "x.png"),
                     "--engine", "lama"]) == 2
    assert "--engine lama needs --model NAME" in capsys.readouterr().err


# --------------------------------------------------------------------------- full size


@pytest.mark.full_size
def test_full_size_big_lama_maps_every_key_and_paints_512_px(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    t0 = time.perf_counter()
    ref = randomised(RefGenerator())  # big-lama: ngf 64, 3 downsamplings, 18 blocks
    src = tmp_path / "big-lama.ckpt"
    torch.save(lightning_checkpoint(ref), src)
    info = import_model(src)
    built = time.perf_counter() - t0
    net = load_model(info.path)
    keys = set(net.state_dict())
    assert keys == set(ref.state_dict())
    assert net.config == LaMaConfig()
    img = picture(512, 512, seed=7)
    hole = hole_mask(512, 512, 150, 350, 180, 330) > 0
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(hole)[None, None].float()
    t1 = time.perf_counter()
    with torch.no_grad():
        out = net(x, m)
    forward = time.perf_counter() - t1
    expected = torch.from_numpy(reference_paint(ref, img, hole)).permute(2, 0, 1)[None]
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    params = sum(p.numel() for p in net.parameters())
    print(f"\nfull-size big-lama: {len(keys)} keys ({params:,} parameters) all mapped; "
          f"file {src.stat().st_size / 2**20:.0f} MiB -> {info.path.stat().st_size / 2**20:.0f} "
          f"MiB; build+save+import {built:.1f} s; 512 px forward {forward:.2f} s on "
          f"{torch.get_num_threads()} CPU threads")
