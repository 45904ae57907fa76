"""Opening and writing documents by file: ``.easel``, ``.ora`` and ``.psd``.

The format is told by the file's first bytes (a zip holding stack.xml is OpenRaster, one
holding document.json is an Easel document, ``8BPS`` is Photoshop), not by its name, and a
file is read only when it is a regular file within a size bound. Writes are atomic.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from core.cards import WeightsError, read_regular
from core.document.easel_format import Contents, decode
from core.document.ora import read_ora, write_ora
from core.document.psd import read_psd, write_psd
from core.document.stack import DocumentError, LayerStack
from core.paths import atomic_write

LAYERED_SUFFIXES = (".ora", ".psd")
LAYERED_FILTER = "Layered images (*.ora *.psd)"
MAX_FILE_BYTES = 4 << 30


def read_bytes(path: str | os.PathLike) -> bytes:
    """A document file's bytes; DocumentError when it is missing, not a file, or too big."""
    path = Path(path)
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except WeightsError as exc:
        raise DocumentError(str(exc).replace("; not read.", "; not opened.")) from None
    except OSError as exc:
        raise DocumentError(f"Could not open {path}: {exc.strerror or exc}") from exc


def sniff(data: bytes) -> str | None:
    """"easel", "ora", "psd" or None, from the bytes."""
    if data.startswith(b"8BPS"):
        return "psd"
    if data.startswith(b"PK"):
        if data[30:38] == b"mimetype":  # OpenRaster's first member
            return "ora"
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return "easel"  # decode says what is wrong with it
        return "ora" if "stack.xml" in names and "document.json" not in names else "easel"
    return None


def read_layered(path: str | os.PathLike, max_pixels: int | None = None) -> LayerStack:
    """The layers of an OpenRaster or Photoshop file (``stack.notes`` says what changed)."""
    path = Path(path)
    data = read_bytes(path)
    kind = sniff(data)
    if kind == "psd":
        return read_psd(data, path.name, max_pixels)
    if kind == "ora":
        return read_ora(data, path.name, max_pixels)
    raise DocumentError(f"{path.name} is not an OpenRaster (.ora) or Photoshop (.psd) file.")


def read_document(path: str | os.PathLike) -> tuple[Contents, str]:
    """An Easel document, or an OpenRaster or Photoshop file as one; and which it was
    ("easel", "ora", "psd")."""
    path = Path(path)
    data = read_bytes(path)
    kind = sniff(data)
    if kind == "easel":
        return decode(data, path.name), kind
    if kind is None:
        raise DocumentError(f"{path.name} is not an Easel document, an OpenRaster (.ora) or a "
                            "Photoshop (.psd) file.")
    stack = read_psd(data, path.name) if kind == "psd" else read_ora(data, path.name)
    return Contents(stack=stack), kind


def write_layered(path: str | os.PathLike, stack: LayerStack,
                  overwrite: bool = True) -> Path:
    """Write ``stack`` as .ora or .psd by ``path``'s suffix, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LAYERED_SUFFIXES:
        raise DocumentError(f"{path.name}: a layered file is written as .ora or .psd.")
    data = write_ora(stack) if suffix == ".ora" else write_psd(stack)
    try:
        atomic_write(path, data, overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise DocumentError(f"Could not write {path}: {exc.strerror or exc}") from exc
    return path
