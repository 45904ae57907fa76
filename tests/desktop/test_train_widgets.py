"""The Train panel's widgets: the live loss plot and the dataset view.

The loss plot is checked on its data (what add/set_rows keep, NaN dropped, the axis scale it
picks), on its point reduction (a 20k-row log must paint a bounded number of points) and on
painting itself. The dataset view is fed a real report of a small folder made with PIL, so the
test follows the same JSON shape as ``easel dataset --json``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from core.data.report import folder_report
from desktop.widgets.dataset_view import MAX_THUMBNAILS, DatasetView, summary_text
from desktop.widgets.loss_plot import (
    LossPlot,
    log_ticks,
    nice_ticks,
    reduce_points,
    use_log_scale,
)

# -- LossPlot -----------------------------------------------------------------------------------


@pytest.fixture
def plot(qtbot) -> LossPlot:
    widget = LossPlot()
    qtbot.addWidget(widget)
    widget.resize(400, 200)
    return widget


def test_add_keeps_points_per_loss_and_skips_missing(plot):
    plot.add(10, {"recon": 0.5, "kl": 3.0})
    plot.add(20, {"recon": float("nan"), "kl": 2.0, "adv": None})
    plot.add(30, {"recon": 0.25, "kl": float("inf")})
    assert plot.names() == ["recon", "kl"]  # "adv" never had a value
    assert plot.series("recon") == [(10, 0.5), (30, 0.25)]
    assert plot.series("kl") == [(10, 3.0), (20, 2.0)]
    assert plot.series("missing") == []


def test_set_rows_replaces_and_ignores_bookkeeping_columns(plot):
    plot.add(1, {"old": 1.0})
    rows = [{"step": 20, "wall_time_s": 1.5, "images_per_s": 300.0, "recon": 0.1, "kl": 3.2},
            {"step": "40", "wall_time_s": "3.0", "images_per_s": "310", "recon": "0.08",
             "kl": ""}]  # csv.DictReader gives strings, and empty cells
    plot.set_rows(rows)
    assert plot.names() == ["recon", "kl"]
    assert plot.series("recon") == [(20, 0.1), (40, 0.08)]
    assert plot.series("kl") == [(20, 3.2)]
    plot.clear()
    assert plot.names() == []


def test_add_only_schedules_a_repaint(plot, monkeypatch):
    calls = []
    monkeypatch.setattr(plot, "repaint", lambda *a: calls.append("repaint"))
    monkeypatch.setattr(plot, "update", lambda *a: calls.append("update"))
    plot.add(1, {"loss": 1.0})
    assert calls == ["update"]


def test_smoothing_is_tensorboards_debiased_ema(plot):
    values = [1.0, 0.0, 1.0, 0.0]
    for step, v in enumerate(values):
        plot.add(step, {"loss": v})
    w, ema, expected = 0.6, 0.0, []
    for i, v in enumerate(values, 1):
        ema = ema * w + (1 - w) * v
        expected.append(ema / (1 - w ** i))
    assert plot.smoothing() == pytest.approx(0.6)
    assert plot.smoothed("loss") == pytest.approx(expected)
    assert plot.smoothed("loss")[0] == pytest.approx(1.0)  # debiased: starts at the first value
    plot.add(4, {"loss": 1.0})  # extended incrementally
    ema = ema * w + (1 - w) * 1.0
    assert plot.smoothed("loss")[-1] == pytest.approx(ema / (1 - w ** 5))
    plot.smooth_action.setChecked(False)  # the right-click toggle
    assert plot.smoothing() == 0.0
    assert plot.smoothed("loss") == values + [1.0]
    plot.smooth_action.setChecked(True)
    assert plot.smoothing() == pytest.approx(0.6)


def test_log_scale_only_for_positive_values_spanning_a_decade(plot):
    assert use_log_scale(0.01, 300) and not use_log_scale(0.5, 3.0)
    assert not use_log_scale(-1.0, 300) and not use_log_scale(0.0, 300)
    plot.add(0, {"recon": 0.01, "kl": 300.0})
    assert plot.uses_log_scale()
    plot.set_series_visible("kl", False)  # the axis fits what is shown
    assert not plot.uses_log_scale()
    plot.clear()
    plot.add(0, {"g": -0.5})
    plot.add(1, {"g": 200.0})
    assert not plot.uses_log_scale()


def test_ticks_are_round_and_inside_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.13, 0.97)
    assert ticks == [0.2, 0.4, 0.6, 0.8]
    assert log_ticks(0.01, 300) == [0.01, 0.1, 1.0, 10.0, 100.0]
    assert log_ticks(0.5, 20) == [1.0, 10.0]
    assert log_ticks(0.3, 5) == [0.5, 1.0, 2.0, 5.0]  # one power of ten inside: 2x, 5x fill in
    assert len(log_ticks(1e-8, 1e8)) <= 6


def test_reduce_points_bounds_the_count_and_keeps_extremes():
    rng = np.random.default_rng(0)
    xs = np.arange(20_000, dtype=float)
    ys = rng.random(20_000)
    ys[12_345] = 50.0  # a spike a stride would drop
    ys[777] = -3.0
    rx, ry = reduce_points(xs, ys, 300)
    assert len(rx) == len(ry) <= 600
    assert ry.max() == 50.0 and ry.min() == -3.0
    assert rx.min() >= 0 and rx.max() <= 19_999
    small_x, small_y = reduce_points(xs[:100], ys[:100], 300)  # fits: unchanged
    assert np.array_equal(small_x, xs[:100]) and np.array_equal(small_y, ys[:100])
    shuffled = rng.permutation(20_000)  # out of order steps are sorted first
    rx, ry = reduce_points(xs[shuffled], ys[shuffled], 300)
    assert len(rx) <= 600 and np.all(np.diff(rx) >= 0)


def test_painting_is_bounded_and_survives_empty_and_full(plot, qtbot):
    empty = plot.grab().toImage()
    assert not empty.isNull() and plot.painted_points() == 0
    rows = [{"step": 10 * i, "recon": 0.01 + 0.1 * math.exp(-i / 3000),
             "kl": 300 * math.exp(-i / 5000) + 1} for i in range(20_000)]
    plot.set_rows(rows)
    full = plot.grab().toImage()
    assert not full.isNull()
    # Two series, each a raw and a smoothed line, each at most 2 points per pixel column.
    assert 0 < plot.painted_points() <= 2 * 2 * 2 * plot.width()
    # Something other than the background was drawn in each series' colour.
    colours = {full.pixelColor(x, y).name() for x in range(0, full.width(), 2)
               for y in range(0, full.height(), 2)}
    assert "#0072b2" in colours and "#e69f00" in colours
    plot.set_smoothing(0)
    plot.grab()
    assert 0 < plot.painted_points() <= 2 * 2 * plot.width()
    plot.add(200_010, {"recon": 0.5})  # a single point of a new loss draws too
    plot.add(5, {"solo": 1.0})
    assert not plot.grab().toImage().isNull()


def test_clicking_the_legend_hides_and_shows_a_series(plot, qtbot):
    plot.add(0, {"recon": 0.01, "kl": 300.0})
    plot.add(1, {"recon": 0.02, "kl": 250.0})
    plot.show()
    qtbot.waitExposed(plot)
    rect = plot.legend_rects()["kl"]
    with qtbot.waitSignal(plot.seriesToggled) as blocker:
        qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["kl", False]
    assert not plot.is_series_visible("kl") and plot.is_series_visible("recon")
    plot.grab()
    assert plot.painted_points() == 2 * 2  # only recon's raw and smoothed lines
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=QPoint(rect.center()))
    assert plot.is_series_visible("kl")
    plot.set_series_visible("recon", False)
    plot.set_series_visible("kl", False)
    assert not plot.grab().toImage().isNull() and plot.painted_points() == 0
    plot.show_all_action.trigger()
    assert plot.is_series_visible("recon") and plot.is_series_visible("kl")


def test_size_hint(plot):
    hint = plot.sizeHint()
    assert (hint.width(), hint.height()) == (360, 180)


# -- DatasetView --------------------------------------------------------------------------------


def _picture(w: int, h: int, seed: int) -> Image.Image:
    """A random-looking picture: distinct seeds are never near-duplicates."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


@pytest.fixture
def folder_report_dict(tmp_path) -> dict:
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    _picture(64, 64, 1).save(root / "a.png")
    _picture(64, 64, 1).resize((48, 48)).save(root / "a_small.png")  # near-duplicate of a
    _picture(120, 80, 2).save(root / "b.jpg", quality=90)
    _picture(40, 90, 3).save(root / "sub" / "c.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "notes.doc").write_bytes(b"hello")
    return folder_report(root).to_dict()


@pytest.fixture
def view(qtbot) -> DatasetView:
    widget = DatasetView()
    qtbot.addWidget(widget)
    return widget


def test_report_fixture_is_what_the_view_expects(folder_report_dict):
    report = folder_report_dict
    assert report["count"] == 4
    assert sorted(s["path"] for s in report["skipped"]) == ["broken.png", "notes.doc"]
    assert report["duplicates"] == [["a.png", "a_small.png"]]


def test_set_report_shows_counts_lists_and_loads_thumbnails(view, qtbot, folder_report_dict):
    view.set_report(folder_report_dict)
    text = view.summary.text()
    assert text.startswith("4 usable images · 2 skipped · 1 near-duplicate group · sides 40–120 px")
    assert "50% square, 25% landscape, 25% portrait" in text
    assert view.grid.count() == 4 and view.thumbnails_total() == 4
    assert not view.shown_label.isVisible() and not view.below_minimum()
    assert view.skipped_list.count() == 2
    reasons = {view.skipped_list.item(i).text().split(" — ")[0]: view.skipped_list.item(i)
               for i in range(2)}
    assert "not an image type" in reasons["notes.doc"].text()
    assert "broken.png" in reasons["broken.png"].toolTip()
    assert view.duplicates_list.count() == 1
    assert "a.png" in view.duplicates_list.item(0).text()
    assert view.tabs.tabText(1) == "Skipped (2)"

    assert view.is_loading()  # thumbnails are read in the background, not by set_report
    qtbot.waitUntil(lambda: view.thumbnails_loaded() == 4, timeout=5000)
    assert not view.is_loading()
    for row in range(4):
        icon = view.grid.item(row).icon().pixmap(64, 64).toImage()
        assert icon.pixelColor(icon.width() // 2, icon.height() // 2) != QColor(90, 90, 90)
    tip = {view.grid.item(r).data(Qt.ItemDataRole.UserRole): view.grid.item(r).toolTip()
           for r in range(4)}
    assert "120 × 80 px" in tip["b.jpg"] and "40 × 90 px" in tip["sub/c.png"]

    view.duplicates_list.itemActivated.emit(view.duplicates_list.item(0))
    selected = sorted(i.data(Qt.ItemDataRole.UserRole) for i in view.grid.selectedItems())
    assert selected == ["a.png", "a_small.png"]


def test_minimum_warning(view, folder_report_dict):
    view.set_minimum(10)
    view.set_report(folder_report_dict)
    assert view.below_minimum()
    assert view.summary.text().startswith("4 usable images; at least 10 needed")
    assert "c62828" in view.summary.styleSheet()
    view.set_minimum(4)
    assert not view.below_minimum() and view.summary.styleSheet() == ""
    assert summary_text({"count": 1, "files": ["x.png"]}, 2)[0] == \
        "1 usable image; at least 2 needed"
    view.clear()


def test_large_report_shows_only_the_first_thumbnails(view, qtbot, folder_report_dict):
    report = dict(folder_report_dict)
    real = report["files"][0]
    report["files"] = [real] + [f"missing_{i:04d}.png" for i in range(1999)]
    report["count"] = 2000
    view.set_report(report)
    assert view.grid.count() == MAX_THUMBNAILS
    assert not view.shown_label.isHidden()
    assert view.shown_label.text() == f"showing {MAX_THUMBNAILS} of 2,000"
    assert view.summary.text().startswith("2,000 usable images")
    qtbot.waitUntil(lambda: view.thumbnails_loaded() == MAX_THUMBNAILS, timeout=10000)
    assert "could not be read" in view.grid.item(1).toolTip()  # a vanished file is marked


def test_clear_and_destruction_stop_reading(view, qtbot, folder_report_dict):
    view.set_report(folder_report_dict)
    assert view.is_loading()
    view.clear()
    assert not view.is_loading() and view.grid.count() == 0 and view.skipped_list.count() == 0
    assert view.report() == {} and view.thumbnails_loaded() == 0

    other = DatasetView()
    other.set_report(folder_report_dict)
    assert other.is_loading()
    other.deleteLater()  # its batch in flight lands nowhere (no crash, nothing shown)
    qtbot.waitUntil(lambda: not shiboken6.isValid(other), timeout=2000)
    qtbot.wait(200)


def test_thumbnails_are_read_off_the_gui_thread(view, qtbot, folder_report_dict,
                                                monkeypatch):
    import threading

    from desktop.widgets import dataset_view

    on_gui = []
    read = dataset_view.read_thumbnail

    def recording(path):
        on_gui.append(threading.current_thread() is threading.main_thread())
        return read(path)

    monkeypatch.setattr(dataset_view, "read_thumbnail", recording)
    view.set_report(folder_report_dict)
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=5000)
    assert len(on_gui) == view.grid.count() and not any(on_gui)
