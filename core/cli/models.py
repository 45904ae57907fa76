"""``easel models list|verify|import`` and ``easel eval MODEL``: the installed models, checked,
imported and measured.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.cli.common import CliError, error, int_at_least


def add_models_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list, verify or import models")
    p.add_argument("action", choices=("list", "verify", "import"))
    p.add_argument("file", nargs="?", metavar="FILE", help="for import: a .safetensors file "
                   "(its .json card beside it), a .zip exported by Easel, or a model file of "
                   "your own (.pth, .pt, .ckpt, .bin, .safetensors: Real-ESRGAN, ESRGAN, "
                   "compact, SPAN, LaMa), or a Stable Diffusion checkpoint or diffusers "
                   "folder (used where it lies)")
    p.add_argument("--name", default=None, help="for import: install under this name")
    p.add_argument("--family", default=None, help="only this family (vae, dcgan, ...); for "
                   "import of a file without a card, the family it belongs to")
    p.add_argument("--prediction", default=None, choices=("epsilon", "v"),
                   help="for import of a Stable Diffusion model: what it predicts (default: "
                   "its NAME.yaml, else its kind)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_models)


def add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure a model (judge accuracy, FJD, GenEval, ...)")
    p.add_argument("model", metavar="MODEL", help="a .safetensors file or an installed model's "
                   "name (name or family/name)")
    p.add_argument("--n", type=int_at_least(2), default=2000, metavar="N",
                   help="held-out images to measure on (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--write-card", action="store_true",
                   help="store the metrics in the model card")
    p.add_argument("--judge", choices=("faces", "scenes"), default=None,
                   help="for a model trained on a folder: the world whose judge computes FJD")
    p.add_argument("--device", default=argparse.SUPPRESS, help="auto, cuda, mps or cpu")
    p.set_defaults(func=run_eval)


def model_row(info: Any, ok: bool, message: str) -> dict[str, Any]:
    """One verified model as ``easel info`` and ``easel models verify`` report it."""
    return {"name": info.name, "family": info.family, "source": info.source,
            "path": str(info.path), "ok": ok, "message": message}


def run_models(args: argparse.Namespace) -> int:
    from core import paths
    from core.weights import list_models, registered, verify_all

    if args.action == "import":
        return _import_model(args)
    if args.file is not None or args.name is not None or args.prediction is not None:
        raise CliError(f"'models {args.action}' takes no FILE, --name or --prediction.")
    if args.action == "list":
        infos = list_models(args.family)
        rows = [{"name": i.name, "family": i.family, "source": i.source,
                 "path": (registered(i.card) or {}).get("path", str(i.path)),  # used in place
                 "card": i.card.to_dict() if i.card else None, "error": i.error} for i in infos]
        checked = None
    else:
        checked = verify_all(args.family)
        rows = [model_row(info, ok, msg) for info, ok, msg in checked]
    failed = [r for r in rows if r.get("ok") is False]
    if args.json:
        print(json.dumps({"models": rows, "ok": not failed}))
    elif not rows:
        print(f"No models found (shipped: {paths.shipped_weights_dir()}, "
              f"user: {paths.models_dir()}).")
    else:
        for r in rows:
            status = r["message"] if checked is not None else (r["error"] or r["path"])
            mark = "" if checked is None else ("ok    " if r["ok"] else "FAIL  ")
            print(f"{mark}{r['family']}/{r['name']} ({r['source']}): {status}")
    if failed:
        error(f"{len(failed)} of {len(rows)} models failed verification: "
              + "; ".join(f"{r['family']}/{r['name']}" for r in failed))
        return 1
    return 0


def _import_model(args: argparse.Namespace) -> int:
    """``easel models import FILE``: the model manager's import, chosen by the file's type."""
    from core.model_manager import FamilyRequired, ModelManagerError, import_model

    if args.file is None:
        raise CliError("'models import' needs the FILE to import (a .safetensors with its "
                       ".json card beside it, a .zip exported by Easel, or a model file of "
                       "your own such as a Real-ESRGAN .pth or a LaMa .ckpt).")
    try:
        info = import_model(args.file, family=args.family, name=args.name,
                            prediction=args.prediction)
    except FamilyRequired as exc:
        raise CliError(f"{exc} (--family NAME)") from None
    except ModelManagerError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"name": info.name, "family": info.family, "path": str(info.path)}))
    else:
        print(f"Installed {info.family}/{info.name} at {info.path}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from core.device import pick_device
    from core.evaluation import evaluate as ev

    try:
        path = ev.resolve_model(args.model)
        result = ev.evaluate(path, n=args.n, device=pick_device(args.device), judge=args.judge)
    except ev.EvaluationError as exc:
        raise CliError(str(exc)) from None
    if args.write_card:
        result["card"] = str(ev.write_metrics(path, result["metrics"]))
    if args.json:
        print(json.dumps(ev.json_safe(result)))  # NaN is not JSON: null
    else:
        print(ev.format_report(result))
        if args.write_card:
            print(f"Wrote the metrics into {result['card']}")
    return 0
