"""Style transfer: random feature networks, colour transfer, procedural paintings, the
optimisation pipeline (style matched, content kept, masks, colours, bad input) and the fast
style family trained by its tiny recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.algorithms import colour
from core.catalog import fast_styles
from core.data.styles import STYLES, render_style
from core.jobs import Cancelled, Context, ImageRef, JobError, JobSpec, run_job
from core.nets.adain import AdaINConfig, AdaINNet
from core.nets.features import FeatureConfig, RandomFeatures, gram, pink_noise
from core.pipelines.style import StyleSpec, resize_wrapped, seamless, set_padding
from core.specs.style import estimate_cpu_seconds, level_steps, pyramid
from core.tensors import resize


def photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth picture with an edge: a gradient sky over a darker block."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([60 + 2 * x, 90 + y, 200 - x], -1).astype(np.float64)
    img[h // 2:, w // 4:3 * w // 4] = (120, 70, 40)
    noise = np.random.default_rng(seed).normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def spec_for(content: np.ndarray, *styles: np.ndarray, **kw) -> StyleSpec:
    kw.setdefault("size", 64)
    kw.setdefault("steps", 6)
    return StyleSpec(image=ImageRef.of(content), styles=tuple(ImageRef.of(s) for s in styles),
                     **kw)


def run(spec: StyleSpec, on_progress=None):
    return run_job(spec, Context.for_spec(spec, device="cpu"), on_progress)


def held_out_gram_distance(a: np.ndarray, style: np.ndarray) -> float:
    """Relative Gram distance measured with a feature net of another seed than optimised."""
    net = RandomFeatures(FeatureConfig(seed=7))

    def t(img):
        return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1

    fa, fs = net(t(a)), net(t(style))
    return float(sum(((gram(fa[i]) - gram(fs[i])).pow(2).sum() / gram(fs[i]).pow(2).sum())
                     for i in net.config.style_layers))


# --------------------------------------------------------------------------- building blocks


def test_feature_nets_come_from_their_seed_and_normalise_every_layer():
    a, b = RandomFeatures(FeatureConfig(seed=3)), RandomFeatures(FeatureConfig(seed=3))
    c = RandomFeatures(FeatureConfig(seed=4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.convs[0].weight, c.convs[0].weight)
    assert not any(p.requires_grad for p in a.parameters())
    ref = pink_noise(a.config.reference_size, torch.Generator().manual_seed(3))
    for f in a(ref):  # unit mean square on the reference picture, layer by layer
        assert f.pow(2).mean().item() == pytest.approx(1.0, rel=0.35)
    feats = a(torch.zeros(1, 3, 37, 53))  # any size, even odd ones
    assert len(feats) == sum(a.config.convs)
    with pytest.raises(ValueError, match="does not exist"):
        FeatureConfig(style_layers=(99,))


def test_colour_transfer_matches_statistics_and_keeps_what_it_should():
    src, ref = photo(seed=1), render_style("mosaic", 0, 64)
    out = colour.reinhard_transfer(src, ref)
    lab = colour._to_lab  # the space the method works in
    np.testing.assert_allclose(lab(out).mean(0), lab(ref).mean(0), atol=0.02)
    smooth = np.ascontiguousarray(photo(seed=2)[::-1, :, ::-1])
    matched = colour.match_histograms(src, smooth)
    for c in range(3):  # the same values in the same proportions, up to rounding
        q = np.linspace(0, 100, 11)
        np.testing.assert_allclose(np.percentile(matched[..., c], q),
                                   np.percentile(smooth[..., c], q), atol=3)
    styled = colour.luminance_rgb(photo(seed=5)[::-1], like=src)  # in gamut with src's colour
    kept = colour.keep_colours(styled, src)
    np.testing.assert_allclose(colour.to_yiq(kept)[..., 1:], colour.to_yiq(src)[..., 1:],
                               atol=0.02)
    np.testing.assert_allclose(colour.to_yiq(kept)[..., 0], colour.to_yiq(styled)[..., 0],
                               atol=0.02)
    grey = colour.luminance_rgb(ref, like=src)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_procedural_styles_are_functions_of_their_seed():
    for name in STYLES:
        a, b = render_style(name, 1, 48), render_style(name, 1, 48)
        assert a.shape == (48, 48, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert not np.array_equal(a, render_style(name, 2, 48))
        assert a.std() > 20  # a painting, not a flat colour
    with pytest.raises(KeyError, match="brush, mosaic, hatching"):
        render_style("cubism")


def test_pyramid_runs_coarse_to_fine_and_small_pictures_at_their_size():
    assert pyramid(512) == [128, 256, 512]
    assert pyramid(200) == [200]
    assert pyramid(64) == [64]


# --------------------------------------------------------------------------- optimisation


def test_the_optimised_picture_takes_the_style_and_keeps_the_content():
    content, style = photo(), render_style("mosaic", 0, 64)
    seen = []
    res = run(spec_for(content, style, steps=12), seen.append)
    out = res.images[0]
    assert out.shape == content.shape and out.dtype == np.uint8
    # Nearer the style by nets that never took part (held-out seeds) ...
    assert held_out_gram_distance(out, style) < 0.7 * held_out_gram_distance(content, style)
    # ... and still the same picture: its luminance correlates with the content's.
    ly, cy = colour.to_yiq(out)[..., 0], colour.to_yiq(content)[..., 0]
    assert np.corrcoef(ly.ravel(), cy.ravel())[0, 1] > 0.5
    steps = [p.step for p in seen[1:]]
    assert steps == sorted(steps) and seen[-1].step == seen[-1].total
    assert any(p.preview is not None for p in seen)
    assert np.array_equal(out, run(spec_for(content, style, steps=12)).images[0])  # same spec


def test_only_the_masked_region_changes_with_a_feathered_seam():
    content, style = photo(64, 80), render_style("brush", 0, 64)
    mask = np.zeros((64, 80), np.uint8)
    mask[10:40, 20:60] = 255
    out = run(spec_for(content, style, mask=ImageRef.of(mask, embed=True), feather=4)).images[0]
    np.testing.assert_array_equal(out[mask == 0], content[mask == 0])
    inner = np.zeros_like(mask, bool)
    inner[16:34, 26:54] = True
    assert np.abs(out[inner].astype(int) - content[inner]).mean() > 5


def test_colours_can_be_kept_from_the_content():
    content, style = photo(), render_style("mosaic", 0, 64)
    out = run(spec_for(content, style, preserve_color="luminance")).images[0]
    np.testing.assert_allclose(colour.to_yiq(out)[..., 1:], colour.to_yiq(content)[..., 1:],
                               atol=0.03)
    hist = run(spec_for(content, style, preserve_color="histogram")).images[0]
    assert hist.shape == content.shape


def test_several_styles_with_weights_and_odd_style_images():
    content = photo()
    grey = np.repeat(render_style("hatching", 0, 64)[..., :1], 3, axis=2)
    rgba = np.dstack([render_style("brush", 0, 64), np.full((64, 64), 128, np.uint8)])
    res = run(StyleSpec(image=ImageRef.of(content), size=64, steps=3,
                        styles=(ImageRef.of(grey), ImageRef.of(rgba)), style_weights=(2.0, 1.0)))
    assert res.images[0].shape == content.shape
    tiny = render_style("mosaic", 0, 16)  # far smaller than the picture: upscaled, with a note
    res = run(spec_for(content, tiny, steps=2))
    assert any("much smaller" in n for n in res.info["notes"])


def test_a_large_picture_is_worked_at_the_size_setting_with_a_note():
    content = photo(300, 200)
    res = run(spec_for(content, render_style("brush", 0, 64), size=96, steps=2))
    assert res.images[0].shape == (300, 200, 3)  # worked small, given back at its size
    assert any("restyled at 64x96" in n for n in res.info["notes"])


@pytest.mark.parametrize("changes,message", [
    ({"styles": ()}, "Add a style image"),
    ({"style_weights": (1.0, 2.0)}, "2 style weights for 1 style images"),
    ({"style_weights": (-1.0,)}, "zero or more"),
    ({"size": 4000}, "Size must be a whole number from 64 to 2048"),
    ({"steps": 0}, "Steps must be"),
    ({"optimizer": "sgd"}, "Unknown optimiser 'sgd'"),
    ({"preserve_color": "sepia"}, "Unknown colour mode"),
    ({"strength": -1}, "Strength must be zero or more"),
    ({"mask": ImageRef.of(np.full((10, 12), 255, np.uint8), embed=True)},
     "The mask is 12x10 but the picture is 64x48"),
    ({"mask": ImageRef.of(np.zeros((48, 64), np.uint8), embed=True)}, "The mask is empty"),
    ({"fast": "no_such_style"}, "No fast style called 'no_such_style'"),
    ({"styles": (ImageRef.of(photo(8, 8)),)}, "only 8x8 pixels: too small"),
    ({"styles": (ImageRef.of(np.full((32, 32, 3), 7, np.uint8)),)},
     r"one colour \(RGB 7, 7, 7\)"),
    ({"tile": True, "mask": ImageRef.of(np.pad(np.full((8, 8), 255, np.uint8), 28)[:48, :64],
                                        embed=True)}, "A seamless tile restyles the whole"),
])
def test_bad_settings_are_job_errors(changes, message):
    spec = spec_for(photo(), render_style("brush", 0, 32)).replace(**changes)
    with pytest.raises(JobError, match=message):
        run(spec)


def sky(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    img = np.stack([60 + 2 * x, 90 + 2 * y, 200 - x], -1) + \
        np.random.default_rng(0).normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def seam_and_grain(img: np.ndarray) -> tuple[float, float]:
    """The mean step across the wrap (last column to first, last row to first) and the mean
    step between neighbours inside the picture."""
    a = img.astype(np.float64)
    seam = (np.abs(a[:, -1] - a[:, 0]).mean() + np.abs(a[-1] - a[0]).mean()) / 2
    grain = (np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=0)).mean()) / 2
    return seam, grain


def test_a_tile_continues_across_its_wrapped_edges():
    # A sky whose left and right (and top and bottom) edges are far apart.
    content, style = sky(), render_style("brush", 0, 64)
    seam, grain = seam_and_grain(content)
    assert seam > 5 * grain  # as it is, the picture does not tile
    res = run(spec_for(content, style, tile=True, steps=4))
    out = res.images[0]
    assert out.shape == content.shape
    seam, grain = seam_and_grain(out)
    assert seam < 1.5 * grain
    seam, grain = seam_and_grain(run(spec_for(content, style, steps=4)).images[0])
    assert seam > 3 * grain  # not tiled: the wrap is a seam
    assert json_round_trip(res.spec).tile
    # The seamless start keeps the picture's middle as it is.
    h, w = content.shape[:2]
    mid = seamless(content)[h // 4:3 * h // 4, w // 4:3 * w // 4]
    np.testing.assert_array_equal(mid, content[h // 4:3 * h // 4, w // 4:3 * w // 4])


def test_a_tile_scaled_back_to_a_larger_picture_still_tiles():
    tile = seamless(sky())
    seam, grain = seam_and_grain(resize_wrapped(tile, 480, 640))
    assert seam < 1.5 * grain
    seam, grain = seam_and_grain(resize(tile, 480, 640))  # a plain resize reads the edge
    assert seam > 3 * grain


def json_round_trip(spec: StyleSpec) -> StyleSpec:
    return JobSpec.from_dict(spec.to_dict())


def test_circular_padding_makes_the_nets_shift_with_the_picture():
    # A net that pads circularly treats the picture as a torus: shifting the input shifts the
    # output by as much (sizes a multiple of its pooling), so a tile's edges meet as inside.
    torch.manual_seed(0)
    net = AdaINNet(AdaINConfig(layer=3, width=0.25)).eval()
    x, s = torch.rand(1, 3, 32, 48) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    shifted = torch.roll(x, (8, 12), (-2, -1))
    with torch.no_grad():
        before = set_padding(net, "circular")
        out, out_shifted = net(x, s), net(shifted, s)
        for m, mode in before.items():
            m.padding_mode = mode
        plain = net(shifted, s)
    torch.testing.assert_close(out_shifted, torch.roll(out, (8, 12), (-2, -1)), atol=1e-5,
                               rtol=0)
    assert not torch.allclose(plain, torch.roll(out, (8, 12), (-2, -1)), atol=1e-3)
    assert set(before.values()) == {"reflect"}


def test_most_optimisation_steps_are_at_the_coarse_levels():
    steps = level_steps(100, 3)
    assert steps[0] > steps[1] > steps[2] and abs(sum(steps) - 100) <= 1
    assert level_steps(10, 1) == [10] and min(level_steps(3, 3)) >= 1


def test_the_time_estimate_follows_steps_and_resolution_not_the_picture_beyond_it():
    def estimate(h: int, w: int, size: int = 512, steps: int = 100) -> float:
        return estimate_cpu_seconds(h, w, size=size, steps=steps, optimizer="lbfgs")

    base = estimate(384, 512)
    assert 1.8 * base < estimate(384, 512, steps=200) < 2.2 * base
    assert estimate(1536, 2048) == base  # worked at 512 px
    assert estimate(768, 1024, size=1024) > 3 * base
    assert estimate_cpu_seconds(384, 512, method="one_pass") < base / 10


def test_cancel_stops_within_a_step_and_the_spec_round_trips():
    spec = spec_for(photo(), render_style("brush", 0, 32), render_style("mosaic", 0, 32),
                    style_weights=(1.0, 3.0), steps=50)
    ctx = Context.for_spec(spec, device="cpu")
    seen = []

    def progress(p):
        seen.append(p.step)
        if p.step == 2:
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run_job(spec, ctx, progress)
    assert max(seen) == 2
    back = JobSpec.from_dict(spec.to_dict())
    assert back == spec or (back.style_weights == spec.style_weights
                            and [s.sha256 for s in back.styles] == [s.sha256 for s in
                                                                    spec.styles])


# --------------------------------------------------------------------------- fast styles


def test_the_tiny_fast_style_recipe_trains_a_net_that_restyles_in_one_pass(tmp_path,
                                                                          monkeypatch):
    from core.training.recipe import RecipeError, load_recipe
    from core.training.trainer import Trainer

    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "no-shipped"))
    models = tmp_path / "home" / "models" / "style_fast"
    Trainer(load_recipe("tiny_style_fast"), tmp_path / "run", weights_dir=models,
            emit=lambda e: None).run()
    assert [m["name"] for m in fast_styles()] == ["tiny_style_fast"]
    assert fast_styles()[0]["style"] == "mosaic"
    content = photo()
    res = run(StyleSpec(image=ImageRef.of(content), fast="tiny_style_fast"))
    out = res.images[0]
    assert out.shape == content.shape and not np.array_equal(out, content)
    assert "tiny_style_fast" in res.info["models"]
    from core.evaluation.evaluate import evaluate

    report = evaluate(models / "tiny_style_fast.safetensors", n=3)
    metrics = report["metrics"]
    assert report["n"] == metrics["images"] == 3  # the report names what was measured
    assert metrics["heldout_gram_distance"] >= 0 and 0 <= metrics["colour_distance"] <= 2
    assert -1 <= metrics["content_edge_ssim"] <= 1 and metrics["seconds_512px"] > 0
    with pytest.raises(RecipeError, match="name a style image"):
        load_recipe("style-fast")
    missing = tmp_path / "missing.png"
    with pytest.raises(RecipeError, match="the style image cannot be used"):
        Trainer(load_recipe("tiny_style_fast", [f'task.style="{missing}"']),
                tmp_path / "run2", emit=lambda e: None).run()


def test_a_cancel_during_a_fast_style_pass_stops_it_between_layers():
    from torch.nn.modules.module import register_module_forward_hook

    spec = StyleSpec(image=ImageRef.of(photo()), fast="style_fast_brush", size=64)
    layers: list[torch.nn.Module] = []

    class CancelMidPass(Context):
        def check(self) -> None:
            if len(layers) >= 3:  # the user cancels while the net runs
                self.cancel_event.set()
            super().check()

    handle = register_module_forward_hook(lambda m, i, o: layers.append(m))
    try:
        run(spec)
        whole = len(layers)
        layers.clear()
        base = Context.for_spec(spec, device="cpu")
        ctx = CancelMidPass(base.device, base.generator, base.rng, base.models)
        with pytest.raises(Cancelled):
            run_job(spec, ctx)
    finally:
        handle.remove()
    assert whole > 10 and len(layers) <= 4, (whole, len(layers))


def test_a_cancel_while_preparing_stops_before_the_style_targets_are_computed(monkeypatch):
    from core.pipelines import style

    built = []
    objective = style.Objective
    monkeypatch.setattr(style, "Objective", lambda *a, **k: built.append(1) or objective(*a, **k))
    spec = spec_for(photo(), render_style("brush", 0, 64))
    ctx = Context.for_spec(spec, device="cpu")

    def cancel_at_preparing(p) -> None:
        if p.step == 0:  # "Preparing": on a large picture the set-up takes seconds
            ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        run_job(spec, ctx, cancel_at_preparing)
    assert built == []
