"""The Train panel end to end with real `easel` processes: read a folder, train, watch the loss
plot and samples, pause, resume after a restart, stop, crash, close the app mid-run, and use
the new model in the Latent panel."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from window_helpers import open_window

from core.data.folder import held_out_split
from core.training import runs
from core.weights import find_model, read_card
from desktop.panels.train import TrainPanel

RUN_TIMEOUT = 180_000  # ms: a fresh Python with torch takes seconds to start on a busy CI


def picture_folder(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        h, w = 28 + (i % 4) * 6, 30 + (i % 3) * 8  # mixed sizes and shapes
        img = (rng.random((h, w, 3)) * 50 + np.linspace(20, 200, w)[None, :, None])
        Image.fromarray(img.astype(np.uint8)).save(root / f"pic{i:03d}.jpg", quality=90)
    return root


@pytest.fixture(autouse=True)
def no_runs_left(tmp_path, monkeypatch):
    """Every training process a test started is gone when it ends."""
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    yield
    for out in runs.runs_dir().glob("*") if runs.runs_dir().is_dir() else []:
        pid = runs.read_pid(out)
        if runs.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def panel_with_folder(qtbot, folder: Path, *, steps: int = 0, size: int = 32) -> TrainPanel:
    panel = TrainPanel()
    qtbot.addWidget(panel)
    panel.set_devices(["cpu"])
    panel.set_folder(str(folder))
    qtbot.waitUntil(lambda: panel.report is not None, timeout=30_000)
    panel.family.setCurrentIndex(panel.family.findData("vae"))
    panel.picture_size.setCurrentIndex(panel.picture_size.findData(size))
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    if steps:
        panel.budget_unit.setCurrentIndex(panel.budget_unit.findData("steps"))
        panel.budget.setValue(steps)
    return panel


def wait_state(qtbot, panel: TrainPanel, *states: str) -> None:
    qtbot.waitUntil(lambda: panel.state is not None and panel.state.state in states,
                    timeout=RUN_TIMEOUT)


def wait_steps(qtbot, panel: TrainPanel, n: int) -> None:
    qtbot.waitUntil(lambda: panel.state is not None and panel.state.step >= n,
                    timeout=RUN_TIMEOUT)


def close(panel: TrainPanel) -> None:
    panel.shutdown()
    panel.close()


def test_a_folder_trains_a_vae_that_the_latent_panel_opens(qtbot, tmp_path):
    folder = picture_folder(tmp_path / "my pictures", 60)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    win = open_window(qtbot, tmp_path)
    try:
        win.open_paths([str(folder)])  # a dropped folder goes to the Train panel
        panel = win.train_panel
        assert win.current_panel() is panel
        qtbot.waitUntil(lambda: panel.report is not None, timeout=30_000)
        assert panel.report["count"] == 60 and panel.report["skipped"][0]["path"] == "broken.jpg"
        qtbot.waitUntil(lambda: panel.dataset.thumbnails_loaded() == 60, timeout=30_000)
        assert panel.name_edit.text() == "vae_my_pictures"
        panel.family.setCurrentIndex(panel.family.findData("vae"))
        panel.picture_size.setCurrentIndex(panel.picture_size.findData(32))
        panel.budget_unit.setCurrentIndex(panel.budget_unit.findData("steps"))
        panel.budget.setValue(30)
        with qtbot.waitSignal(panel.modelsChanged, timeout=RUN_TIMEOUT):
            win.run_current_panel()  # Ctrl+Return starts the run
            assert panel.is_running() and not panel.start_button.isEnabled()
        wait_state(qtbot, panel, "finished", "failed", "killed")
        qtbot.waitUntil(lambda: bool(panel.state.metrics), timeout=RUN_TIMEOUT)
        assert panel.state.state == "finished", panel.log_view.toPlainText()
        assert panel.plot.names()[:1] == ["loss"] and panel.plot.series("loss")[-1][0] == 30
        assert not panel.sample.pixmap().isNull()
        info = find_model("vae_my_pictures", ("vae",))
        assert info is not None and info.source == "user"
        card = read_card(info.path)
        held = len(held_out_split([f"pic{i:03d}.jpg" for i in range(60)], 0.05))
        assert held == 2  # 5% of 60 by hash is 1 file: a small folder still holds 2 out
        assert card.metrics["images"] == held and card.metrics["recon_psnr"] > 5
        assert "held out for evaluation" in card.data and str(folder) in card.data
        assert card.steps == 30 and card.config["image_size"] == 32
        # The figures are the model card's, shown in the model manager, not in the panel.
        assert "Manage models" in panel.status.text() and "psnr" not in panel.status.text()
        assert panel.use_button.isVisible()
        panel.use_button.click()
        latent = win.current_panel()
        assert latent.name == "latent" and latent.current_model() == "vae_my_pictures"
    finally:
        win.close()


def test_pause_survives_a_restart_then_resume_and_stop(qtbot, tmp_path):
    folder = picture_folder(tmp_path / "pics", 20)
    panel = panel_with_folder(qtbot, folder, steps=100_000)
    panel.start()
    wait_steps(qtbot, panel, 20)
    assert panel.pause_button.isEnabled() and not panel.resume_button.isEnabled()
    panel.pause()
    wait_state(qtbot, panel, "paused", "failed", "killed")
    assert panel.state.state == "paused" and panel.resume_button.isEnabled()
    paused_at = panel.state.step
    out = panel.out
    close(panel)

    again = TrainPanel()  # the app starts again
    qtbot.addWidget(again)
    found = again.resume_left_runs()
    assert found is not None and found.out == out and found.state == "paused"
    assert again.state.step == paused_at and again.resume_button.isEnabled()
    assert again.plot.series("loss")[-1][0] <= paused_at
    again.resume()
    wait_steps(qtbot, again, paused_at + 20)
    again.stop()  # save the model as it is
    wait_state(qtbot, again, "finished", "failed", "killed")
    qtbot.waitUntil(lambda: bool(again.state.metrics), timeout=RUN_TIMEOUT)
    assert again.state.state == "finished"
    card = read_card(Path(again.state.weights))
    assert paused_at + 20 <= card.steps < 100_000
    close(again)


def test_a_killed_run_shows_its_log_and_a_failed_one_its_message(qtbot, tmp_path):
    folder = picture_folder(tmp_path / "pics", 20)
    panel = panel_with_folder(qtbot, folder, steps=100_000)
    panel.start()
    wait_steps(qtbot, panel, 5)
    (panel.out / runs.LOG).open("a").write("warning: the last words of the process\n")
    os.kill(runs.read_pid(panel.out), signal.SIGKILL)  # a crash, out of memory, ...
    wait_state(qtbot, panel, "killed")
    assert "stopped unexpectedly" in panel.status.text()
    assert not panel.log_view.isHidden()
    assert "last words of the process" in panel.log_view.toPlainText()
    close(panel)

    panel = panel_with_folder(qtbot, folder, steps=50)
    for f in folder.glob("*.jpg"):  # the pictures vanish after the folder was read
        f.unlink()
    panel.start()
    wait_state(qtbot, panel, "failed", "killed")
    assert panel.state.state == "failed" and "No usable images" in panel.status.text()
    assert "No usable images" in panel.log_view.toPlainText()  # the process's stderr
    close(panel)


@pytest.mark.parametrize("count", [0, 3])
def test_too_few_pictures_are_refused_with_the_minimum(qtbot, tmp_path, count):
    folder = picture_folder(tmp_path / "few", count)
    panel = panel_with_folder(qtbot, folder, steps=10)
    assert panel.dataset.below_minimum()  # the dataset view says so in red
    panel.start()
    assert not panel.is_running() and "training needs at least 8" in panel.message.text()
    assert not runs.runs_dir().exists() or not any(runs.runs_dir().iterdir())
    close(panel)


def test_closing_the_app_mid_run_pauses_or_leaves_it_training(qtbot, tmp_path):
    folder = picture_folder(tmp_path / "pics", 20)
    win = open_window(qtbot, tmp_path, name="a.ini")
    questions = []
    win.ask = lambda title, text, buttons: questions.append(text) or "Leave it training"
    panel = win.train_panel
    panel.set_folder(str(folder))
    qtbot.waitUntil(lambda: panel.report is not None, timeout=30_000)
    panel.picture_size.setCurrentIndex(panel.picture_size.findData(32))
    panel.budget_unit.setCurrentIndex(panel.budget_unit.findData("steps"))
    panel.budget.setValue(100_000)
    panel.start()
    wait_steps(qtbot, panel, 5)
    out = panel.out
    win.close()
    assert questions and "still training" in questions[0]
    assert runs.pid_alive(runs.read_pid(out)) and not (out / runs.CONTROL).exists()

    win2 = open_window(qtbot, tmp_path, name="b.ini")  # the next session finds it going
    panel2 = win2.train_panel
    assert panel2.out == out and panel2.is_running()
    step = panel2.state.step
    wait_steps(qtbot, panel2, step + 5)  # and follows it live
    win2.ask = lambda title, text, buttons: "Pause training"
    win2.close()  # the run reads the request at its next step: it checkpoints and exits
    qtbot.waitUntil(lambda: not runs.pid_alive(runs.read_pid(out)), timeout=RUN_TIMEOUT)
    assert runs.run_state(out).state == "paused"


def test_a_name_in_use_is_never_overwritten(qtbot, tmp_path):
    taken = runs.weights_dir("vae")
    taken.mkdir(parents=True)
    (taken / "vae_pics.safetensors").write_bytes(b"an installed model")
    panel = panel_with_folder(qtbot, picture_folder(tmp_path / "pics", 10), steps=10)
    assert panel.name_edit.text() == "vae_pics-2"  # the suggested name is a free one
    panel.name_edit.setText("vae_pics")
    panel.start()
    assert not panel.is_running() and "called 'vae_pics' is installed" in panel.message.text()
    assert (taken / "vae_pics.safetensors").read_bytes() == b"an installed model"
    close(panel)


def test_a_finished_run_leaves_its_figures_to_the_model_manager(qtbot, tmp_path):
    panel = TrainPanel()
    qtbot.addWidget(panel)
    panel.state = runs.RunState(tmp_path / "run", "finished", step=30, total=30,
                                metrics={"bits_per_dim_elbo": 4.51, "recon_psnr": 18.2})
    panel._update_view()
    text = panel.status.text()
    assert "finished" in text.lower() and "Models > Manage models" in text
    assert "bits_per_dim" not in text and "psnr" not in text and "4.51" not in text
