"""Uncaught exceptions, in the GUI thread or any other, are logged and reported, never silent."""

from __future__ import annotations

import sys
import threading

import pytest

from desktop import crash


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path))
    saved = sys.excepthook, threading.excepthook
    path = crash.setup_logging()
    crash.install_exception_hooks(show_dialogs=False)
    reports: list[tuple[str, str]] = []

    def record(summary: str, details: str) -> None:
        reports.append((summary, details))

    crash._reporter.report.connect(record)
    yield path, reports
    crash._reporter.report.disconnect(record)
    sys.excepthook, threading.excepthook = saved


def test_log_file_lives_in_the_user_log_folder(hooks, tmp_path):
    path, _ = hooks
    assert path.is_relative_to(tmp_path) and path.name == "easel.log"


def test_main_thread_exception_is_logged_and_reported(hooks):
    path, reports = hooks
    try:
        raise ValueError("brush exploded")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    text = path.read_text()
    assert "brush exploded" in text and "Traceback" in text
    assert reports and reports[-1][0] == "ValueError: brush exploded"


def test_worker_thread_exception_is_logged_and_reported(hooks, qtbot):
    path, reports = hooks

    def boom() -> None:
        raise RuntimeError("worker fell over")

    t = threading.Thread(target=boom, name="painter")
    t.start()
    t.join()
    qtbot.waitUntil(lambda: bool(reports), timeout=2000)
    assert "worker fell over" in path.read_text() and "painter" in path.read_text()
    assert "worker fell over" in reports[-1][1]
