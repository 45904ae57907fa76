"""The Model manager dialog: listing, lazy hash status, and actions answered through its
replaceable dialog attributes (no real modal dialog ever opens)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from core import paths
from core.model_manager import directions_path
from core.weights import ModelCard, card_path, read_card, save_model
from desktop.widgets.model_manager import COLUMNS, NOT_CHECKED, ModelManager
from tests.core.test_thirdparty_sd import (  # noqa: F401  (fixtures: tiny SD models)
    built,
    network,
    no_network,
    tiny_configs,
)


def make_model(root: Path, name: str, family: str = "vae", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    card = ModelCard(name=name, family=family, architecture=family,
                     metrics={"psnr": 21.5}, recipe=f"recipes/{name}.toml")
    path = save_model(root / family, name, nn.Linear(4, 3).state_dict(), card)
    directions_path(path).write_text(json.dumps({"format": 1, "model": name}))
    return path


class Answers:
    """Records every question the dialog asks and answers from queues."""

    def __init__(self, dlg: ModelManager) -> None:
        self.asked: list[tuple[str, str]] = []
        self.warnings: list[str] = []
        self.infos: list[str] = []
        self.texts: list[str | None] = []
        self.items: list[str | None] = []
        self.files: list[str] = []
        self.confirms: list[bool] = []
        self.trashed: list[str] = []
        self.trash_ok = True
        dlg.ask_text = lambda title, label, text: self._ask("text", label, self.texts)
        dlg.ask_item = lambda title, label, items: self._ask("item", label, self.items)
        dlg.ask_open_file = lambda title, filters: self._ask("open", title, self.files)
        dlg.ask_folder = lambda title: self._ask("folder", title, self.files)
        dlg.ask_save_file = lambda title, default, filters: self._ask("save", default,
                                                                      self.files)
        dlg.confirm = lambda title, text: self._ask("confirm", text, self.confirms)
        dlg.warn = lambda title, text: self.warnings.append(text)
        dlg.inform = lambda title, text: self.infos.append(text)
        dlg.trash = self._trash

    def _ask(self, kind: str, text: str, queue: list):
        self.asked.append((kind, text))
        assert queue, f"unexpected {kind} question: {text}"
        return queue.pop(0)

    def _trash(self, path: Path) -> bool:
        if not self.trash_ok:
            return False
        self.trashed.append(path.name)
        path.unlink()
        return True


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    make_model(paths.shipped_weights_dir(), "ship_vae")
    make_model(paths.models_dir(), "mine", seed=1)
    make_model(paths.models_dir(), "gan", family="dcgan", seed=2)
    return tmp_path


@pytest.fixture
def dlg(qtbot, home):
    d = ModelManager()
    qtbot.addWidget(d)
    d.answers = Answers(d)
    return d


def rows(d: ModelManager) -> list[tuple[str, ...]]:
    return [tuple(d.table.item(r, c).text() for c in range(len(COLUMNS)))
            for r in range(d.table.rowCount())]


def test_lists_every_model_with_lazy_hashes(dlg):
    assert dlg.windowTitle() == "Models"
    assert [r[:3] for r in rows(dlg)] == [("ship_vae", "vae", "shipped"),
                                          ("gan", "dcgan", "user"), ("mine", "vae", "user")]
    assert all(r[4] == NOT_CHECKED for r in rows(dlg))
    assert all(float(r[3]) >= 0.0 for r in rows(dlg))
    row = dlg.select_model("mine")
    assert dlg.hash_status(row) == "ok"  # the selected model is checked at once
    assert dlg.hash_status(dlg.select_model("ship_vae")) == "ok"
    assert rows(dlg)[1][0] == "gan" and dlg.hash_status(1) == NOT_CHECKED  # not selected yet


def test_check_hashes_shows_every_status(dlg, home):
    gan = paths.models_dir() / "dcgan" / "gan.safetensors"
    data = bytearray(gan.read_bytes())
    data[-1] ^= 0xFF
    gan.write_bytes(bytes(data))
    card = json.loads(card_path(paths.models_dir() / "vae" / "mine.json").read_text())
    card["sha256"] = ""
    card_path(paths.models_dir() / "vae" / "mine.json").write_text(json.dumps(card))
    dlg.refresh()
    dlg.check_button.click()
    assert {r[0]: r[4] for r in rows(dlg)} == {"ship_vae": "ok", "gan": "mismatch",
                                                "mine": "unverified"}
    assert dlg.summary.text() == "1 mismatch, 1 ok, 1 unverified"


def test_card_pane_and_buttons_follow_the_selection(dlg):
    assert not dlg.export_button.isEnabled() and not dlg.rename_button.isEnabled()
    dlg.select_model("ship_vae")
    assert not dlg.rename_button.isEnabled() and not dlg.delete_button.isEnabled()
    assert dlg.export_button.isEnabled() and dlg.import_button.isEnabled()
    text = dlg.card.toPlainText()
    assert "name: ship_vae" in text and "metrics:\n  psnr: 21.5" in text
    assert "recipe: recipes/ship_vae.toml" in text and dlg.card.isReadOnly()
    dlg.select_model("mine")
    assert dlg.rename_button.isEnabled() and dlg.delete_button.isEnabled()
    assert "name: mine" in dlg.card.toPlainText()


def test_rename_through_the_dialog(dlg, qtbot):
    dlg.select_model("mine")
    dlg.answers.texts.append("portraits")
    with qtbot.waitSignal(dlg.modelsChanged, timeout=1000):
        dlg.rename_button.click()
    folder = paths.models_dir() / "vae"
    assert sorted(p.name for p in folder.iterdir()) == [
        "portraits.directions.json", "portraits.json", "portraits.safetensors"]
    assert read_card(folder / "portraits.json").name == "portraits"
    assert dlg.selected().name == "portraits"
    assert dlg.hash_status(dlg.table.currentRow()) == "ok"
    assert not dlg.answers.warnings


def test_rename_to_a_taken_name_warns_and_changes_nothing(dlg, qtbot):
    dlg.select_model("mine")
    dlg.answers.texts.append("ship_vae")
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.rename_button.click()
    assert len(dlg.answers.warnings) == 1 and "already exists" in dlg.answers.warnings[0]
    assert (paths.models_dir() / "vae" / "mine.safetensors").is_file()


def test_shipped_models_cannot_be_renamed_or_deleted(dlg, qtbot):
    dlg.select_model("ship_vae")
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.rename_selected()
        dlg.delete_selected()
    assert dlg.answers.asked == []  # not even asked
    assert (paths.shipped_weights_dir() / "vae" / "ship_vae.safetensors").is_file()


def test_delete_moves_to_the_trash(dlg, qtbot):
    dlg.select_model("mine")
    dlg.answers.confirms.append(True)
    with qtbot.waitSignal(dlg.modelsChanged, timeout=1000):
        dlg.delete_button.click()
    assert dlg.answers.trashed == ["mine.directions.json", "mine.safetensors", "mine.json"]
    assert [r[0] for r in rows(dlg)] == ["ship_vae", "gan"]
    assert not any((paths.models_dir() / "vae").iterdir())


def test_delete_falls_back_to_deleting_for_good_after_asking(dlg, qtbot):
    dlg.answers.trash_ok = False
    dlg.select_model("mine")
    dlg.answers.confirms += [True, False]  # go ahead; then "delete for good?" no
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.delete_button.click()
    assert (paths.models_dir() / "vae" / "mine.safetensors").is_file()
    assert "for good" in dlg.answers.asked[-1][1]
    dlg.answers.confirms += [True, True]
    with qtbot.waitSignal(dlg.modelsChanged, timeout=1000):
        dlg.delete_button.click()
    assert not any((paths.models_dir() / "vae").iterdir())
    assert [r[0] for r in rows(dlg)] == ["ship_vae", "gan"]


def test_import_without_a_card_asks_for_the_family(dlg, qtbot, home):
    src = home / "loose" / "found.safetensors"
    src.parent.mkdir()
    src.write_bytes((paths.models_dir() / "vae" / "mine.safetensors").read_bytes())
    dlg.answers.files.append(str(src))
    dlg.answers.items.append("vae")
    with qtbot.waitSignal(dlg.modelsChanged, timeout=1000):
        dlg.import_button.click()
    assert dlg.selected().name == "found"
    assert dlg.hash_status(dlg.table.currentRow()) == "unverified"
    assert "unverified" in dlg.answers.infos[-1]


def test_import_of_a_pickle_is_refused_with_a_message(dlg, qtbot, home):
    # A pickle holding more than weights (here an object of a class: opening it could run
    # code) is refused without a question; one holding weights is read as a user's model
    # file, and refused when it is of no architecture Easel opens.
    bad, unknown = home / "model.ckpt", home / "weights.ckpt"
    torch.save({"w": torch.zeros(2), "args": zipfile.ZipInfo("x")}, bad)
    torch.save({"w": torch.zeros(2)}, unknown)
    dlg.answers.files += [str(bad), str(unknown)]
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.import_button.click()
        dlg.import_button.click()
    assert "pickled files" in dlg.answers.warnings[-2]
    assert "weights.ckpt is not a model Easel can open" in dlg.answers.warnings[-1]
    assert [kind for kind, _ in dlg.answers.asked] == ["open", "open"]
    assert dlg.table.rowCount() == 3


def test_a_users_upscaler_imports_with_progress_and_shows_its_scale(dlg, qtbot, home,
                                                                     monkeypatch):
    from upscaler_models import SRVGGCompact

    from core import cards
    from desktop.widgets.model_manager import IMPORT_FILTER

    src = home / "realesr-general-x4v3.pth"
    torch.save({"params": SRVGGCompact(num_feat=8, num_conv=2, upscale=4).state_dict()}, src)
    monkeypatch.setattr(cards, "READ_CHUNK", 1024)  # many steps of progress
    seen = []
    report = cards.read_regular

    def spy(path, limit, progress=None):
        return report(path, limit, lambda d, n: (seen.append((d, n)), progress(d, n)))

    monkeypatch.setattr("core.model_manager.read_regular", spy)
    dlg.answers.files.append(str(src))
    with qtbot.waitSignal(dlg.modelsChanged, timeout=10_000):
        dlg.import_button.click()
    assert "*.pth" in IMPORT_FILTER and "*.ckpt" in IMPORT_FILTER
    size = src.stat().st_size
    assert len(seen) > 3 and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    info = dlg.selected()
    assert (info.name, info.family) == ("realesr-general-x4v3", "upscale")
    assert info.card.config["scale"] == 4
    assert dlg.answers.infos[-1] == "Imported as realesr-general-x4v3 (upscale)."


def test_cancelling_an_import_writes_nothing(dlg, qtbot, home, monkeypatch):
    import time

    from upscaler_models import SRVGGCompact

    from core import cards

    src = home / "big.pth"
    torch.save(SRVGGCompact(num_feat=16, num_conv=4, upscale=4).state_dict(), src)
    monkeypatch.setattr(cards, "READ_CHUNK", 256)  # some 200 reads of 10 ms
    report = cards.read_regular

    def slow(path, limit, progress=None):  # a big file on a slow disk
        def step(d, n):
            time.sleep(0.01)
            progress(d, n)
        return report(path, limit, step if progress else None)

    monkeypatch.setattr("core.model_manager.read_regular", slow)
    from PySide6.QtCore import QTimer

    QTimer.singleShot(150, lambda: dlg.import_progress.cancel())
    before = sorted(p.relative_to(paths.models_dir()) for p in paths.models_dir().rglob("*"))
    dlg.answers.files.append(str(src))
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.import_button.click()
    assert dlg.answers.infos == ["big.pth was not imported."]
    assert not dlg.answers.warnings
    after = sorted(p.relative_to(paths.models_dir()) for p in paths.models_dir().rglob("*"))
    assert after == before


def test_import_refuses_when_the_disk_is_full(dlg, qtbot, home, monkeypatch):
    import shutil

    src = home / "found.safetensors"
    src.write_bytes((paths.models_dir() / "vae" / "mine.safetensors").read_bytes())
    usage = shutil.disk_usage(home)
    monkeypatch.setattr("core.paths.shutil.disk_usage",
                        lambda p: usage._replace(free=10 << 20))
    dlg.answers.files.append(str(src))
    with qtbot.assertNotEmitted(dlg.modelsChanged):
        dlg.import_button.click()
    assert "Not enough free space to import found.safetensors" in dlg.answers.warnings[-1]
    assert "10 MB free" in dlg.answers.warnings[-1]


@pytest.fixture
def sd_folder(home, tiny_configs, network):  # noqa: F811  (after home: its models folder)
    """A tiny SD 1.x diffusers folder, and the record of refused network calls."""
    return tiny_configs["v1"]["folder"], network


def test_a_stable_diffusion_folder_is_registered_where_it_lies(dlg, qtbot, sd_folder):
    folder, refused = sd_folder
    dlg.answers.files.append(str(folder))
    with qtbot.waitSignal(dlg.modelsChanged, timeout=30_000):
        dlg.import_folder_button.click()
    assert dlg.answers.asked == [("folder", "Import a Stable Diffusion folder")]
    info = dlg.selected()
    assert (info.name, info.family) == ("diffusers", "sd")
    assert dlg.answers.infos[-1] == "Imported as diffusers (sd)."
    assert dlg.hash_status(dlg.table.currentRow()) == "ok"  # hashed where it lies
    assert refused == []


def test_export_through_the_dialog(dlg, home):
    dlg.select_model("gan")
    dlg.answers.files.append(str(home / "gan_export"))  # no suffix: .zip is added
    dlg.export_button.click()
    with zipfile.ZipFile(home / "gan_export.zip") as z:
        assert sorted(z.namelist()) == ["gan.directions.json", "gan.json", "gan.safetensors"]
    assert "gan_export.zip" in dlg.answers.infos[-1]
