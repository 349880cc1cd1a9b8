"""A heavy network's forward pass runs off the GUI thread: the Classify tab and the Train tab's
live view say they are working, show the newest input's result and drop older ones.

The threshold is patched to 0 so that LeNet-5 counts as heavy and the tests stay fast."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import resources
from desktop.app_state import AppState
from desktop.classify_tab import WORKING, ClassifyTab
from desktop.widgets.live_panel import LivePanel, live_views
from engine import modelsize
from engine.idx import read_idx
from engine.model import lenet5


@pytest.fixture
def heavy(monkeypatch):
    monkeypatch.setattr(modelsize, "HEAVY_MULTIPLY_ADDS", 0)


@pytest.fixture(scope="module")
def digits():
    return read_idx(resources.mnist_dir() / "t10k-images-idx3-ubyte.gz")[:4]  # 7 2 1 0


@pytest.fixture
def tab(qtbot, heavy):
    from engine.modelfile import load_model

    widget = ClassifyTab(AppState())
    widget.resize(1200, 760)
    widget.show()
    widget.set_model(load_model(resources.shipped_model_path()), "heavy LeNet-5")
    yield widget
    qtbot.waitUntil(lambda: not widget.background_busy(), timeout=10000)
    widget.close()
    widget.deleteLater()


def _canvas(digit: np.ndarray) -> np.ndarray:
    """An MNIST digit as drawn on the 280x280 canvas."""
    return np.kron(digit, np.ones((10, 10), np.uint8))


def test_a_drawing_says_working_then_shows_its_bars(qtbot, tab, digits):
    shown = []
    tab.classified.connect(lambda result: shown.append(result.prediction))
    tab.canvas.set_pixels(_canvas(digits[0]))
    assert tab.prediction_label.text() == WORKING  # not the previous input's
    assert tab.chart.probabilities().size == 0
    assert "big network" in tab.top3_label.text()
    assert tab.forward_busy()
    with qtbot.waitSignal(tab.classified, timeout=10000):
        pass
    assert shown == ["7"] and tab.chart.highlighted_class() == "7"
    assert tab.prediction_label.text().startswith("7 ")
    assert tab.network_view.layers()[0].name == "input"
    tab.canvas.set_pixels(_canvas(digits[1]))  # the next digit: the maps shown are the 7's
    assert "previous one's" in tab.network_hover.text()
    with qtbot.waitSignal(tab.classified, timeout=10000):
        pass
    assert shown == ["7", "2"] and "previous" not in tab.network_hover.text()


def test_a_newer_stroke_supersedes_the_older_one(qtbot, tab, digits):
    shown = []
    tab.classified.connect(lambda result: shown.append(result.prediction))
    for digit in digits:  # strokes faster than the network
        tab.canvas.set_pixels(_canvas(digit))
    qtbot.waitUntil(lambda: not tab.forward_busy(), timeout=10000)
    assert shown == ["0"]  # the last one only: the others' results were dropped
    assert tab.chart.highlighted_class() == "0"


def test_a_result_for_a_cleared_canvas_is_dropped(qtbot, tab, digits):
    tab.canvas.set_pixels(_canvas(digits[1]))
    tab.draw_panel.clear_button.click()
    qtbot.waitUntil(lambda: not tab.forward_busy(), timeout=10000)
    assert tab.prediction_label.text() == "Draw a digit"
    assert tab.chart.probabilities().size == 0


def test_a_result_of_the_previous_model_is_dropped(qtbot, tab, digits, monkeypatch):
    # a large image is prepared off the GUI thread: a model chosen while the previous one's
    # forward pass is on its way must not get that result shown under its name
    import desktop.classify_tab as classify_tab

    gate, forward = threading.Event(), classify_tab._forward
    monkeypatch.setattr(classify_tab, "_forward", lambda *a: gate.wait(10) and forward(*a))
    shown = []
    tab.classified.connect(lambda result: shown.append(result.classes[0]))
    big = np.kron(255 - digits[0], np.ones((48, 48), np.uint8))  # 1,344 x 1,344 pixels
    tab.show_image(big, "big seven")
    qtbot.waitUntil(lambda: tab.prediction_label.text() == WORKING, timeout=10000)
    other = lenet5(np.random.default_rng(1))
    other.classes = [f"class {i}" for i in range(10)]
    tab.set_model(other, "another network")  # the same image, prepared again off the thread
    gate.set()  # the first model's forward pass ends now
    qtbot.waitUntil(lambda: bool(shown) and not tab.background_busy(), timeout=10000)
    assert shown == ["class 0"]
    assert tab.chart.classes()[0] == "class 0"


def test_a_newer_input_stops_the_occlusion_map_being_made(qtbot, tab, digits, monkeypatch):
    # a heavy network's map takes seconds (12 s for a 512-channel one) and shares the cores
    # with the newer input's forward pass: it is stopped, quietly
    import desktop.widgets.seen_box as seen_box
    from engine.occlusion import OcclusionCancelled

    flags, real = [], seen_box.occlusion_map

    def first_waits_for_cancel(model, image, **options):
        flags.append(options["cancel"])
        if len(flags) > 1:
            return real(model, image, **options)
        for _ in range(1000):  # stands for the parts of a long map
            if options["cancel"].cancelled:
                raise OcclusionCancelled("cancelled")
            threading.Event().wait(0.01)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(seen_box, "occlusion_map", first_waits_for_cancel)
    tab.canvas.set_pixels(_canvas(digits[0]))
    qtbot.waitUntil(lambda: len(flags) == 1, timeout=10000)  # the 7's map is being made
    with qtbot.waitSignal(tab.occlusion_finished, timeout=10000) as blocker:
        tab.canvas.set_pixels(_canvas(digits[1]))
        assert flags[0].cancelled
    assert blocker.args[0].target == 2 and len(flags) == 2  # the 2's map
    assert tab.message_label.isHidden()  # a stopped map is no problem to report


def test_a_read_number_names_its_digit_once_the_result_is_in(qtbot, tab, digits, tmp_path):
    from engine.imageio import save_image

    row = np.concatenate([np.pad(d, ((0, 0), (3, 3))) for d in digits[:3]], axis=1)
    path = tmp_path / "number.png"
    save_image(255 - np.kron(np.pad(row, 8), np.ones((3, 3), np.uint8)), path)
    with qtbot.waitSignal(tab.number_read, timeout=10000):
        tab.open_image_file(path)
    assert tab.reading.text == "721"
    assert tab.prediction_label.text() == WORKING  # its first digit on its way
    with qtbot.waitSignal(tab.classified, timeout=10000) as blocker:
        pass
    assert blocker.args[0].prediction == "7"
    assert tab.prediction_label.text() == "721"
    assert tab.top3_label.text().startswith("Digit 1 of 3: Top 3: 7")


@pytest.fixture
def panel(qtbot, heavy):
    widget = LivePanel()
    widget.resize(1000, 700)
    widget.show()
    yield widget
    # not qtbot.addWidget: that would delete the panel before this teardown could wait
    qtbot.waitUntil(lambda: not widget.busy(), timeout=10000)  # its worker done
    widget.close()
    widget.deleteLater()


def _with_model(qtbot, panel: LivePanel, model) -> LivePanel:
    panel.set_model(model)
    qtbot.waitUntil(lambda: not panel.busy(), timeout=10000)
    return panel


def test_the_live_view_works_out_a_pinned_image_off_the_gui_thread(qtbot, panel, digits):
    model = lenet5(np.random.default_rng(0))
    _with_model(qtbot, panel, model)
    assert panel.filter_view.tiles()  # the filters, without any sample
    panel.pin(digits[0], "a 7")
    assert panel.working_label.isVisibleTo(panel) and panel.busy()
    assert panel.activation_view.layers() == []
    with qtbot.waitSignal(panel.refreshed, timeout=10000) as blocker:
        pass
    assert blocker.args[0] > 0
    assert not panel.working_label.isVisibleTo(panel)
    expected = live_views(model, digits[0]).layers
    shown = panel.activation_view.layers()
    assert [v.name for v in shown] == [v.name for v in expected]
    assert np.array_equal(shown[1].values, expected[1].values)


def test_the_live_view_shows_the_weights_of_the_refresh_and_the_newest_sample(qtbot, panel, digits):
    model = lenet5(np.random.default_rng(0))
    _with_model(qtbot, panel, model)
    before = model.clone()
    panel.pin(digits[2], "a 1")
    panel.pin(digits[1], "a 2")  # supersedes the 1
    panel.refresh()
    zeros = {k: np.zeros_like(v) for k, v in model.get_weights().items()}
    model.set_weights(zeros)  # training goes on meanwhile: the refresh keeps its own weights
    qtbot.waitUntil(lambda: not panel.busy(), timeout=10000)
    shown = panel.activation_view.layers()
    expected = live_views(before, digits[1]).layers
    for view, want in zip(shown, expected, strict=True):
        assert np.array_equal(view.values, want.values), view.name
