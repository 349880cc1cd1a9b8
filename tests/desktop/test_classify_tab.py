"""The Classify tab driven like a user: drops, paste, drawing, a bad file, a batch, reading."""

from __future__ import annotations

import csv
import io
import itertools

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

import resources
from desktop.app_state import AppState
from desktop.classify_tab import ClassifyTab
from desktop.main_window import MainWindow
from desktop.qt_image import array_to_qimage
from desktop.widgets.drop_area import DropArea
from desktop.widgets.network_view import NetworkView
from desktop.widgets.probability_chart import ProbabilityChart
from engine.datasets import load_dataset
from engine.imageio import save_image
from engine.preprocess import classify_images

OBJECT_NAMES = (
    "dropArea",
    "drawCanvas",
    "probabilityChart",
    "predictionLabel",
    "networkView",
    "preprocessedView",
    "batchTable",
)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", limit=8000)


@pytest.fixture(scope="module")
def model():
    """The shipped LeNet-5 (99% on MNIST), as the app uses it on its first start."""
    from engine.modelfile import load_model

    return load_model(resources.shipped_model_path())


@pytest.fixture(scope="module")
def sure_digits(mnist, model):
    """Indices of MNIST test digits the model gets right with confidence > 0.95, per class."""
    probs = classify_images(model, mnist.test_images[:600])
    right = (probs.argmax(1) == mnist.test_labels[:600]) & (probs.max(1) > 0.95)
    return {
        c: [int(i) for i in np.flatnonzero(right & (mnist.test_labels[:600] == c))]
        for c in range(10)
    }


def _paper(digit: np.ndarray) -> np.ndarray:
    """A scanned-looking digit: dark ink on white paper, enlarged 4x, with a margin."""
    return 255 - np.kron(np.pad(digit, 6), np.ones((4, 4), np.uint8))


def _png(tmp_path, mnist, index: int, name: str | None = None):
    path = tmp_path / (name or f"digit{index}.png")
    save_image(_paper(mnist.test_images[index]), path)
    return path


def _drop(target, mime: QMimeData) -> None:
    """A drag entering ``target`` then dropping ``mime`` there, as a file manager does."""
    pos = QPointF(target.rect().center())
    args = (
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    try:
        enter = QDragEnterEvent(*args)
    except TypeError:  # PySide6 < 6.12 takes a QPoint here
        enter = QDragEnterEvent(pos.toPoint(), *args[1:])
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(*args))


def _shown_class(tab: ClassifyTab) -> str:
    return tab.prediction_label.text().split()[0]


def _assert_bars(tab: ClassifyTab, expected: str) -> None:
    chart = tab.findChild(ProbabilityChart, "probabilityChart")
    probs = chart.probabilities()
    assert probs.shape == (10,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert chart.highlighted_class() == expected
    assert _shown_class(tab) == expected
    assert tab.prediction_label.text().endswith("%")


@pytest.fixture
def tab(qtbot, model):
    state = AppState()
    widget = ClassifyTab(state)
    widget.resize(1200, 760)
    widget.show()
    state.publish_model(model, "test model")
    yield widget
    # not qtbot.addWidget: that would delete the tab before this teardown could wait
    qtbot.waitUntil(lambda: not widget.background_busy(), timeout=10000)  # workers done
    widget.close()
    widget.deleteLater()


def test_key_widgets_carry_their_object_names(tab):
    for name in OBJECT_NAMES:
        assert tab.findChild(object, name) is not None, name
    assert "test model" in tab.model_label.text()


def test_drop_file_urls_on_the_drop_area(qtbot, tab, mnist, sure_digits, tmp_path):
    index = sure_digits[3][0]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(_png(tmp_path, mnist, index)))])
    with qtbot.waitSignal(tab.classified, timeout=3000):
        _drop(tab.findChild(DropArea, "dropArea"), mime)
    _assert_bars(tab, "3")
    assert tab.preprocessed_view.array().shape == (28, 28)
    assert tab.preprocessed_view.array()[0, 0] == 0 and tab.preprocessed_view.array().max() > 200
    assert len(tab.top3_label.text().split("(")) == 4  # three classes named


def _idle(window: MainWindow) -> bool:
    """No tab busy (the Train tab loads its dataset at start); closing would ask otherwise."""
    tabs = [window.tabs.widget(i) for i in range(window.tabs.count())]
    return not any(t.is_busy() for t in tabs if hasattr(t, "is_busy"))


def test_drop_raw_image_data_on_the_main_window(qtbot, settings, model, mnist, sure_digits):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.classify_tab)
    window.state.publish_model(model, "test model")
    mime = QMimeData()  # a browser's drop: image data (its URL would be remote)
    mime.setImageData(array_to_qimage(_paper(mnist.test_images[sure_digits[6][0]])))
    mime.setUrls([QUrl("https://example.org/six.png")])
    try:
        with qtbot.waitSignal(window.classify_tab.classified, timeout=3000):
            _drop(window, mime)
        _assert_bars(window.classify_tab, "6")
    finally:
        qtbot.waitUntil(lambda: not window.classify_tab.background_busy(), timeout=10000)
        qtbot.waitUntil(lambda: _idle(window), timeout=20000)


def test_drop_raw_png_bytes_on_the_drop_area(qtbot, tab, mnist, sure_digits):
    buffer = io.BytesIO()
    Image.fromarray(_paper(mnist.test_images[sure_digits[5][0]])).save(buffer, format="PNG")
    mime = QMimeData()
    mime.setData("application/octet-stream", buffer.getvalue())
    with qtbot.waitSignal(tab.classified, timeout=3000):
        _drop(tab.drop_area, mime)
    _assert_bars(tab, "5")


def test_paste_with_ctrl_v(qtbot, tab, mnist, sure_digits):
    QApplication.clipboard().setImage(array_to_qimage(_paper(mnist.test_images[sure_digits[2][0]])))
    tab.activateWindow()
    tab.setFocus()
    with qtbot.waitSignal(tab.classified, timeout=3000):
        qtbot.keyClick(tab, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    _assert_bars(tab, "2")


def _stroke(qtbot, canvas, points: list[tuple[float, float]]) -> None:
    """Drag the mouse along ``points`` given in canvas pixels (0..280)."""
    side = min(canvas.width(), canvas.height())
    ox, oy = (canvas.width() - side) / 2, (canvas.height() - side) / 2

    def at(x: float, y: float) -> QPoint:
        return QPoint(int(ox + x / 280 * side), int(oy + y / 280 * side))

    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(*points[0]))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for t in np.linspace(0, 1, 10)[1:]:
            qtbot.mouseMove(canvas, at(x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(*points[-1]))


def test_drawing_is_classified_and_the_prediction_follows_the_strokes(qtbot, tab):
    canvas = tab.findChild(object, "drawCanvas")
    undo = tab.draw_panel.undo_button
    assert not undo.isEnabled()  # nothing drawn: nothing to undo
    with qtbot.waitSignal(tab.classified, timeout=3000):
        _stroke(qtbot, canvas, [(140, 50), (140, 230)])
    assert undo.isEnabled()
    _assert_bars(tab, "1")
    assert tab.network_view.layers()[0].name == "input"
    with qtbot.waitSignal(tab.classified, timeout=3000):
        _stroke(
            qtbot,
            canvas,
            [
                (140, 50),
                (90, 80),
                (80, 140),
                (100, 225),
                (180, 225),
                (200, 140),
                (185, 70),
                (140, 50),
            ],
        )
    assert _shown_class(tab) == "0"
    undo.click()
    assert _shown_class(tab) == "1"
    tab.draw_panel.clear_button.click()
    assert tab.chart.probabilities().size == 0
    undo.click()  # the clear, then the first stroke: back to the empty canvas
    undo.click()
    assert canvas.is_empty() and not undo.isEnabled()


def test_a_failed_open_clears_the_previous_image_and_prediction(
    qtbot, tab, mnist, sure_digits, tmp_path
):
    assert tab.open_image_file(_png(tmp_path, mnist, sure_digits[4][0]))
    assert _shown_class(tab) == "4"
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    _drop(tab.drop_area, mime)
    assert tab.message_label.isVisible()
    assert "notes.png" in tab.message_label.text()
    # no stale result beside the error: neither the old picture nor its prediction
    assert tab.prediction_label.text() == "–"
    assert tab.chart.probabilities().size == 0 and not tab.preview.has_image()
    assert tab.preprocessed_view.array() is None
    assert tab.open_image_file(_png(tmp_path, mnist, sure_digits[4][0]))
    hostile = QMimeData()
    hostile.setData("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    _drop(tab.drop_area, hostile)
    assert "dropped" in tab.message_label.text()
    # a drop that is no image at all (the bytes failed to decode) leaves nothing stale either
    assert tab.prediction_label.text() == "–" and tab.chart.probabilities().size == 0


def test_a_file_named_like_markup_is_named_as_it_is(qtbot, tab, tmp_path):
    bad = tmp_path / "<b>notes.png"
    bad.write_text("this is not an image")
    tab.open_image_file(bad)
    qtbot.waitUntil(lambda: bool(tab.message_label.text()))
    assert "<b>notes.png" in tab.message_label.text()
    assert tab.message_label.textFormat() == Qt.TextFormat.PlainText  # shown, not rendered


def test_class_names_from_a_file_are_shown_as_written(qtbot, tab, model, mnist, sure_digits):
    """A model file's class names (and its file name) are text, never markup: a class named
    '<b>four' is shown with its brackets, in the model's description and the result."""
    import copy

    hostile = copy.deepcopy(model)
    hostile.classes = [f"<b>{c}" if c == "4" else f"<i>{c}" for c in model.classes]
    tab.set_model(hostile, "<u>mine.npz")
    assert "&lt;u&gt;mine.npz" in tab.model_label.text()  # rich text, the name escaped
    assert "&lt;b&gt;4" in tab.model_label.text()
    tab.show_image(mnist.test_images[sure_digits[4][0]], "four.png")
    qtbot.waitUntil(lambda: tab.prediction_label.text().startswith("<b>4"))
    assert tab.prediction_label.textFormat() == Qt.TextFormat.PlainText
    assert tab.top3_label.text().startswith("Top 3: <b>4")
    assert tab.top3_label.textFormat() == Qt.TextFormat.PlainText
    assert "\n<b>4: " in _as_shown(tab.chart.toolTip())  # the bars' tooltip, as Qt renders it


def _as_shown(tip: str) -> str:
    """The text Qt shows for tooltip ``tip`` (it takes text that looks like markup for it)."""
    from PySide6 import QtGui

    doc = QtGui.QTextDocument()
    (doc.setHtml if QtGui.Qt.mightBeRichText(tip) else doc.setPlainText)(tip)
    return doc.toPlainText()


def test_batch_drop_fills_a_sortable_table_exported_to_csv(
    qtbot, tab, mnist, sure_digits, tmp_path
):
    files = [_png(tmp_path, mnist, sure_digits[c][0], f"d{c}.png") for c in (1, 7, 9)]
    (tmp_path / "broken.png").write_bytes(b"nope")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in [*files, tmp_path / "broken.png"]])
    with qtbot.waitSignal(tab.batch_classified, timeout=5000):
        _drop(tab.drop_area, mime)
    assert "1 could not be classified" in tab.batch_status.text()
    table = tab.batch_table
    assert table.rowCount() == 4
    shown = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(4)}
    assert shown == {"d1.png": "1", "d7.png": "7", "d9.png": "9", "broken.png": "–"}
    problems = {table.item(r, 0).text(): table.item(r, 3).text() for r in range(4)}
    assert "not a readable image" in problems["broken.png"]  # the real reason, in the table
    assert problems["d7.png"] == ""
    table.horizontalHeader().sectionClicked.emit(2)  # sort by confidence
    table.sortItems(2, Qt.SortOrder.DescendingOrder)
    assert table.item(3, 0).text() == "broken.png"
    out = tmp_path / "predictions.csv"
    table.export_csv(out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["prediction"] for r in rows[:3]] != ["", "", ""]
    assert {r["file"].rsplit("/", 1)[-1]: r["prediction"] for r in rows}["d7.png"] == "7"
    assert rows[-1]["error"]
    row = tab.batch_table.displayed_files().index(str(files[1]))
    cell = tab.batch_table.visualItemRect(tab.batch_table.item(row, 0)).center()
    with qtbot.waitSignal(tab.classified, timeout=3000):  # a row opens in the network view
        qtbot.mouseClick(tab.batch_table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        qtbot.mouseDClick(tab.batch_table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    _assert_bars(tab, "7")
    assert tab.right_tabs.currentIndex() == 0


def test_folder_drop_is_a_batch(qtbot, tab, mnist, sure_digits, tmp_path):
    for c in (0, 5):
        _png(tmp_path, mnist, sure_digits[c][0], f"x{c}.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
    with qtbot.waitSignal(tab.batch_classified, timeout=5000):
        _drop(tab.drop_area, mime)
    assert tab.batch_table.rowCount() == 2


def test_a_number_is_read_with_boxes(qtbot, tab, mnist, sure_digits, tmp_path):
    digits = [mnist.test_images[sure_digits[c][0]] for c in (2, 0, 4, 8)]
    row = np.concatenate([np.pad(d, ((0, 0), (3, 3))) for d in digits], axis=1)
    path = tmp_path / "number.png"
    save_image(255 - np.kron(np.pad(row, 8), np.ones((3, 3), np.uint8)), path)
    with qtbot.waitSignal(tab.number_read, timeout=10000):
        assert tab.open_image_file(path)
    assert tab.reading.text == "2048"
    assert len(tab.preview.boxes()) == 4
    assert "2048" in tab.reading_label.text()
    assert tab.prediction_label.text().startswith("2048")
    assert tab.chart.highlighted_class() == "2"  # the first digit is shown inside the network
    with qtbot.waitSignal(tab.classified, timeout=3000) as blocker:
        qtbot.mouseClick(
            tab.preview, Qt.MouseButton.LeftButton, pos=tab.preview.box_rect(2).center().toPoint()
        )
    assert blocker.args[0].prediction == "4"
    assert tab.chart.highlighted_class() == "4"
    assert "Digit 3 of 4" in tab.top3_label.text()


def test_network_view_hover_shows_the_pooled_window(qtbot, tab, mnist, sure_digits, tmp_path):
    with qtbot.waitSignal(tab.number_read, timeout=5000):  # nothing changes under the mouse
        tab.open_image_file(_png(tmp_path, mnist, sure_digits[8][0]))
    view = tab.findChild(NetworkView, "networkView")
    qtbot.mouseMove(view, view.cell_center("pool1", 2, 5, 6))
    assert ("conv1", 2, (10, 12, 12, 14)) in view.highlights()
    assert "pool1" in view.hover_text
    qtbot.mouseMove(view, view.cell_center("conv1", 0, 9, 9))
    window = view.highlights()[0]
    assert window[0] == "input" and window[2][2] - window[2][0] == 5  # a 5x5 receptive field


def test_occlusion_map_arrives_from_a_worker(qtbot, tab, mnist, sure_digits, tmp_path):
    with qtbot.waitSignal(tab.occlusion_finished, timeout=5000) as blocker:
        tab.open_image_file(_png(tmp_path, mnist, sure_digits[7][0]))
        assert "working out this image's map" in tab.occlusion_label.text()  # not the last one's
    assert blocker.args[0].heat.shape == (28, 28)
    assert blocker.args[0].target == 7
    assert tab.occlusion_view.array().shape == (28, 28, 3)
    assert "covering the orange parts" in tab.occlusion_label.text()


def test_switching_off_centring_changes_what_the_network_sees(
    qtbot, tab, mnist, sure_digits, tmp_path
):
    tab.open_image_file(_png(tmp_path, mnist, sure_digits[1][0]))
    centred = tab.preprocessed_view.array()
    tab.center_box.setChecked(False)
    assert not np.array_equal(tab.preprocessed_view.array(), centred)
    tab.invert_box.setChecked(False)
    assert tab.preprocessed_view.array().mean() > 128  # white paper is now "ink"


def test_a_model_trained_elsewhere_is_announced(qtbot, tab, model):
    with qtbot.waitSignal(tab._state.status_posted, timeout=1000) as blocker:
        tab._state.publish_model(model, "Just trained (2 epochs)")
    assert "Just trained" in blocker.args[0]
    assert "Just trained" in tab.model_label.text()


def test_canvas_updates_are_coalesced_while_drawing(qtbot, tab):
    canvas = tab.canvas
    emitted = []
    canvas.drawing_changed.connect(emitted.append)
    points = [(60 + i * 3, 140 + (i % 7)) for i in range(50)]  # 49 segments, drawn at once
    _stroke(qtbot, canvas, points)
    assert 1 <= len(emitted) <= 5  # one per interval plus the finished stroke, not one per move
    assert emitted[-1].shape == (280, 280) and emitted[-1].max() == 255


def test_without_a_model_the_tab_says_so(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "shipped_model_path", lambda: tmp_path / "missing.npz")
    widget = ClassifyTab(AppState())
    qtbot.addWidget(widget)
    assert widget.model is None
    assert "No model loaded" in widget.model_label.text()
    assert widget.prediction_label.text() == "No model loaded"
    widget.canvas.set_pixels(np.pad(np.full((180, 20), 255, np.uint8), ((50, 50), (130, 130))))
    assert widget.preprocessed_view.array() is not None  # preprocessing still shows
    assert widget.chart.probabilities().size == 0


def test_a_dropped_model_file_is_used_and_a_picture_saved(qtbot, tab, model, tmp_path):
    from engine.modelfile import save_model

    path = tmp_path / "mine.npz"
    save_model(model, path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    with qtbot.waitSignal(tab.model_load_finished, timeout=5000) as blocker:
        _drop(tab.drop_area, mime)  # opened off the GUI thread
    assert blocker.args == [True]
    assert "mine.npz" in tab.model_label.text()
    assert tab.model_box.currentText() == "mine.npz (opened)"
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "junk.npz"))])
    with qtbot.waitSignal(tab.model_load_finished, timeout=5000) as blocker:
        _drop(tab.drop_area, mime)
    assert blocker.args == [False]
    assert "junk.npz" in tab.message_label.text()
    assert "mine.npz" in tab.model_label.text()  # the model in use is kept
    assert tab.save_picture(tmp_path / "shot.png")
    assert Image.open(tmp_path / "shot.png").size[0] == tab.width()


def test_drops_without_an_image_say_why(qtbot, tab, mnist, sure_digits, tmp_path):
    assert tab.open_image_file(_png(tmp_path, mnist, sure_digits[9][0]))
    before = tab.prediction_label.text()
    remote = QMimeData()
    remote.setUrls([QUrl("https://example.org/digit.png")])
    _drop(tab.drop_area, remote)
    assert "does not download" in tab.message_label.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    folder = QMimeData()
    folder.setUrls([QUrl.fromLocalFile(str(empty))])
    _drop(tab.drop_area, folder)
    assert "No image files" in tab.message_label.text()
    text = QMimeData()
    text.setText("seven")
    assert not tab.handle_drop(text)
    assert "not an image" in tab.message_label.text()
    assert tab.prediction_label.text() == before


def test_a_photo_gets_no_reading_boxes(qtbot, tab):
    with qtbot.waitSignal(tab.number_read, timeout=5000):
        assert tab.open_image_file(resources.resource_path("samples", "camera.png"))
    assert tab.preview.boxes() == []
    assert "Reads as" not in tab.reading_label.text()
    assert tab.chart.probabilities().sum() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("heavy", [False, True], ids=["gui-thread", "worker"])
def test_outputs_that_are_not_numbers_show_a_message_not_nan_bars(qtbot, monkeypatch, heavy):
    from engine import modelsize
    from tests.engine.test_overflowing_models import overflowing

    if heavy:  # its forward pass then runs off the GUI thread
        monkeypatch.setattr(modelsize, "HEAVY_MULTIPLY_ADDS", 0)
    widget = ClassifyTab(AppState())
    widget.show()
    widget.set_model(overflowing(), "overflow.npz")
    widget.show_image(np.zeros((8, 8, 3), np.uint8), "black.png")  # its outputs are numbers
    qtbot.waitUntil(lambda: widget.chart.probabilities().size == 4, timeout=10000)
    widget.show_image(np.full((8, 8, 3), 240, np.uint8), "bright.png")  # they overflow
    qtbot.waitUntil(lambda: "not finite numbers" in widget.message_label.text(), timeout=10000)
    text = widget.message_label.text()
    assert widget.message_label.isVisible() and "\n" not in text and "Error" not in text
    # nothing of the black image's result is left beside the message
    assert widget.prediction_label.text() == "–" and widget.chart.probabilities().size == 0
    assert widget.result is None and widget.network_view.layers() == []
    seen = widget.seen_box  # the user's image stays in sight; only the occlusion map goes
    assert seen.original_view.array() is not None and seen.original_view.array().max() == 240
    assert seen.occlusion_view.array() is None
    qtbot.waitUntil(lambda: not widget.background_busy(), timeout=10000)
    widget.close()
    widget.deleteLater()


def test_a_click_without_moving_leaves_a_dot_and_undo_removes_it(qtbot, tab):
    """A tap of the pen (press and release in one place) paints a round dot of the pen's width,
    so Undo after it removes something the user sees, not an invisible step."""
    canvas = tab.canvas
    _stroke(qtbot, canvas, [(140, 50), (140, 230)])
    stroke_only = canvas.pixels()
    with qtbot.waitSignal(canvas.drawing_changed, timeout=1000) as blocker:
        _stroke(qtbot, canvas, [(60, 140)])  # press and release, no move
    dot = blocker.args[0] > 0
    ys, xs = np.nonzero(dot & (stroke_only == 0))
    assert xs.size and abs(xs.mean() - 60) < 3 and abs(ys.mean() - 140) < 3
    assert 14 <= xs.max() - xs.min() + 1 <= 24  # the pen's 20 px across
    tab.draw_panel.undo_button.click()
    assert np.array_equal(canvas.pixels(), stroke_only)


def test_batch_table_by_keyboard_tab_leaves_it_and_enter_opens_a_row(
    qtbot, tab, mnist, sure_digits, tmp_path
):
    files = [_png(tmp_path, mnist, sure_digits[c][0], f"k{c}.png") for c in (3, 4)]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in files])
    with qtbot.waitSignal(tab.batch_classified, timeout=5000):
        _drop(tab.drop_area, mime)
    table = tab.batch_table
    tab.window().activateWindow()
    qtbot.waitUntil(tab.window().isActiveWindow)
    row = table.displayed_files().index(str(files[1]))
    table.setFocus(Qt.FocusReason.TabFocusReason)
    table.setCurrentCell(row, 0)
    with qtbot.waitSignal(tab.classified, timeout=3000):  # Enter opens it, as a double-click
        qtbot.keyClick(table, Qt.Key.Key_Return)
    _assert_bars(tab, "4")
    table.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(table, Qt.Key.Key_Tab)  # one press: out of the table, not to its next cell
    assert not table.hasFocus()


def test_a_cleared_network_view_leaves_nothing_to_scroll(qtbot, tab):
    """A result's maps made the view taller than its area; once cleared ('No activations
    yet') the scroll bar stayed, with nothing under it."""
    tab.resize(1000, 520)
    _stroke(qtbot, tab.canvas, [(140, 40), (140, 240)])
    bar = tab.network_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: tab.result is not None and bar.maximum() > 0)
    qtbot.mouseClick(tab.draw_panel.clear_button, Qt.MouseButton.LeftButton)
    assert tab.result is None and not tab.network_view.layers()
    qtbot.waitUntil(lambda: bar.maximum() == 0)
