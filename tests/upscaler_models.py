"""Reference upscalers in the exact key layouts of the files artists have, for tests.

Each class mirrors its original's structure (module nesting, names, forward) independently of
Easel's modules in core/nets, so a state dict of one of these is what a user's file holds and
its forward is what the original code computes:

- ``BasicSRRRDBNet``: BasicSR's RRDBNet (Real-ESRGAN x4plus, x2plus, anime 6B), with the
  input pixel unshuffle of its scale 2 and 1 nets.
- ``OldESRGAN``: the old ESRGAN layout, one ``model`` Sequential (``model.0``,
  ``model.1.sub.N.RDB1.conv1.0``...), of any power-of-two scale.
- ``SRVGGCompact``: Real-ESRGAN's SRVGGNetCompact.
- ``RefSPAN``: hongyuanyu/SPAN in eval mode (its Conv3XC re-folded with the reference's
  flip-and-convolve arithmetic), with the ``no_norm`` variant.

All take and give NCHW in [0, 1]. ``realesrganer(net, x, fold)`` runs a net as Real-ESRGAN's
inference does (reflection-pad to the fold, crop the output). ``picture`` and ``run`` make a
test picture and run an upscale job (Easel's own upscaler's tests use them too).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.jobs import Context, JobSpec, Result, run_job
from core.weights import ModelCache


class _RDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class _RRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = _RDB(nf, gc), _RDB(nf, gc), _RDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class BasicSRRRDBNet(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23,
                 num_grow_ch=32) -> None:
        super().__init__()
        self.scale = scale
        fold = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * fold * fold, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[_RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        if self.scale in (1, 2):
            x = F.pixel_unshuffle(x, 4 // self.scale)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


class _OldRDB(nn.Module):
    """The old layout's dense block: each conv a Sequential (conv, then LeakyReLU but for the
    last), capitalised names."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        for j in range(1, 6):
            out = nf if j == 5 else gc
            layers = [nn.Conv2d(nf + (j - 1) * gc, out, 3, 1, 1)]
            if j < 5:
                layers.append(nn.LeakyReLU(0.2))
            setattr(self, f"conv{j}", nn.Sequential(*layers))

    def forward(self, x):
        feats = [x]
        for j in range(1, 6):
            feats.append(getattr(self, f"conv{j}")(torch.cat(feats, 1)))
        return feats[-1] * 0.2 + x


class _OldRRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _OldRDB(nf, gc), _OldRDB(nf, gc), _OldRDB(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class _Shortcut(nn.Module):
    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class OldESRGAN(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4) -> None:
        super().__init__()
        ups = []
        for _ in range(scale.bit_length() - 1):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(nf, nf, 3, 1, 1),
                    nn.LeakyReLU(0.2)]
        trunk = nn.Sequential(*[_OldRRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, 1, 1))
        self.model = nn.Sequential(nn.Conv2d(in_nc, nf, 3, 1, 1), _Shortcut(trunk), *ups,
                                   nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(nf, out_nc, 3, 1, 1))

    def forward(self, x):
        return self.model(x)


class SRVGGCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4) -> None:
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
                                   nn.PReLU(num_parameters=num_feat)])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(nn.PReLU(num_parameters=num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


class _Conv3XC(nn.Module):
    def __init__(self, c_in: int, c_out: int, gain: int = 2) -> None:
        super().__init__()
        self.sk = nn.Conv2d(c_in, c_out, 1, 1, 0)
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_in * gain, 1, 1, 0),
                                  nn.Conv2d(c_in * gain, c_out * gain, 3, 1, 0),
                                  nn.Conv2d(c_out * gain, c_out, 1, 1, 0))
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, 1, 1)

    def forward(self, x):
        # SPAN's update_params: compose the chain by convolving its kernels (flipped, as a
        # convolution of kernels is a correlation of flipped ones), then add the shortcut.
        w1, b1 = self.conv[0].weight, self.conv[0].bias
        w2, b2 = self.conv[1].weight, self.conv[1].bias
        w3, b3 = self.conv[2].weight, self.conv[2].bias
        w = F.conv2d(w1.flip(2, 3).permute(1, 0, 2, 3), w2, padding=2).flip(2, 3) \
            .permute(1, 0, 2, 3)
        b = (w2 * b1.reshape(1, -1, 1, 1)).sum((1, 2, 3)) + b2
        weight = F.conv2d(w.flip(2, 3).permute(1, 0, 2, 3), w3).flip(2, 3).permute(1, 0, 2, 3)
        bias = (w3 * b.reshape(1, -1, 1, 1)).sum((1, 2, 3)) + b3
        weight = weight + F.pad(self.sk.weight, [1, 1, 1, 1])
        return F.conv2d(x, weight, bias + self.sk.bias, padding=1)


class _SPAB(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = _Conv3XC(c, c), _Conv3XC(c, c), _Conv3XC(c, c)
        self.act1 = nn.SiLU(inplace=True)  # as SPAN's: it activates out1 in place, and
        # out1 is returned (and concatenated by the net) after that

    def forward(self, x):
        out1 = self.c1_r(x)
        out1_act = self.act1(out1)
        out2 = self.c2_r(out1_act)
        out3 = self.c3_r(self.act1(out2))
        sim_att = torch.sigmoid(out3) - 0.5
        return (out3 + x) * sim_att, out1, sim_att


class RefSPAN(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4,
                 norm=True) -> None:
        super().__init__()
        self.mean = torch.tensor((0.4488, 0.4371, 0.4040)).view(1, 3, 1, 1)
        if not norm:
            self.register_buffer("no_norm", torch.zeros(1))
        self.norm = norm
        c = feature_channels
        self.conv_1 = _Conv3XC(num_in_ch, c)
        for i in range(1, 7):
            setattr(self, f"block_{i}", _SPAB(c))
        self.conv_cat = nn.Conv2d(4 * c, c, 1, 1, 0)
        self.conv_2 = _Conv3XC(c, c)
        self.upsampler = nn.Sequential(nn.Conv2d(c, num_out_ch * upscale ** 2, 3, 1, 1),
                                       nn.PixelShuffle(upscale))

    def forward(self, x):
        if self.norm:
            x = (x - self.mean) * 255.0
        out_feature = self.conv_1(x)
        out_b1, _, _ = self.block_1(out_feature)
        out_b2, _, _ = self.block_2(out_b1)
        out_b3, _, _ = self.block_3(out_b2)
        out_b4, _, _ = self.block_4(out_b3)
        out_b5, _, _ = self.block_5(out_b4)
        out_b6, out_b5_2, _ = self.block_6(out_b5)
        out_b6 = self.conv_2(out_b6)
        out = self.conv_cat(torch.cat([out_feature, out_b6, out_b1, out_b5_2], 1))
        return self.upsampler(out)


@torch.no_grad()
def realesrganer(net: nn.Module, x: torch.Tensor, fold: int = 1, scale: int = 4
                 ) -> torch.Tensor:
    """``net`` run as Real-ESRGAN's inference runs it: the input reflection-padded at the
    bottom and right to a multiple of ``fold``, the output cropped back."""
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % fold, 0, -h % fold), mode="reflect") if fold > 1 else x
    return net(x)[..., :h * scale, :w * scale]


def randomise(net: nn.Module, std: float, seed: int = 0) -> nn.Module:
    """Every parameter drawn from N(0, std) (a trained net's scale, not its init's), in eval
    mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return net.eval()


def picture(h: int, w: int, seed: int = 0, alpha: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 4 if alpha else 3), dtype=np.uint8)


def run(spec: JobSpec, events: list | None = None, cancel_after: int | None = None,
        ctx: Context | None = None) -> Result:
    """The job on the CPU (in ``ctx`` when given), its progress appended to ``events``,
    cancelled once a progress reaches step ``cancel_after``."""
    ctx = ctx or Context.for_spec(spec, device="cpu", models=ModelCache())

    def on_progress(p):
        if events is not None:
            events.append(p)
        if cancel_after is not None and p.step >= cancel_after:
            ctx.cancel_event.set()

    return run_job(spec, ctx, on_progress)
