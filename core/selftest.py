"""``easel --self-test``: is this installation whole and does every panel's engine run?

It verifies every installed model (card, sha256, safetensors parse, fit to its architecture),
then runs one tiny job per panel engine headless, through the same job protocol the app and the
CLI use (a spec, ``Context.for_spec``, ``run_job``), on the shipped weights
(``paths.shipped_weights_dir()``, so it works the same from a source checkout and a frozen
bundle). Every check is isolated: one that fails is recorded with a one-line reason and the
others still run. Inputs are synthetic and tiny so the whole run takes seconds on a 2-core CPU.

No Qt here; nothing reads the source tree (the style image is procedural).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

SHIPPED_DIFFUSION = "diffusion_faces"
SHIPPED_LATENT = ("vae_faces", "dcgan_faces")
SHIPPED_PRIOR = "layout_prior_scenes"
SHIPPED_FAST_STYLE = "style_fast_brush"
SHIPPED_UPSCALERS = ("upscale_faces", "upscale_scenes")


@dataclass(frozen=True)
class Check:
    """The outcome of one check. ``message`` is one line; ``details`` are extra lines (e.g.
    one per bad model) printed under it."""

    name: str
    ok: bool
    seconds: float
    message: str = ""
    details: tuple[str, ...] = ()


class CheckFailed(Exception):
    """A check ran but its result is wrong (the message says how; ``details`` add lines)."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.details = details


class _Runner:
    """What the per-panel checks share: the device and one model cache."""

    def __init__(self, device: str) -> None:
        from core.device import pick_device
        from core.weights import ModelCache

        self.device = pick_device(device)
        self.models = ModelCache()

    def run(self, spec: Any) -> Any:
        """``spec`` run to its Result exactly as the CLI runs it (no progress display)."""
        from core.jobs import Context, run_job

        ctx = Context.for_spec(spec, device=self.device, models=self.models)
        return run_job(spec, ctx)


# --------------------------------------------------------------------------- inputs


def picture(size: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 test picture: a colour gradient, a square and a disc."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    img = np.stack([x, y, 1 - (x + y) / 2], axis=-1) * 200 + 30
    s = size // 4
    img[s:2 * s, s:2 * s] = (220, 60, 40)
    disc = (x - 0.68) ** 2 + (y - 0.65) ** 2 < 0.04
    img[disc] = (40, 90, 210)
    img += rng.normal(0, 4, img.shape)  # a little texture for PatchMatch to copy
    return np.clip(img, 0, 255).astype(np.uint8)


def square_mask(size: int, lo: int, hi: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[lo:hi, lo:hi] = 255
    return mask


def expect_image(result: Any, shape: tuple[int, ...], count: int = 1) -> np.ndarray:
    """The result's first image, after checking there are ``count`` images of ``shape``,
    8-bit and not all one value (a NaN from a broken net ends up as a flat picture)."""
    images = list(getattr(result, "images", []))
    if len(images) != count:
        raise CheckFailed(f"expected {count} image(s), got {len(images)}")
    for img in images:
        img = np.asarray(img)
        if img.shape != shape or img.dtype != np.uint8:
            raise CheckFailed(f"expected a {shape} uint8 image, got {img.shape} {img.dtype}")
        if img.min() == img.max():
            raise CheckFailed(f"the image is flat (every pixel {img.min()})")
    return np.asarray(images[0])


# --------------------------------------------------------------------------- checks


def check_weights() -> tuple[str, tuple[str, ...]]:
    """Every installed model fully verified; CheckFailed listing each bad one and why."""
    from core import paths
    from core.weights import verify_all

    results = verify_all()
    shipped = [info for info, _, _ in results if info.source == "shipped"]
    if not shipped:
        raise CheckFailed(f"no shipped models found in {paths.shipped_weights_dir()}")
    bad = [f"{info.family}/{info.name} ({info.source}): {' '.join(msg.split())}"
           for info, ok, msg in results if not ok]
    if bad:
        raise CheckFailed(f"{len(bad)} of {len(results)} models failed verification: "
                          + ", ".join(line.split(" (")[0] for line in bad), tuple(bad))
    return f"{len(results)} models verified ({len(shipped)} shipped)", ()


def check_inpaint_patchmatch(runner: _Runner) -> str:
    from core.jobs import ImageRef
    from core.pipelines.inpaint import InpaintSpec

    size = 48
    image, mask = picture(size), square_mask(size, 18, 30)
    spec = InpaintSpec(seed=1, image=ImageRef.of(image), mask=ImageRef.of(mask, embed=True),
                       engine="patchmatch", patch_size=5, iterations=2)
    out = expect_image(runner.run(spec), (size, size, 3))
    outside = mask == 0
    if not np.array_equal(out[outside], image[outside]):
        raise CheckFailed("pixels outside the mask changed")
    return f"{size}x{size}, {int((~outside).sum())} pixels filled"


def check_inpaint_diffusion(runner: _Runner) -> str:
    from core.jobs import ImageRef
    from core.pipelines.inpaint import InpaintSpec

    size = 64
    image, mask = picture(size, seed=2), square_mask(size, 24, 40)
    spec = InpaintSpec(seed=2, image=ImageRef.of(image), mask=ImageRef.of(mask, embed=True),
                       engine="diffusion", model=SHIPPED_DIFFUSION, steps=2, resample=1,
                       jump=1)
    out = expect_image(runner.run(spec), (size, size, 3))
    outside = mask == 0
    if not np.array_equal(out[outside], image[outside]):
        raise CheckFailed("pixels outside the mask changed")
    return f"{SHIPPED_DIFFUSION}, {size}x{size}, 2 steps"


def _latent_check(model: str) -> Callable[[_Runner], str]:
    def check(runner: _Runner) -> str:
        from core.pipelines.latent import LatentSampleSpec

        result = runner.run(LatentSampleSpec(seed=3, model=model, count=1))
        img = np.asarray(result.images[0]) if result.images else np.zeros((0,))
        side = img.shape[0] if img.ndim == 3 else 0
        expect_image(result, (side, side, 3))
        if side < 16:
            raise CheckFailed(f"the face is {img.shape}, too small")
        latents = np.asarray(result.info.get("latents", []), dtype=float)
        if latents.size == 0 or not np.isfinite(latents).all():
            raise CheckFailed("the sample's latent is missing or not finite")
        return f"one {side}x{side} face"

    check.__name__ = f"check_latent_{model}"
    return check


def check_scene(runner: _Runner) -> str:
    from core.pipelines.scene import SceneSpec

    spec = SceneSpec(seed=4, prompt="a red circle", n=1, model=SHIPPED_PRIOR, upscale=False)
    result = runner.run(spec)
    img = np.asarray(result.images[0]) if result.images else np.zeros((0,))
    side = img.shape[0] if img.ndim == 3 else 0
    expect_image(result, (side, side, 3))
    if side < 16:
        raise CheckFailed(f"the scene is {img.shape}, too small")
    return f"{SHIPPED_PRIOR}, 'a red circle', one {side}x{side} candidate"


def check_style_optimise(runner: _Runner) -> str:
    from core.data.styles import render_style
    from core.jobs import ImageRef
    from core.pipelines.style import StyleSpec

    size = 64
    image, style = picture(size, seed=5), render_style("brush", seed=0, size=size)
    spec = StyleSpec(seed=5, image=ImageRef.of(image), styles=(ImageRef.of(style),), size=size,
                     steps=3)
    out = expect_image(runner.run(spec), (size, size, 3))
    if np.array_equal(out, image):
        raise CheckFailed("the picture did not change")
    return f"{size}x{size}, 3 steps, procedural brush style"


def check_style_fast(runner: _Runner) -> str:
    from core.jobs import ImageRef
    from core.pipelines.style import StyleSpec

    size = 64
    image = picture(size, seed=6)
    spec = StyleSpec(seed=6, image=ImageRef.of(image), size=size, fast=SHIPPED_FAST_STYLE)
    out = expect_image(runner.run(spec), (size, size, 3))
    if np.array_equal(out, image):
        raise CheckFailed("the picture did not change")
    return f"{SHIPPED_FAST_STYLE}, {size}x{size}"


def check_judge(runner: _Runner) -> str:
    from core.jobs import ImageRef
    from core.pipelines.judge import JudgeDreamSpec

    spec = JudgeDreamSpec(seed=8, image=ImageRef.of(picture(64, seed=8)), model="judge_faces",
                          attribute="glasses=glasses", start="grey", steps=3, octaves=1)
    result = runner.run(spec)
    expect_image(result, (64, 64, 3))
    before, after = result.info["probability_before"], result.info["probability_after"]
    if not after > before:
        raise CheckFailed(f"the dream did not raise P(glasses): {before:.3f} -> {after:.3f}")
    return f"judge_faces dream from grey, P(glasses) {before:.2f} -> {after:.2f}"


def _upscale_check(model: str) -> Callable[[_Runner], str]:
    def check(runner: _Runner) -> str:
        from core.jobs import ImageRef
        from core.pipelines.upscale import UpscaleSpec

        size = 16
        spec = UpscaleSpec(seed=7, image=ImageRef.of(picture(size, seed=7)), model=model)
        expect_image(runner.run(spec), (4 * size, 4 * size, 3))
        return f"{size}x{size} -> {4 * size}x{4 * size}"

    check.__name__ = f"check_upscale_{model}"
    return check


WEIGHTS_CHECK = "weights"

# One tiny job per panel engine, in the order they run (test_offline reuses these names).
PANEL_CHECKS: dict[str, Callable[[_Runner], str]] = {
    "inpaint (patchmatch)": check_inpaint_patchmatch,
    "inpaint (diffusion)": check_inpaint_diffusion,
    **{f"latent ({m})": _latent_check(m) for m in SHIPPED_LATENT},
    "scene": check_scene,
    "style (optimisation)": check_style_optimise,
    "style (fast)": check_style_fast,
    "judge (dream)": check_judge,
    **{f"upscale ({m})": _upscale_check(m) for m in SHIPPED_UPSCALERS},
}

CHECK_NAMES: tuple[str, ...] = (WEIGHTS_CHECK, *PANEL_CHECKS)


# --------------------------------------------------------------------------- running


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    from core.jobs import JobError

    known = isinstance(exc, CheckFailed | JobError) or type(exc).__name__ == "WeightsError"
    return text if known and text else f"{type(exc).__name__}: {text}".rstrip(": ")


def format_check(check: Check, width: int = 24) -> str:
    status = "ok   " if check.ok else "FAIL "
    lines = [f"{status} {check.name:<{width}} {check.seconds:6.2f} s  {check.message}".rstrip()]
    lines += [f"        {d}" for d in check.details]
    return "\n".join(lines)


def summary(checks: list[Check], seconds: float, device: str) -> str:
    failed = [c.name for c in checks if not c.ok]
    if not failed:
        return f"self-test passed: {len(checks)} checks in {seconds:.1f} s on {device}"
    return (f"self-test FAILED: {len(failed)} of {len(checks)} checks failed "
            f"({', '.join(failed)}) in {seconds:.1f} s on {device}")


def run_self_test(device: str = "cpu", report: Callable[[str], None] | None = print,
                  only: Iterable[str] | None = None) -> list[Check]:
    """Run the checks (all of :data:`CHECK_NAMES`, or ``only`` those), each isolated, and
    ``report`` one line per check and a summary; returns every Check."""
    names = list(CHECK_NAMES if only is None else only)
    unknown = [n for n in names if n not in CHECK_NAMES]
    if unknown:
        raise ValueError(f"unknown self-test check(s): {', '.join(unknown)}; known: "
                         f"{', '.join(CHECK_NAMES)}")
    width = max(len(n) for n in CHECK_NAMES)
    t0 = time.perf_counter()
    runner: _Runner | None = None
    runner_error = ""
    try:
        runner = _Runner(device)
    except Exception as exc:  # noqa: BLE001 - e.g. an unavailable device: every job check fails
        runner_error = _one_line(exc)
    checks: list[Check] = []
    for name in names:
        t = time.perf_counter()
        details: tuple[str, ...] = ()
        try:
            if name == WEIGHTS_CHECK:
                message, details = check_weights()
            elif runner is None:
                raise CheckFailed(f"cannot run jobs on {device!r}: {runner_error}")
            else:
                message = PANEL_CHECKS[name](runner)
            ok = True
        except CheckFailed as exc:
            ok, message = False, _one_line(exc)
            details = exc.details
        except Exception as exc:  # noqa: BLE001 - one broken engine must not stop the others
            ok, message = False, _one_line(exc)
        check = Check(name, ok, round(time.perf_counter() - t, 3), message, tuple(details))
        checks.append(check)
        if report is not None:
            report(format_check(check, width))
    if report is not None:
        where = str(runner.device) if runner is not None else device
        report(summary(checks, time.perf_counter() - t0, where))
    return checks
