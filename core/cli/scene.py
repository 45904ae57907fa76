"""``easel scene "PROMPT" -o OUT``: text to scene, and region editing of a scene, headless.

With ``--model`` naming an imported Stable Diffusion model it draws with that instead
(``--negative``, ``--steps``, ``--cfg``, ``--size``, ``--sampler``); options of the one that do
not apply to the other are refused (exit 2) naming the option.

The best candidate goes to OUT; ``--all`` writes the others beside it (``OUT-2.png``, ...),
best first. Every PNG carries the job's spec (``easel rerun`` redraws the best candidate) and
its candidate's VQ codes, so ``--edit`` on an Easel scene resamples exactly those codes; with a
layout prior also its candidate's layout (``"layout"``, the JSON form of core/data/layouts.py).
``--layout FILE.json`` draws every candidate from the layout in that file (a layout prior only).
Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.cli.common import (
    CliError,
    add_run_options,
    check_output,
    int_at_least,
    report,
    run_spec,
    write_result,
)


def add_parser(sub: Any) -> None:
    from core.jobs import MAX_SEED

    p = sub.add_parser("scene", help="draw a scene from a text prompt (or redraw a region)")
    p.add_argument("prompt", metavar="PROMPT",
                   help='e.g. "a red star left of a blue circle"; with --layout any text (the '
                   "layout decides what is drawn)")
    p.add_argument("--n", type=int_at_least(1, 32), default=None,
                   help="candidates drawn and reranked (default 8)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=0)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="a scene prior's name or .safetensors path (default: layout_prior_scenes; "
                   "with --edit, the model that drew the scene), or an imported Stable "
                   "Diffusion model's name")
    # Sampling settings default to the scene job's own (core.pipelines.scene.SceneSpec).
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int_at_least(0), default=None, help="0 = off")
    p.add_argument("--top-p", type=float, default=None, help="1 = off")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (1 = off)")
    p.add_argument("--no-rerank", action="store_true", help="keep the sampling order")
    p.add_argument("--no-upscale", action="store_true", help="keep 64 px")
    p.add_argument("--all", action="store_true", help="write every candidate, best first")
    p.add_argument("--edit", default=None, metavar="IMAGE",
                   help="redraw a region of this scene (needs --box); PROMPT then describes "
                   "the whole picture as it should be")
    p.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1",
                   help="the region as fractions of the picture, e.g. 0.5,0,1,0.5")
    p.add_argument("--layout", default=None, metavar="FILE.json",
                   help="draw this layout instead of planning one from PROMPT (a layout prior "
                   'only, --model NAME of one): {"background": "black", "objects": [{"shape": '
                   '"star", "colour": "red", "size": "small", "box": [x0, y0, x1, y1]}]}, at '
                   "most 3 objects, boxes as fractions of the picture")
    g = p.add_argument_group("Stable Diffusion (a --model imported with easel models import)")
    g.add_argument("--negative", default=None, metavar="TEXT", help="the negative prompt")
    g.add_argument("--steps", type=int_at_least(1, 150), default=None, metavar="N",
                   help="denoising steps (default 25)")
    g.add_argument("--cfg", type=float, default=None, metavar="G",
                   help="classifier-free guidance scale (default 7.5)")
    g.add_argument("--size", default=None, metavar="PX|WxH",
                   help="picture size, a multiple of 8 (default: the model's, 512 or 768)")
    g.add_argument("--sampler", default=None, choices=("ddim", "euler", "dpm++"),
                   help="dpm++ (the default), euler or ddim")
    g.add_argument("--prediction", default=None, choices=("epsilon", "v"),
                   help="override what the model predicts (its card says)")
    g.add_argument("--attention-slicing", action="store_true", help="less memory, slower")
    g.add_argument("--vae-tiling", action="store_true", help="decode in tiles: less memory")
    add_run_options(p)
    p.set_defaults(func=run)


PRIOR_ONLY = ("n", "temperature", "top_k", "top_p", "guidance", "no_rerank", "no_upscale",
              "all", "edit", "box", "layout")
SD_ONLY = ("negative", "steps", "cfg", "size", "sampler", "prediction", "attention_slicing",
           "vae_tiling")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` given on the command line, as typed (--top-k)."""
    return ["--" + k.replace("_", "-") for k in names if getattr(args, k) not in (None, False)]


def _size(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 0
    parts = text.lower().split("x")
    try:
        w, h = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (-1, -1)
    except ValueError:
        w = h = -1
    if w < 0 or h < 0:
        raise CliError(f"--size takes PX or WxH in pixels (512, 768x512), not {text!r}.")
    return w, h


def _is_sd(model: str | None) -> bool:
    from core.specs.sd import SD_FAMILY
    from core.weights import find_model

    return model is not None and find_model(model, (SD_FAMILY,)) is not None


def run_sd(args: argparse.Namespace) -> int:
    """``easel scene PROMPT --model SD_MODEL``: text to image with a Stable Diffusion model."""
    from core.specs.sd import SDSceneSpec

    wrong = _given(args, PRIOR_ONLY)
    if wrong:
        hint = " (its guidance scale is --cfg)" if wrong[0] == "--guidance" else ""
        raise CliError(f"{wrong[0]} is a setting of Easel's scene prior, not of a Stable "
                       f"Diffusion model like {args.model}{hint}.")
    width, height = _size(args.size)
    options = {"prompt": args.prompt, "model": args.model, "seed": args.seed,
               "width": width, "height": height,
               "attention_slicing": args.attention_slicing, "vae_tiling": args.vae_tiling}
    options.update({field: v for field, k in (
        ("negative_prompt", "negative"), ("steps", "steps"), ("cfg", "cfg"),
        ("sampler", "sampler"), ("prediction", "prediction")) if (v := getattr(args, k))
        is not None})
    spec = SDSceneSpec(**options)
    out = check_output(args.output, [], args.overwrite)
    result = run_spec(spec, args.device)
    write_result(out, result, None, edited=False, overwrite=args.overwrite)
    for note in result.info.get("notes", []):
        print(f"note: {note}")
    report(args, out, result)
    return 0


def _box(text: str | None) -> tuple[float, ...]:
    try:
        box = tuple(float(v) for v in (text or "").split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise CliError("--box takes four fractions: left,top,right,bottom (e.g. 0.5,0,1,0.5).")
    return box


def _layout(path: str) -> str:
    """The layout file's layout as the compact JSON a spec carries; CliError naming the
    problem."""
    from core.data.layouts import LayoutError, layout_json, read_layout_file

    try:
        return layout_json(read_layout_file(path))
    except LayoutError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.imageio import save_png
    from core.jobs import ImageRef
    from core.pipelines.scene import DEFAULT_PRIOR, SceneEditSpec, SceneSpec

    if _is_sd(args.model):
        return run_sd(args)
    wrong = _given(args, SD_ONLY)
    if wrong:
        hint = " (the prior's guidance scale is --guidance)" if wrong[0] == "--cfg" else ""
        raise CliError(f"{wrong[0]} is a setting of Stable Diffusion models (--model NAME of "
                       f"one imported with easel models import), not of Easel's scene "
                       f"prior{hint}.")
    args.n = 8 if args.n is None else args.n
    src, meta = None, {}
    if args.edit is not None:
        src = Path(args.edit).expanduser().resolve()
        if not src.is_file():
            raise CliError(f"{args.edit}: no such file.")
        meta = imageio.read_metadata(src) or {}
    # A region edit keeps the model that drew the picture unless --model names another.
    drawn = meta.get("spec") if isinstance(meta, dict) else None
    drawn_by = drawn.get("model") if isinstance(drawn, dict) and drawn.get("kind") in (
        SceneSpec.kind, SceneEditSpec.kind) else None
    model = args.model or (drawn_by if isinstance(drawn_by, str) and drawn_by else DEFAULT_PRIOR)
    options = {"prompt": args.prompt, "n": args.n, "seed": args.seed,
               "model": model, "rerank": not args.no_rerank,
               "upscale": not args.no_upscale}
    options.update({k: v for k in ("temperature", "top_k", "top_p", "guidance")
                    if (v := getattr(args, k)) is not None})
    if args.layout is not None:
        options["layout"] = _layout(args.layout)
    inputs: list[Path] = []
    if src is not None:
        inputs.append(src)
        codes = meta.get("codes") if drawn_by == options["model"] else None
        spec: SceneSpec = SceneEditSpec(
            image=ImageRef.of(imageio.load_image(src).rgb, path=str(src)), box=_box(args.box),
            codes=tuple(codes) if isinstance(codes, list) else (), **options)
    elif args.box is not None:
        raise CliError("--box edits a region of a scene: give the scene with --edit IMAGE.")
    else:
        spec = SceneSpec(**options)
    out = check_output(args.output, inputs, args.overwrite)
    paths = [out] + [out.with_name(f"{out.stem}-{rank}{out.suffix}")
                     for rank in range(2, args.n + 1 if args.all else 2)]
    for path in paths[1:]:  # before the job runs, not after
        if path.exists() and not args.overwrite:
            raise CliError(f"{path} already exists; pass --overwrite to replace it.")
    result = run_spec(spec, args.device)
    info = result.info
    files = []
    layouts = info.get("layouts")  # each candidate's layout, best first (a layout prior)
    for rank, (rgb, path) in enumerate(zip(result.images, paths, strict=False), 1):
        extra = {"models": info.get("models", {}), "codes": info["codes"][rank - 1],
                 "rank": rank, "score": info["scores"][rank - 1]}
        if layouts is not None:
            extra["layout"] = layouts[rank - 1]
        save_png(path, rgb, spec=result.spec.to_dict(), edited=bool(inputs), extra=extra,
                 overwrite=args.overwrite)
        files.append(str(path))
    notices = info.get("notices", [])
    if args.json:
        print(json.dumps({"outputs": files, "spec": result.spec.to_dict(),
                          "read_as": info["read_as"], "reading": info["reading"],
                          "notices": notices, "scores": info["scores"],
                          "checks": info.get("checks"), "seconds": info.get("seconds"),
                          "layout": info.get("layout")}))
    else:
        for notice in notices:
            print(f"note: {notice}")
        print(f"Read as: {info['reading']}")
        best = info["scores"][0]
        score = f", reranker score {best:.3f}" if best is not None else ""
        print(f"Wrote {', '.join(files)} ({info.get('seconds', 0):.2f} s{score})")
    return 0
