"""Live training charts: batch loss (raw and smoothed) and accuracy, one set of curves per run.

Curves are created once per run and updated with ``setData`` (the pyqtgraph way). Earlier runs of
the session stay on the plots, drawn thinner, and a checkable list shows or hides each run.
"""

from __future__ import annotations

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


def _style_plot(plot: pg.PlotWidget, title: str, left: str) -> None:
    plot.setBackground("w")
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

    def _thin(self, run: _Run) -> None:
        raw, smooth, running, _train, _val = run.items
        raw.setVisible(False)  # only the smoothed curve of earlier runs, to keep plots readable
        smooth.setPen(pg.mkPen(run.color, width=1.2, style=Qt.PenStyle.DotLine))
        running.setPen(pg.mkPen(run.color, width=1.2, style=Qt.PenStyle.DotLine))

    def _on_log_check_toggled(self, checked: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=checked)
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
        self.run_toggled.emit(index, visible)

    # ----- data -------------------------------------------------------------------------
    def set_batch_curves(
        self, x: np.ndarray, loss: np.ndarray, smooth: np.ndarray, running_acc: np.ndarray
    ) -> None:
        """Replace the per-batch curves of the current run (x in epochs, accuracy in %)."""
        raw, smooth_item, running, _train, _val = self._runs[-1].items
        finite = np.isfinite(loss)
        raw.setData(x[finite], loss[finite])
        smooth_item.setData(x[finite], smooth[finite])
        running.setData(x, running_acc)

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
