"""Figures 4 and 10 in the Filters tab: the pooling window on hover, ReLU in the inspector,
and pixel values written in their cells when zoomed in."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRectF
from PySide6.QtGui import QFontMetricsF, QImage, QPainter

from desktop.widgets.image_view import ImageView
from desktop.widgets.pixel_inspector import PixelInspector, draw_matrix, short
from engine import filters as F


@pytest.fixture
def window(filters_window):
    return filters_window


def hover_centre(qtbot, view):
    """Hover near the centre, off the exact centre: other tests hover the exact centre and
    a move to where the cursor already is sends no event."""
    spot = view.viewport().rect().center() + QPoint(3, 3)
    qtbot.mouseMove(view.viewport(), spot - QPoint(7, 7))
    with qtbot.waitSignal(view.pixel_hovered, timeout=3000) as blocker:
        qtbot.mouseMove(view.viewport(), spot)
    return blocker.args


def test_hovering_a_pooled_pixel_shows_the_window_winner_and_relu(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
        tab.settings_panel.relu_check.setChecked(True)
        tab.settings_panel.pool_box.setCurrentIndex(tab.settings_panel.pool_box.findData("max"))
    row, col = hover_centre(qtbot, tab.pages.result_view)
    inspector = tab.pages.inspector
    pool = inspector.pool()
    assert pool is not None and pool.kind == "max" and pool.relu
    shown_value = float(tab.result().maps[0][row, col, 0])
    assert pool.window.result == pytest.approx(shown_value, abs=1e-3)
    assert pool.window.values.shape == (2, 2) and pool.window.values.min() >= 0
    wr, wc = pool.window.winner
    assert pool.window.values[wr, wc] == pool.window.values.max()
    ins = inspector.inspection()  # the convolution behind the winner
    assert inspector.relu_value() == pytest.approx(max(ins.value, 0.0))
    assert inspector.relu_value() == pytest.approx(shown_value, abs=1e-3)
    assert f"after ReLU: {short(inspector.relu_value())}" in inspector.result_lines()
    assert inspector.pool_lines() == ["max of the 2×2 window", f"= {short(pool.window.result)}"]
    assert not inspector.grab().isNull()


def test_unpooled_inspector_has_no_window_and_relu_only_when_on(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sharpen")
        tab.settings_panel.relu_check.setChecked(False)
        tab.settings_panel.pool_box.setCurrentIndex(tab.settings_panel.pool_box.findData("none"))
    hover_centre(qtbot, tab.pages.result_view)
    assert tab.pages.inspector.pool() is None and tab.pages.inspector.relu_value() is None
    assert not any("ReLU" in line for line in tab.pages.inspector.result_lines())


def _figure10(qtbot):
    """A 760x150 pixel inspector and the explanation of Figure 10's pooled pixel (0, 0)."""
    inspector = PixelInspector()
    qtbot.addWidget(inspector)
    inspector.resize(760, 150)
    img = np.kron(F.FIGURE10_MAP, np.ones((1, 1))).astype(np.uint8)
    settings = F.FilterSettings((F.PRESETS["Identity"].spec(),), border="zero", pool="max")
    result = F.run_filter(img, settings)
    assert np.array_equal(result.maps[0, :, :, 0], [[6, 8], [3, 4]])
    return inspector, F.explain_pixel(result, 0, 0, 1)


def test_figure10_window_painted_by_the_inspector(qtbot):
    inspector, ex = _figure10(qtbot)
    inspector.show_inspection(ex.inspection, "fig 10", pool=ex.pool)
    assert np.array_equal(inspector.pool().window.values, [[2, 4], [7, 8]])
    assert inspector.pool().window.winner == (1, 1)
    assert inspector.pool_lines() == ["max of the 2×2 window", "= 8"]
    assert not inspector.grab().isNull()


def test_a_long_caption_beside_the_pooling_window_is_shortened_not_cut(qtbot):
    # at 1400x900: "conv output x 60, y 60 (the winner of the pooling window) · red chann"
    inspector, ex = _figure10(qtbot)
    caption = "conv output x 60, y 60 (the winner of the pooling window) · red channel" * 2
    inspector.show_inspection(ex.inspection, caption, pool=ex.pool)
    shown = inspector.shown_caption()  # what is painted: it ended mid-word where the room did
    assert shown.endswith("…") and caption.startswith(shown[:-1])
    room = 760 - max(190, 760 * 0.3) - 16  # left of the pooling window
    assert QFontMetricsF(inspector.font()).horizontalAdvance(shown) <= room
    assert inspector.toolTip() == caption  # the whole caption, on hover
    inspector.show_inspection(ex.inspection, "conv output x 1, y 0", pool=ex.pool)
    assert inspector.shown_caption() == "conv output x 1, y 0"


def test_large_sums_keep_three_significant_digits():
    # 47 x 12345.678 = 580,247 read "6e+05" in the inspector and the hover line: 600,000?
    assert short(580246.87) == "5.8e+05"
    assert short(-1234567.0) == "-1.23e+06"
    assert (short(99999.0), short(12345.6), short(-0.5)) == ("99999", "12346", "-0.5")


class _RecordingPainter(QPainter):
    """Notes the width of each number written in a cell and the room the cell gave it."""

    def __init__(self, device) -> None:
        super().__init__(device)
        self.cells: list[tuple[str, float, float]] = []

    def drawText(self, *args):
        if len(args) == 3 and isinstance(args[0], QRectF) and isinstance(args[2], str):
            width = QFontMetricsF(self.font()).horizontalAdvance(args[2])
            self.cells.append((args[2], width, args[0].width()))
        return super().drawText(*args)


@pytest.mark.parametrize(
    ("values", "side"),
    [
        (np.full((3, 3), 1 / 9), 66),  # Box blur's weights at 1024x700: 22-pixel cells
        (np.array([[5.556, 5.444, 5.333]] * 3), 66),  # and its products
        (np.full((5, 5), -0.001), 130),
    ],
)
def test_numbers_in_the_inspectors_cells_never_run_into_the_next_cell(values, side):
    image = QImage(400, 300, QImage.Format.Format_RGB32)
    painter = _RecordingPainter(image)
    draw_matrix(painter, QRectF(0, 0, side, 200), values, title="weights")
    painter.end()
    numbers = [cell for cell in painter.cells if cell[0] != "weights"]
    assert len(numbers) == values.size  # every number written
    for text, width, room in numbers:  # 2 pixels to spare each side: never 0.1110.1110.111
        assert width <= room - 4, f"{text!r} is {width:.0f} px wide in a {room:.0f} px cell"


def test_zoomed_in_view_writes_pixel_values_in_cells(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(320, 320)
    view.show()
    qtbot.waitExposed(view)
    rgb = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    view.set_image(rgb)
    view.set_zoom(8.0)  # 8 px cells: colours only
    blank = view.grab().toImage()
    assert view.labelled_cells() == 0
    view.set_zoom(64.0)  # 64 px cells: 5x5 (partly) visible cells, each with R/G/B lines
    written = view.grab().toImage()
    visible = view.viewport().width() / 64.0
    assert int(np.floor(visible)) ** 2 <= view.labelled_cells() <= (int(np.ceil(visible)) + 1) ** 2
    assert blank.size() == written.size()


def test_result_view_writes_the_float_results_not_the_picture(window, qtbot):
    tab = window.filters_tab
    with qtbot.waitSignal(tab.result_shown, timeout=10000):
        tab.editor.preset_box.setCurrentText("Sobel x")
    view = tab.pages.result_view
    view.set_zoom(40.0)
    view.grab()
    assert view.labelled_cells() > 0
    labels = F.cell_labels(tab.result().maps[0], (0, 10**6), (0, 10**6), 40.0, max_cells=10**9)
    assert any(lab.text.startswith("-") for lab in labels)  # negative Sobel values, not 0..255
    view.set_zoom(2.0)
    view.grab()
    assert view.labelled_cells() == 0
