import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                  ) -> None:
    """Every test gets empty per-user folders (models, runs, autosaves), never the real ones."""
    monkeypatch.setenv("EASEL_HOME", str(tmp_path_factory.mktemp("home")))
