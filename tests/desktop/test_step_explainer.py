"""The step explainer (Figure 15 in numbers), driven like a user: Step, read the window, pick a
weight in the filters view and in the layer table, step again, pin an image without a label.

LeNet-5 on a slice of the bundled MNIST; each step is one batch.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget

from desktop.app_state import AppState
from desktop.train_tab import TrainTab

LIMIT = 600
TIMEOUT = 60_000


@pytest.fixture
def tab(qtbot):
    tab = TrainTab(AppState())
    tab.resize(1280, 790)
    tab.show()
    tab.setup.set_source("mnist", LIMIT)
    qtbot.waitUntil(
        lambda: (
            tab.start_button.isEnabled()
            and tab.setup.dataset is not None
            and len(tab.setup.dataset.train_labels) == LIMIT
        ),
        timeout=30_000,
    )
    tab.test_limit = 100
    tab.setup.batch_spin.setValue(16)
    yield tab
    if tab.is_busy():
        tab.stop_work()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=TIMEOUT)
    if tab.step_window is not None:
        tab.step_window.close()
    tab.close()
    tab.deleteLater()


def _step(qtbot, tab, button=None) -> QWidget:
    """Click Step (or ``button``) and wait for the explanation of that step."""
    done = len(tab.session.log)
    qtbot.mouseClick(button or tab.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            tab.step_window is not None
            and tab.step_window.isVisible()
            and tab.step_window.explainer.explanation is not None
            and tab.step_window.explainer.explanation.batch == done + 1
        ),
        timeout=TIMEOUT,
    )
    return tab.step_window.findChild(QWidget, "stepExplainer")


def _column(table, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_step_shows_the_pinned_image_target_outputs_errors_and_layers(qtbot, tab):
    panel = _step(qtbot, tab)
    e = panel.explanation
    label = int(tab.setup.dataset.train_labels[0])  # the first training image is pinned
    assert e.label == label and e.batch_size == 16
    outputs = panel.findChild(QWidget, "stepOutputs")
    assert _column(outputs, 0) == [str(c) for c in tab.setup.dataset.classes]
    assert _column(outputs, 1) == ["1" if k == label else "0" for k in range(10)]
    assert _column(outputs, 2) == [f"{p:.4f}" for p in e.before.probs]
    assert _column(outputs, 3) == [f"{p:.4f}" for p in e.after.probs]
    errors = panel.findChild(QWidget, "stepErrors").text()
    assert f"{e.before.total_error:.4f} → {e.after.total_error:.4f}" in errors
    assert f"{e.before.cross_entropy:.4f} → {e.after.cross_entropy:.4f}" in errors
    assert "ln 10 = 2.303" in errors
    # an untrained LeNet: the note on its initialisation, beside ln K
    note = panel.findChild(QWidget, "stepInitNote")
    assert note.isVisible() and "He initialisation" in note.text() and "2.303" in note.text()
    # ... and beside the loss chart: a dashed line at ln K, the note in its tooltip
    assert tab.charts.uniform_text() == "ln 10 = 2.30: a uniform guess"
    assert "He initialisation" in tab.charts.loss_plot.toolTip()
    layers = panel.findChild(QWidget, "stepLayers")
    assert _column(layers, 0) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert _column(layers, 4) == [f"{g.batch_norm:.4g}" for g in e.layers]
    # the default weight: conv1's with the largest gradient for this image; its new value is
    # the live model's (the run is paused after the step)
    weight = panel.findChild(QWidget, "stepWeight").text()
    w = panel.weight
    assert w.key == "conv1.weight" and w.name in weight
    live = float(tab.model.parameters()["conv1.weight"][w.index])
    assert w.new_value == live and f"{live:.7g}".replace("-", "−") in weight
    assert "SGD with momentum 0.9" in weight and "first step: velocity v = g" in weight


def test_pick_a_weight_in_the_filters_view_and_a_layer_then_step_again(qtbot, tab):
    requested = []
    tab._state.kernel_requested.connect(lambda *args: requested.append(args))
    panel = _step(qtbot, tab)
    view = tab.live.filter_view
    assert view.picking  # while the step window is open, a click picks a weight
    rect = view.weight_rect("conv2", (3, 2, 1, 4))
    assert rect is not None
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    weight = panel.findChild(QWidget, "stepWeight")
    assert "conv2.weight[3, 2, 1, 4]" in weight.text()
    assert panel.weight.value == float(panel.explanation.weights_before["conv2.weight"][3, 2, 1, 4])
    assert view.picked == ("conv2", (3, 2, 1, 4)) and requested == []
    # a layer of the table: its strongest weight
    layers = panel.findChild(QWidget, "stepLayers")
    rect = layers.visualItemRect(layers.item(2, 0))
    qtbot.mouseClick(layers.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.weight.key == "fc1.weight" and "fc1.weight[" in weight.text()
    followed, first = panel.weight.index, panel.explanation
    # Step again (from the window): the same weight, one step later
    _step(qtbot, tab, tab.step_window.step_button)
    e = panel.explanation
    assert e.batch == 2 and not e.untrained
    assert panel.weight.index == followed
    # the second step starts where the first ended
    np.testing.assert_array_equal(e.weights_before["fc1.weight"], first.weights_after["fc1.weight"])
    assert "velocity v = 0.9 ×" in weight.text()
    assert not panel.findChild(QWidget, "stepInitNote").isVisible()
    # closing the window gives clicks back to the Filters tab
    tab.step_window.close()
    assert not view.picking


def test_an_image_without_a_label_is_explained_as_such_then_a_preview_image(qtbot, tab):
    tab.live.offer_classify_image(np.zeros((28, 28), np.uint8))
    qtbot.mouseClick(tab.live.pin_classify_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: tab.step_window is not None and tab.step_window.isVisible(), timeout=TIMEOUT
    )
    title = tab.step_window.findChild(QWidget, "stepTitle").text()
    assert "has no label" in title and "dataset preview" in title
    # paused: pin the first 7 of the dataset preview; the next step follows it, with its label
    grid = tab.setup.sample_grid
    pos = QPoint(int((7 * 29 + 14) * grid.zoom), int(14 * grid.zoom))
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=pos)
    panel = _step(qtbot, tab)
    assert panel.explanation.label == 7
    assert panel.findChild(QWidget, "stepImageCaption").text() == "a 7"
    assert "epoch 1, batch 2" in panel.findChild(QWidget, "stepTitle").text()


def test_keyboard_leaves_the_tables_with_tab_and_follows_a_layer_with_the_arrows(qtbot, tab):
    panel = _step(qtbot, tab)
    window = tab.step_window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    outputs = panel.findChild(QWidget, "stepOutputs")
    layers = panel.findChild(QWidget, "stepLayers")
    outputs.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(outputs, Qt.Key.Key_Tab)  # one press: out of the table, not to its next cell
    assert not outputs.hasFocus()
    view = tab.live.filter_view  # a weight picked in the filters view
    rect = view.weight_rect("conv2", (3, 2, 1, 4))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert panel.weight.key == "conv2.weight"
    layers.setFocus(Qt.FocusReason.TabFocusReason)
    assert panel.weight.index == (3, 2, 1, 4)  # tabbing in (first row made current) keeps it
    qtbot.keyClick(layers, Qt.Key.Key_Down)
    weight = panel.findChild(QWidget, "stepWeight")
    assert panel.weight.key == "conv2.weight" and "conv2.weight[" in weight.text()
    assert panel.weight.index != (3, 2, 1, 4)  # the layer's strongest weight
    qtbot.keyClick(layers, Qt.Key.Key_Down)
    assert panel.weight.key == "fc1.weight"
    qtbot.keyClick(layers, Qt.Key.Key_Up)
    qtbot.keyClick(layers, Qt.Key.Key_Up)
    assert panel.weight.key == "conv1.weight"
