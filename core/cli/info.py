"""``easel info`` (versions, devices, folders, models) and ``easel dataset FOLDER`` (what a
folder holds as a training set): reports that change nothing.

Kept free of torch at import time (``easel --help``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.cli.models import model_row
from core.imageio import versions


def version_text() -> str:
    """A few lines naming every version (the About box and ``easel info`` show it)."""
    labels = {"easel": "Easel", "python": "Python", "torch": "PyTorch", "numpy": "NumPy",
              "pillow": "Pillow", "safetensors": "safetensors", "pyside6": "PySide6"}
    return "\n".join(f"{labels[k]} {v or 'not installed'}" for k, v in versions().items())


def add_dataset_parser(sub: Any) -> None:
    p = sub.add_parser("dataset", help="what a folder holds as a training set: usable images, "
                       "skipped files, near-duplicates, sizes")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_dataset)


def add_info_parser(sub: Any) -> None:
    p = sub.add_parser("info", help="versions, devices, folders and models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_info)


def run_dataset(args: argparse.Namespace) -> int:
    from core.data.report import folder_report

    report = folder_report(args.folder)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    spread = report.spread()
    print(f"{report.root}: {report.count} usable images")
    if report.count:
        print(f"  sides {spread['min_side']}..{spread['max_side']} px (median "
              f"{spread['median_side']}); {spread['square']} square, {spread['landscape']} "
              f"landscape, {spread['portrait']} portrait")
    for group in report.duplicates:
        print(f"  near-duplicates: {', '.join(group)}")
    for skipped in report.skipped:
        print(f"  skipped {skipped['path']}: {skipped['reason']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from core import paths
    from core.device import available_devices, describe, pick_device
    from core.weights import verify_all

    chosen = pick_device(args.device)
    folders = {"data": paths.data_dir(), "config": paths.config_dir(), "logs": paths.log_dir(),
               "models": paths.models_dir(), "autosave": paths.autosave_dir(),
               "shipped weights": paths.shipped_weights_dir()}
    models = [model_row(info, ok, msg) for info, ok, msg in verify_all()]
    if args.json:
        print(json.dumps({"versions": versions(), "devices": available_devices(),
                          "device": str(chosen), "device_name": describe(chosen),
                          "folders": {k: str(v) for k, v in folders.items()},
                          "models": models}))
        return 0
    print(version_text())
    print(f"Devices: {', '.join(available_devices())}; using {chosen} ({describe(chosen)})")
    print("Folders:")
    for label, folder in folders.items():
        print(f"  {label + ':':17}{folder}" + ("" if folder.is_dir() else "  (missing)"))
    print("Models:" if models else "Models: none")
    for row in models:
        print(f"  {'ok  ' if row['ok'] else 'FAIL'}  {row['family']}/{row['name']} "
              f"({row['source']}): {row['message']}")
    return 0
