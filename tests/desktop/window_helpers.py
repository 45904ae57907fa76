"""Building a main window for tests (imported by the window and panel tests)."""

from __future__ import annotations

from desktop.inference import InferenceService


def open_window(qtbot, tmp_path, settings_values: dict | None = None, autosave_dir=None,
                name: str = "settings.ini"):
    """A shown MainWindow on a CPU service with its own settings file; dialogs are answered
    ("Discard") and messages collected in ``win.messages``. Close it when done."""
    from PySide6.QtCore import QSettings

    from desktop.autosave import Autosave
    from desktop.window import MainWindow

    settings = QSettings(str(tmp_path / name), QSettings.Format.IniFormat)
    for key, value in (settings_values or {}).items():
        settings.setValue(key, value)
    win = MainWindow(service=InferenceService(device="cpu"), settings=settings,
                     autosave=Autosave(folder=autosave_dir or tmp_path / "autosave"))
    win.messages = []
    win.inform = lambda title, text: win.messages.append(text)
    win.ask = lambda title, text, buttons: "Discard"
    qtbot.addWidget(win)
    win.show()
    return win


def count_submits(win, monkeypatch) -> list:
    """Every spec submitted to the window's service from now on."""
    specs = []
    submit = win.service.submit

    def spy(spec):
        specs.append(spec)
        return submit(spec)

    monkeypatch.setattr(win.service, "submit", spy)
    return specs
