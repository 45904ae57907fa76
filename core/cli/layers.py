"""``easel export DOC -o OUT.ora|OUT.psd`` and ``easel import-layers FILE -o DOC.easel``: a
document's layers out to OpenRaster or Photoshop, and a layered file's layers in as an Easel
document. Both read any of .easel, .ora and .psd (told by the bytes), so they also convert
between the two layered formats. No torch and no Qt.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from core.cli.common import CliError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("export", help="write a document's layers as OpenRaster (.ora) or "
                       "Photoshop (.psd)")
    p.add_argument("document", metavar="DOC", help="an .easel document (or an .ora/.psd file)")
    _options(p, "OUT", "the .ora or .psd file to write")
    p.set_defaults(func=run_export)

    p = sub.add_parser("import-layers", help="bring an OpenRaster (.ora) or Photoshop (.psd) "
                       "file's layers in as an .easel document")
    p.add_argument("file", metavar="FILE", help="an .ora or .psd file")
    _options(p, "DOC", "the .easel document to write")
    p.set_defaults(func=run_import)


def _options(p: argparse.ArgumentParser, metavar: str, text: str) -> None:
    p.add_argument("-o", "--output", required=True, metavar=metavar, help=text)
    p.add_argument("--overwrite", action="store_true", help=f"replace {metavar} if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _output(out: str, source: Path, suffixes: tuple[str, ...], overwrite: bool) -> Path:
    path = Path(out).expanduser().resolve()
    if path.suffix.lower() not in suffixes:
        raise CliError(f"{out}: the output must be a {' or '.join(suffixes)} file.")
    if not path.parent.is_dir():
        raise CliError(f"{out}: {path.parent} is not a folder.")
    if path == source or (path.exists() and source.exists() and os.path.samefile(path, source)):
        raise CliError(f"{out} is the input; Easel never overwrites it.")
    if path.exists() and not overwrite:
        raise CliError(f"{out} already exists; pass --overwrite to replace it.")
    return path


def run_export(args: argparse.Namespace) -> int:
    from core.document import LAYERED_SUFFIXES, read_document, write_layered

    source = Path(args.document).expanduser().resolve()
    out = _output(args.output, source, LAYERED_SUFFIXES, args.overwrite)
    contents, _ = read_document(source)
    write_layered(out, contents.stack, overwrite=args.overwrite)
    _report(args, out, contents.stack)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from core.document import encode, read_layered
    from core.document.easel_format import Contents
    from core.paths import atomic_write

    source = Path(args.file).expanduser().resolve()
    out = _output(args.output, source, (".easel",), args.overwrite)
    stack = read_layered(source)
    atomic_write(out, encode(Contents(stack=stack)), overwrite=args.overwrite)
    _report(args, out, stack)
    return 0


def _report(args: argparse.Namespace, out: Path, stack: Any) -> None:
    if args.json:
        print(json.dumps({"output": str(out), "width": stack.width, "height": stack.height,
                          "layers": [la.name for la in stack.layers], "notes": stack.notes}))
        return
    print(f"Wrote {out} ({stack.width}x{stack.height}, {len(stack.layers)} layer"
          f"{'s' if len(stack.layers) != 1 else ''})")
    for note in stack.notes:
        print(f"Note: {note}")
