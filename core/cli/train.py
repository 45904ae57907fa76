"""``easel train RECIPE``: the command line's arguments and their hand-over to the trainer
(core/training), whose events core/cli/train_progress.py shows.

Kept free of torch at import time: ``easel --help`` builds this parser.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cli.common import CliError, int_at_least


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model from a recipe (core/training/recipes)")
    p.add_argument("recipe", metavar="RECIPE",
                   help="a recipe .toml file or a bundled recipe's name (dcgan_faces, ...)")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="a world (faces, scenes) or an image folder (sets data.source)")
    p.add_argument("--steps", type=int_at_least(1), default=None, metavar="N")
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="a time budget: stop and export after M minutes of training")
    p.add_argument("--size", type=int_at_least(8), default=None, metavar="PX",
                   help="the picture size (sets data.size and the model's image_size)")
    p.add_argument("--eval", type=int_at_least(0), default=0, metavar="N", dest="eval_n",
                   help="after training, measure the model on up to N held-out images "
                        "(easel eval) and write the figures into its card")
    p.add_argument("--judge", choices=("faces", "scenes"), default=None,
                   help="with --eval, for a folder: the world whose judge computes FJD")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, metavar="N")
    p.add_argument("--seed", type=int_at_least(0), default=None)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the run folder (default: <data folder>/runs/<recipe>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--name", default=None, help="the weights' name (default: the recipe's)")
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="where the final weights go (default: the run folder)")
    p.add_argument("--progress", choices=("bar", "jsonl"), default="bar",
                   help="jsonl: one JSON event per line on stdout")
    p.add_argument("--style", default=None, metavar="IMAGE",
                   help="the painting a fast style learns (style-fast; sets task.style)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a recipe key, e.g. --set train.lr=1e-3 (repeatable)")
    p.add_argument("--device", default=argparse.SUPPRESS, help="auto, cuda, mps or cpu")
    p.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (for the model card)."""
    parts = ["easel", "train", args.recipe]
    for flag, value in (("--data", args.data), ("--style", args.style), ("--steps", args.steps),
                        ("--minutes", args.minutes), ("--size", args.size),
                        ("--batch-size", args.batch_size), ("--seed", args.seed),
                        ("--name", args.name), ("--device", args.device)):
        if value is not None:
            parts += [flag, str(value)]
    for o in args.overrides:
        parts += ["--set", o]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    if args.out:  # before the heavy imports: the Train panel learns the process id at once
        from core.training.runs import record_process

        record_process(Path(args.out).expanduser())
    from core.cli.train_progress import BarSink, JsonlSink
    from core.training.checkpoint import read_recipe
    from core.training.recipe import load_recipe
    from core.training.task import TrainingError
    from core.training.trainer import Trainer, default_out

    sink = JsonlSink() if args.progress == "jsonl" else BarSink()
    overrides = list(args.overrides)
    if args.data is not None and Path(args.data).expanduser().is_dir():
        args.data = str(Path(args.data).expanduser().resolve())  # the card names the folder
    if args.style is not None:
        args.style = str(Path(args.style).expanduser().resolve())  # the card names the file
    if args.minutes is not None and not args.minutes > 0:
        raise CliError("--minutes must be a positive number of minutes.")
    for key, value in (("data.source", args.data), ("task.style", args.style),
                       ("train.steps", args.steps), ("train.minutes", args.minutes),
                       ("data.size", args.size),
                       ("train.batch_size", args.batch_size), ("seed", args.seed)):
        if value is not None:
            # A quoted TOML string keeps a path like C:\\images or 2024 a string.
            text = _toml_string(value) if isinstance(value, str) else str(value)
            overrides.append(f"{key}={text}")
    try:
        if args.resume and not args.out:
            raise TrainingError("--resume needs --out DIR: the folder of the run to continue.")
        # A resumed run keeps the settings it was started with; new overrides apply on top.
        base = read_recipe(Path(args.out).expanduser()) if args.resume else None
        recipe = load_recipe(args.recipe, overrides, base=base)
        if args.size is not None and "image_size" in recipe.model:
            recipe = load_recipe(args.recipe, [*overrides, f"model.image_size={args.size}"],
                                 base=base)
        out = args.out or default_out(recipe)
        result = Trainer(recipe, out, resume=args.resume, device=args.device,
                         command=_command(args), name=args.name, weights_dir=args.weights_dir,
                         emit=sink).run()
        if result.weights is not None and args.eval_n:
            evaluate_into_card(result.weights, args.eval_n, args.judge, args.device, sink)
    except TrainingError as exc:
        if isinstance(sink, JsonlSink) and not sink.errored:
            sink({"event": "error", "message": " ".join(str(exc).split())})
        raise CliError(str(exc)) from None
    if result.interrupted:
        from core.training.distributed import from_env

        if not from_env().is_main:  # under torchrun one hint, not one per process
            return 130
        print(f"easel: training stopped at step {result.step} of {result.total}; the checkpoint "
              f"is in {result.out}. Continue with: easel train {shlex.quote(args.recipe)} "
              f"--out {shlex.quote(str(result.out))} --resume", file=sys.stderr)
        return 130
    return 0


def evaluate_into_card(weights: Path, n: int, judge: str | None, device: str | None,
                       sink: Callable[[dict[str, Any]], None]) -> None:
    """``easel eval`` of a freshly trained model, its figures written into the card; an
    ``eval`` event says what was measured (or why nothing could be: the model stays)."""
    from core.device import pick_device
    from core.evaluation import evaluate as ev

    sink({"event": "evaluating", "weights": str(weights), "n": n})
    try:
        result = ev.evaluate(weights, n=n, device=pick_device(device), judge=judge)
    except (ev.EvaluationError, ValueError) as exc:
        sink({"event": "eval", "metrics": {}, "message": " ".join(str(exc).split())})
        return
    ev.write_metrics(weights, result["metrics"])
    sink({"event": "eval", "metrics": ev.json_safe(result["metrics"]), "n": result["n"],
          "seconds": result["seconds"]})


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
