"""Live training charts: batch loss (raw and smoothed) and accuracy, one set of curves per run.

Curves are created once per run and updated with ``setData`` (the pyqtgraph way). Earlier runs of
the session stay on the plots, drawn thinner, and a checkable list shows or hides each run.

The axes do not follow every update: x spans the longest run's epochs, accuracy 0-100 %, and the
loss axis runs from 0 to a round number above the highest loss shown (on the log axis: whole
decades), changed only when a curve leaves it. An axis that rescales redraws its ticks, and with
a range following the falling loss that was most of the GUI's work while training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _round_up(value: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= value."""
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * scale >= value * (1 - 1e-9):
            return step * scale
    return 10.0 * scale


def _style_plot(plot: pg.PlotWidget, title: str, left: str) -> None:
    plot.setBackground("w")
    plot.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # no keys: not a Tab stop
    item = plot.getPlotItem()
    item.setTitle(f"<span style='color:#333;font-size:10pt'>{title}</span>")
    item.showGrid(x=True, y=True, alpha=0.15)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen("#888"))
        axis.setTextPen(pg.mkPen("#444"))
        # Axes repaint with every curve update otherwise (their text was the GUI's main cost).
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    item.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    item.setLabel("left", left, color="#444")
    item.setLabel("bottom", "epochs", color="#444")
    item.setMenuEnabled(False)
    plot.setMinimumHeight(150)
    plot.setMinimumWidth(160)  # narrow windows: the plots shrink, the titles stay whole


@dataclass
class _Run:
    label: str
    color: str
    items: list[pg.PlotDataItem] = field(default_factory=list)
    loss_high: float = 0.0  # the highest finite batch loss so far
    loss_low: float = float("inf")  # the lowest positive one (the log axis' floor)
    epoch_x: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


class TrainingCharts(QWidget):
    """``lossPlot`` and ``accuracyPlot`` side by side, with the list of runs below.

    Signal: ``run_toggled(index, visible)``.
    """

    run_toggled = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setObjectName("lossPlot")  # PlotWidget passes keywords to its PlotItem
        _style_plot(self.loss_plot, "Loss (thin: batch, bold: smoothed)", "loss")
        self.loss_plot.setToolTip(
            "Loss of each batch (thin line) and its exponential moving average (bold line)"
        )
        self.accuracy_plot = pg.PlotWidget()
        self.accuracy_plot.setObjectName("accuracyPlot")
        _style_plot(self.accuracy_plot, "Accuracy (● train, ◆ validation)", "accuracy %")
        self.accuracy_plot.setToolTip(
            "Line: running training accuracy over the epoch so far; ● training accuracy of each "
            "epoch; ◆ validation accuracy after each epoch"
        )
        self.accuracy_plot.setYRange(0, 100, padding=0.02)
        self.accuracy_plot.getPlotItem().getViewBox().setLimits(yMin=-2, yMax=102)

        self.runs_list = QListWidget(objectName="runsList")
        self.runs_list.setMaximumHeight(48)
        self.runs_list.setToolTip("Runs of this session: untick one to hide its curves")
        self.runs_list.itemChanged.connect(self._on_runs_list_item_changed)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.loss_plot)
        splitter.addWidget(self.accuracy_plot)
        splitter.setChildrenCollapsible(False)
        runs_row = QHBoxLayout()
        caption = QLabel("Runs:")
        caption.setAlignment(Qt.AlignmentFlag.AlignTop)
        runs_row.addWidget(caption)
        runs_row.addWidget(self.runs_list, 1)
        self.log_check = QCheckBox("log loss axis", objectName="logLossCheck")
        self.log_check.setToolTip("A logarithmic loss axis shows the slow progress late in a run")
        self.log_check.toggled.connect(self._on_log_check_toggled)
        runs_row.addWidget(self.log_check, 0, Qt.AlignmentFlag.AlignTop)
        self._uniform_line = self.loss_plot.plot(
            [], [], pen=pg.mkPen("#777", width=1, style=Qt.PenStyle.DashLine)
        )
        self.uniform_label = pg.TextItem(color="#555", anchor=(1, 1))
        self.uniform_label.setVisible(False)
        self.loss_plot.addItem(self.uniform_label, ignoreBounds=True)
        self._uniform: float | None = None
        self._loss_tip = self.loss_plot.toolTip()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter, 1)
        layout.addLayout(runs_row)
        self._runs: list[_Run] = []
        self._max_epochs = 1
        self._loss_range: tuple[float, float] | None = None  # as last set, in view units

    # ----- runs -------------------------------------------------------------------------
    def begin_run(self, label: str, epochs: int = 1) -> int:
        """Add curves for a new run (earlier runs are drawn thinner); returns its index.

        The x axis is fixed to the longest run's epochs, so it does not rescale (and repaint)
        with every update.
        """
        self._max_epochs = max(self._max_epochs, epochs)
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setXRange(0, self._max_epochs, padding=0.02)
        for old in self._runs:
            self._thin(old)
        color = PALETTE[len(self._runs) % len(PALETTE)]
        faint = QColor(color)
        faint.setAlpha(70)
        run = _Run(label, color)
        run.items = [
            self.loss_plot.plot([], [], pen=pg.mkPen(faint, width=1)),
            self.loss_plot.plot([], [], pen=pg.mkPen(color, width=2.5)),
            self.accuracy_plot.plot([], [], pen=pg.mkPen(color, width=2)),
            self.accuracy_plot.plot(
                [], [], pen=None, symbol="o", symbolSize=9, symbolBrush=color, symbolPen="w"
            ),
            self.accuracy_plot.plot(
                [],
                [],
                pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine),
                symbol="d",
                symbolSize=11,
                symbolBrush="w",
                symbolPen=pg.mkPen(color, width=2),
            ),
        ]
        raw = run.items[0]
        raw.setClipToView(True)
        raw.setDownsampling(auto=True, method="peak")  # long runs: thousands of batches
        self._runs.append(run)
        item = QListWidgetItem(f"Run {len(self._runs)}: {label}")
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        item.setForeground(QColor(color))
        self.runs_list.blockSignals(True)
        self.runs_list.addItem(item)
        self.runs_list.blockSignals(False)
        self.runs_list.scrollToItem(item)
        return len(self._runs) - 1

    def set_uniform_loss(self, value: float | None, text: str = "", note: str = "") -> None:
        """A dashed line at the loss of a uniform guess (``value``; None: no line), explained
        by ``text`` beside the runs and ``note`` in its tooltip (why the first loss is where
        it is)."""
        self._uniform = value
        if value is None:
            self._uniform_line.setData([], [])
        else:
            self._uniform_line.setData([0.0, float(self._max_epochs)], [value, value])
        self.uniform_label.setText(text)
        self.uniform_label.setVisible(value is not None and bool(text))
        self._place_uniform_label()
        self._fit_loss_range()
        self.loss_plot.setToolTip(f"{self._loss_tip}. Dashed: {text}. {note}" if text else "")

    def uniform_text(self) -> str:
        """The dashed line's caption ("" when there is none)."""
        return self.uniform_label.toPlainText() if self.uniform_label.isVisible() else ""

    def _place_uniform_label(self) -> None:
        # a TextItem is placed in view coordinates: log10 of the value on a log axis
        if self._uniform is not None:
            y = self._uniform
            if self.log_check.isChecked():
                y = float(np.log10(max(y, 1e-12)))
            self.uniform_label.setPos(float(self._max_epochs), y)

    def loss_range(self) -> tuple[float, float] | None:
        """The loss axis' range (log10 units on the log axis); None before any loss."""
        return self._loss_range

    def _fit_loss_range(self) -> None:
        """Set the loss axis to cover every shown run (and the dashed line), in round steps."""
        checked = Qt.CheckState.Checked
        shown = [
            run
            for i, run in enumerate(self._runs)
            if run.loss_high > 0 and self.runs_list.item(i).checkState() == checked
        ]
        if not shown:
            return
        high = max(r.loss_high for r in shown)
        if self._uniform is not None:
            high = max(high, self._uniform * 1.1)  # room for the line's caption above it
        if self.log_check.isChecked():
            low = min(min(r.loss_low for r in shown), high)
            bottom = math.floor(math.log10(low))
            wanted = (float(bottom), float(max(bottom + 1, math.ceil(math.log10(high)))))
        else:
            wanted = (0.0, _round_up(high))
        if wanted != self._loss_range:
            self._loss_range = wanted
            self.loss_plot.setYRange(*wanted, padding=0.02)

    def _thin(self, run: _Run) -> None:
        raw, smooth, running, _train, _val = run.items
        raw.setVisible(False)  # only the smoothed curve of earlier runs, to keep plots readable
        smooth.setPen(pg.mkPen(run.color, width=1.2, style=Qt.PenStyle.DotLine))
        running.setPen(pg.mkPen(run.color, width=1.2, style=Qt.PenStyle.DotLine))

    def _on_log_check_toggled(self, checked: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=checked)
        self._loss_range = None
        self._fit_loss_range()
        self._place_uniform_label()

    def run_count(self) -> int:
        return len(self._runs)

    def set_run_visible(self, index: int, visible: bool) -> None:
        item = self.runs_list.item(index)
        item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def run_visible(self, index: int) -> bool:
        return any(i.isVisible() for i in self._runs[index].items)

    def _on_runs_list_item_changed(self, item: QListWidgetItem) -> None:
        index = self.runs_list.row(item)
        visible = item.checkState() == Qt.CheckState.Checked
        latest = index == len(self._runs) - 1
        for k, curve in enumerate(self._runs[index].items):
            curve.setVisible(visible and (latest or k != 0))
        self._fit_loss_range()
        self.run_toggled.emit(index, visible)

    # ----- data -------------------------------------------------------------------------
    def set_batch_curves(
        self, x: np.ndarray, loss: np.ndarray, smooth: np.ndarray, running_acc: np.ndarray
    ) -> None:
        """Replace the per-batch curves of the current run (x in epochs, accuracy in %)."""
        run = self._runs[-1]
        raw, smooth_item, running, _train, _val = run.items
        finite = np.isfinite(loss)
        raw.setData(x[finite], loss[finite])
        smooth_item.setData(x[finite], smooth[finite])
        running.setData(x, running_acc)
        shown = loss[finite]
        if len(shown):
            run.loss_high = float(shown.max())
            positive = shown[shown > 0]
            run.loss_low = float(positive.min()) if len(positive) else run.loss_low
            self._fit_loss_range()

    def add_epoch(self, x: float, train_acc: float, val_acc: float | None) -> None:
        run = self._runs[-1]
        run.epoch_x.append(x)
        run.train_acc.append(train_acc)
        run.items[3].setData(run.epoch_x, run.train_acc)
        if val_acc is not None:
            run.val_acc.append(val_acc)
            run.items[4].setData(run.epoch_x[-len(run.val_acc) :], run.val_acc)

    def point_counts(self) -> dict[str, int]:
        """Points on the current run's curves (what a user sees growing)."""
        if not self._runs:
            return {"loss": 0, "smoothed": 0, "running": 0, "train": 0, "val": 0}
        names = ("loss", "smoothed", "running", "train", "val")
        counts = {}
        for name, item in zip(names, self._runs[-1].items, strict=True):
            xs, _ = item.getData()
            counts[name] = 0 if xs is None else len(xs)
        return counts

    def epoch_accuracies(self) -> tuple[list[float], list[float]]:
        run = self._runs[-1]
        return list(run.train_acc), list(run.val_acc)
