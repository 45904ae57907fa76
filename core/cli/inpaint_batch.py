"""``easel inpaint FOLDER --mask MASK|MASKFOLDER -o OUTFOLDER``: every picture of a folder filled
and written as OUTFOLDER/NAME.png, one after the other (core/specs/inpaint_batch.py pairs
pictures and masks; core/pipelines/inpaint_batch.py fills and writes each, as in the app's
File > Batch inpaint).

A line per picture as it ends (``--json``: one JSON object per picture), then a summary. Exit
code 0 when every picture was written, 2 when any was refused, 1 when any failed unexpectedly.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.common import PROG, CliError, run_spec


def run_batch(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from core.jobs import Cancelled
    from core.pipelines.inpaint import check_settings
    from core.specs.inpaint import InpaintSpec
    from core.specs.inpaint_batch import (
        FileOutcome,
        batch_exit_code,
        plan_batch,
        summary_line,
    )
    from core.weights import ModelCache

    if settings.get("variations", 1) > 1:
        raise CliError("--variations: a batch writes one fill per picture.")
    plan = plan_batch(args.image, args.mask, args.output)
    # Settings no picture could be filled with are said once, not for every picture.
    check_settings(InpaintSpec(**settings))
    plan.make_output_folder()
    if plan.skipped and not args.json:
        print(f"note: {plan.skipped} file(s) in {plan.folder} are not pictures (by their "
              "suffix) and were left out.", file=sys.stderr)
    models = ModelCache()  # a model is loaded once for the whole batch
    outcomes: list[FileOutcome] = []
    total = len(plan.items)
    try:
        for i, item in enumerate(plan.items, 1):
            if item.problem:
                outcome = FileOutcome.refused(item, item.problem)
            else:
                spec = plan.spec(item, settings, args.overwrite)
                try:
                    result = run_spec(spec, args.device, models,
                                      label=f"[{i}/{total}] {item.picture.name}:")
                except (Cancelled, KeyboardInterrupt):
                    raise
                except Exception as exc:  # noqa: BLE001 - one picture never stops the batch
                    outcome = _unexpected(item, exc)
                else:
                    outcome = FileOutcome.of_result(item, result)
            outcomes.append(outcome)
            _report(args, outcome)
    except (Cancelled, KeyboardInterrupt):
        print(f"{summary_line(outcomes, total)}; cancelled while filling "
              f"{plan.items[len(outcomes)].picture.name} (not written).", file=sys.stderr)
        raise
    if not args.json:
        print(f"{summary_line(outcomes, total)}, in {plan.output}")
    return batch_exit_code(outcomes)


def _unexpected(item: Any, exc: Exception) -> Any:
    """A picture whose job raised: out of memory is its size (refused), the rest a failure."""
    from core.device import is_out_of_memory
    from core.specs.inpaint_batch import FileOutcome

    if is_out_of_memory(exc):
        return FileOutcome.refused(item, f"out of memory ({exc}); run it on the CPU "
                                   "(--device cpu) or on a smaller picture.")
    return FileOutcome.failed(item, f"internal error: {type(exc).__name__}: {exc}")


def _report(args: argparse.Namespace, outcome: Any) -> None:
    from pathlib import Path

    from core.specs.inpaint_batch import WRITTEN

    if args.json:
        print(json.dumps(outcome.to_dict()), flush=True)
        return
    name = Path(outcome.picture).name
    if outcome.status == WRITTEN:
        took = f" ({outcome.seconds:.2f} s)" if outcome.seconds is not None else ""
        print(f"Wrote {outcome.output}{took}", flush=True)
    else:
        print(f"{PROG}: {name}: {outcome.status}: {outcome.message}", file=sys.stderr,
              flush=True)
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
