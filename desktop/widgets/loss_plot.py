"""A live loss plot for the Train panel, painted with QPainter.

Training logs a row of losses every few steps (``losses.csv``; 10k+ rows on long runs), so the
plot is built to stay cheap: values live in growable numpy buffers (an append is O(1) and the
painter reads views, never copies of Python lists), the smoothed curve is extended
incrementally, each line is reduced to at most two points per pixel column before drawing
(:func:`reduce_points`), and ``add`` only schedules a repaint. No matplotlib: it would pull a
second GUI toolkit into the app for one chart.

Losses of very different scale (a reconstruction at 0.01, a KL at 300) stay readable in two
ways: the y axis goes logarithmic when every value is positive and they span more than a decade,
and clicking a name in the legend hides or shows that series (the axes fit what is shown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QWidget

# Columns of a losses.csv row that are not losses.
NOT_LOSSES = frozenset({"step", "wall_time_s", "images_per_s"})
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default EMA weight
LOG_DECADES = 1.0  # log axis when positive values span more than this many decades
# Distinct, colour-blind-friendly line colours (Okabe-Ito), reused in order after eight.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#999999")


def reduce_points(xs: np.ndarray, ys: np.ndarray, columns: int,
                  x_range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * columns`` points that draw like ``(xs, ys)`` on ``columns`` pixels.

    Points are grouped by the pixel column they fall in (over ``x_range``, default the data's
    own); each column with more than two points keeps only its lowest and highest value, so
    spikes survive (a plain stride would drop them). Input that already fits is returned as is.
    """
    columns = max(1, int(columns))
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    if len(xs) <= 2 * columns:
        return xs, ys
    if np.any(np.diff(xs) < 0):  # a resumed run can log steps out of order
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    lo, hi = x_range if x_range is not None else (xs[0], xs[-1])
    span = hi - lo if hi > lo else 1.0
    col = np.clip(((xs - lo) / span * (columns - 1)).astype(np.int64), 0, columns - 1)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(col)) + 1))
    low = np.minimum.reduceat(ys, starts)
    high = np.maximum.reduceat(ys, starts)
    ends = np.concatenate((starts[1:], [len(ys)])) - 1
    # Within a column both points sit at the column's first x; order them so the line leaves
    # the column from the extreme nearest its last value (the next column continues from it).
    x = xs[starts]
    high_last = np.abs(ys[ends] - high) <= np.abs(ys[ends] - low)
    first = np.where(high_last, low, high)
    second = np.where(high_last, high, low)
    return np.repeat(x, 2), np.column_stack((first, second)).ravel()


def use_log_scale(lo: float, hi: float) -> bool:
    """A log axis when every value is positive and they span more than ``LOG_DECADES``."""
    return lo > 0 and hi > 0 and math.log10(hi / lo) > LOG_DECADES


def nice_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) between ``lo`` and ``hi``."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten between ``lo`` and ``hi`` (> 0), thinned to about six, with 2x and 5x
    added when fewer than two decades fall inside."""
    a, b = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    ticks = [10.0 ** e for e in range(a, b + 1)]
    if len(ticks) < 2:
        ticks = sorted(t for e in range(a - 1, b + 1) for m in (1, 2, 5)
                       if lo <= (t := m * 10.0 ** e) <= hi)
    stride = max(1, math.ceil(len(ticks) / 6))
    return ticks[::stride]


def format_step(step: float) -> str:
    """Compact step labels: 950, 1.5k, 12k, 1.2M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(step) >= size:
            return f"{step / size:.3g}{suffix}"
    return f"{step:.0f}"


def _mix(colour: QColor, base: QColor, amount: float) -> QColor:
    """``amount`` of ``colour`` over ``base``, opaque."""
    return QColor.fromRgbF(*(a * amount + b * (1 - amount) for a, b in zip(
        colour.getRgbF()[:3], base.getRgbF()[:3], strict=True)))


class _Buffer:
    """A float64 array that grows by doubling: O(1) appends, ``view()`` without a copy."""

    def __init__(self) -> None:
        self.data = np.empty(64, np.float64)
        self.n = 0

    def append(self, value: float) -> None:
        if self.n == len(self.data):
            self.data = np.concatenate((self.data, np.empty_like(self.data)))
        self.data[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        return self.data[:self.n]


class _Series:
    def __init__(self, colour: QColor) -> None:
        self.colour = colour
        self.visible = True
        self.steps = _Buffer()
        self.values = _Buffer()
        self.smoothed = _Buffer()
        self._ema = 0.0  # TensorBoard's running EMA before debiasing

    def smooth(self, weight: float) -> np.ndarray:
        """The EMA of the values (TensorBoard's, debiased at the start), extended from where
        the previous call stopped."""
        start = self.smoothed.n
        ema = self._ema
        for i, v in enumerate(self.values.view()[start:].tolist(), start + 1):  # Python floats:
            ema = ema * weight + (1 - weight) * v  # several times faster than numpy scalars
            self.smoothed.append(ema / (1 - weight ** i) if weight else v)
        self._ema = ema
        return self.smoothed.view()

    def reset_smoothing(self) -> None:
        self.smoothed = _Buffer()
        self._ema = 0.0


class LossPlot(QWidget):
    """Loss curves against training steps, one colour per loss, with a clickable legend.

    Right-click for the smoothing toggle and "Show all losses". ``painted_points()`` is how
    many points the last paint drew (the downsampling bound is tested through it).
    """

    seriesToggled = Signal(str, bool)  # a legend click: name, now visible

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: dict[str, _Series] = {}
        self._smoothing = DEFAULT_SMOOTHING
        self._last_smoothing = DEFAULT_SMOOTHING  # what the toggle turns back on
        self._painted = 0
        self._log = False
        self.setMinimumSize(200, 120)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.smooth_action = QAction("Smooth (moving average)", self, checkable=True,
                                     checked=True)
        self.smooth_action.toggled.connect(
            lambda on: self.set_smoothing(self._last_smoothing if on else 0.0))
        self.show_all_action = QAction("Show all losses", self)
        self.show_all_action.triggered.connect(self._show_all)
        self.addAction(self.smooth_action)
        self.addAction(self.show_all_action)
        self.setToolTip("Click a loss in the legend to hide or show it; right-click for "
                        "smoothing")

    # -- data ---------------------------------------------------------------------------------

    def add(self, step: int, losses: Mapping[str, object]) -> None:
        """One logged point per loss; None, NaN and infinities are skipped. Repaints later."""
        for name, value in losses.items():
            try:
                v = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                continue
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = _Series(
                    QColor(PALETTE[len(self._series) % len(PALETTE)]))
            series.steps.append(float(step))
            series.values.append(v)
        self.update()

    def set_rows(self, rows: Iterable[Mapping[str, object]]) -> None:
        """Replace everything with ``losses.csv`` rows (dicts with a ``step``; every column
        but step, wall_time_s and images_per_s is a loss). Values may be strings, as
        csv.DictReader gives them; empty or unreadable cells are skipped."""
        self._series.clear()
        for row in rows:
            try:
                step = int(float(row["step"]))  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError):
                continue
            losses = {k: v for k, v in row.items() if k not in NOT_LOSSES}
            self.add(step, losses)
        self.update()

    def clear(self) -> None:
        self._series.clear()
        self.update()

    def names(self) -> list[str]:
        """Loss names in the order they first appeared."""
        return list(self._series)

    def series(self, name: str) -> list[tuple[int, float]]:
        """The raw points of one loss as (step, value); [] for a name never seen."""
        s = self._series.get(name)
        if s is None:
            return []
        return [(int(x), float(y)) for x, y in zip(s.steps.view(), s.values.view(), strict=True)]

    # -- display options ----------------------------------------------------------------------

    def smoothing(self) -> float:
        """The EMA weight in [0, 1); 0 means smoothing is off."""
        return self._smoothing

    def set_smoothing(self, weight: float) -> None:
        weight = min(max(float(weight), 0.0), 0.999)
        if weight:
            self._last_smoothing = weight
        if weight != self._smoothing:
            self._smoothing = weight
            for s in self._series.values():
                s.reset_smoothing()
        self.smooth_action.blockSignals(True)
        self.smooth_action.setChecked(bool(weight))
        self.smooth_action.blockSignals(False)
        self.update()

    def smoothed(self, name: str) -> list[float]:
        """The smoothed values of one loss (the raw ones when smoothing is off)."""
        s = self._series.get(name)
        if s is None:
            return []
        return s.smooth(self._smoothing).tolist() if self._smoothing else s.values.view().tolist()

    def is_series_visible(self, name: str) -> bool:
        return name in self._series and self._series[name].visible

    def set_series_visible(self, name: str, visible: bool) -> None:
        if name in self._series:
            self._series[name].visible = visible
            self.update()

    def _show_all(self) -> None:
        for s in self._series.values():
            s.visible = True
        self.update()

    def uses_log_scale(self) -> bool:
        """Whether the y axis is logarithmic for the losses now shown."""
        lo_hi = self._y_extent()
        return lo_hi is not None and use_log_scale(*lo_hi)

    def painted_points(self) -> int:
        """Points drawn by the last paint (lines of every shown loss, raw and smoothed)."""
        return self._painted

    def sizeHint(self) -> QSize:
        return QSize(360, 180)

    # -- geometry -----------------------------------------------------------------------------

    def legend_rects(self) -> dict[str, QRect]:
        """Where each loss's legend entry is drawn (left to right, wrapping); clickable."""
        fm = self.fontMetrics()
        x, y, h = 8, 4, fm.height()
        rects = {}
        for name in self._series:
            w = 14 + fm.horizontalAdvance(name)
            if x + w > self.width() - 8 and x > 8:
                x, y = 8, y + h + 2
            rects[name] = QRect(x, y, w, h)
            x += w + 12
        return rects

    def _y_extent(self) -> tuple[float, float] | None:
        shown = [s.values.view() for s in self._series.values() if s.visible and s.values.n]
        if not shown:
            return None
        return min(float(v.min()) for v in shown), max(float(v.max()) for v in shown)

    # -- events -------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            for name, rect in self.legend_rects().items():
                if rect.contains(event.position().toPoint()):
                    s = self._series[name]
                    s.visible = not s.visible
                    self.seriesToggled.emit(name, s.visible)
                    self.update()
                    return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        text = pal.text().color()
        self._painted = 0
        if not self._series:
            p.setPen(text)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No losses yet")
            return
        legend = self.legend_rects()
        self._paint_legend(p, legend, text)
        extent = self._y_extent()
        top = max(r.bottom() for r in legend.values()) + 8
        plot = QRectF(52, top, self.width() - 52 - 12, self.height() - top - 22)
        if extent is None or plot.width() < 10 or plot.height() < 10:
            p.setPen(text)
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter,
                       "All losses hidden: click the legend" if extent is None else "")
            return
        shown = [s for s in self._series.values() if s.visible and s.values.n]
        x0 = min(float(s.steps.view().min()) for s in shown)
        x1 = max(float(s.steps.view().max()) for s in shown)
        if x1 <= x0:
            x0, x1 = x0 - 1, x1 + 1
        self._log = use_log_scale(*extent)
        fy = np.log10 if self._log else (lambda v: v)
        y0, y1 = float(fy(extent[0])), float(fy(extent[1]))
        pad = (y1 - y0) * 0.05 or max(abs(y0) * 0.1, 1e-3)
        y0, y1 = y0 - pad, y1 + pad
        self._paint_axes(p, plot, (x0, x1), (y0, y1), text)

        def to_polygon(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
            px = plot.left() + (xs - x0) / (x1 - x0) * plot.width()
            py = plot.bottom() - (fy(ys) - y0) / (y1 - y0) * plot.height()
            self._painted += len(px)
            return QPolygonF([QPointF(a, b) for a, b in zip(px.tolist(), py.tolist(), strict=True)])

        p.setClipRect(plot.adjusted(-2, -2, 2, 2))
        columns = int(plot.width())
        base = pal.base().color()
        for s in shown:
            xs = s.steps.view()
            # Pens stay 1 px wide and opaque (the faint raw line is the colour pre-mixed with
            # the background): Qt strokes a wider or translucent self-crossing polyline as one
            # path, which costs 50-100 ms on a noisy loss instead of about 1 ms.
            lines = [(s.values.view(), _mix(s.colour, base, 0.35) if self._smoothing
                      else s.colour)]
            if self._smoothing:
                lines.append((s.smooth(self._smoothing), s.colour))
            for ys, colour in lines:
                p.setPen(QPen(colour, 1.0))
                poly = to_polygon(*reduce_points(xs, ys, columns, (x0, x1)))
                if len(poly) == 1:  # a line needs two points: show a lone one as a dot
                    p.setBrush(colour)
                    p.drawEllipse(poly[0], 2.0, 2.0)
                    p.setBrush(Qt.BrushStyle.NoBrush)
                else:
                    p.drawPolyline(poly)

    def _paint_legend(self, p: QPainter, legend: dict[str, QRect], text: QColor) -> None:
        for name, rect in legend.items():
            s = self._series[name]
            swatch = QRect(rect.left(), rect.center().y() - 4, 9, 9)
            if s.visible:
                p.fillRect(swatch, s.colour)
            else:
                p.setPen(QPen(s.colour, 1))
                p.drawRect(swatch)
            font = QFont(p.font())
            font.setStrikeOut(not s.visible)
            p.setFont(font)
            colour = QColor(text)
            if not s.visible:
                colour.setAlpha(110)
            p.setPen(colour)
            p.drawText(rect.adjusted(14, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, name)
        p.setFont(self.font())

    def _paint_axes(self, p: QPainter, plot: QRectF, xr: tuple[float, float],
                    yr: tuple[float, float], text: QColor) -> None:
        grid = QColor(text)
        grid.setAlpha(40)
        fm = self.fontMetrics()
        if self._log:
            ticks = [(math.log10(t), f"{t:g}") for t in log_ticks(10 ** yr[0], 10 ** yr[1])]
        else:
            ticks = [(t, f"{t:.3g}") for t in nice_ticks(*yr)]
        for value, label in ticks:
            y = plot.bottom() - (value - yr[0]) / (yr[1] - yr[0]) * plot.height()
            p.setPen(grid)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(text)
            p.drawText(QRectF(0, y - fm.height() / 2, plot.left() - 4, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        for step in nice_ticks(*xr, target=max(2, int(plot.width() // 90))):
            x = plot.left() + (step - xr[0]) / (xr[1] - xr[0]) * plot.width()
            p.setPen(grid)
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            p.setPen(text)
            p.drawText(QRectF(x - 40, plot.bottom() + 2, 80, fm.height()),
                       Qt.AlignmentFlag.AlignHCenter, format_step(step))
        p.setPen(text)
        p.drawRect(plot)
