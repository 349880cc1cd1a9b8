"""The training charts: a loss axis that stays put while the loss falls."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop.widgets.training_charts import TrainingCharts


def _feed(charts: TrainingCharts, loss: np.ndarray) -> None:
    x = np.arange(1, len(loss) + 1) / 100.0
    charts.set_batch_curves(x, loss, loss, np.full(len(loss), 50.0))


def _y_range(charts: TrainingCharts) -> list[float]:
    return charts.loss_plot.getPlotItem().getViewBox().viewRange()[1]


@pytest.fixture
def charts(qtbot):
    widget = TrainingCharts()
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    widget.show()
    return widget


def test_the_loss_axis_keeps_its_range_while_the_loss_falls(charts):
    charts.begin_run("run", epochs=1)
    charts.set_uniform_loss(np.log(10), "10 classes: a uniform guess")
    loss = 2.2 * np.exp(-np.linspace(0, 4, 100))
    ranges = set()
    for n in range(5, 101, 5):  # the loss keeps falling: its lowest value changes every time
        _feed(charts, loss[:n])
        ranges.add(charts.loss_range())
    assert ranges == {(0.0, 3.0)}  # 0 to a round number above the dashed line (2.30) and caption
    low, high = _y_range(charts)
    assert low <= 0 and 3.0 <= high < 3.2  # what the plot shows
    _feed(charts, np.r_[loss, 7.3])  # a spike leaves the range: it grows to the next round number
    assert charts.loss_range() == (0.0, 8.0)


def test_the_log_axis_spans_whole_decades_and_hidden_runs_do_not_count(charts, qtbot):
    charts.begin_run("first", epochs=1)
    _feed(charts, np.array([40.0, 20.0, 10.0]))
    charts.begin_run("second", epochs=1)
    _feed(charts, np.array([2.0, 0.5, 0.03]))
    assert charts.loss_range() == (0.0, 40.0)  # both runs shown
    charts.runs_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert charts.loss_range() == (0.0, 2.0)  # the first run hidden
    charts.log_check.setChecked(True)
    assert charts.loss_range() == (-2.0, 1.0)  # 0.01 to 10, in log10 units
    low, high = _y_range(charts)
    assert low <= -2.0 and high >= 1.0
    _feed(charts, np.array([np.nan, 0.5, 0.03]))  # a NaN batch loss is left out, not plotted
    assert charts.loss_range() == (-2.0, 0.0)
