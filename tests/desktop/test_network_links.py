"""Figure 20 in the Classify tab's network view and the Train tab's live view: hovering a fully
connected unit draws its strongest connections, coloured by sign, with their weights."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint

import resources
from desktop.widgets.live_panel import LivePanel
from desktop.widgets.network_view import NetworkView, view_layers
from engine import architectures
from engine.colormap import sign_colours
from engine.connections import strongest_connections
from engine.idx import read_idx
from engine.model import build_model
from engine.modelfile import load_model


def _view(qtbot, model, x) -> NetworkView:
    view = NetworkView()
    qtbot.addWidget(view)
    view.resize(1400, 900)
    view.show()
    view.set_layers(view_layers(model, model.activations(x)))
    qtbot.mouseMove(view, QPoint(1, 1))  # the cursor may sit where a previous test left it
    return view


@pytest.fixture(scope="module")
def lenet():
    model = load_model(resources.shipped_model_path())
    digits = read_idx(resources.mnist_dir() / "t10k-images-idx3-ubyte.gz")[:1]
    return model, model.input_spec.to_tensor(digits)


def _drawn_near(image, point, rgb, reach: int = 2) -> bool:
    """A pixel within ``reach`` of ``point`` has the colour ``rgb`` (antialiased edges aside)."""
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            c = image.pixelColor(int(point.x()) + dx, int(point.y()) + dy)
            if max(abs(c.red() - rgb[0]), abs(c.green() - rgb[1]), abs(c.blue() - rgb[2])) < 20:
                return True
    return False


def test_hovering_fc1_draws_its_strongest_links_to_pool2_and_fc2(qtbot, lenet):
    model, x = lenet
    view = _view(qtbot, model, x)
    assert view.drawn_links() == [] and view.toolTip() == ""
    qtbot.mouseMove(view, view.cell_center("fc1", 7))
    conn = strongest_connections(model, "fc1", 7)
    drawn = view.drawn_links()
    assert [(way, row, unit, w) for way, row, unit, w, _, _ in drawn] == [
        *[("in", "pool2", link.unit, link.weight) for link in conn.incoming],
        *[("out", "fc2", link.unit, link.weight) for link in conn.outgoing],
    ]
    c, y, xx = conn.incoming[0].unit  # the line ends on that pixel of that pool2 map
    assert (drawn[0][5] - view.cell_center("pool2", c, y, xx)).manhattanLength() <= 2
    tip = view.toolTip()
    assert all(f"{link.weight:+.3f}" in tip for link in conn.incoming + conn.outgoing)
    assert f"{conn.incoming[0].weight:+.3f} from pool2 map {c + 1} (x {xx}, y {y})" in tip
    assert tip == conn.text()
    assert conn.incoming[0].text(True) in view.hover_text and "red +, blue −" in view.hover_text
    image = view.grab().toImage()
    for _way, _row, _unit, w, start, end in drawn[-1:]:  # the last line lies on top
        middle = (start + end) / 2
        assert _drawn_near(image, middle, sign_colours(np.array(w)).tolist())
    qtbot.mouseMove(view, view.cell_center("conv1", 0, 3, 3))  # a map: no connections
    assert view.drawn_links() == [] and view.toolTip() == ""


def test_an_output_cell_shows_the_last_layers_weights(qtbot, lenet):
    model, x = lenet
    view = _view(qtbot, model, x)
    qtbot.mouseMove(view, view.cell_center("softmax", 3))
    conn = strongest_connections(model, "fc3", 3)
    assert [(way, row, unit) for way, row, unit, *_ in view.drawn_links()] == [
        ("in", "fc2", link.unit) for link in conn.incoming
    ]
    view.leaveEvent(None)
    assert view.drawn_links() == []


@pytest.mark.parametrize("name", ["resnet8", "googlenet"])
def test_a_dense_head_after_global_pooling_links_to_the_pooled_channels(qtbot, name):
    spec = architectures.build_spec(name, (3, 32, 32), 4)
    model = build_model(spec, classes=["bird", "cat", "dog", "ship"])
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    view = _view(qtbot, model, x)
    qtbot.mouseMove(view, view.cell_center("softmax", 1))
    conn = strongest_connections(model, model.output, 1)
    assert [(row, unit) for _, row, unit, *_ in view.drawn_links()] == [
        ("avgpool", link.unit) for link in conn.incoming
    ]
    assert "from avgpool" in view.toolTip() and "output cell cat" in view.hover_text
    qtbot.mouseMove(view, QPoint(2, 2))
    assert view.drawn_links() == []


def test_the_train_tabs_live_view_draws_them_for_a_hovered_bar(qtbot, lenet):
    model, _ = lenet
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.resize(1024, 700)
    panel.show()
    panel.set_model(model)
    digit = read_idx(resources.mnist_dir() / "t10k-images-idx3-ubyte.gz")[0]
    panel.pin(digit, "a 7")
    view = panel.activation_view
    qtbot.mouseMove(view, QPoint(1, 1))
    qtbot.mouseMove(view, view.bar_center("fc1", 7).toPoint())
    conn = strongest_connections(model, "fc1", 7)
    drawn = view.drawn_links()
    assert [(way, row, unit, w) for way, row, unit, w, _, _ in drawn] == [
        *[("in", "pool2", link.unit, link.weight) for link in conn.incoming],
        *[("out", "fc2", link.unit, link.weight) for link in conn.outgoing],
    ]
    assert panel.hover_label.text().startswith("fc1 unit 7 = ")
    image = view.grab().toImage()
    _way, _row, _unit, w, start, end = drawn[-1]
    assert _drawn_near(image, (start + end) / 2, sign_colours(np.array(w)).tolist())
    qtbot.mouseMove(view, view.bar_center("fc3", 2).toPoint())  # the logits: no outgoing
    assert [(way, row) for way, row, *_ in view.drawn_links()] == [("in", "fc2")] * 6
    qtbot.mouseMove(view, view.bar_center("softmax", 2).toPoint())
    assert view.drawn_links() == []
