"""The app's settings (window layout, panel choices, device): one QSettings for the app.

Without ``$EASEL_HOME`` they live where the platform keeps an app's settings (the registry
on Windows, a plist on macOS, ``~/.config/Easel/Easel.conf`` on Linux). With it, they live
in ``settings.ini`` under ``core.paths.config_dir()``, like every other per-user folder, so a
portable install or a separate profile carries its settings along.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

from core import paths

APP = "Easel"
FILE_NAME = "settings.ini"


def app_settings() -> QSettings:
    """The app's settings store (a new QSettings object on it)."""
    if paths.easel_home() is not None:
        return QSettings(str(paths.config_dir() / FILE_NAME), QSettings.Format.IniFormat)
    return QSettings(APP, APP)
