"""The Filters tab driven through its real widgets, inside the real main window."""

from __future__ import annotations

import json
import struct
import threading
import warnings
import weakref
import zlib

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog, QMessageBox, QSpinBox

import desktop.widgets.image_view
import engine.filters.pipeline
import engine.imageio
from desktop import filter_render
from desktop import filters_tab as filters_tab_module
from desktop.cli import main as cli_main
from desktop.filter_render import Preview
from desktop.main_window import MainWindow
from desktop.qt_image import array_to_qimage
from desktop.widgets.kernel_grid import KernelGrid
from desktop.widgets.pixel_inspector import short
from engine import filters as F
from engine.atomic import atomic_write


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    win.tabs.setCurrentWidget(win.filters_tab)
    wait_idle(qtbot, win.filters_tab)
    # pytest-qt closes the window after the test, and closing asks "stop and quit?" while
    # another tab works (the Train tab loads its data at start): let it finish first
    qtbot.waitUntil(lambda: not any_tab_busy(win), timeout=30000)
    return win


def any_tab_busy(win) -> bool:
    tabs = (win.tabs.widget(i) for i in range(win.tabs.count()))
    return any(t.is_busy() for t in tabs if hasattr(t, "is_busy"))


def wait_idle(qtbot, tab) -> None:
    qtbot.waitUntil(lambda: tab.result() is not None and not tab.is_computing(), timeout=10000)


def shown(view) -> np.ndarray:
    """The RGB pixels the view really shows."""
    return view.shown_image()[:, :, :3]


def expected_picture(
    image, kernel, *, divisor=1.0, border="zero", stride=1, color="gray", display="clip"
) -> np.ndarray:
    """What the engine makes of it, computed here independently of the tab's settings."""
    src = F.to_gray(image) if color == "gray" else image
    values = F.correlate(src, np.asarray(kernel, float) / divisor, border=border, stride=stride)
    return F.display(values, display)


def test_opens_with_a_filtered_sample_and_the_named_widgets(window):
    tab = window.filters_tab
    for name, kind in [
        ("kernelGrid", KernelGrid),
        ("presetBox", QComboBox),
        ("borderBox", QComboBox),
        ("strideBox", QSpinBox),
    ]:
        assert isinstance(tab.findChild(kind, name), kind), name
    for name in ("resultView", "sourceView", "stepAnimation"):
        assert tab.findChild(object, name) is not None, name
    assert tab.image() is not None
    assert "camera.png" in tab.pages.source_caption.text()
    kernel = F.PRESETS[tab.editor.preset_box.currentText()].array()
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(tab.image(), kernel))


def test_choosing_presets_shows_the_engines_result(window, qtbot):
    tab = window.filters_tab
    for name in ("Sharpen", "Gaussian blur 3x3"):
        with qtbot.waitSignal(tab.result_shown, timeout=10000):
            tab.editor.preset_box.setCurrentText(name)
        preset = F.PRESETS[name]
        assert tab.editor.grid.kernel().tolist() == preset.array().tolist()
        assert tab.editor.divisor_spin.value() == preset.divisor
        picture = expected_picture(tab.image(), preset.array(), divisor=preset.divisor)
        assert np.array_equal(shown(tab.pages.result_view), picture)
    assert (
        "separable" in tab.editor.kernel_info.text() and "[1 2 1]" in tab.editor.kernel_info.text()
    )


def test_typing_fractions_refusing_letters_and_undo(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Identity")
    cell = tab.editor.grid.cell(0, 0)
    cell.setFocus()
    cell.selectAll()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClicks(cell, "1/2")
    assert tab.editor.grid.kernel()[0, 0] == 0.5
    assert tab.editor.preset_box.currentText() == "Custom kernel"
    kernel = F.PRESETS["Identity"].array()
    kernel[0, 0] = 0.5
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(tab.image(), kernel))

    before = shown(tab.pages.result_view)
    qtbot.keyClicks(cell, "x")  # never part of a number: refused as typed
    assert cell.text() == "1/2"
    assert tab.editor.hint.isVisible() and "Only numbers" in tab.editor.hint.text()

    other = tab.editor.grid.cell(2, 2)
    other.setFocus()
    other.selectAll()
    qtbot.keyClicks(other, "3/")  # not a number yet: red cell with the reason
    assert tab.editor.grid.kernel() is None
    assert other.property("bad") is True and "row 3, column 3" in other.toolTip()
    assert tab.editor.hint.isVisible()
    qtbot.waitUntil(lambda: not tab.is_computing())
    assert np.array_equal(shown(tab.pages.result_view), before)  # the last valid kernel stays

    qtbot.keyClick(other, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert other.text() == "0"  # the whole typing in that cell is one undo step
    assert not tab.editor.hint.isVisible()
    qtbot.keyClick(other, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert cell.text() == "0"
    qtbot.keyClick(
        other, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert cell.text() == "1/2"


def test_keyboard_moves_between_cells(window, qtbot):
    grid = window.filters_tab.editor.grid
    start = grid.cell(0, 0)
    start.setFocus()
    start.setCursorPosition(len(start.text()))
    qtbot.keyClick(start, Qt.Key.Key_Right)
    assert grid.cell(0, 1).hasFocus()
    qtbot.keyClick(grid.cell(0, 1), Qt.Key.Key_Down)
    assert grid.cell(1, 1).hasFocus()
    qtbot.keyClick(grid.cell(1, 1), Qt.Key.Key_Tab)
    assert grid.cell(1, 2).hasFocus()
    qtbot.keyClick(grid.cell(1, 2), Qt.Key.Key_Up)
    assert grid.cell(0, 2).hasFocus()


def test_a_weight_too_large_for_float32_results_is_explained_not_ignored(window, qtbot):
    tab = window.filters_tab
    before = shown(tab.pages.result_view)
    cell = tab.editor.grid.cell(1, 1)
    cell.setFocus()
    cell.selectAll()
    qtbot.keyClicks(cell, "1e35")  # a number, so the cell is not red: the kernel as a whole
    qtbot.waitUntil(lambda: not tab.is_computing())
    assert tab.editor.kernel_specs() is None
    assert tab.editor.hint.isVisible() and "too large" in tab.editor.hint.text()
    assert "too large" in window.statusBar().currentMessage()
    assert np.array_equal(shown(tab.pages.result_view), before)  # the last valid kernel stays
    cell.selectAll()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClicks(cell, "9")
    assert not tab.editor.hint.isVisible()


def test_a_cell_typed_through_a_half_number_leaves_no_stale_complaint(window, qtbot):
    tab = window.filters_tab
    cell = tab.editor.grid.cell(0, 0)
    cell.setFocus()
    cell.selectAll()
    qtbot.keyClicks(cell, "1/")
    assert "not a number" in window.statusBar().currentMessage()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClicks(cell, "9")  # 1/9: a number, the result follows
    assert not tab.editor.hint.isVisible()
    assert "not a number" not in window.statusBar().currentMessage()


@pytest.mark.parametrize(
    "text",
    ["1/16 2/16 1/16\n2/16 4/16 2/16\n1/16 2/16 1/16", "1\t2\t1\r\n2\t4\t2\r\n1\t2\t1\r\n"],
)
def test_pasting_a_kernel_into_a_cell_fills_the_grid_in_one_undo_step(window, qtbot, text):
    # rows copied from a text or a spreadsheet: the whole kernel, not one red cell of it all
    tab = window.filters_tab
    editor = tab.editor
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.size_box.setCurrentText("5×5")
    QGuiApplication.clipboard().setText(text)
    cell = editor.grid.cell(0, 0)
    cell.setFocus()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClick(cell, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert editor.grid.kernel_size() == 3 and not editor.hint.isVisible()
    assert editor.grid.texts()[:2] == text.replace("\t", " ").split()[:2]  # as typed: 1/16
    expected = F.parse_kernel(text)
    np.testing.assert_array_equal(editor.kernel_specs()[0].kernel, expected)
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(tab.image(), expected))
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.undo_button.click()
    assert editor.grid.kernel_size() == 5


def test_pasting_one_number_with_spaces_pastes_it_into_the_cell(window, qtbot):
    tab = window.filters_tab
    QGuiApplication.clipboard().setText("1 / 9")
    cell = tab.editor.grid.cell(0, 0)
    cell.setFocus()
    cell.selectAll()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClick(cell, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert cell.text() == "1 / 9" and tab.editor.grid.kernel_size() == 3
    assert tab.editor.kernel_specs()[0].kernel[0, 0] == 1 / 9


def test_pasting_text_that_is_no_kernel_says_why_and_changes_nothing(window, qtbot):
    tab = window.filters_tab
    editor = tab.editor
    before = editor.grid.texts()
    QGuiApplication.clipboard().setText("1 2\n3 4")
    cell = editor.grid.cell(0, 0)
    cell.setFocus()
    qtbot.keyClick(cell, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert editor.grid.texts() == before
    assert editor.hint.isVisible() and "2x2" in editor.hint.text()
    assert "\n" not in editor.hint.text()


def test_a_decimal_comma_is_shown_red_with_the_reason_not_read_as_another_number(window, qtbot):
    tab = window.filters_tab
    cell = tab.editor.grid.cell(0, 0)
    cell.setFocus()
    cell.selectAll()
    qtbot.keyClicks(cell, "0,5")  # a comma refused as typed left "05": a weight of 5
    assert cell.text() == "0,5" and cell.property("bad") is True
    assert tab.editor.kernel_specs() is None
    assert tab.editor.hint.isVisible() and "a point" in tab.editor.hint.text()


def test_divisor_offset_and_normalise_are_undone_and_redone_one_at_a_time(window, qtbot):
    tab = window.filters_tab
    editor = tab.editor
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.preset_box.setCurrentText("Identity")
    cell = editor.grid.cell(0, 0)
    cell.setFocus()
    cell.selectAll()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.keyClicks(cell, "2")
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.divisor_spin.setValue(4)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.offset_spin.setValue(100)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.normalize_check.setChecked(True)

    def state():
        spec = editor.kernel_specs()[0]
        return cell.text(), spec.divisor, spec.offset, spec.normalize

    assert state() == ("2", 4, 100, True)
    undone = [("2", 4, 100, False), ("2", 4, 0, False), ("2", 1, 0, False), ("0", 1, 0, False)]
    for expected in undone:
        with qtbot.waitSignal(tab.result_shown, timeout=10000):
            editor.undo_button.click()
        assert state() == expected
        assert editor.divisor_spin.value() == expected[1]
    for expected in [*reversed(undone[:-1]), ("2", 4, 100, True)]:
        with qtbot.waitSignal(tab.result_shown, timeout=10000):
            editor.redo_button.click()
        assert state() == expected
    kernel = F.PRESETS["Identity"].array()
    kernel[0, 0] = 2
    values = F.correlate(F.to_gray(tab.image()), kernel / kernel.sum(), offset=100)
    assert np.array_equal(shown(tab.pages.result_view), F.display(values, "clip"))


def test_a_kernel_files_divisor_and_offset_survive_an_edit_of_another_box(window, qtbot):
    # the boxes show 3 and 1 decimals and offsets up to 1,000: what they show must not be
    # written back over the file's values when the user only ticks Normalise
    tab = window.filters_tab
    editor = tab.editor
    spec = F.KernelSpec(F.PRESETS["Sobel x"].array(), divisor=1 / 3, offset=2500.0, name="f")
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.set_kernels([spec])
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.normalize_check.setChecked(True)  # Sobel's sum is 0: the divisor still counts
    kept = editor.kernel_specs()[0]
    assert (kept.divisor, kept.offset, kept.normalize) == (1 / 3, 2500.0, True)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        editor.offset_spin.setValue(20)
    assert editor.kernel_specs()[0].divisor == 1 / 3


def test_the_stack_buttons_are_off_where_they_would_do_nothing(window, qtbot):
    editor = window.filters_tab.editor
    add, remove = editor.add_kernel_button, editor.remove_kernel_button
    assert editor.kernel_tabs.count() == 1
    assert add.isEnabled() and not remove.isEnabled()  # the last kernel cannot go
    for _ in range(F.MAX_KERNELS - 1):
        qtbot.mouseClick(add, Qt.MouseButton.LeftButton)
    assert editor.kernel_tabs.count() == F.MAX_KERNELS
    assert not add.isEnabled() and remove.isEnabled()
    assert str(F.MAX_KERNELS) in add.toolTip()
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert add.isEnabled()
    editor.load_specs([F.PRESETS["Sharpen"].spec()])
    assert not remove.isEnabled()
    qtbot.waitUntil(lambda: not window.filters_tab.is_computing())


def test_border_stride_and_size_formula(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Emboss")
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.settings_panel.border_box.setCurrentIndex(
            tab.settings_panel.border_box.findData("valid")
        )
        tab.settings_panel.stride_box.setValue(2)
    h, w = tab.image().shape[:2]
    out_w = (w - 3) // 2 + 1
    assert tab.result().maps.shape[1:3] == ((h - 3) // 2 + 1, out_w)
    assert f"({w} − 3 + 2·0)//2 + 1 = {out_w}" in tab.settings_panel.formula.text()
    picture = expected_picture(tab.image(), F.PRESETS["Emboss"].array(), border="valid", stride=2)
    assert np.array_equal(shown(tab.pages.result_view), picture)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.settings_panel.border_box.setCurrentIndex(
            tab.settings_panel.border_box.findData("wrap")
        )
    picture = expected_picture(tab.image(), F.PRESETS["Emboss"].array(), border="wrap", stride=2)
    assert np.array_equal(shown(tab.pages.result_view), picture)


def test_relu_pooling_rgb_and_display_mapping(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
        tab.settings_panel.rgb_radio.setChecked(True)
        tab.settings_panel.relu_check.setChecked(True)
        tab.settings_panel.pool_box.setCurrentIndex(tab.settings_panel.pool_box.findData("max"))
        tab.pages.display_box.setCurrentIndex(tab.pages.display_box.findData("normalize"))
    h, w = tab.image().shape[:2]
    assert f"max pool <b>{h // 2}×{w // 2}×3</b>" in tab.settings_panel.stages_label.text()
    values = F.correlate(tab.image(), F.PRESETS["Sobel x"].array(), border="zero")
    pooled = F.pool(np.maximum(values, 0), "max", 2, 2)
    assert np.array_equal(shown(tab.pages.result_view), F.display(pooled, "normalize"))
    assert tab.pages.histogram.counts().sum() > 0


def drop_files(window, paths) -> None:
    """A real drag: enter (which the window must accept), then drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    with warnings.catch_warnings():  # PySide marks the QPoint constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(
            QPoint(300, 300),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(300, 300),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, drop)


def test_dropping_a_photo_opens_it_and_a_hostile_file_keeps_it(window, qtbot, tmp_path, rng):
    tab = window.filters_tab
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    photo = tmp_path / "mine.png"
    Image.fromarray(pixels).save(photo)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        drop_files(window, [photo])
    assert np.array_equal(tab.image(), pixels)
    assert "mine.png" in tab.pages.source_caption.text()
    assert window.recent_files()[0] == str(photo.resolve())
    kernel = F.PRESETS[tab.editor.preset_box.currentText()].array()
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(pixels, kernel))

    fake = tmp_path / "notes.png"
    fake.write_text("not a picture at all")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"  # a header of 10000x6000: refused before decoding
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 10000, 6000, 8, 0, 0, 0, 0)
    huge.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + ihdr
        + struct.pack(">I", zlib.crc32(ihdr))
        + b"\0\0\0\0IEND\xaeB`\x82"
    )
    for bad in (fake, empty, huge):
        drop_files(window, [bad])
        qtbot.waitUntil(lambda b=bad: b.name in tab.banner.text())  # a big one: off the thread
        assert tab.banner.isVisible()
        assert "; still showing mine.png" in tab.banner.text() and ".;" not in tab.banner.text()
        assert bad.name in window.statusBar().currentMessage()
        assert np.array_equal(tab.image(), pixels)  # the previous image stays
    assert not tab.is_computing()
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(pixels, kernel))


def test_step_through_figure5(window, qtbot):
    anim = window.filters_tab.pages.animation
    window.filters_tab.pages.setCurrentWidget(anim)
    anim.show_figure5()
    for _ in range(3):
        qtbot.mouseClick(anim.step_button, Qt.MouseButton.LeftButton)
    assert anim.position() == 3
    assert "= <b>4</b>" in anim.explain.text()  # the third cell of the article's output
    qtbot.mouseClick(anim.back_button, Qt.MouseButton.LeftButton)
    assert anim.position() == 2 and "= <b>3</b>" in anim.explain.text()
    anim.speed.setValue(anim.speed.maximum())
    qtbot.mouseClick(anim.play_button, Qt.MouseButton.LeftButton)
    assert anim.is_playing()
    qtbot.waitUntil(lambda: anim.position() == 9, timeout=5000)
    qtbot.waitUntil(lambda: not anim.is_playing(), timeout=2000)
    assert anim.steps().output.tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    anim.source_box.setCurrentIndex(1)  # a crop of the photo with the user's kernel
    assert anim.steps() is not None and anim.steps().matrix.shape[0] >= 8
    qtbot.mouseClick(anim.step_button, Qt.MouseButton.LeftButton)
    assert anim.position() == 1


def test_learned_filter_request_stacks_save_and_copy(window, qtbot, tmp_path, rng):
    tab = window.filters_tab
    learned = rng.normal(size=(5, 5)).round(3)
    with qtbot.waitSignals([tab.activation_requested, tab.result_shown], timeout=10000):
        window.state.kernel_requested.emit(learned, "conv1 filter 3")
    assert tab.editor.grid.kernel_size() == 5
    np.testing.assert_allclose(tab.editor.grid.kernel(), learned)
    assert tab.display_mode() == "diverging"
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.mouseClick(tab.editor.add_kernel_button, Qt.MouseButton.LeftButton)
    assert tab.result().maps.shape[0] == 2
    assert tab.pages.tabText(1) == "Feature maps (2)"
    h, w = tab.image().shape[:2]  # the stack's shape said "2×H×W×1 (H×W×C)": not H×W×C
    assert f"conv <b>2</b> maps of <b>{h}×{w}×1</b>" in tab.settings_panel.stages_label.text()
    raw = tmp_path / "maps.npy"
    with qtbot.waitSignal(tab.result_saved, timeout=10000):
        assert tab.save_result_to(raw)
    assert np.load(raw).shape == (2, h, w)
    np.testing.assert_allclose(
        np.load(raw)[0], F.correlate(F.to_gray(tab.image()), learned), atol=1e-3
    )
    png = tmp_path / "maps.png"
    with qtbot.waitSignal(tab.result_saved, timeout=10000):
        assert tab.save_result_to(png)
    assert Image.open(png).size[0] > w  # the two maps side by side
    tab.copy_result()
    assert not QGuiApplication.clipboard().image().isNull()


def test_saving_the_result_is_written_off_the_gui_thread(window, qtbot, tmp_path, monkeypatch):
    # a 24 MP result's PNG takes 10-30 s to compress: the window must not freeze meanwhile
    tab = window.filters_tab
    threads = []

    def recording(path, write):
        threads.append(threading.get_ident())
        return atomic_write(path, write)

    monkeypatch.setattr(engine.imageio, "atomic_write", recording)
    monkeypatch.setattr(engine.filters.pipeline, "atomic_write", recording)
    for name in ("result.png", "result.npy"):
        with qtbot.waitSignal(tab.result_saved, timeout=10000) as saved:
            assert tab.save_result_to(tmp_path / name)
        assert saved.args == [str(tmp_path / name)] and (tmp_path / name).is_file()
        assert f"Saved {tmp_path / name}" in window.statusBar().currentMessage()
    assert len(threads) == 2 and threading.get_ident() not in threads
    with qtbot.waitSignal(tab.result_saved, timeout=10000):
        assert tab.save_result_to(tmp_path / "first.png")
        assert not tab.save_result_to(tmp_path / "second.png")  # one file at a time
        assert "Still saving first.png" in window.statusBar().currentMessage()

    with qtbot.waitSignal(tab.save_failed, timeout=10000):
        assert tab.save_result_to(tmp_path / "missing" / "result.png")
    assert tab.banner.isVisible() and "Could not save result.png" in tab.banner.text()
    with qtbot.waitSignal(tab.result_saved, timeout=10000):
        assert tab.save_result_to(tmp_path / "result.png")  # saved after all: no red left
    assert not tab.banner.isVisible()


def test_saving_while_a_new_result_is_computed_never_writes_the_old_one(window, qtbot, tmp_path):
    # a big photo shows the new kernel's preview for seconds while the old result is kept
    tab = window.filters_tab
    tab.editor.preset_box.setCurrentText("Box blur")  # computing from here on
    path = tmp_path / "blurred.png"
    assert not tab.save_result_to(path)
    assert "not computed in full yet" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not tab.is_computing())
    with qtbot.waitSignal(tab.result_saved, timeout=10000):
        assert tab.save_result_to(path)
    box = F.PRESETS["Box blur"].spec()
    picture = expected_picture(tab.image(), box.kernel, divisor=box.divisor)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), picture)


@pytest.mark.parametrize(
    ("typed", "kind", "written"),
    [
        ("edges", "PNG picture (*.png)", "edges.png"),
        ("edges", "Float values, NumPy (*.npy)", "edges.npy"),
        ("edges.jpg", "PNG picture (*.png)", "edges.jpg"),
    ],
)
def test_a_name_typed_without_a_suffix_gets_the_chosen_kinds(
    window, qtbot, tmp_path, monkeypatch, typed, kind, written
):
    tab = window.filters_tab
    answer = (str(tmp_path / typed), kind)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: answer)
    with qtbot.waitSignal(tab.result_saved, timeout=10000) as saved:
        tab.save_result()
    assert saved.args == [str(tmp_path / written)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]

    # the dialog asked about replacing what was typed, not the file the suffix names: ask here
    asked = []

    def keep(_parent, title, text, *_args):
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", keep)
    before = (tmp_path / written).read_bytes()
    if typed == written:
        with qtbot.waitSignal(tab.result_saved, timeout=10000):
            tab.save_result()  # the dialog itself asked
        assert asked == []
    else:
        tab.save_result()
        assert len(asked) == 1 and written in asked[0]
        assert (tmp_path / written).read_bytes() == before
        assert "Not saved" in window.statusBar().currentMessage()


def test_hover_inspects_a_pixel_and_views_zoom_together(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sharpen")
    view = tab.pages.result_view
    centre = view.viewport().rect().center()
    with qtbot.waitSignal(view.pixel_hovered, timeout=3000) as blocker:
        qtbot.mouseMove(view.viewport(), centre)
    row, col = blocker.args
    ins = tab.pages.inspector.inspection()
    assert ins is not None
    assert ins.value == pytest.approx(float(tab.result().maps[0][row, col, 0]), abs=1e-3)
    assert ins.total == pytest.approx(float((ins.patch * F.PRESETS["Sharpen"].array()).sum()))
    assert f"x {col}, y {row}" in tab.pages.hover_label.text()
    tab.pages.source_view.set_zoom(3.0)
    tab.pages.source_view.horizontalScrollBar().setValue(120)
    assert view.zoom() == pytest.approx(3.0)
    assert view.horizontalScrollBar().value() == 120


def test_settings_that_cannot_work_say_why_until_fixed(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        qtbot.mouseClick(tab.editor.add_kernel_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.size_box.setCurrentIndex(
            F.KERNEL_SIZES.index(5)
        )  # the second kernel becomes 5x5
    assert tab.editor.grid.kernel_size() == 5
    tab.settings_panel.border_box.setCurrentIndex(tab.settings_panel.border_box.findData("valid"))
    qtbot.waitUntil(lambda: tab.banner.isVisible())
    assert "different sizes" in tab.banner.text()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.settings_panel.border_box.setCurrentIndex(
            tab.settings_panel.border_box.findData("symmetric")
        )
    assert not tab.banner.isVisible()
    assert tab.result().maps.shape[0] == 2


def test_kernel_files_load_into_the_stack_and_bad_ones_are_explained(window, qtbot, tmp_path):
    tab = window.filters_tab
    specs = [F.PRESETS["Sobel x"].spec(), F.KernelSpec(np.ones((5, 5)), normalize=True)]
    path = F.save_kernels(tmp_path / "pair.json", specs)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        assert tab.load_kernel_file(path)
    assert tab.editor.kernel_tabs.count() == 2
    assert tab.editor.grid.kernel().tolist() == specs[0].kernel.tolist()
    tab.editor.kernel_tabs.setCurrentIndex(1)
    assert tab.editor.grid.kernel_size() == 5 and tab.editor.normalize_check.isChecked()
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert not tab.load_kernel_file(bad)
    assert tab.banner.isVisible() and "bad.json" in tab.banner.text()
    assert tab.editor.kernel_tabs.count() == 2  # the stack is kept


def test_a_kernel_files_weights_are_kept_exactly_as_convolve_uses_them(
    window, qtbot, tmp_path, capsys
):
    # shown to 4 decimals they were used so: 0.123456 became 0.1235 and 0.000031 became 0
    tab = window.filters_tab
    kernel = [[0.123456, 0.000031, -0.25], [0.5, 1.0000123, 0.5], [-0.25, 3.1e-5, 0.123456]]
    path = tmp_path / "precise.json"
    path.write_text(json.dumps({"kernel": kernel}))
    photo = tmp_path / "photo.png"
    Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(photo)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.open_image_file(photo)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        assert tab.load_kernel_file(path)
    assert tab.editor.kernel_specs()[0].kernel.tolist() == kernel
    assert tab.editor.grid.cell(1, 1).text() == "1.0000123"
    assert tab.editor.grid.cell(1, 1).cursorPosition() == 0  # a long one shows its start
    raw = tmp_path / "cli.npy"
    assert cli_main(["convolve", str(photo), "--kernel-file", str(path), "--raw", str(raw)]) == 0
    capsys.readouterr()
    assert np.array_equal(tab.result().raw(), np.load(raw))
    again = tmp_path / "again.json"
    assert tab.editor.save_kernel_file(again)  # saved back: nothing lost either
    assert F.load_kernels(again)[0].kernel.tolist() == kernel


def test_a_dropped_kernel_file_loads_into_the_editor(window, qtbot, tmp_path):
    # saved with Save... beside the kernels, dropped back: not 'not a readable image'
    tab = window.filters_tab
    image = tab.image()
    path = F.save_kernels(tmp_path / "mine.json", [F.PRESETS["Emboss"].spec()])
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        drop_files(window, [path])
    assert tab.editor.grid.kernel().tolist() == F.PRESETS["Emboss"].array().tolist()
    assert not tab.banner.isVisible() and tab.image() is image


def test_odd_but_valid_images_open(window, qtbot, tmp_path, rng):
    tab = window.filters_tab
    deep = tmp_path / "deep.png"
    Image.fromarray(rng.integers(0, 65536, (20, 30), dtype=np.uint16)).save(deep)
    cmyk = tmp_path / "print.jpg"
    Image.fromarray(rng.integers(0, 256, (24, 16, 3), dtype=np.uint8)).convert("CMYK").save(cmyk)
    for path, shape in ((deep, (20, 30, 3)), (cmyk, (24, 16, 3))):
        with qtbot.waitSignal(tab.result_shown, timeout=10000):
            assert window.open_path(path)
        assert tab.image().shape == shape and tab.image().dtype == np.uint8
        assert shown(tab.pages.result_view).shape[:2] == shape[:2]
        assert not tab.banner.isVisible()


def test_big_photos_show_an_exact_subsampled_preview_first(window, qtbot):
    tab = window.filters_tab
    tab.PREVIEW_PIXELS = 1000  # the sample counts as big here
    with qtbot.waitSignals([tab.preview_shown, tab.result_shown], order="strict", timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel y")
    full = expected_picture(tab.image(), F.PRESETS["Sobel y"].array())
    assert np.array_equal(shown(tab.pages.result_view), full)
    preview = []
    tab.preview_shown.connect(lambda: preview.append(shown(tab.pages.result_view)))
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    assert preview, "no preview before the full result"
    full = expected_picture(tab.image(), F.PRESETS["Sobel x"].array())
    assert np.array_equal(preview[0], full[::2, ::2])


def test_a_big_photos_shown_result_is_let_go_before_the_next_one_is_computed(
    window, qtbot, monkeypatch
):
    # 3 RGB kernels on a 24 MP photo took the window to 3.1 GB: the previous result's maps
    # and pictures were kept while the next was computed beside them, though the new
    # preview had taken their place on screen
    tab = window.filters_tab
    monkeypatch.setattr(tab, "PREVIEW_PIXELS", 100)  # the 512x512 sample gets a preview first
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel y")
    kept = weakref.ref(tab.result().maps)
    alive = []
    tab.preview_shown.connect(lambda: alive.append(kept() is not None))
    with qtbot.waitSignals([tab.preview_shown, tab.result_shown], order="strict", timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    assert alive == [False]
    full = expected_picture(tab.image(), F.PRESETS["Sobel x"].array())
    assert np.array_equal(shown(tab.pages.result_view), full)
    assert np.array_equal(tab.pages.maps_view.shown_image()[:, :, :3], full)


@pytest.mark.parametrize("kernels", [1, 3])
def test_a_new_result_reaches_the_views_without_converting_pictures_on_the_gui_thread(
    window, qtbot, monkeypatch, tmp_path, rng, kernels
):
    # a 24 MP photo's pictures take 100-300 ms each to become QImages: the worker makes them
    tab = window.filters_tab
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (520, 600, 3), dtype=np.uint8)).save(photo)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.open_image_file(photo)
    on_gui_thread = []

    def recording(array):
        if threading.get_ident() == threading.main_thread().ident:
            on_gui_thread.append(array.shape[:2])
        return array_to_qimage(array)

    monkeypatch.setattr(desktop.widgets.image_view, "array_to_qimage", recording)
    specs = [F.PRESETS[name].spec() for name in ("Sharpen", "Sobel x", "Emboss")[:kernels]]
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.set_kernels(specs)
    assert tab.pages.tabText(1) == f"Feature maps ({kernels})"
    shown = tab.pages.maps_view.image_size()
    assert shown[0] >= 520 and shown not in on_gui_thread
    assert all(h * w < 520 * 600 for h, w in on_gui_thread)  # small ones only (Figure 8's)


def test_the_hover_line_follows_a_new_result_as_the_inspector_does(window, qtbot):
    # it kept "Result x 100, y 100: -2" above an inspector saying "sum = 212.2"
    tab = window.filters_tab
    tab.pages.result_hovered.emit(100, 100)
    assert tab.pages.inspector.result_lines() == ["sum = -2"]
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Box blur")
    value = short(float(tab.result().maps[0, 100, 100, 0]))
    assert tab.pages.inspector.result_lines() == [f"sum = {value}"]
    assert tab.pages.hover_label.text() == f"Result x 100, y 100: {value}"
    with qtbot.waitSignal(tab.result_shown, timeout=10000):  # the pixel is no more
        tab.set_filter_settings({"pool": "max", "pool_size": 8, "pool_stride": 8})
    assert tab.pages.hover_label.text() == "" and tab.pages.inspector.inspection() is None


def test_a_new_image_starts_with_nothing_inspected(window, qtbot, tmp_path, rng):
    # the pixel hovered on the previous photo was explained on the new one, never hovered
    tab = window.filters_tab
    tab.pages.result_hovered.emit(100, 100)
    assert tab.pages.inspector.inspection() is not None
    photo = tmp_path / "next.png"
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(photo)
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.open_image_file(photo)
    assert tab.pages.inspector.inspection() is None
    assert tab.pages.hover_label.text() == ""


def test_hovering_a_quick_preview_never_explains_the_previous_kernels_result(
    window, qtbot, monkeypatch
):
    # a big photo: the new kernel's preview (every 2nd pixel) is on screen for seconds while
    # the previous result is kept; its numbers, at another pixel, must not be offered
    tab = window.filters_tab
    monkeypatch.setattr(tab, "PREVIEW_PIXELS", 100)  # the 512x512 sample gets a preview first
    render = filters_tab_module.render

    def preview_only(request, cancel):  # the full result still being computed
        yield from (e for e in render(request, cancel) if isinstance(e, Preview))

    monkeypatch.setattr(filters_tab_module, "render", preview_only)
    with qtbot.waitSignal(tab.preview_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Box blur")
    qtbot.waitUntil(lambda: not tab.is_computing())
    tab.pages.result_hovered.emit(100, 120)  # a pixel of the preview
    assert not tab.pages.hover_label.text().startswith("Result x")
    assert "full result" in tab.pages.hover_label.text()
    assert tab.pages.inspector.inspection() is None

    # the preview that stays (the full result would not fit): no promise of numbers
    monkeypatch.setattr(filter_render, "MAX_RESULT_BYTES", 1_000)
    with qtbot.waitSignal(tab.preview_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sharpen")
    qtbot.waitUntil(lambda: not tab.is_computing())
    tab.pages.result_hovered.emit(100, 120)
    assert "would not fit in memory" in tab.pages.hover_label.text()


def test_saving_a_big_photos_result_while_only_its_preview_is_shown_says_why_not(
    window, qtbot, monkeypatch, tmp_path
):
    # a big photo's shown result is let go when newer settings come: a save then said
    # nothing at all (or "Nothing to save yet" from the button) while the preview was shown
    tab = window.filters_tab
    monkeypatch.setattr(tab, "PREVIEW_PIXELS", 100)  # the 512x512 sample gets a preview first
    render = filters_tab_module.render

    computed = threading.Event()

    def preview_first(request, cancel):  # the full result still being computed
        yield from (e for e in render(request, cancel) if isinstance(e, Preview))
        computed.wait(10)

    monkeypatch.setattr(filters_tab_module, "render", preview_first)
    with qtbot.waitSignal(tab.preview_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Box blur")
    assert not tab.save_result_to(tmp_path / "blurred.png")
    assert "not computed in full yet" in window.statusBar().currentMessage()
    computed.set()
    qtbot.waitUntil(lambda: not tab.is_computing())
    monkeypatch.setattr(filters_tab_module, "render", render)
    monkeypatch.setattr(filter_render, "MAX_RESULT_BYTES", 1_000)  # it would not fit
    with qtbot.waitSignal(tab.preview_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sharpen")
    qtbot.waitUntil(lambda: not tab.is_computing())
    assert not tab.save_result_to(tmp_path / "sharpened.png")
    assert "Only a preview is shown" in window.statusBar().currentMessage()
    assert not list(tmp_path.iterdir())


def test_a_large_file_is_decoded_off_the_gui_thread(window, qtbot, tmp_path, rng, monkeypatch):
    tab = window.filters_tab
    monkeypatch.setattr(tab, "BACKGROUND_LOAD_BYTES", 1000)  # any real photo counts as large
    pixels = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    photo = tmp_path / "large.png"
    Image.fromarray(pixels).save(photo)
    assert photo.stat().st_size > 1000
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        assert tab.open_image_file(photo)
        assert tab.is_loading()  # accepted at once, decoded in the background
    assert np.array_equal(tab.image(), pixels)
    kernel = F.PRESETS[tab.editor.preset_box.currentText()].array()
    assert np.array_equal(shown(tab.pages.result_view), expected_picture(pixels, kernel))

    broken = tmp_path / "broken.png"
    broken.write_bytes(photo.read_bytes()[:1500])  # truncated, still "large"
    assert tab.open_image_file(broken)
    qtbot.waitUntil(lambda: not tab.is_loading(), timeout=10000)
    assert tab.banner.isVisible() and "broken.png" in tab.banner.text()
    assert np.array_equal(tab.image(), pixels)  # the previous image stays


def test_ten_rapid_opens_show_the_newest_image(window, qtbot, tmp_path, rng, monkeypatch):
    tab = window.filters_tab
    paths = []
    for i in range(10):
        path = tmp_path / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (60 + i, 80, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    # the first nine count as large (decoded in the background); the last is small, opened at once
    monkeypatch.setattr(tab, "BACKGROUND_LOAD_BYTES", paths[-1].stat().st_size)
    for path in paths[:9]:
        tab.open_image_file(path)
    newest = paths[-1]
    newest.write_bytes(b"")  # replaced by a tiny valid image below
    Image.fromarray(np.full((20, 30, 3), 7, np.uint8)).save(newest)
    assert tab.open_image_file(newest)
    qtbot.waitUntil(lambda: not tab.is_loading(), timeout=20000)
    wait_idle(qtbot, tab)
    assert tab.image().shape == (20, 30, 3)  # not one of the slower, earlier opens
    assert "photo9.png" in tab.pages.source_caption.text()


def test_an_image_of_many_pixels_in_a_small_file_is_decoded_off_the_gui_thread(
    window, qtbot, tmp_path
):
    tab = window.filters_tab
    path = tmp_path / "wide.png"
    Image.new("L", (2000, 1100), 128).save(path)  # 2.2 MP in a few KB
    assert path.stat().st_size < tab.BACKGROUND_LOAD_BYTES
    with qtbot.waitSignal(tab.result_shown, timeout=20000):
        assert tab.open_image_file(path)
        assert tab.is_loading()
    assert tab.image().shape == (1100, 2000, 3)


@pytest.mark.parametrize(("size", "loads"), [(1, True), (51, False), (101, False)])
def test_kernel_files_of_any_size_are_loaded_or_explained(window, qtbot, tmp_path, size, loads):
    tab = window.filters_tab
    path = tmp_path / f"k{size}.json"
    path.write_text(json.dumps({"kernel": (np.ones((size, size)) * 2).tolist()}))
    if loads:
        with qtbot.waitSignal(tab.result_shown, timeout=10000):
            assert tab.load_kernel_file(path)
        assert tab.editor.grid.kernel_size() == 1
        assert tab.editor.size_box.currentText() == "1×1"
        expected = np.clip(2 * F.to_gray(tab.image()).astype(float) + 0.5, 0, 255).astype(np.uint8)
        assert np.array_equal(shown(tab.pages.result_view)[:, :, 0], expected)
    else:
        assert not tab.load_kernel_file(path)
        assert tab.banner.isVisible() and "odd side from 1 to 7" in tab.banner.text()


def test_saving_kernels_where_it_cannot_be_written_says_so(window, tmp_path):
    tab = window.filters_tab
    target = tmp_path / "no such folder" / "kernels.json"
    assert not tab.editor.save_kernel_file(target)
    assert tab.banner.isVisible() and str(target) in tab.banner.text()
    assert ".tmp" not in tab.banner.text()
    good = tmp_path / "kernels.json"
    assert tab.editor.save_kernel_file(good)
    assert F.load_kernels(good)[0].name == "Edge detection 3"


def test_a_result_too_big_for_memory_shows_a_preview_and_says_why(
    window, qtbot, tmp_path, monkeypatch
):
    from engine.filters import memory

    tab = window.filters_tab
    monkeypatch.setattr(memory, "available_memory", lambda: 40_000_000)  # 40 MB
    path = tmp_path / "big.png"
    Image.new("L", (1500, 1000), 90).save(path)
    for _ in range(3):
        tab.editor.add_kernel()
    with qtbot.waitSignal(tab.preview_shown, timeout=20000):
        tab.open_image_file(path)
    qtbot.waitUntil(lambda: not tab.is_computing() and not tab.is_loading(), timeout=20000)
    assert tab.result() is None  # the full result was never made
    assert tab.banner.isVisible() and "would need about" in tab.banner.text()
    assert "MB" in tab.banner.text()
    assert tab.pages.source_view.image_size() == (1000, 1500)


@pytest.mark.parametrize("kernels", [1, 3])
def test_a_shown_result_keeps_each_picture_once(window, qtbot, monkeypatch, kernels):
    # the tab kept every picture of a stack three times after showing it (the pictures, the
    # mosaic made of them, the worker's QImages the views had already copied): 0.5 GB more
    # for 3 RGB kernels on a 24 MP photo
    tab = window.filters_tab
    made = []
    render = filters_tab_module.render

    def recorded(request, cancel):
        for event in render(request, cancel):
            if isinstance(event, filter_render.Rendered):
                made.extend(
                    weakref.ref(q) for q in (event.qimage, event.maps_qimage) if q is not None
                )
            yield event

    monkeypatch.setattr(filters_tab_module, "render", recorded)
    names = ("Sobel x", "Sobel y", "Sharpen")[:kernels]
    specs = [F.PRESETS[name].spec() for name in names]
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.set_filter_settings({"color": "rgb"})
        tab.set_kernels(specs)
    assert made and all(ref() is None for ref in made)
    rendered = tab._rendered
    if kernels > 1:
        assert all(np.shares_memory(p, rendered.mosaic) for p in rendered.pictures)
    pictures = [expected_picture(tab.image(), F.PRESETS[n].array(), color="rgb") for n in names]
    for picture, expected in zip(rendered.pictures, pictures, strict=True):
        assert np.array_equal(picture, expected)
    maps = shown(tab.pages.maps_view)
    assert np.array_equal(maps, pictures[0] if kernels == 1 else F.tile_maps(pictures))
