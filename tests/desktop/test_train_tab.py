"""The Train tab, driven like a user: short runs on a slice of the bundled MNIST.

Every run trains LeNet-5 on about a thousand images, so each test takes a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.app_state import AppState
from desktop.train_tab import START_TIP, TrainTab
from engine.training import TrainControl

LIMIT = 1200  # training images (10% of them validate)
TEST_LIMIT = 300
RUN_TIMEOUT = 60_000


@pytest.fixture
def make_tab(qtbot):
    """TrainTab factory; at the end every run is stopped before the tab is closed (not through
    qtbot.addWidget, which would close a tab whose thread still runs after a failed test)."""
    made: list[TrainTab] = []

    def make(state: AppState | None = None) -> TrainTab:
        tab = TrainTab(state or AppState())
        tab.resize(1280, 790)
        tab.show()
        made.append(tab)
        return tab

    yield make
    for tab in made:
        if tab.is_busy():
            tab.stop_work()
            qtbot.waitUntil(lambda t=tab: not t.is_busy(), timeout=RUN_TIMEOUT)
        tab.close()
        tab.deleteLater()


def _prepare(qtbot, tab: TrainTab, *, epochs: int = 1, batch: int = 32) -> TrainTab:
    tab.setup.set_source("mnist", LIMIT)
    qtbot.waitUntil(
        lambda: (
            tab.start_button.isEnabled()
            and tab.setup.dataset is not None
            and len(tab.setup.dataset.train_labels) == LIMIT
        ),
        timeout=30_000,
    )
    tab.test_limit = TEST_LIMIT
    tab.setup.epochs_spin.setValue(epochs)
    tab.setup.batch_spin.setValue(batch)
    return tab


@pytest.fixture
def tab(qtbot, make_tab):
    return _prepare(qtbot, make_tab())


def _run(qtbot, tab: TrainTab) -> str:
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_object_names_of_the_key_widgets(tab):
    names = [
        "startButton",
        "pauseButton",
        "stopButton",
        "stepButton",
        "lossPlot",
        "accuracyPlot",
        "activationView",
        "filterView",
        "confusionView",
        "epochProgress",
    ]
    for name in names:
        assert tab.findChild(QObject, name) is not None, name


def test_optimiser_and_loss_boxes_list_the_engine_registries(tab):
    from engine.losses import LOSSES
    from engine.optim import OPTIMIZERS

    for box, names in ((tab.setup.optimizer_combo, OPTIMIZERS), (tab.setup.loss_combo, LOSSES)):
        assert [box.itemData(i) for i in range(box.count())] == list(names)
        assert all(box.itemText(i) for i in range(box.count()))
    assert tab.setup.optimizer_combo.currentData() == "momentum"


def test_a_short_run_fills_the_charts_and_learns(qtbot, tab):
    tab.setup.epochs_spin.setValue(2)
    published = []
    tab._state.model_offered.connect(lambda model, label: published.append(label))
    switched = []
    tab._state.model_changed.connect(lambda model, label: switched.append(label))
    assert _run(qtbot, tab) == "finished"

    batches = len(tab.session.log)
    assert batches == 2 * -(-int(LIMIT * 0.9) // 32)
    counts = tab.charts.point_counts()
    assert counts["loss"] == counts["smoothed"] == counts["running"] == batches
    assert counts["train"] == counts["val"] == 2
    train_acc, _val_acc = tab.charts.epoch_accuracies()
    assert train_acc[1] > train_acc[0]
    _x, _loss, smooth, _acc = tab.session.log.arrays()
    assert smooth[-1] < smooth[5]  # the smoothed loss went down
    assert tab.progress.value() == tab.progress.maximum()
    assert tab.result is not None and tab.result.accuracy > 0.6
    assert "Test accuracy" in tab.results.test_label.text()
    assert f"on {TEST_LIMIT} test images (the t10k files; loss" in tab.results.test_label.text()
    assert tab.pages.currentIndex() == 1  # the results page shows
    assert tab.results.mistakes_gallery.count() == min(40, len(tab.result.misclassified))
    assert published and published[-1].startswith("Trained here")
    assert switched == []  # offered as one more choice; the Classify tab's model stays
    offered = tab._state.offered_models[-1][1]
    assert offered is not tab.model  # a copy: training on never races Classify
    # the model handed over carries the run's whole metadata, evaluation included
    assert offered.meta["evaluation"]["accuracy"] == tab.result.accuracy
    assert offered.meta["evaluation"]["count"] == TEST_LIMIT
    assert offered.meta["dataset"]["name"] == "MNIST" and "trained_at" in offered.meta
    # The live views show every layer and both conv layers' filters.
    assert tab.live.activation_view.layer_names() == [
        "input",
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "fc1",
        "fc2",
        "fc3",
        "softmax",
    ]
    layers = {layer for layer, *_ in tab.live.filter_view.tiles()}
    assert layers == {"conv1", "conv2"} and len(tab.live.filter_view.tiles()) == 6 + 16 * 6
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()


def test_pause_resume_and_stop_within_one_batch(qtbot, tab):
    tab.setup.epochs_spin.setValue(30)
    published = []
    tab._state.model_offered.connect(lambda model, label: published.append(label))
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.session.log) >= 3, timeout=RUN_TIMEOUT)

    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.progress.format().startswith("Paused"), timeout=RUN_TIMEOUT)
    assert tab.pause_button.text().endswith("Resume") and tab.step_button.isEnabled()
    # "Paused at epoch E, batch B": the log holds exactly the batches run so far.
    words = tab.progress.format().replace(",", "").split()
    epoch, batch = int(words[3]), int(words[5])
    per_epoch = -(-int(LIMIT * 0.9) // 32)
    assert len(tab.session.log) == (epoch - 1) * per_epoch + batch

    paused_at = len(tab.session.log)
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(tab.session.log) > paused_at + 2, timeout=RUN_TIMEOUT)
    assert tab.pause_button.text().endswith("Pause")

    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
        at_stop = len(tab.session.log)
    assert blocker.args == ["cancelled"]
    assert len(tab.session.log) <= at_stop + 1
    assert tab.progress.format().startswith("Stopped at epoch")
    assert published  # the model trained so far is kept and offered to the Classify tab
    assert not tab.is_busy()


def test_step_runs_one_batch_and_shows_the_loss_before_and_after(qtbot, tab):
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "after" in tab.message.text(), timeout=RUN_TIMEOUT)
    assert len(tab.session.log) == 1
    first = tab.message.text()
    assert "before this batch" in first and tab.message.isVisible()
    # the validation part is about 120 images, all of them the probe: it says so (it said 256)
    held_out = len(tab.session.run.val_labels)
    assert 100 < held_out < 256 and f"On {held_out} fixed held-out images the loss" in first

    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.message.text() != first, timeout=RUN_TIMEOUT)
    assert len(tab.session.log) == 2
    # The "before" of the second step is the "after" of the first one.
    after_first = first.rsplit("to ", 1)[1].split()[0]
    assert f"from {after_first}" in tab.message.text()

    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["cancelled"] and len(tab.session.log) == 2


def test_a_diverging_run_stops_with_a_message_and_good_weights(qtbot, tab):
    tab.setup.lr_spin.setValue(10.0)
    tab.setup.optimizer_combo.setCurrentIndex(0)  # momentum
    assert _run(qtbot, tab) == "diverged"
    assert tab.message.isVisible()
    text = tab.message.text()
    assert "diverged" in text and "restored" in text and "too high" in text
    assert all(np.isfinite(p).all() for p in tab.model.parameters().values())
    assert tab.progress.format().startswith("Diverged")
    # back to the weights it started from (this one blows up in its first batches): nothing
    # was learned, so quitting does not ask to save it
    assert "restored to those at the start of training" in text
    assert not tab.has_unsaved_model()


def test_confusion_cell_click_shows_its_images(qtbot, tab):
    assert _run(qtbot, tab) == "finished"
    view = tab.results.confusion_view
    confusion = tab.result.confusion
    off = confusion - np.diag(np.diag(confusion))
    true_class, predicted = np.unravel_index(np.argmax(off), off.shape)
    assert off[true_class, predicted] > 0
    centre = view.cell_rect(int(true_class), int(predicted)).center().toPoint()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert tab.results.cell_gallery.count() == min(60, int(confusion[true_class, predicted]))
    assert f"True {true_class}, predicted {predicted}" in tab.results.cell_label.text()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(0, 0).center().toPoint())
    assert tab.results.cell_gallery.count() == min(60, int(confusion[0, 0]))


def test_hover_click_filter_and_pinning(qtbot, tab):
    state = tab._state
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: bool(tab.live.activation_view.hit_rects()) and bool(tab.live.filter_view.tiles()),
        timeout=RUN_TIMEOUT,
    )
    # Hovering the second conv1 map names layer, index and range.
    rects = tab.live.activation_view.hit_rects()
    qtbot.mouseMove(tab.live.activation_view, rects[2].center().toPoint())
    qtbot.waitUntil(lambda: "conv1" in tab.live.hover_label.text())
    assert "map 2 of 6" in tab.live.hover_label.text() and "values" in tab.live.hover_label.text()
    # Clicking a conv1 filter sends it to the Filters tab (once the step window, where a click
    # picks a weight to follow, is closed).
    qtbot.waitUntil(lambda: tab.step_window is not None and tab.step_window.isVisible())
    tab.step_window.close()
    assert not tab.live.filter_view.picking
    layer, index, channel, rect = tab.live.filter_view.tiles()[3]
    assert (index, channel) == (3, 0)
    assert layer == "conv1"
    with qtbot.waitSignal(state.kernel_requested) as blocker:
        qtbot.mouseClick(
            tab.live.filter_view, Qt.MouseButton.LeftButton, pos=rect.center().toPoint()
        )
    kernel, description = blocker.args
    assert kernel.shape == (5, 5) and "conv1 filter 4" in description
    np.testing.assert_allclose(kernel, tab._view_model.conv_filters("conv1")[3, 0])
    # The Classify tab's image can be pinned as the sample.
    assert not tab.live.pin_classify_button.isEnabled()
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    state.classify_image_changed.emit(digit)
    qtbot.mouseClick(tab.live.pin_classify_button, Qt.MouseButton.LeftButton)
    assert "Classify" in tab.live.sample_caption.text()
    input_row = tab.live.activation_view._layers[0]
    assert input_row.name == "input" and input_row.values.max() > input_row.values.min()
    # A dataset preview image can be pinned too: click the first 7 of the sample grid.
    qtbot.mouseClick(tab.setup.sample_grid, Qt.MouseButton.LeftButton, pos=QPoint(7 * 29 + 14, 14))
    assert "dataset preview" in tab.live.sample_caption.text()
    first_seven = int(np.flatnonzero(tab.setup.dataset.train_labels == 7)[0])
    np.testing.assert_array_equal(tab.live.sample, tab.setup.dataset.train_images[first_seven])
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT):
        tab.stop_work()


def test_a_custom_network_that_does_not_fit_is_explained(qtbot, tab):
    setup = tab.setup
    setup.arch_combo.setCurrentText("custom")
    assert setup.layer_table.rowCount() > 5 and setup.architecture_ok()
    setup.filters_edit.setText("6, 16, 32")
    setup.kernel_spin.setValue(7)
    qtbot.waitUntil(lambda: "does not fit" in setup.arch_error.text())
    assert setup.layer_table.rowCount() == 0 and not tab.start_button.isEnabled()
    setup.filters_edit.setText("4, 8")
    setup.kernel_spin.setValue(3)
    qtbot.waitUntil(setup.architecture_ok)
    assert tab.start_button.isEnabled()
    assert "trainable parameters" in setup.params_label.text()


def test_a_custom_field_that_does_not_read_is_framed_in_red(qtbot, tab):
    """Only the red line said which field was wrong; the field itself is framed now, as the
    text form underlines its token. A number of thousands of digits is one short line."""
    setup = tab.setup
    setup.arch_combo.setCurrentText("custom")
    setup.filters_edit.setText("6, sixteen")
    qtbot.waitUntil(lambda: "'sixteen' is not a whole number" in setup.arch_error.text())
    assert "#b00020" in setup.filters_edit.styleSheet() and not setup.fc_edit.styleSheet()
    setup.filters_edit.setText("6, 16")
    setup.fc_edit.setText("9" * 5000)
    qtbot.waitUntil(lambda: "FC widths" in setup.arch_error.text())
    assert len(setup.arch_error.text()) < 200 and "#b00020" in setup.fc_edit.styleSheet()
    assert not setup.filters_edit.styleSheet()
    setup.fc_edit.setText("120, 84")
    qtbot.waitUntil(setup.architecture_ok)
    assert not setup.fc_edit.styleSheet() and not setup.filters_edit.styleSheet()


def test_save_and_reload_then_continue_training(qtbot, tab, make_tab, tmp_path, monkeypatch):
    pytest.importorskip("engine.modelfile")
    assert _run(qtbot, tab) == "finished"
    path = tmp_path / "mine.npz"
    offered = []

    def save_dialog(parent, title, name, *rest):
        offered.append(name)
        return str(path), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    assert path.exists()
    assert offered == ["lenet5-mnist.npz"]  # the network and its data, as convscope train names it

    state = AppState()
    other = _prepare(qtbot, make_tab(state))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(other.model_load_finished) as blocker:
        qtbot.mouseClick(other.load_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True] and state.offered_models[-1][0] == "Loaded mine.npz"
    saved = tab.model.get_weights()
    loaded = other.model.get_weights()
    assert all(np.array_equal(saved[k], loaded[k]) for k in saved)
    assert other.continue_check.isChecked()
    assert _run(qtbot, other) == "finished"
    assert other.result.accuracy >= tab.result.accuracy - 0.05  # it went on from there


def _window_with_a_long_run_set_up(qtbot, settings):
    """A main window on the Train tab, MNIST loaded and 30 epochs set: a run that goes on."""
    from desktop.main_window import MainWindow

    window = MainWindow(settings=settings)
    qtbot.addWidget(window, before_close_func=lambda w: _stop_a_run_left_going(qtbot, w))
    window.show()
    window.tabs.setCurrentWidget(window.train_tab)
    _prepare(qtbot, window.train_tab).setup.epochs_spin.setValue(30)
    return window


def _stop_a_run_left_going(qtbot, window) -> None:
    """After a failed test: no thread outlives the window (a held run would wait forever)."""
    tab = window.train_tab
    if tab.is_busy():
        tab.stop_work()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=RUN_TIMEOUT)


def test_closing_the_window_during_training_stops_cleanly(qtbot, settings, monkeypatch):
    window = _window_with_a_long_run_set_up(qtbot, settings)
    tab = window.train_tab
    asked = []

    def question(*args, **kwargs):
        asked.append(args)
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(tab.session.log) >= 2, timeout=RUN_TIMEOUT)
    thread = tab.session._thread
    assert thread is not None and thread.isRunning()
    with qtbot.waitSignal(tab.work_stopped, timeout=RUN_TIMEOUT):
        window.close()
        assert window.isVisible()  # the first close only asks to stop
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT)
    assert len(asked) == 1 and not tab.is_busy()
    assert window._settings.value("tab_index") is not None  # the real close ran
    assert window.state.offered_models  # the model trained so far was kept


@pytest.mark.parametrize("chosen", ["kept", ""])
def test_closing_during_training_can_save_the_model_first(
    qtbot, settings, monkeypatch, tmp_path, chosen
):
    # "Stop and quit?" only offered to quit without the model (Save is disabled during a run):
    # Save stops the run, asks where to keep the model, then quits; a cancelled save keeps
    # the window open with the model.
    from engine.modelfile import load_model

    window = _window_with_a_long_run_set_up(qtbot, settings)
    tab = window.train_tab
    answer = QMessageBox.StandardButton.Save
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answer)
    target = str(tmp_path / chosen) if chosen else ""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (target, ""))
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(tab.session.log) >= 2, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(tab.work_stopped, timeout=RUN_TIMEOUT):
        window.close()
    if chosen:
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT)
        kept = load_model(tmp_path / "kept.npz")
        assert kept.classes == tab.model.classes
        assert np.array_equal(
            kept.get_weights()["fc3.weight"], tab.model.get_weights()["fc3.weight"]
        )
    else:
        assert window.isVisible() and not tab.is_busy() and tab.model is not None
        assert tab.save_button.isEnabled()  # the model is still there to save
        assert not list(tmp_path.glob("*.npz"))


class _HeldBeforeTheFirstBatch(TrainControl):
    """A run's control that starts paused: the run waits before its first batch (as on a busy
    machine, where Stop can come before any batch ends) until Step, Resume or Stop."""

    def __init__(self) -> None:
        super().__init__()
        self.pause()


def _held_run(qtbot, settings, monkeypatch) -> tuple[object, list[tuple[str, object]]]:
    """A main window whose run was started and waits before its first batch, and the list of
    the questions asked (title, buttons), each answered Cancel."""
    monkeypatch.setattr("desktop.training_session.TrainControl", _HeldBeforeTheFirstBatch)
    asked: list[tuple[str, object]] = []

    def question(_parent, title, _text, buttons, _default):
        asked.append((title, buttons))
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", question)
    window = _window_with_a_long_run_set_up(qtbot, settings)
    tab = window.train_tab
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert tab.is_busy()
    return window, asked


def _stop(qtbot, tab: TrainTab) -> None:
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as ended:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["cancelled"]


def test_a_run_stopped_before_its_first_batch_leaves_no_model_to_save(qtbot, settings, monkeypatch):
    # Stopped before any batch, the untrained network counted as an "unsaved trained model":
    # quitting asked Save/Discard/Cancel about a model that was never trained.
    window, asked = _held_run(qtbot, settings, monkeypatch)
    tab = window.train_tab
    _stop(qtbot, tab)
    assert len(tab.session.log) == 0 and not tab.has_unsaved_model()
    window.close()
    assert asked == [] and not window.isVisible()


def test_a_run_stopped_after_one_batch_asks_to_save_on_quitting(qtbot, settings, monkeypatch):
    window, asked = _held_run(qtbot, settings, monkeypatch)
    tab = window.train_tab
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)  # exactly one batch
    qtbot.waitUntil(lambda: len(tab.session.log) == 1, timeout=RUN_TIMEOUT)
    _stop(qtbot, tab)
    assert len(tab.session.log) == 1
    window.close()  # answered Cancel: it stays
    assert window.isVisible() and [title for title, _b in asked] == ["Save the trained model?"]


def test_quitting_while_a_run_has_trained_nothing_only_asks_to_stop_it(
    qtbot, settings, monkeypatch
):
    # "Stop and quit?" offered to Save "the model trained so far" when no batch had finished.
    window, asked = _held_run(qtbot, settings, monkeypatch)
    tab = window.train_tab
    window.close()  # answered Cancel: the run goes on
    assert window.isVisible() and tab.is_busy()
    title, buttons = asked[-1]
    Button = QMessageBox.StandardButton
    assert title == "Stop and quit?" and buttons == Button.Discard | Button.Cancel
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: Button.Discard)
    with qtbot.waitSignal(tab.work_stopped, timeout=RUN_TIMEOUT):
        window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT)
    assert len(tab.session.log) == 0


def test_hovering_outside_maps_clears_the_text(qtbot, tab):
    view = tab.live.activation_view
    qtbot.mouseMove(view, QPoint(2, 2))
    assert view.text_at(QPoint(2, 2).toPointF()) == ""


def test_an_image_folder_dataset_trains_a_two_class_network(qtbot, tab, tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for name in ("bars", "dots"):
        (folder / name).mkdir(parents=True)
        for i in range(30):
            image = np.zeros((28, 28), np.uint8)
            if name == "bars":
                image[4:24, rng.integers(4, 20) :][:, :4] = 255
            else:
                y, x = rng.integers(4, 20, 2)
                image[y : y + 5, x : x + 5] = 255
            Image.fromarray(image).save(folder / name / f"{i}.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    index = tab.setup.source_combo.findData("folder")
    tab.setup.source_combo.setCurrentIndex(index)
    tab.setup.source_combo.activated.emit(index)
    qtbot.waitUntil(
        lambda: (
            tab.setup.dataset is not None
            and tab.setup.dataset.classes == ["bars", "dots"]
            and tab.start_button.isEnabled()
        ),
        timeout=30_000,
    )
    dataset = tab.setup.dataset
    assert "shapes" in tab.setup.dataset_label.text()
    heights = tab.setup._bars.opts["height"]
    assert list(heights) == [int(np.sum(dataset.train_labels == k)) for k in (0, 1)]
    tab.setup.epochs_spin.setValue(3)
    tab.setup.batch_spin.setValue(8)
    assert _run(qtbot, tab) == "finished"
    assert tab.model.classes == ["bars", "dots"]
    assert tab.result.confusion.shape == (2, 2)
    assert tab.live.activation_view._layers[-1].values.shape == (2,)


def test_earlier_runs_stay_on_the_charts_and_can_be_hidden(qtbot, tab):
    assert _run(qtbot, tab) == "finished"
    first_points = tab.charts.point_counts()["smoothed"]
    tab.setup.lr_spin.setValue(0.02)
    assert _run(qtbot, tab) == "finished"
    charts = tab.charts
    assert charts.run_count() == 2 and charts.runs_list.count() == 2
    assert "lr 0.02" in charts.runs_list.item(1).text()
    smoothed_first = charts._runs[0].items[1]
    assert len(smoothed_first.getData()[0]) == first_points and smoothed_first.isVisible()
    charts.runs_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not charts.run_visible(0) and charts.run_visible(1)
    charts.runs_list.item(0).setCheckState(Qt.CheckState.Checked)
    assert charts.run_visible(0)
    charts.log_check.setChecked(True)
    assert charts.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()


def test_closing_while_the_dataset_loads_neither_asks_nor_crashes(qtbot, settings, monkeypatch):
    from desktop.main_window import MainWindow

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a))
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    assert not window.train_tab.setup.is_loading()  # nothing loads before the tab is shown
    window.tabs.setCurrentWidget(window.train_tab)
    setup = window.train_tab.setup
    assert setup.is_loading()
    thread = setup._thread
    window.close()
    assert not window.isVisible() and asked == []
    qtbot.waitUntil(thread.isFinished, timeout=30_000)  # the load ends by itself, unharmed


def test_start_waits_for_a_dataset_load(qtbot, tab):
    assert tab.start_button.isEnabled()
    tab.setup.set_source("mnist", 600)  # a new load begins: Start must not train the old data
    assert tab.setup.is_loading()
    assert not tab.start_button.isEnabled() and not tab.step_button.isEnabled()
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert not tab.is_busy()
    qtbot.waitUntil(tab.start_button.isEnabled, timeout=30_000)
    assert len(tab.setup.dataset.train_labels) == 600


def _save_colour_model(path):
    from engine.model import build_model
    from engine.modelfile import save_model

    model = build_model({"name": "lenet5", "in_channels": 3}, np.random.default_rng(0))
    save_model(model, path)


def test_loading_a_colour_model_with_digits_pinned_explains_instead_of_raising(
    qtbot, tab, tmp_path, monkeypatch
):
    path = tmp_path / "colour.npz"
    _save_colour_model(path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(tab.model_load_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(tab.load_button, Qt.MouseButton.LeftButton)
        assert not tab.load_button.isEnabled()  # opened off the GUI thread
    assert blocker.args == [True]
    caption = tab.live.activation_view._caption
    assert "does not fit this model, which takes 3×28×28" in caption
    assert "Train or load a model" not in caption
    assert tab.live.filter_view.tiles()  # its filters still show
    # Start (continue) explains that the grey digits do not fit the colour network
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert "Cannot start" in tab.message.text() and not tab.is_busy()


@pytest.mark.parametrize(
    "content", [b"not a zip", b"PK\x03\x04 truncated", b""], ids=["text", "zip", "empty"]
)
def test_a_crafted_model_file_gives_a_message(qtbot, tab, tmp_path, content):
    path = tmp_path / "crafted.npz"
    path.write_bytes(content)
    with qtbot.waitSignal(tab.model_load_finished, timeout=30_000) as blocker:
        tab.load_model_file(path)
    assert blocker.args == [False]
    assert tab.message.isVisible() and "Could not load crafted.npz" in tab.message.text()
    assert tab.load_button.isEnabled() and tab._state.offered_models == []


def _two_class_folder(folder, classes=("bars", "dots"), per_class=30, size=28, colour=False):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.zeros((size, size, 3) if colour else (size, size), np.uint8)
            y, x = rng.integers(0, size - 5, 2)
            image[y : y + 6, x : x + 6] = 60 + (k * 37) % 190
            Image.fromarray(image).save(folder / name / f"{i}.png")
    return folder


def _choose_folder(qtbot, tab, folder, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    index = tab.setup.source_combo.findData("folder")
    tab.setup.source_combo.setCurrentIndex(index)
    with qtbot.waitSignal(tab.setup.dataset_loaded, timeout=30_000):
        tab.setup.source_combo.activated.emit(index)


def test_the_pinned_sample_follows_a_new_dataset(qtbot, tab, tmp_path, monkeypatch):
    np.testing.assert_array_equal(tab.live.sample, tab.setup.dataset.train_images[0])
    _choose_folder(qtbot, tab, _two_class_folder(tmp_path / "shapes"), monkeypatch)
    np.testing.assert_array_equal(tab.live.sample, tab.setup.dataset.train_images[0])
    assert "bars" in tab.live.sample_caption.text() or "dots" in tab.live.sample_caption.text()


def test_a_300_class_folder_shows_a_bounded_preview(qtbot, tab, tmp_path, monkeypatch):
    names = [f"c{k:03d}" for k in range(300)]
    _choose_folder(qtbot, tab, _two_class_folder(tmp_path / "many", names, 2, 12), monkeypatch)
    setup = tab.setup
    assert (
        len(setup.dataset.classes) == 300 and "(the first 10 shown)" in setup.dataset_label.text()
    )
    assert setup._samples.shape == (10, 3)
    width = setup.sample_grid.cell[1]
    zoom = setup.sample_grid.zoom  # ten columns of small images, zoomed
    assert setup.sample_grid.pixmap().width() == (10 * (width + 1) - 1) * zoom
    assert len(setup._bars.opts["height"]) == 300


def test_huge_custom_networks_are_refused_by_arithmetic(qtbot, tab):
    setup = tab.setup
    setup.arch_combo.setCurrentText("custom")
    setup.fc_edit.setText("1200000")
    assert not setup.architecture_ok()  # while typing: not yet checked, Start waits
    qtbot.waitUntil(lambda: "parameters" in setup.arch_error.text())
    assert "320 million parameters, more than the limit" in setup.arch_error.text()
    assert not tab.start_button.isEnabled() and setup.layer_table.rowCount() == 0
    first = setup.arch_error.text()
    setup.fc_edit.setText("120, 84")
    setup.filters_edit.setText("100000")  # 100,000 filters: 1.7 billion parameters
    qtbot.waitUntil(lambda: setup.arch_error.text() not in ("", first))
    assert "1.73 billion parameters" in setup.arch_error.text()


def test_two_channel_images_do_not_start_a_run(qtbot, tab, tmp_path):
    folder = tmp_path / "twochannel"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        pixels = rng.integers(0, 255, n * 2 * 28 * 28, dtype=np.uint8).tobytes()
        head = bytes([0, 0, 8, 4]) + b"".join(d.to_bytes(4, "big") for d in (n, 2, 28, 28))
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(head + pixels)
        labels = (np.arange(n) % 10).astype(np.uint8).tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels
        )
    with qtbot.waitSignal(tab.setup.loading_finished, timeout=30_000):
        tab.setup.set_source(folder, None)
    if tab.setup.dataset is None:  # refused by the reader: said so, and nothing to start
        assert "Could not load" in tab.setup.dataset_label.text()
        assert not tab.start_button.isEnabled()
        return
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert not tab.is_busy()
    assert "Cannot start" in tab.message.text() and "2 channels" in tab.message.text()


def test_the_class_counts_chart_shows_a_scale_only_once_it_has_counts(qtbot, make_tab):
    """While the first dataset loads the chart is empty: no 0-1 scale crowding its six labels
    into the chart's 40 px (as it did); with the counts, both axes are labelled."""
    tab = make_tab()
    setup = tab.setup
    axes = [setup.counts_plot.getPlotItem().getAxis(side) for side in ("left", "bottom")]
    assert setup.is_loading() and setup.dataset is None
    assert not any(axis.style["showValues"] for axis in axes)
    qtbot.waitUntil(lambda: setup.dataset is not None, timeout=30_000)
    assert all(axis.style["showValues"] for axis in axes)
    assert [name for _, name in axes[1]._tickLevels[0]] == [str(d) for d in range(10)]


def test_the_bundled_photos_train_in_colour_with_file_names(qtbot, make_tab):
    tab = make_tab()
    setup = tab.setup
    index = setup.source_combo.findData("cifar4")
    assert index >= 0 and "bird, cat, dog, ship" in setup.source_combo.itemText(index)
    setup.source_combo.setCurrentIndex(index)
    setup.limit_combo.setCurrentIndex(setup.limit_combo.findData(2_000))
    with qtbot.waitSignal(setup.dataset_loaded, timeout=60_000):
        setup.source_combo.activated.emit(index)
    qtbot.waitUntil(lambda: not setup.is_loading(), timeout=30_000)
    assert setup.dataset.classes == ["bird", "cat", "dog", "ship"]
    assert not setup.sample_grid.pixmap().toImage().allGray()  # a colour sample grid
    ticks = setup.counts_plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [name for _, name in ticks] == ["bird", "cat", "dog", "ship"]
    # LeNet-5 (chosen) takes 28x28: the photos are read at that size, as `convscope train
    # --arch lenet5` reads them (the tab refused them: "images are 32x32")
    assert tab.live.sample.shape == (3, 28, 28)  # the pinned sample is a photo now
    assert not tab.live.sample_thumb.pixmap().toImage().allGray()
    assert not setup.arch_error.text() and tab.start_button.isEnabled()
    assert setup.build(seed=0).input_spec.shape == (3, 28, 28)
    setup.arch_combo.setCurrentText("lenet-article")  # the article's network takes 32x32
    qtbot.waitUntil(lambda: setup.dataset.train_images.shape[1:] == (3, 32, 32), timeout=30_000)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.architecture_ok(), timeout=30_000)
    assert tab.start_button.isEnabled() and tab.live.sample.shape == (3, 32, 32)
    setup.augment_combo.setCurrentIndex(setup.augment_combo.findData("auto"))
    setup.schedule_combo.setCurrentIndex(setup.schedule_combo.findData("cosine"))
    setup.epochs_spin.setValue(1)
    tab.test_limit = None  # all 1,000 test photos (sorted by class: a slice is one class)
    assert _run(qtbot, tab) == "finished"
    assert tab.model.input_spec.shape == (3, 32, 32)
    assert tab.model.meta["config"]["schedule"] == "cosine"
    assert tab.model.meta["dataset"]["augment"] == "auto"
    assert any(channel == -1 for _, _, channel, _ in tab.live.filter_view.tiles())  # colour
    gallery = tab.results.mistakes_gallery
    assert gallery.count() > 0 and "test/" in gallery.item(0).toolTip()
    assert (
        "bird" in tab.charts.runs_list.item(0).text()
        or "cifar4" in tab.charts.runs_list.item(0).text()
    )


def test_a_trained_model_becomes_a_choice_of_the_classify_tab(qtbot, settings, monkeypatch):
    from desktop.main_window import MainWindow

    discard = QMessageBox.StandardButton.Discard  # closing at the end: the model is in no file
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: discard)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.train_tab)
    box = window.classify_tab.model_panel.model_box
    before = (box.currentIndex(), box.currentText(), box.count())
    tab = _prepare(qtbot, window.train_tab)
    assert _run(qtbot, tab) == "finished"
    texts = [box.itemText(i) for i in range(box.count())]
    assert len(texts) == before[2] + 1 and texts[-1].startswith("Trained here: lenet5")
    assert (box.currentIndex(), box.currentText()) == before[:2]  # the model in use stays


def test_the_diagram_stays_readable_during_a_run(qtbot, tab):
    # The whole architecture group was disabled while training: a greyed diagram without
    # hover details and no "Larger view…". Only the choices freeze now.
    setup = tab.setup
    view = setup.architecture_view
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)  # a run, paused after a batch
    qtbot.waitUntil(lambda: tab.is_busy() and len(tab.session.log) == 1, timeout=RUN_TIMEOUT)
    assert not setup.arch_combo.isEnabled() and not setup.epochs_spin.isEnabled()
    assert view.isEnabled() and setup.larger_button.isEnabled()
    tab.show_architecture(setup.architecture_name())  # scrolled into view
    view.ensureVisible(0, round(view.node_rect("conv2").bottom()))
    qtbot.mouseMove(view.canvas, QPoint(1, 1))
    with qtbot.waitSignal(view.hovered) as hovered:
        qtbot.mouseMove(view.canvas, view.node_rect("conv2").center().toPoint())
    assert "conv2 (conv2d)" in hovered.args[0]
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert setup.arch_combo.isEnabled()


def test_a_network_that_does_not_build_says_why_start_is_disabled(qtbot, make_tab):
    # In a small window the custom form's message sat below the fields, out of sight, and
    # Start was just grey: the message now scrolls into sight and Start's tooltip says it.
    tab = _prepare(qtbot, make_tab())
    tab.resize(1000, 620)
    setup = tab.setup
    setup.arch_combo.setCurrentText("custom")
    qtbot.waitUntil(setup.architecture_ok)
    assert tab.start_button.toolTip() == START_TIP
    tab.setup_area.verticalScrollBar().setValue(0)  # the panel's top, as after a start
    setup.fc_edit.setText("120, eighty")
    qtbot.waitUntil(lambda: tab.start_button.toolTip().startswith("Cannot start: FC widths"))
    assert not tab.start_button.isEnabled()
    assert "'eighty' is not a whole number" in tab.start_button.toolTip()
    qtbot.waitUntil(lambda: not setup.arch_error.visibleRegion().isEmpty())
    setup.fc_edit.setText("120, 84")
    qtbot.waitUntil(lambda: tab.start_button.isEnabled())
    assert tab.start_button.toolTip() == START_TIP


def test_views_too_slow_to_refresh_often_refresh_less_and_the_charts_go_on(qtbot, tab, monkeypatch):
    # a network whose live views take long to refresh (hundreds of wide layers) must not
    # take the GUI thread: the views wait in proportion to what their last refresh cost
    import desktop.train_tab as train_tab

    now = [0.0]
    monkeypatch.setattr(train_tab, "_clock", lambda: now[0])
    refreshes = []
    refresh = tab.live.refresh

    def slow_refresh() -> None:
        refresh()
        refreshes.append(len(tab.session.log))
        now[0] += 10.0  # as if this refresh had taken 10 s (the clock moves nowhere else)

    monkeypatch.setattr(tab.live, "refresh", slow_refresh)
    tab.session.snapshot_interval = 0.0  # weights after every batch
    tab._ui_timer.setInterval(0)  # a tick whenever the event loop is idle
    tab.setup.epochs_spin.setValue(2)
    assert _run(qtbot, tab) == "finished"
    # the new model's views at the start, one refresh while training (the next would be due
    # 40 s later) and the final weights at the end
    assert len(refreshes) == 3 and refreshes[-1] == len(tab.session.log)
    assert tab.charts.point_counts()["loss"] == len(tab.session.log)  # every batch charted


def test_a_heavy_networks_live_view_follows_the_training_off_the_gui_thread(
    qtbot, make_tab, monkeypatch
):
    # a heavy network's live view is worked out by a worker (LeNet-5 counted heavy here): the
    # refreshes still come, the last one shows the final weights, and none is lost at the end
    from desktop.widgets.live_panel import live_views
    from engine import modelsize

    monkeypatch.setattr(modelsize, "HEAVY_MULTIPLY_ADDS", 0)
    tab = _prepare(qtbot, make_tab())
    refreshed = []
    tab.live.refreshed.connect(refreshed.append)
    assert _run(qtbot, tab) == "finished"
    qtbot.waitUntil(lambda: not tab.live.busy(), timeout=RUN_TIMEOUT)
    assert len(refreshed) >= 2 and all(seconds > 0 for seconds in refreshed)
    want = live_views(tab.model, tab.live.sample).layers
    shown = tab.live.activation_view.layers()
    assert [v.name for v in shown] == [v.name for v in want]
    for view, expected in zip(shown, want, strict=True):
        assert np.allclose(view.values, expected.values), view.name


def test_the_results_page_never_shows_an_earlier_models_test(qtbot, tab):
    # A second run kept the first run's test accuracy, matrix and mistakes on the results
    # page (and in tab.result): stopped, it still claimed the first model's accuracy.
    assert _run(qtbot, tab) == "finished"
    results = tab.results
    assert "Test accuracy" in results.test_label.text() and results.mistakes_gallery.count()
    assert tab.pages.currentWidget() is results  # a run that ends shows its test
    tab.setup.epochs_spin.setValue(30)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert tab.pages.currentWidget() is tab.live  # the next one is watched live
    assert tab.result is None and "Test accuracy" not in results.test_label.text()
    assert "when the run ends" in results.test_label.text()
    assert results.confusion_view.accuracy_texts() == [] and results.mistakes_gallery.count() == 0
    qtbot.waitUntil(lambda: len(tab.session.log) >= 2, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(tab.training_finished, timeout=RUN_TIMEOUT) as stopped:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert stopped.args == ["cancelled"]
    assert "stopped at epoch 1 batch" in results.test_label.text()
    assert "not tested" in results.test_label.text()
    assert results.confusion_view.accuracy_texts() == []


def test_save_adds_npz_to_the_name_typed_and_asks_before_replacing_another_file(
    qtbot, tab, tmp_path, monkeypatch
):
    # "lenet.v2" was saved as lenet.npz and "mine" as mine.npz: another file than the one the
    # dialog had checked, silently replaced (the model kept there lost).
    assert _run(qtbot, tab) == "finished"
    for name in ("lenet.npz", "mine.npz"):
        (tmp_path / name).write_bytes(b"an earlier model")
    names = [tmp_path / "lenet.v2", tmp_path / "mine", tmp_path / "mine"]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(names.pop(0)), ""))
    asked, answers = [], [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]

    def question(_parent, title, text, *_args):
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "lenet.v2.npz").is_file() and asked == []
    assert (tmp_path / "lenet.npz").read_bytes() == b"an earlier model"
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)  # "mine": No
    assert len(asked) == 1 and "mine.npz already exists" in asked[0]
    assert (tmp_path / "mine.npz").read_bytes() == b"an earlier model"
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)  # "mine": Yes
    assert len(asked) == 2 and (tmp_path / "mine.npz").read_bytes() != b"an earlier model"


def test_a_continued_run_is_named_after_the_model_it_trains_not_the_network_box(qtbot, tab):
    # With Continue model ticked and another network chosen, the run trained the kept LeNet-5
    # but was labelled with the chosen network: the Classify tab listed "Trained here:
    # lenet-article ..." for a LeNet-5.
    state = tab._state
    assert _run(qtbot, tab) == "finished"
    tab.continue_check.setChecked(True)
    tab.setup.choose_architecture("lenet-article")
    qtbot.waitUntil(tab.start_button.isEnabled)
    assert _run(qtbot, tab) == "finished"
    assert tab.model.architecture["name"] == "lenet5"
    label = state.offered_models[-1][0]
    assert label.startswith("Trained here: lenet5 continued · ") and "lenet-article" not in label


def test_with_continue_model_ticked_the_diagram_shows_the_model_start_trains(qtbot, tab):
    # The diagram, layer table and counts showed the Network box's choice while Start was to
    # train the kept model: a user looking at VGG's diagram trained a LeNet-5.
    assert _run(qtbot, tab) == "finished"
    setup = tab.setup
    setup.choose_architecture("vgg")
    qtbot.waitUntil(lambda: "bn1" in " ".join(setup.architecture_view.node_names()))
    qtbot.mouseClick(tab.continue_check, Qt.MouseButton.LeftButton)
    assert tab.continue_check.isChecked()
    names = setup.architecture_view.node_names()
    assert "conv1" in names and not any(n.startswith("bn") for n in names)  # LeNet-5's
    assert setup.layer_table.item(1, 0).text().startswith("conv1")
    assert not setup.arch_combo.isEnabled()
    assert "Start trains the model kept here (lenet5)" in setup.arch_idea.text()
    assert "61,706 trainable parameters" in setup.params_label.text()
    qtbot.mouseClick(tab.continue_check, Qt.MouseButton.LeftButton)  # the Network box again
    assert setup.arch_combo.isEnabled()
    assert "bn1" in " ".join(setup.architecture_view.node_names())


def test_the_results_page_names_a_loaded_model_file_as_written(
    qtbot, make_tab, tmp_path, monkeypatch
):
    # Loading a model file named '<b>digits.npz' wrote the results page's line as 'Loaded
    # digits.npz…' in bold (the name went into the label's rich text unescaped).
    from resources import shipped_model_path

    path = tmp_path / "<b>digits.npz"
    path.write_bytes(shipped_model_path().read_bytes())
    tab = make_tab()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(tab.model_load_finished, timeout=20_000) as blocker:
        qtbot.mouseClick(tab.load_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True]
    label = tab.results.test_label
    text, form = label.text(), label.textFormat()
    rich = form == Qt.TextFormat.RichText or (
        form == Qt.TextFormat.AutoText and Qt.mightBeRichText(text)
    )
    shown = QTextDocumentFragment.fromHtml(text).toPlainText() if rich else text
    assert shown.startswith("Loaded <b>digits.npz: train it further")
