"""Where Easel keeps things: per-user folders (platformdirs) and the shipped ``weights/`` folder.

``$EASEL_HOME`` replaces the base of every per-user folder; tests and portable installs set it
so nothing is written into the real home folder. User folders are created on first use.
``$EASEL_WEIGHTS`` replaces the shipped weights folder (packagers and tests use it).
"""

from __future__ import annotations

import os
import sys
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


def data_dir() -> Path:
    """The per-user data folder (models, autosaves, history)."""
    home = _home()
    base = home if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _ensure(base)


def config_dir() -> Path:
    """The per-user settings folder."""
    home = _home()
    base = home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME,
                                                                        appauthor=False))
    return _ensure(base)


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
