"""Figures 5-6, 8 and 10 in the Filters tab, driven through the real widgets: the article's
examples from the File menu, the ReLU figure with the hovered value on its curve, the
step-through continuing through ReLU and pooling (buttons and keys), NxN pooling windows on
hover, and the set-ups a guided tour calls."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction

from desktop.widgets.pixel_inspector import short
from engine import filters as F


@pytest.fixture
def window(filters_window):
    return filters_window


def hover(qtbot, view, row, col, *, scale=1.0, offset=0.0, zoom=None):
    """Move the mouse onto image pixel (row, col) of ``view`` (placed at ``offset + index *
    scale`` in the scene), zoomed in so the pixel is big (~40 screen pixels: offscreen, the
    synthesised move lands a few pixels off the point asked for); returns the hovered pixel."""
    centre = QPointF(offset + (col + 0.5) * scale, offset + (row + 0.5) * scale)
    if zoom is not None:
        view.set_zoom(zoom)
        view.centerOn(centre)
    spot = view.mapFromScene(centre)
    # first a move nearby, inside the same (zoomed) pixel: a move to where the cursor already
    # is sends no event, and the first move's signal may still arrive while we wait
    qtbot.mouseMove(view.viewport(), spot + QPoint(2, 2))
    with qtbot.waitSignal(view.pixel_hovered, timeout=3000) as blocker:
        qtbot.mouseMove(view.viewport(), spot)
    return tuple(blocker.args)


def open_from_menu(window, qtbot, key):
    action = window.findChild(QAction, f"open_{key}")
    assert action is not None and action.text() == F.FIGURE_SAMPLES[key].label
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        action.trigger()  # what clicking File > Open sample image > Figure ... does
    qtbot.waitUntil(lambda: not tab.is_computing(), timeout=10000)
    return tab


def test_figure10_from_the_file_menu_pools_and_shows_the_window_on_hover(window, qtbot):
    window.tabs.setCurrentWidget(window.train_tab)  # opening it brings the Filters tab
    tab = open_from_menu(window, qtbot, "figure10")
    assert window.tabs.currentWidget() is tab and tab.figure().key == "figure10"
    assert np.array_equal(tab.result().maps[0, :, :, 0], [[6, 8], [3, 4]])
    panel = tab.settings_panel
    assert panel.pool_box.currentData() == "max" and panel.pool_size.value() == 2
    assert tab.editor.current_size() == 1 and "Figure 10" in tab.pages.source_caption.text()
    # fitted: every cell carries its number, in the input (16) and the pooled result (4)
    tab.pages.source_view.grab()
    tab.pages.result_view.grab()
    assert tab.pages.source_view.labelled_cells() == 16
    assert tab.pages.result_view.labelled_cells() == 4
    assert "Figure 10" in window.statusBar().currentMessage()
    scale, offset = tab.settings().placement()
    assert hover(qtbot, tab.pages.result_view, 0, 1, scale=scale, offset=offset) == (0, 1)
    pool = tab.pages.inspector.pool()
    assert np.array_equal(pool.window.values, [[2, 4], [7, 8]]) and pool.window.winner == (1, 1)
    assert tab.pages.inspector.pool_lines() == ["max of the 2×2 window", "= 8"]
    assert tab.pages.hover_label.text() == "Result x 1, y 0: 8"
    hover(qtbot, tab.pages.result_view, 1, 0, scale=scale, offset=offset)
    assert tab.pages.inspector.pool().window.winner == (0, 0)  # the 3 of [[3, 2], [1, 2]]
    assert tab.pages.inspector.pool_lines()[-1] == "= 3"


def test_figures_5_6_from_the_file_menu_and_a_photo_afterwards(window, qtbot):
    tab = open_from_menu(window, qtbot, "figure5")
    assert np.array_equal(tab.result().maps[0, :, :, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert np.array_equal(tab.editor.kernel_specs()[0].kernel, F.FIGURE5_KERNEL)
    assert tab.settings_panel.border_box.currentData() == "valid"
    # the 0s and 1s are told apart on screen (as 0..255 pixels both would be black)
    shown = tab.pages.source_view.shown_image()[:, :, 0]
    assert shown[0, 0] > shown[0, 4] and np.array_equal(tab.image(), F.FIGURE5_IMAGE)
    scale, offset = tab.settings().placement()
    hover(qtbot, tab.pages.result_view, 0, 1, scale=scale, offset=offset)
    assert tab.pages.inspector.result_lines() == ["sum = 3"]
    assert np.array_equal(tab.pages.inspector.inspection().patch, F.FIGURE5_IMAGE[0:3, 1:4])
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        window.findChild(QAction, "open_figure10").trigger()
    assert tab.figure().key == "figure10"


def test_relu_page_marks_the_hovered_value_on_the_curve(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    view = tab.pages.relu_view
    tab.pages.setCurrentWidget(view)
    fig = view.figure()
    conv = F.run_filter(tab.image(), F.FilterSettings((F.PRESETS["Sobel x"].spec(),)))
    np.testing.assert_allclose(fig.before, conv.maps[0, :, :, 0], atol=1e-3)
    negatives = int(np.count_nonzero(conv.maps < 0))
    assert f"{negatives:,} of {conv.maps.size:,} values" in view.summary.text()
    r, c = (int(v) + 5 for v in np.argwhere(fig.before[5:-5, 5:-5] < -0.3 * fig.limit)[0])
    assert hover(qtbot, view.before_view, r, c, zoom=40.0) == (r, c)
    x = float(fig.before[r, c])
    assert view.curve.point() == (pytest.approx(x), 0.0)
    assert f"{short(x)} → ReLU → 0 (negative → 0)" in view.hover_label.text()
    # the same pixel in the rectified map is the colour of 0; before, it was blue
    zero = F.display(np.zeros((1, 1)), "diverging", value_range=(-1, 1))[0, 0]
    assert np.array_equal(view.after_view.shown_image()[r, c, :3], zero)
    before_px = view.before_view.shown_image()[r, c, :3].astype(int)
    assert before_px[2] > before_px[0] + 30
    pr, pc = (int(v) + 5 for v in np.argwhere(fig.before[5:-5, 5:-5] > 0.3 * fig.limit)[0])
    hover(qtbot, view.after_view, pr, pc, zoom=40.0)
    px = float(fig.before[pr, pc])
    assert view.curve.point() == (pytest.approx(px), pytest.approx(px))
    assert "(kept)" in view.hover_label.text()
    assert not view.curve.grab().isNull()


def set_relu_and_pool(tab, qtbot, relu, pool, size=2, stride=2):
    panel = tab.settings_panel
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        panel.relu_check.setChecked(relu)
        panel.pool_box.setCurrentIndex(panel.pool_box.findData(pool))
        panel.pool_size.setValue(size)
        panel.pool_stride.setValue(stride)
    qtbot.waitUntil(lambda: not tab.is_computing(), timeout=10000)


def test_step_through_goes_on_through_relu_and_pooling_with_buttons_and_keys(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    set_relu_and_pool(tab, qtbot, True, "max")
    anim = tab.pages.animation
    tab.pages.setCurrentWidget(anim)
    anim.source_box.setCurrentIndex(1)  # a crop of the photo with the user's kernel
    seq = anim.sequence()
    assert seq.stages() == ["conv", "relu", "pool"] and seq.total == 64 + 64 + 16
    assert "then ReLU and max pooling: 144 steps" in anim.explain.text()
    qtbot.mouseClick(anim.stage_buttons["relu"], Qt.MouseButton.LeftButton)
    assert anim.position() == 65 and anim.board.stage() == "relu"
    assert anim.stage_buttons["relu"].isChecked()
    first = seq.relu[0]
    assert (
        f"ReLU on row 1, column 1: max(0, {short(first.before)}) = <b>{short(first.after)}</b>"
        in anim.explain.text()
    )
    # keys: → steps, ← steps back, End and Home jump
    anim.board.setFocus()
    for _ in range(3):
        qtbot.keyClick(anim.board, Qt.Key.Key_Right)
    assert anim.position() == 68
    step = seq.relu[3]
    verdict = "negative, so it becomes 0" if step.zeroed else "not negative, so it stays"
    assert verdict in anim.explain.text()
    qtbot.keyClick(anim.board, Qt.Key.Key_Left)
    assert anim.position() == 67
    zeroed = [s for s in seq.relu if s.zeroed]
    assert zeroed, "the Sobel crop has negative cells for ReLU to zero"
    qtbot.mouseClick(anim.stage_buttons["pool"], Qt.MouseButton.LeftButton)
    assert anim.board.stage() == "pool" and anim.position() == 129
    w = seq.pool[0]
    assert "max of the 2×2 window at rows 1–2, columns 1–2" in anim.explain.text()
    assert f"= <b>{short(w.result)}</b>" in anim.explain.text()
    assert w.result == seq.rectified[:2, :2].max()
    # a recomputed result with the same crop and stages keeps the place
    display = tab.pages.display_box
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        display.setCurrentIndex((display.currentIndex() + 1) % display.count())
    assert anim.position() == 129 and anim.sequence() is not seq
    qtbot.keyClick(anim.board, Qt.Key.Key_End)
    assert anim.position() == 144 and not anim.step_button.isEnabled()
    assert "rows 7–8, columns 7–8" in anim.explain.text()
    qtbot.keyClick(anim.board, Qt.Key.Key_Home)
    assert anim.position() == 0 and anim.board.stage() == "conv"
    qtbot.mouseClick(anim.step_button, Qt.MouseButton.LeftButton)
    assert anim.position() == 1 and "output row 1, column 1" in anim.explain.text()
    assert not anim.board.grab().isNull()


def test_figure5_step_through_with_relu_and_pooling_plays_to_the_pooled_cell(window, qtbot):
    tab = window.filters_tab
    set_relu_and_pool(tab, qtbot, True, "max")
    anim = tab.pages.animation
    tab.pages.setCurrentWidget(anim)
    anim.show_figure5()
    assert anim.sequence().total == 9 + 9 + 1
    anim.speed.setValue(anim.speed.maximum())
    anim.board.setFocus()
    qtbot.keyClick(anim.board, Qt.Key.Key_Space)
    assert anim.is_playing()
    qtbot.waitUntil(lambda: anim.position() == 19, timeout=8000)
    qtbot.waitUntil(lambda: not anim.is_playing(), timeout=2000)
    assert "max(4, 3, 2, 4) = <b>4</b>" in anim.explain.text()
    # ReLU and pooling off: only the convolution, and the stage buttons say so
    set_relu_and_pool(tab, qtbot, False, "none")
    assert anim.sequence().total == 9 and anim.position() == 0
    assert not anim.stage_buttons["relu"].isEnabled()
    assert not anim.stage_buttons["pool"].isEnabled()
    assert not anim.show_stage("pool")


def test_3x3_stride_2_pooling_window_on_hover_and_relu_in_the_inspector(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    set_relu_and_pool(tab, qtbot, True, "max", size=3, stride=2)
    unpooled = F.run_filter(
        tab.image(), F.FilterSettings((F.PRESETS["Sobel x"].spec(),), relu=True)
    ).maps[0, :, :, 0]
    scale, offset = tab.settings().placement()
    row, col = hover(
        qtbot, tab.pages.result_view, 60, 100, scale=scale, offset=offset, zoom=40 / scale
    )
    assert (row, col) == (60, 100)
    inspector = tab.pages.inspector
    pool = inspector.pool()
    expected = unpooled[120:123, 200:203]  # overlapping 3x3 windows, two apart
    np.testing.assert_allclose(pool.window.values, expected, atol=1e-3)
    shown_value = float(tab.result().maps[0, row, col, 0])
    assert pool.window.result == pytest.approx(shown_value, abs=1e-3) == expected.max()
    wr, wc = pool.window.winner
    assert expected[wr, wc] == expected.max()
    assert inspector.pool_lines() == ["max of the 3×3 window", f"= {short(shown_value)}"]
    assert inspector.relu_value() == pytest.approx(shown_value, abs=1e-3)
    # no pooling: a negative convolution value is shown going through ReLU to 0
    set_relu_and_pool(tab, qtbot, True, "none")
    conv = F.run_filter(tab.image(), F.FilterSettings((F.PRESETS["Sobel x"].spec(),)))
    r, c = (int(v) + 5 for v in np.argwhere(conv.maps[0, 5:-5, 5:-5, 0] < -50)[0])
    scale, offset = tab.settings().placement()
    hover(qtbot, tab.pages.result_view, r, c, scale=scale, offset=offset, zoom=40 / scale)
    assert inspector.pool() is None
    value = float(conv.maps[0, r, c, 0])
    assert inspector.result_lines() == [f"sum = {short(value)}", "after ReLU: 0"]
    # Figure 8 follows: the same value is marked on the ReLU curve
    assert tab.pages.relu_view.curve.point() == (pytest.approx(value, abs=1e-3), 0.0)


def test_tour_setups_and_putting_the_users_own_back(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sharpen")
    mine = tab.snapshot()
    image = tab.image()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        assert tab.show_step_through("figure5", "pool", relu=True, pool="max")
    anim = tab.pages.animation
    assert tab.pages.currentWidget() is anim and anim.board.stage() == "pool"
    qtbot.keyClick(anim.board, Qt.Key.Key_Left)  # the keys work on the board it shows
    assert anim.board.stage() == "relu"
    assert tab.show_step_through("figure5", "relu") and anim.board.stage() == "relu"
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        assert tab.open_figure("figure10")
    tab.inspect_result_pixel((0, 0))
    assert tab.pages.inspector.pool().window.result == 6
    # the article's small numbers are told apart on screen (0..8 would all look black)
    assert tab.pages.source_view.shown_image()[1, 3, 0] == 235  # the 8
    tab.show_relu_figure(mark=(1, 3))
    assert tab.pages.currentWidget() is tab.pages.relu_view
    assert tab.pages.relu_view.curve.point() == (8.0, 8.0)
    assert not tab.open_figure("figure99") and "figure99" in tab.banner.text()
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.restore(mine)
    assert tab.image() is image and tab.figure() is None
    assert mine.settings["color"] == "gray"  # the photo as it was, not stretched
    assert np.array_equal(tab.pages.source_view.shown_image()[:, :, 0], F.to_gray(image))
    assert tab.editor.kernel_specs()[0].name == "Sharpen"
    assert tab.settings_panel.values() == mine.settings
    assert tab.result().maps.shape[1:3] == image.shape[:2]
