"""Views of a model of many classes (the dataset limit is 1,000): each stays quick and readable.

The confusion matrix has its own tests in test_results_views.py.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from desktop.widgets.network_view import NetworkView, view_layers
from desktop.widgets.probability_chart import TOP_COLOR, ProbabilityChart
from desktop.widgets.step_explainer import StepExplainer
from engine.model import build_model
from engine.step_explain import StepExplanation, StepRecorder, explain_steps
from engine.training import TrainConfig, TrainControl, make_optimizer, train


def _model(k: int):
    return build_model("lenet5", np.random.default_rng(0), classes=[f"c{i}" for i in range(k)])


def test_probability_bars_of_a_thousand_classes_name_the_likeliest(qtbot):
    chart = ProbabilityChart()
    qtbot.addWidget(chart)
    chart.resize(380, 170)
    chart.show()
    probs = np.full(1000, 0.2 / 999)
    probs[640] = 0.8
    chart.set_probabilities(probs, [f"c{i}" for i in range(1000)])
    tip = chart.toolTip().splitlines()  # a line per class was a tooltip taller than a screen
    assert tip[:2] == ["the 10 most probable of 1,000 classes:", "c640: 80.0%"] and len(tip) == 12
    picture = chart.grab().toImage()
    x = round(4 + 640.5 * (380 - 8) / 1000)  # the middle of bar 640
    assert picture.pixelColor(x, 100) == TOP_COLOR
    assert chart.highlighted_class() == "c640"


def test_the_network_view_of_a_thousand_classes_fits_and_names_a_cell_on_hover(qtbot):
    # each of the 1,000 output cells was 30 px with its name under it: 2,187 px of view, the
    # names written over each other
    model = _model(1000)
    view = NetworkView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    image = np.random.default_rng(1).integers(0, 256, (1, 28, 28), dtype=np.uint8)
    view.set_layers(view_layers(model, model.activations(model.input_spec.to_tensor(image))))
    assert view.minimumHeight() <= 700
    last = view.cell_center("softmax", 999)
    assert view.rect().contains(last)
    qtbot.mouseMove(view, QPoint(1, 1))
    with qtbot.waitSignal(view.cell_hovered) as hovered:
        qtbot.mouseMove(view, view.cell_center("softmax", 432))
    assert hovered.args[0].startswith("output cell c432 = ")


def _explanation(k: int) -> StepExplanation:
    """One step of LeNet-5 over ``k`` classes on 12 noise images, image 3 pinned."""
    rng = np.random.default_rng(0)
    model = _model(k)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) * (k // 12)
    config = TrainConfig(epochs=1, batch_size=4)
    optimizer = make_optimizer(config, model.parameters())
    control = TrainControl()
    control.step()
    recorder = StepRecorder(model, optimizer, config.loss, config.batch_size, len(labels))
    pinned = (images[11], int(labels[11]))
    recorder.before(*pinned)
    events = train(model, images, labels, config, control=control, optimizer=optimizer)
    for event in explain_steps(events, recorder, lambda: pinned):
        if isinstance(event, StepExplanation):
            control.cancel()
            return event
    raise AssertionError("no step explained")


def test_the_step_explainer_of_many_classes_shows_the_target_row_in_short(qtbot):
    # 300 classes: the table took seconds a step (every row measured again per item), the
    # target vector was 300 numbers and the target's row was out of sight
    explainer = StepExplainer()
    qtbot.addWidget(explainer)
    explainer.resize(900, 800)
    explainer.show()
    e = _explanation(300)
    explainer.show_step(e)
    assert e.label == 275
    text = explainer.errors.text()
    assert "Target vector: 1 for c275 (place 276 of 300), 0 elsewhere." in text
    assert "0, 0" not in text
    table = explainer.outputs
    row = table.visualItemRect(table.item(275, 0))
    assert table.viewport().rect().contains(row)
    assert table.item(275, 1).text() == "1"
    assert table.horizontalScrollBar().maximum() == 0  # every column whole, no sideways scroll
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=row.center())
    assert table.currentRow() == 275
