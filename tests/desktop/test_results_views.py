"""The Train tab's result and filter views with photo classes: nothing clipped, colour shown."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QFontMetrics

from desktop.widgets.confusion_view import ConfusionView, ResultsPanel
from desktop.widgets.filter_view import FilterView
from engine.evaluation import summarize
from engine.visualize import kernel_colours

CLASSES = ["bird", "cat", "dog", "ship (boat)"]


def _result(n: int = 80):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)  # no ship among the test images
    predicted = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 4, n))
    return summarize(labels, predicted, rng.random(n).astype(np.float32), 4, CLASSES)


def test_class_names_fit_the_confusion_matrix_and_mistake_captions(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(640, 320)  # the results page of a 1024x700 window
    panel.show()
    images = np.random.default_rng(1).integers(0, 255, (80, 3, 32, 32), dtype=np.uint8)
    result = _result()
    files = [f"test/{CLASSES[k]}/{i:04d}.jpg" for i, k in enumerate(result.labels)]
    panel.show_result(result, images, files=files)
    view = panel.confusion_view
    geometry = view.geometry_of_matrix()
    metrics = QFontMetrics(view.label_font())
    # row names whole, not "oirc"
    assert geometry.names and geometry.label >= metrics.horizontalAdvance("ship (boat)")
    assert view.cell_rect(0, 0).left() == geometry.left and geometry.cell >= metrics.height()
    # mistakes: each caption line fits the width of its cell, the tooltip names the file
    gallery = panel.mistakes_gallery
    assert gallery.count() > 0
    fm = QFontMetrics(gallery.font())
    for row in range(gallery.count()):
        item = gallery.item(row)
        # in icon mode Qt elides a caption to the icon's width
        icon_width = item.icon().actualSize(gallery.iconSize()).width()
        for line in item.text().split("\n"):
            assert fm.horizontalAdvance(line) <= icon_width, line
        assert ".jpg" in item.toolTip() and "predicted" in item.toolTip()
    assert gallery.item(0).icon().pixmap(56, 56).toImage().allGray() is False  # in colour
    # a click on a cell lists its images, in colour too
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(3, 3).center().toPoint())
    assert "True ship (boat), predicted ship (boat): 0 images" in panel.cell_label.text()
    assert view.accuracy_texts()[3] == "–"  # no ship to score: a dash, not "nan%"


def test_colour_first_layer_filters_are_shown_in_colour(qtbot):
    view = FilterView()
    qtbot.addWidget(view)
    view.resize(300, 400)
    weights = np.zeros((4, 3, 5, 5), np.float32)
    weights[0, 0] = 1.0  # a filter that looks for red
    view.set_filters([("conv1", weights)], ("conv1",))
    colour = [t for t in view.tiles() if t[2] == -1]
    assert [t[1] for t in colour] == [0, 1, 2, 3]
    assert kernel_colours(weights)[0, 2, 2].tolist() == [255, 128, 128]  # red, others at 0
    assert len(view.tiles()) == 4 + 4 * 3  # the colour row, then R, G and B rows
    # the channel rows say what they are, between the colour tiles and themselves
    ((rect, _),) = [t for t in view.titles() if "channel by channel: rows R, G, B" in t[1]]
    last_colour = max(t[3].bottom() for t in view.tiles() if t[2] == -1)
    first_channel = min(t[3].top() for t in view.tiles() if t[2] >= 0)
    assert last_colour <= rect.top() and rect.bottom() <= first_channel
    # titles wrap instead of being cut at a narrow width
    for rect, title in view.titles():
        needed = QFontMetrics(view.font()).boundingRect(
            QRect(0, 0, int(rect.width()), 1000), Qt.TextFlag.TextWordWrap, title
        )
        assert needed.height() <= rect.height() and needed.width() <= rect.width()


def test_many_colour_filters_wrap_instead_of_shrinking_to_specks(qtbot):
    # GoogLeNet's 32 colour conv1 filters in the live page's filter column (about 240 px at
    # 1024x700) were 8 px squares on one line, and the R, G, B rows ran off the right edge;
    # they wrap to lines of readable tiles.
    view = FilterView()
    qtbot.addWidget(view)
    view.resize(250, 400)
    view.show()
    weights = np.random.default_rng(0).normal(size=(32, 3, 3, 3)).astype(np.float32)
    view.set_filters([("conv1", weights)], ("conv1",))
    colour = [rect for _layer, _k, channel, rect in view.tiles() if channel == -1]
    assert len(colour) == 32
    assert min(r.width() for r in colour) >= 24
    assert all(r.right() <= view.width() for r in colour)
    assert not any(a.intersects(b) for i, a in enumerate(colour) for b in colour[i + 1 :])
    grey = [rect for _layer, _k, channel, rect in view.tiles() if channel >= 0]
    assert min(r.top() for r in grey) > max(r.bottom() for r in colour)  # the R, G, B rows below
    assert view.sizeHint().height() > max(r.bottom() for r in grey)
    # 32 filters side by side at the least tile do not fit: the last ones go on below the
    # first ones (they ran off the right edge, cut)
    assert len(grey) == 32 * 3 and all(r.right() <= view.width() for r in grey)
    assert not any(a.intersects(b) for i, a in enumerate(grey) for b in grey[i + 1 :])


def test_a_scrolled_filter_view_paints_what_the_whole_one_does(qtbot):
    # a wide layer's tiles are painted only where they show (all 2,000 of them were painted
    # on every weight update); the part in sight is the same picture
    from desktop.widgets import scrolled

    view = FilterView()
    area = scrolled(view)
    qtbot.addWidget(area)
    area.resize(420, 500)
    area.show()
    rng = np.random.default_rng(0)
    view.set_filters([("conv2", rng.normal(size=(256, 256, 3, 3)).astype(np.float32))])
    qtbot.waitUntil(lambda: view.height() > area.height() + 200)  # laid out in the scroll area
    whole = view.grab().toImage()
    area.verticalScrollBar().setValue(200)
    top = view.mapTo(area.viewport(), QPoint(0, 0))
    shown = area.viewport().grab().toImage()
    part = whole.copy(QRect(-top.x(), -top.y(), shown.width(), shown.height()))
    assert top.y() == -200 and part == shown


def _many_classes(k: int, n: int):
    """A result over ``k`` classes: every class right but one third of the way, which is all
    taken for the class two thirds of the way; its test images are ``n`` blank digits."""
    labels = np.arange(n) % k
    predicted = np.where(labels == k // 3, 2 * k // 3, labels)
    names = [f"class_{i:04d}" for i in range(k)]
    result = summarize(labels, predicted, np.ones(n, np.float32), k, names)
    return result, np.zeros((n, 28, 28), np.uint8)


def test_a_thousand_class_matrix_paints_whole_and_a_click_picks_its_cell(qtbot):
    # 1,000 classes froze the GUI (the paint measured every name once per cell); the matrix
    # is one picture now, its cells as small as it takes to fit
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(320, 300)
    view.show()
    result, _images = _many_classes(1000, 3000)
    view.set_result(result.confusion, result.per_class, result.classes)
    assert not view.geometry_of_matrix().names  # no room to write them: the tooltip names cells
    picture = view.grab().toImage()
    assert view.rect().contains(view.cell_rect(999, 999).toAlignedRect())

    def colour(true_class: int, predicted_class: int) -> tuple[int, int, int]:
        centre = view.cell_rect(true_class, predicted_class).center()  # the pixel it lies in
        return picture.pixelColor(int(centre.x()), int(centre.y())).getRgb()[:3]

    assert colour(500, 500) == colour(999, 999) == (46, 160, 67)  # the diagonal: green
    assert colour(333, 666) == (214, 39, 40)  # a cell under a pixel, yet shown: red
    assert colour(333, 600) == (246, 246, 246)
    view.resize(2100, 2100)  # cells of 2 pixels: each can be clicked
    with qtbot.waitSignal(view.cell_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=_centre(view, 417, 123))
    assert clicked.args == [417, 123] and view.selected == (417, 123)


def test_a_hundred_class_matrix_fits_the_results_page(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(640, 320)  # the results page of a 1024x700 window
    panel.show()
    result, images = _many_classes(100, 400)
    panel.show_result(result, images)
    view = panel.confusion_view
    last = view.cell_rect(99, 99)
    assert view.rect().contains(last.toAlignedRect()) and last.width() < 8
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=_centre(view, 33, 66))
    assert "True class_0033, predicted class_0066: 4 images" in panel.cell_label.text()
    assert panel.cell_gallery.count() == 4
    qtbot.mouseMove(view, QPoint(1, 1))  # pointing at a cell names it: the names left out
    qtbot.mouseMove(view, _centre(view, 33, 66))
    qtbot.waitUntil(lambda: view.toolTip() != "")
    tip = "true class_0033, predicted class_0066: 4 images (100.0% of the class_0033s; "
    assert view.toolTip() == tip + "class_0033 accuracy 0.0%)"
    view.resize(2000, 2000)  # rows tall enough for names: written again
    assert view.geometry_of_matrix().names


def _centre(view: ConfusionView, true_class: int, predicted_class: int) -> QPoint:
    return view.cell_rect(true_class, predicted_class).center().toPoint()


def test_each_kernel_is_drawn_in_its_own_colours_and_named_on_hover(qtbot):
    # every kernel of a layer comes from one picture of the layer: each tile must still show
    # its own kernel, and hovering it must name it and its weights
    view = FilterView()
    qtbot.addWidget(view)
    view.resize(400, 600)
    view.show()
    weights = np.zeros((4, 2, 3, 3), np.float32)
    weights[2, 1] = -1.0  # one kernel all negative (blue), one all positive (red)
    weights[3, 0] = 0.5
    weights[3, 0, 0, 0] = 1.0
    view.set_filters([("conv2", weights)])
    picture = view.grab().toImage()

    def colour(k: int, ch: int):
        ((rect,),) = [[r] for _l, i, c, r in view.tiles() if (i, c) == (k, ch)]
        pixel = picture.pixelColor(rect.center().toPoint())
        return pixel.red(), pixel.green(), pixel.blue()

    red, _, blue = colour(2, 1)
    assert blue > 200 and red < 60  # blue
    red, _, blue = colour(3, 0)
    assert red > 200 and blue < 200  # red (half the limit)
    assert colour(0, 0) == (255, 255, 255) and colour(1, 1) == (255, 255, 255)  # zero: white
    ((rect,),) = [[r] for _l, i, c, r in view.tiles() if (i, c) == (3, 0)]
    with qtbot.waitSignal(view.hovered) as hovered:
        qtbot.mouseMove(view, rect.center().toPoint())
    assert hovered.args == ["conv2 filter 4, input channel 1 · weights 0.5 … 1"]


def test_a_wide_layer_shows_its_first_filters_and_channels_and_says_so(qtbot):
    # 512 x 512 kernels were 262,144 tiles: seconds per weight update, a page 80,000 px tall
    view = FilterView()
    qtbot.addWidget(view)
    view.resize(400, 600)
    view.show()
    weights = np.random.default_rng(0).normal(0, 0.1, (100, 40, 3, 3)).astype(np.float32)
    weights[99, 39, 1, 1] = 5.0  # not shown, yet it sets the layer's colour scale
    view.set_filters([("conv2", weights)])
    tiles = view.tiles()
    assert len(tiles) == 64 * 32
    assert {t[1] for t in tiles} == set(range(64)) and {t[2] for t in tiles} == set(range(32))
    (title,) = [t for _r, t in view.titles() if t.startswith("conv2")]
    assert "100 filters of 40×3×3" in title and "±5" in title
    assert "shown: filters 1-64 and input channels 1-32" in title
    assert view.sizeHint().height() < 3000
    narrow = np.zeros((8, 40, 3, 3), np.float32)
    view.set_filters([("conv2", narrow)])
    (title,) = [t for _r, t in view.titles() if t.startswith("conv2")]
    assert title.endswith("shown: input channels 1-32") and len(view.tiles()) == 8 * 32


def test_a_clicked_cells_line_shows_odd_class_names_as_written_within_the_page(qtbot):
    # A class named '<b>cat</b>' read 'True cat' in bold above the cell's images, and a long
    # class name widened the results page past its window (the line did not wrap).
    long_name = "a class with a very long name written out by a careful user " * 3
    classes = ["<b>cat</b>", long_name.strip(), "oiseau à 日本"]
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    predicted = (labels + (rng.random(30) < 0.5)) % 3
    result = summarize(labels, predicted, rng.random(30).astype(np.float32), 3, classes)
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(640, 320)  # the results page of a 1024x700 window
    panel.show()
    panel.show_result(result, rng.integers(0, 255, (30, 28, 28), dtype=np.uint8))
    view = panel.confusion_view
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(0, 1).center().toPoint())
    label = panel.cell_label
    assert label.text().startswith("True <b>cat</b>, predicted a class with")
    assert label.textFormat() == Qt.TextFormat.PlainText  # the name as written, not bold
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(1, 2).center().toPoint())
    assert "predicted oiseau à 日本" in label.text()
    assert panel.minimumSizeHint().width() <= 640  # the line wraps: the page keeps its width
    assert label.geometry().right() <= panel.width()
    word = "averylongclassnamewithoutanyspace" * 8  # one word: cut short, whole in the tooltip
    result.classes[0] = word
    panel.show_result(result, rng.integers(0, 255, (30, 28, 28), dtype=np.uint8))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(0, 0).center().toPoint())
    assert label.text().startswith("True averylongclassname") and "…" in label.text()
    assert f"True {word}, predicted {word}" in label.toolTip()
    assert panel.minimumSizeHint().width() <= 640
