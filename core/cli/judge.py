"""``easel judge invert|dream|fool IMAGE -o OUT``: what one of Easel's classifiers sees.

- ``invert``: the picture rebuilt from the classifier's features at ``--layer`` (from noise).
- ``dream``: the picture pushed towards ``--attribute NAME=CLASS`` (or a layer's activations),
  over octaves with jitter; ``--from-grey`` draws the class from a grey picture.
- ``fool``: the smallest change within ``--budget`` (L-infinity, in 1/255) that flips the
  reading of ``--attribute NAME`` (or to NAME=CLASS); ``--perturbation FILE`` also writes the
  change, magnified.
- ``layers``: the classifier's layers and the attributes it reads.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import (
    CliError,
    add_run_options,
    check_output,
    int_at_least,
    number_between,
    run_spec,
    write_result,
)


def add_parser(sub: Any) -> None:
    from core.jobs import MAX_SEED
    from core.specs.judge import MAX_BUDGET, MAX_JITTER, MAX_OCTAVES, MAX_SIZE, MAX_STEPS

    p = sub.add_parser("judge", help="what a classifier sees: feature inversion, dream, "
                       "adversarial examples")
    cmds = p.add_subparsers(dest="judge_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser, layer: str) -> None:
        q.add_argument("image", metavar="IMAGE", help="any picture")
        q.add_argument("--model", default=None, metavar="NAME",
                       help="a classifier (judge) name or .safetensors path (default: "
                       "judge_faces; list layers with: easel judge layers --model NAME)")
        q.add_argument("--layer", default="", metavar="L", help=layer)
        q.add_argument("--steps", type=int_at_least(1, MAX_STEPS), default=None, metavar="N")
        q.add_argument("--size", type=int_at_least(16, MAX_SIZE), default=None, metavar="PX",
                       help="long side the picture is worked at (a larger one is shrunk)")
        q.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=0)
        add_run_options(q)

    q = cmds.add_parser("invert", help="rebuild the picture from a layer's features")
    common(q, "the layer whose features are inverted (default: a middle one)")
    q.add_argument("--tv-weight", type=number_between(0, 1000), default=None, metavar="W",
                   help="total-variation (smoothness) weight (default 0.05)")
    q.add_argument("--range-weight", type=number_between(0, 1000), default=None, metavar="W")
    q.set_defaults(func=run, mode="invert")

    q = cmds.add_parser("dream", help="amplify what the classifier reads (DeepDream)")
    common(q, "amplify this layer's activations (without --attribute)")
    q.add_argument("--attribute", default="", metavar="NAME=CLASS",
                   help="amplify this class, e.g. glasses=glasses")
    q.add_argument("--strength", type=number_between(1e-4, 1), default=None, metavar="S",
                   help="step size (default 0.02)")
    q.add_argument("--octaves", type=int_at_least(1, MAX_OCTAVES), default=None)
    q.add_argument("--jitter", type=int_at_least(0, MAX_JITTER), default=None, metavar="PX")
    q.add_argument("--from-grey", action="store_true",
                   help="start from grey: draw the class itself (class visualisation)")
    q.set_defaults(func=run, mode="dream")

    q = cmds.add_parser("fool", help="an adversarial example that flips one attribute")
    common(q, "(not used: an attack works on the output)")
    q.add_argument("--attribute", required=True, metavar="NAME[=CLASS]",
                   help="flip this reading (to CLASS when given), e.g. glasses")
    q.add_argument("--method", choices=("pgd", "fgsm"), default="pgd")
    q.add_argument("--budget", type=number_between(0, MAX_BUDGET), default=8.0, metavar="B",
                   help="L-infinity budget in 1/255 of the pixel range (default 8)")
    q.add_argument("--perturbation", default=None, metavar="FILE",
                   help="also write the perturbation, magnified, to this PNG")
    q.set_defaults(func=run, mode="fool")

    q = cmds.add_parser("layers", help="list a classifier's layers and attributes")
    q.add_argument("--model", default=None, metavar="NAME")
    q.add_argument("--device", default=argparse.SUPPRESS)
    q.set_defaults(func=run_layers)


OPTIONS = {  # argument -> spec field, per mode
    "invert": ("tv_weight", "range_weight"),
    "dream": ("strength", "octaves", "jitter"),
    "fool": ("method", "budget"),
}


def build_spec(args: argparse.Namespace, image: Any) -> Any:
    from core.pipelines.judge import MODES  # importing it registers the pipelines

    values: dict[str, Any] = {k: v for k in ("steps", "size", *OPTIONS[args.mode])
                              if (v := getattr(args, k)) is not None}
    if args.model:
        values["model"] = args.model
    if getattr(args, "attribute", ""):
        values["attribute"] = args.attribute
    if getattr(args, "from_grey", False):
        values["start"] = "grey"
    return MODES[args.mode](image=image, layer=args.layer, seed=args.seed, **values)


def run(args: argparse.Namespace) -> int:
    from core import imageio
    from core.jobs import ImageRef
    from core.specs.judge import summary

    src = Path(args.image).expanduser().resolve()
    extra = getattr(args, "perturbation", None)
    extra_path = Path(extra).expanduser().resolve() if extra else None
    out = check_output(args.output, [src], args.overwrite)
    if extra_path is not None:
        if extra_path == out:
            raise CliError("--perturbation must name another file than -o.")
        extra_path = check_output(extra, [src], args.overwrite)
    loaded = imageio.load_image(src)
    spec = build_spec(args, ImageRef.of(loaded.rgb, path=str(src)))
    result = run_spec(spec, args.device)
    edited = getattr(spec, "start", "picture") == "picture"
    write_result(out, result, None, edited=edited, overwrite=args.overwrite)
    if extra_path is not None:
        imageio.save_png(extra_path, result.images[1], spec=result.spec.to_dict(),
                         extra={"models": result.info.get("models", {}),
                                "shows": "perturbation, magnified "
                                f"x{result.info.get('magnification', 1):g}"},
                         edited=True, overwrite=args.overwrite)
    for note in result.info.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"output": str(out), "spec": result.spec.to_dict(),
                          **{k: v for k, v in result.info.items() if k != "notes"},
                          "notes": result.info.get("notes", [])}))
    else:
        print(summary(result.spec.kind, result.info))
        print(f"Wrote {out}" + (f" and {extra_path}" if extra_path else "")
              + f" ({result.info.get('seconds', 0):.2f} s)")
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from core.device import pick_device
    from core.jobs import Context
    from core.pipelines.judge import open_classifier
    from core.specs.judge import DEFAULT_MODEL, JudgeInvertSpec
    from core.weights import ModelCache

    spec = JudgeInvertSpec(model=args.model or DEFAULT_MODEL)
    ctx = Context.for_spec(spec, device=pick_device(args.device), models=ModelCache())
    clf = open_classifier(spec.model, ctx)
    print(f"{clf.name} reads {clf.size}x{clf.size} pictures of the {clf.net.config.world} "
          "world.")
    print("layers: " + ", ".join(clf.describe_layers()))
    for head, classes in clf.heads(True).items():
        where = "" if head in clf.net.config.heads else " (objects: dream only)"
        print(f"attribute {head}{where}: {', '.join(classes)}")
    return 0
