"""Where Easel keeps things: per-user folders (platformdirs) and the shipped ``weights/`` folder.

``$EASEL_HOME`` replaces the base of every per-user folder; tests and portable installs set it
so nothing is written into the real home folder. User folders are created on first use.
``$EASEL_WEIGHTS`` replaces the shipped weights folder (packagers and tests use it).

Easel's temporary files (an atomic write's file before it is renamed into place) are named
``.<name>.easel-<8 hex>.tmp`` by :func:`temp_name`, so :func:`remove_stale_temps` can tell them
from anything else when a killed process left one behind; :func:`atomic_write` is the one way
Easel writes a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import sys
import time
from pathlib import Path

import platformdirs

APP_NAME = "Easel"


def _home() -> Path | None:
    home = os.environ.get("EASEL_HOME", "").strip()
    return Path(home).expanduser().resolve() if home else None


def easel_home() -> Path | None:
    """The folder ``$EASEL_HOME`` names, or None when it is not set."""
    return _home()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_base() -> Path:
    home = _home()
    return home if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _config_base() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME,
                                                                        appauthor=False))


def data_dir() -> Path:
    """The per-user data folder (models, autosaves, training runs, history)."""
    return _ensure(_data_base())


def config_dir() -> Path:
    """The per-user settings folder."""
    return _ensure(_config_base())


def log_dir() -> Path:
    """The per-user log folder (easel.log, faults.log)."""
    home = _home()
    base = home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return _ensure(base)


def models_dir() -> Path:
    """User-trained and user-imported weights: ``<models_dir>/<family>/<name>.safetensors``."""
    return _ensure(data_dir() / "models")


def autosave_dir() -> Path:
    """Autosaved documents, offered back after a crash."""
    return _ensure(data_dir() / "autosave")


def shipped_weights_dir() -> Path:
    """The read-only ``weights/`` folder shipped with Easel (may not exist; never created).

    Looked up, in order: ``$EASEL_WEIGHTS``; a frozen (PyInstaller) bundle's ``weights/``;
    the folder next to the ``core`` package. The last one is ``<repo>/weights`` for a source or
    editable install, and ``site-packages/weights`` for a wheel that packages ``weights/`` as
    package data beside ``core`` (see weights/README.md).
    """
    override = os.environ.get("EASEL_WEIGHTS", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "weights"
    return Path(__file__).resolve().parent.parent / "weights"


def resources_dir() -> Path:
    """The read-only ``resources/`` folder (icons, CLIP's vocabulary): a frozen bundle's, else
    the one next to the ``core`` package (a checkout, or a wheel that packages it)."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) / "resources" if bundle else \
        Path(__file__).resolve().parent.parent / "resources"


TEMP_PATTERN = re.compile(r"\..+\.easel-[0-9a-f]{8}\.tmp")
STALE_AFTER_S = 3600.0  # a write that old is not in progress any more: its process died
_TEMP_DEPTH = 3  # data/models/<family>/file and data/runs/<run>/file are the deepest


def free_bytes(path: str | os.PathLike) -> int:
    """Free space on the disk that holds ``path`` or, where it does not exist yet, its nearest
    existing parent folder (0 when it cannot be told)."""
    folder = Path(path)
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def temp_name(path: Path) -> Path:
    """Where an atomic write of ``path`` puts its bytes before renaming them into place."""
    return path.with_name(f".{path.name}.easel-{secrets.token_hex(4)}.tmp")


def remove_stale_temps(now: float | None = None) -> list[Path]:
    """Delete Easel's temporary files left over an hour ago (a killed write) in Easel's own
    folders: the data folder (models, autosaves, training runs) and the settings folder.

    Only names made by :func:`temp_name`, only regular files, never through a link and never
    outside those folders, a few levels deep, so it is cheap to call at every start. Returns
    what it removed; a file it cannot remove is left alone.
    """
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    removed: list[Path] = []
    for root in {_data_base(), _config_base()}:
        _remove_temps_in(root, cutoff, _TEMP_DEPTH, removed)
    return removed


def _remove_temps_in(folder: Path, cutoff: float, depth: int, removed: list[Path]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing or unreadable: nothing of ours to clean
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and depth > 1:
                _remove_temps_in(Path(entry.path), cutoff, depth - 1, removed)
            elif (stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff
                  and TEMP_PATTERN.fullmatch(entry.name)):
                os.unlink(entry.path)
                removed.append(Path(entry.path))


def atomic_write(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temp file in the same folder (same file system, so the rename is atomic;
    named by temp_name, so a killed write's leftover is recognised and cleaned), are
    fsynced, and then os.replace puts the file in place. With ``overwrite=False`` the file is
    linked into place instead, which fails with FileExistsError when ``path`` exists, even when
    another process created it a moment ago. On any failure the temp file is removed and an
    existing file is untouched.
    """
    path = Path(path)
    tmp = temp_name(path)
    # O_EXCL: never write through an existing file or link; 0o666 lets the umask decide, as for
    # an ordinary new file (mkstemp would make it private).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _place_new(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` only if nothing is there: FileExistsError otherwise."""
    try:
        os.link(tmp, path)  # atomic, and never replaces
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
    except OSError:  # a file system without hard links
        if os.name == "nt":
            os.rename(tmp, path)  # on Windows, rename never replaces: FileExistsError
            return
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder for fsync)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
