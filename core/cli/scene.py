"""``easel scene "PROMPT" -o OUT``: text to scene, and region editing of a scene, headless.

The best candidate goes to OUT; ``--all`` writes the others beside it (``OUT-2.png``, ...),
best first. Every PNG carries the job's spec (``easel rerun`` redraws the best candidate) and
its candidate's VQ codes, so ``--edit`` on an Easel scene resamples exactly those codes. Kept
free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.cli.common import CliError, add_run_options, check_output, int_at_least, run_spec


def add_parser(sub: Any) -> None:
    from core.jobs import MAX_SEED

    p = sub.add_parser("scene", help="draw a scene from a text prompt (or redraw a region)")
    p.add_argument("prompt", metavar="PROMPT", help='e.g. "a red star left of a blue circle"')
    p.add_argument("--n", type=int_at_least(1, 32), default=8,
                   help="candidates drawn and reranked (default 8)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=0)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="a scene prior's name or .safetensors path (default: prior_scenes)")
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
    add_run_options(p)
    p.set_defaults(func=run)


def _box(text: str | None) -> tuple[float, ...]:
    try:
        box = tuple(float(v) for v in (text or "").split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise CliError("--box takes four fractions: left,top,right,bottom (e.g. 0.5,0,1,0.5).")
    return box


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.imageio import save_png
    from core.jobs import ImageRef
    from core.pipelines.scene import DEFAULT_PRIOR, SceneEditSpec, SceneSpec

    options = {"prompt": args.prompt, "n": args.n, "seed": args.seed,
               "model": args.model or DEFAULT_PRIOR, "rerank": not args.no_rerank,
               "upscale": not args.no_upscale}
    options.update({k: v for k in ("temperature", "top_k", "top_p", "guidance")
                    if (v := getattr(args, k)) is not None})
    inputs: list[Path] = []
    if args.edit is not None:
        src = Path(args.edit).expanduser().resolve()
        if not src.is_file():
            raise CliError(f"{args.edit}: no such file.")
        inputs.append(src)
        meta = imageio.read_metadata(src) or {}
        codes = meta.get("codes") if (meta.get("spec") or {}).get("model") == options[
            "model"] else None
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
    for rank, (rgb, path) in enumerate(zip(result.images, paths, strict=False), 1):
        save_png(path, rgb, spec=result.spec.to_dict(), edited=bool(inputs),
                 extra={"models": info.get("models", {}), "codes": info["codes"][rank - 1],
                        "rank": rank, "score": info["scores"][rank - 1]},
                 overwrite=args.overwrite)
        files.append(str(path))
    notices = info.get("notices", [])
    if args.json:
        print(json.dumps({"outputs": files, "spec": result.spec.to_dict(),
                          "read_as": info["read_as"], "reading": info["reading"],
                          "notices": notices, "scores": info["scores"],
                          "checks": info.get("checks"), "seconds": info.get("seconds")}))
    else:
        for notice in notices:
            print(f"note: {notice}")
        print(f"Read as: {info['reading']}")
        best = info["scores"][0]
        score = f", reranker score {best:.3f}" if best is not None else ""
        print(f"Wrote {', '.join(files)} ({info.get('seconds', 0):.2f} s{score})")
    return 0
