"""File > Batch inpaint…: a folder of pictures filled through the inference service with the
Inpaint panel's settings, a bar that follows the fills, Cancel that leaves no partial file, and
a list saying what became of each picture and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QAction
from window_helpers import open_window

from core import imageio
from desktop.widgets.batch_inpaint_dialog import STEPS, BatchInpaintDialog


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    w = open_window(qtbot, tmp_path)
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def save(path: Path, size: int, seed: int = 0, hole: bool = False) -> None:
    """A noisy picture, or (``hole``) a mask with a box a fifth of its area."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if hole:
        a = np.zeros((size, size), np.uint8)
        a[size // 4:size // 4 + size // 2, size // 4:size // 4 + size * 2 // 5] = 255
    else:
        a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)


def open_dialog(win, tmp_path: Path) -> BatchInpaintDialog:
    [action] = [a for a in win.findChildren(QAction)
                if a.text().replace("&", "") == "Batch inpaint…"]
    action.trigger()
    dialog = win.batch_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.folder.setText(str(tmp_path / "pics"))
    dialog.mask.setText(str(tmp_path / "masks"))
    dialog.output.setText(str(tmp_path / "out"))
    return dialog


def rows(dialog: BatchInpaintDialog) -> list[tuple[str, str, str]]:
    tree = dialog.summary
    return [tuple(tree.topLevelItem(i).text(c) for c in range(3))
            for i in range(tree.topLevelItemCount())]


def test_batch_writes_each_picture_and_lists_what_failed_and_why(qtbot, win, tmp_path,
                                                                  monkeypatch):
    from core.pipelines import inpaint_batch

    pics, masks = tmp_path / "pics", tmp_path / "masks"
    for name in ("a", "boom", "c", "bad"):
        save(pics / f"{name}.png", 24, seed=len(name))
        save(masks / f"{name}.png", 24, hole=True)
    (pics / "bad.png").write_bytes((pics / "bad.png").read_bytes()[:70])
    save(pics / "lonely.png", 24)
    fill = inpaint_batch.run_inpaint

    def flaky(spec, ctx):  # runs in the service's thread
        if spec.image.path.endswith("boom.png"):
            raise RuntimeError("a bug")
        return (yield from fill(spec, ctx))

    monkeypatch.setattr(inpaint_batch, "run_inpaint", flaky)
    win.inpaint_panel.random_seed.setChecked(False)
    win.inpaint_panel.seed.setValue(11)
    dialog = open_dialog(win, tmp_path)
    assert "PatchMatch" in dialog.settings_label.text() and "seed 11" in \
        dialog.settings_label.text()
    values: list[int] = []
    dialog.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(dialog.batchEnded, timeout=60_000) as ended:
        assert dialog.start()
        assert dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
    assert [(o.status, Path(o.picture).name) for o in ended.args[0]] == [
        ("written", "a.png"), ("refused", "bad.png"), ("failed", "boom.png"),
        ("written", "c.png"), ("refused", "lonely.png")]
    listed = rows(dialog)
    assert [r[:2] for r in listed] == [("a.png", "Written"), ("bad.png", "Refused"),
                                       ("boom.png", "Failed"), ("c.png", "Written"),
                                       ("lonely.png", "Refused")]
    assert listed[0][2] == "→ a.png"
    assert "truncated or corrupt" in listed[1][2]
    assert "RuntimeError: a bug" in listed[2][2]
    assert "No mask named lonely" in listed[4][2]
    summary = dialog.summary_label.text()
    assert summary.startswith("5 pictures: 2 written, 2 refused, 1 failed")
    assert str(tmp_path / "out") in summary
    assert dialog.progress.value() == dialog.progress.maximum() == 5 * STEPS
    assert values == sorted(values)  # the bar only moves forward
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.status.text() == "Done (seed 11)."
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    spec = imageio.read_metadata(out / "a.png")["spec"]
    assert spec["kind"] == "inpaint" and spec["seed"] == 11 and spec["engine"] == "patchmatch"
    # The folders are remembered for the next time.
    assert win.settings.value("batch_inpaint/folder") == str(pics)


def test_cancel_stops_the_batch_and_leaves_no_partial_file(qtbot, win, tmp_path):
    pics, masks = tmp_path / "pics", tmp_path / "masks"
    save(pics / "a.png", 24)
    save(pics / "b.png", 256, seed=1)  # long enough a fill to cancel in the middle of
    save(pics / "c.png", 24, seed=2)
    for name in "abc":
        save(masks / f"{name}.png", 24 if name != "b" else 256, hole=True)
    win.inpaint_panel.iterations.setValue(20)
    dialog = open_dialog(win, tmp_path)
    with qtbot.waitSignal(dialog.batchEnded, timeout=60_000) as ended:
        assert dialog.start()
        # b.png's fill has begun: its progress moves the bar past the first picture.
        qtbot.waitUntil(lambda: dialog.progress.value() > STEPS, timeout=30_000)
        assert len(dialog.outcomes) == 1 and dialog.is_running()
        dialog.cancel_button.click()
        assert dialog.status.text() == "Cancelling…"
    assert [o.status for o in ended.args[0]] == ["written"]
    assert dialog.cancelled_item is not None and dialog.cancelled_item.picture.name == "b.png"
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # no b.png, no temp file
    summary = dialog.summary_label.text()
    assert summary.startswith("3 pictures: 1 written, 2 not started")
    assert "Cancelled while filling b.png: it was not written" in summary
    assert dialog.status.text() == f"Cancelled (seed {win.inpaint_panel.seed.value()})."
    assert not dialog.is_running() and dialog.start_button.isEnabled()
    # The service is free again for the next job.
    qtbot.waitUntil(lambda: not win.service.is_busy(), timeout=10_000)


def test_a_batch_that_cannot_start_says_why_and_submits_nothing(qtbot, win, tmp_path):
    save(tmp_path / "pics" / "a.png", 24)
    save(tmp_path / "masks" / "a.png", 24, hole=True)
    dialog = open_dialog(win, tmp_path)
    dialog.output.setText(str(tmp_path / "pics"))  # results must not go among the inputs
    assert not dialog.start()
    assert "output folder is the picture folder" in dialog.status.text()
    assert not win.service.is_busy() and not dialog.is_running()


def test_closing_the_app_mid_batch_stops_it_cleanly(qtbot, win, tmp_path):
    pics, masks = tmp_path / "pics", tmp_path / "masks"
    save(pics / "big.png", 256)
    save(masks / "big.png", 256, hole=True)
    win.inpaint_panel.iterations.setValue(20)
    dialog = open_dialog(win, tmp_path)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=30_000)
    win.close()  # cancels the batch, then shuts the service down
    assert not win.service.thread().isRunning()
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written
