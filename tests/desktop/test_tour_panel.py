"""Help › Walk through the article: every stop driven forward and back through the real
buttons, what each one shows, and the user's own setup put back at the end."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QWidget

import resources
from desktop.main_window import MainWindow
from desktop.tour import TourPanel
from desktop.widgets.feature_view import FeatureView
from engine import tour
from engine.filters import PRESETS, KernelSpec
from engine.model import build_model

DIRS = {"mnist_dir": resources.mnist_dir(), "samples_dir": resources.resource_path("samples")}
TAB_OF = {"Filters": "filters_tab", "Train": "train_tab", "Classify": "classify_tab"}
LOAD_MS = 30000  # a loaded machine: generous, never slept


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """The "What it learned" stop saves grids in the per-user cache: a fresh folder here."""
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    tab = win.filters_tab
    qtbot.waitUntil(lambda: tab.result() is not None and not tab.is_computing(), timeout=LOAD_MS)
    yield win
    win.train_tab.close_learned()


def _idle(win) -> bool:
    classify, train = win.classify_tab, win.train_tab
    return (
        not win.filters_tab.is_computing()
        and not classify.background_busy()
        and not train.setup.is_loading()
    )


def _check_filters(win, qtbot, setup: tour.FiltersSetup) -> None:
    tab = win.filters_tab
    qtbot.waitUntil(lambda: tab.result() is not None and not tab.is_computing(), timeout=LOAD_MS)
    image, name = tour.tour_image(setup.image, **DIRS)
    np.testing.assert_array_equal(tour.as_rgb(tab.image()), tour.as_rgb(image))
    assert name in tab.pages.source_caption.text()
    settings = tab.settings()
    assert [k.name for k in settings.kernels] == [k.name for k in tour.kernel_specs(setup)]
    expected = setup.settings()
    assert (settings.relu, settings.pool, settings.border) == (
        expected["relu"],
        expected["pool"],
        expected["border"],
    )
    example = setup.example()
    assert (tab.figure() is not None and tab.figure().key) == (example is not None and setup.image)
    assert tab.current_page() == setup.page
    assert tab.display_mode() == ("normalize" if example is not None else setup.display)
    inspector = tab.pages.inspector
    if setup.hover is not None:
        assert inspector.inspection() is not None
        assert (inspector.pool() is not None) == (expected["pool"] != "none")
    if setup.page == "relu":  # Figure 8: the hovered pixel marked on the curve
        assert tab.pages.relu_view.isVisible()
        x, y = tab.pages.relu_view.curve.point()
        row, col = setup.hover
        assert x < 0 and y == 0  # a negative sum, zeroed
        assert f"x {col}, y {row}: " in tab.pages.relu_view.hover_label.text()
    if setup.page == "step":
        assert tab.pages.animation.isVisible()
    if setup.zoom is not None or example is not None:  # the values written in the cells
        view = tab.pages.source_view
        if setup.zoom is not None:
            assert view.zoom() == pytest.approx(setup.zoom)
        view.grab()
        assert view.labelled_cells() > 0 or setup.page != "image"
    if setup.page == "maps":
        assert f"stack of {len(setup.kernels)} feature maps" in tab.pages.maps_caption.text()


def _check_classify(win, qtbot, setup: tour.ClassifySetup, digit_label: str) -> None:
    tab = win.classify_tab
    qtbot.waitUntil(lambda: not tab.background_busy() and tab.result is not None, timeout=LOAD_MS)
    if setup.model == "digits":
        assert tab.model_name == digit_label
        assert tab.result.prediction == setup.image.split(":")[1]  # LeNet reads it right
    else:
        assert tab.model_name.startswith("Shipped photo model")
        assert tab.result.classes == ["bird", "cat", "dog", "ship"]
        assert tab.result.prediction == "cat"  # chelsea.png
    assert tab.right_tabs.currentIndex() == 0 and tab.network_view.layers()
    if setup.hover is not None:  # the cell pointed at shows its strongest connections
        layer, cell = setup.hover
        title = "output" if layer == "softmax" else layer
        assert tab.network_view.hover_text.startswith(f"{title}")
        assert f"cell {cell} = " in tab.network_view.hover_text
        assert "strongest" in tab.network_view.hover_text
        assert tab.network_view.drawn_links()


def _check_train(win, qtbot, setup: tour.TrainSetup) -> None:
    tab = win.train_tab
    if setup.view == "features":
        view = tab.findChild(FeatureView, "featureView")
        assert view is not None and view.isVisible()
        qtbot.waitUntil(lambda: "conv2" in view.sections, timeout=LOAD_MS)
        assert "conv1" in view.sections
    elif setup.view == "diagram":
        assert tab.setup.architecture_name() == setup.architecture
        assert any("layer1" in n for n in tab.setup.architecture_view.node_names())
    else:
        assert tab.step_button.isVisible()


def _check_stop(win, qtbot, panel: TourPanel, index: int, digit_label: str) -> None:
    stop = tour.STOPS[index]
    assert panel.index == index
    assert panel.title_label.text() == stop.title and panel.text_label.text() == stop.text
    assert f"Stop {index + 1} of {len(tour.STOPS)}" in panel.where_label.text()
    assert not panel.problem_label.isVisible(), panel.problem_label.text()
    assert win.tabs.currentWidget() is getattr(win, TAB_OF[stop.tab])
    setup = stop.setup
    if isinstance(setup, tour.FiltersSetup):
        _check_filters(win, qtbot, setup)
    elif isinstance(setup, tour.ClassifySetup):
        _check_classify(win, qtbot, setup, digit_label)
    else:
        _check_train(win, qtbot, setup)
    # the panel sits below the tabs: it hides nothing it talks about
    assert panel.geometry().top() >= win.tabs.geometry().bottom()


def test_every_stop_forward_then_back(window, qtbot):
    digit_label = window.classify_tab.model_name
    panel = window.start_tour()
    assert panel.objectName() == "tourPanel" and panel.isVisible()
    next_button = panel.findChild(QPushButton, "tourNext")
    back_button = panel.findChild(QPushButton, "tourBack")
    assert not back_button.isEnabled()
    for index in range(len(tour.STOPS)):
        if index:
            with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
                qtbot.mouseClick(next_button, Qt.MouseButton.LeftButton)
        _check_stop(window, qtbot, panel, index, digit_label)
    assert next_button.text() == "Finish"
    for index in range(len(tour.STOPS) - 2, -1, -1):
        with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
            qtbot.mouseClick(back_button, Qt.MouseButton.LeftButton)
        _check_stop(window, qtbot, panel, index, digit_label)
    qtbot.waitUntil(lambda: _idle(window), timeout=LOAD_MS)


def _click(qtbot, panel: TourPanel, name: str) -> None:
    qtbot.mouseClick(panel.findChild(QPushButton, name), Qt.MouseButton.LeftButton)


def _user_setup(win, qtbot) -> dict:
    """Edits of the user's own in every tab the tour touches."""
    filters, classify, train = win.filters_tab, win.classify_tab, win.train_tab
    rng = np.random.default_rng(5)
    mine = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    filters.set_image(mine, "mine.png")
    filters.editor.load_specs([KernelSpec(np.ones((3, 3)), divisor=9.0), PRESETS["Sobel x"].spec()])
    filters.editor.kernel_tabs.setCurrentIndex(1)
    filters.editor.preset_box.setCurrentText("Emboss")  # an edit, as the user makes it
    filters.settings_panel.stride_box.setValue(2)
    filters.settings_panel.relu_check.setChecked(True)
    filters.settings_panel.pool_box.setCurrentIndex(filters.settings_panel.pool_box.findData("avg"))
    filters.pages.set_display_mode("abs")
    filters.pages.setCurrentIndex(1)
    model = build_model("lenet5", np.random.default_rng(0), classes=[str(i) for i in range(10)])
    win.state.publish_model(model, "My own model")
    three = tour.mnist_digit(resources.mnist_dir(), 3)
    classify.show_image(three, "my3.png")
    train.setup.arch_combo.setCurrentText("vgg")
    win.tabs.setCurrentWidget(classify)
    qtbot.waitUntil(lambda: _idle(win), timeout=LOAD_MS)
    return {
        "image": mine,
        "stack": filters.editor.stack_snapshot(),
        "settings": filters.settings_panel.values(),
        "model": model,
        "digit": three,
    }


def test_restore_puts_back_the_users_image_kernels_settings_and_model(window, qtbot):
    user = _user_setup(window, qtbot)
    filters, classify, train = window.filters_tab, window.classify_tab, window.train_tab
    panel = window.start_tour()
    for _ in range(len(tour.STOPS) - 1):  # every stop changes something
        with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
            _click(qtbot, panel, "tourNext")
    qtbot.waitUntil(lambda: _idle(window), timeout=LOAD_MS)
    assert filters.image() is not user["image"] and classify.model is not user["model"]
    assert train.setup.architecture_name() != "vgg"
    _click(qtbot, panel, "tourNext")  # Finish: the offer
    assert panel.pages.currentIndex() == 1 and "restore" in panel.end_label.text()
    with qtbot.waitSignal(panel.ended, timeout=LOAD_MS) as ended:
        _click(qtbot, panel, "tourRestore")
    assert ended.args == [True] and not panel.isVisible()
    qtbot.waitUntil(lambda: _idle(window) and filters.result() is not None, timeout=LOAD_MS)
    assert filters.image() is user["image"] and "mine.png" in filters.pages.source_caption.text()
    assert filters.editor.stack_snapshot() == user["stack"]
    assert [k.name for k in filters.settings().kernels] == ["", "Emboss"]
    assert filters.editor.current_index() == 1
    assert filters.settings_panel.values() == user["settings"]
    assert filters.display_mode() == "abs" and filters.current_page() == "maps"
    assert classify.model is user["model"] and classify.model_name == "My own model"
    assert classify.model_box.currentText() == "My own model"
    assert classify.snapshot().image is user["digit"] and classify.snapshot().mode == 1
    assert classify.result is not None
    assert train.setup.architecture_name() == "vgg"
    assert not train.findChild(FeatureView, "featureView").isVisible()
    assert window.tabs.currentWidget() is classify


def test_keep_leaves_the_tour_setup_and_a_new_tour_keeps_the_setup_of_then(window, qtbot):
    filters = window.filters_tab
    before = filters.image()
    panel = window.start_tour()
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        _click(qtbot, panel, "tourNext")
    _click(qtbot, panel, "tourEnd")
    with qtbot.waitSignal(panel.ended, timeout=LOAD_MS) as ended:
        _click(qtbot, panel, "tourKeep")
    assert ended.args == [False] and not panel.isVisible()
    kept = filters.image()
    assert kept is not before and kept.shape[:2] == (5, 5)  # the 5x5 example stays
    again = window.start_tour()
    assert again is panel and panel.index == 0
    assert panel.saved.filters.image is kept  # what the user has now, not the first tour's


def test_the_training_step_stop_leads_to_the_step_explainer(window, qtbot, monkeypatch):
    discard = QMessageBox.StandardButton.Discard  # closing at the end: the step's model
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: discard)
    train = window.train_tab
    train.setup.set_source("mnist", 600)  # a small slice: one tiny step
    train.setup.batch_spin.setValue(16)
    train.test_limit = 100
    panel = window.start_tour()
    index = next(i for i, s in enumerate(tour.STOPS) if s.setup == tour.TrainSetup("step"))
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(index)
    assert window.tabs.currentWidget() is train and "Press Step" in panel.text_label.text()
    qtbot.waitUntil(lambda: train.step_button.isEnabled(), timeout=LOAD_MS)
    qtbot.mouseClick(train.step_button, Qt.MouseButton.LeftButton)  # as the text says
    qtbot.waitUntil(
        lambda: (
            train.step_window is not None
            and train.step_window.isVisible()
            and train.step_window.explainer.explanation is not None
        ),
        timeout=60_000,
    )
    assert train.step_window.findChild(QWidget, "stepExplainer").isVisible()
    train.stop_work()
    qtbot.waitUntil(lambda: not train.is_busy(), timeout=60_000)
    train.step_window.close()


def test_a_stop_chosen_before_the_last_one_is_computed_still_marks_its_pixel(window, qtbot):
    """Next pressed quickly: the previous stop's result arrives first and must not take the
    mark meant for the new one."""
    panel = window.start_tour()
    relu = next(i for i, s in enumerate(tour.STOPS) if s.setup.page == "relu")
    panel.show_stop(0)  # the 8: its render starts (the zero timer fires)...
    QCoreApplication.processEvents()
    panel.show_stop(relu)  # ...and this stop comes before that result is shown
    tab = window.filters_tab
    qtbot.waitUntil(lambda: tab.result() is not None and not tab.is_computing(), timeout=LOAD_MS)
    qtbot.waitUntil(lambda: tab.pages.relu_view.curve.point() is not None, timeout=LOAD_MS)
    row, col = tour.STOPS[relu].setup.hover
    assert f"x {col}, y {row}: " in tab.pages.relu_view.hover_label.text()
    assert tab.pages.relu_view.curve.point()[0] < 0


def test_a_small_window_keeps_every_word_of_a_stop_within_reach(window, qtbot):
    """The longest stop in a window as small as it goes: the panel cannot be as tall as the
    text, so the text scrolls; none of it is cut off out of reach."""
    from PySide6.QtWidgets import QScrollArea

    window.resize(window.minimumSizeHint().width(), 560)
    panel = window.start_tour()
    longest = max(range(len(tour.STOPS)), key=lambda i: len(tour.STOPS[i].text))
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(longest)
    label = panel.text_label
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))
    area = label.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    assert panel.isAncestorOf(area) and area.isVisible()
    bottom = label.mapTo(area.widget(), label.rect().bottomLeft()).y()
    bar = area.verticalScrollBar()
    assert bottom < area.viewport().height() + bar.maximum()  # scrolled down, all of it shows
    for name in ("tourBack", "tourNext", "tourEnd"):
        button = panel.findChild(QPushButton, name)
        assert button.isVisible() and button.height() >= button.sizeHint().height()
    assert window.height() < 600  # the tour does not make the window grow


def _family_stop(panel: TourPanel, qtbot) -> tour.TrainSetup:
    index = next(
        i for i, s in enumerate(tour.STOPS) if s.setup == tour.TrainSetup("diagram", "resnet8")
    )
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(index)
    return tour.STOPS[index].setup


def test_the_family_stop_leaves_a_kept_model_in_the_network_box_and_says_why(window, qtbot):
    """Continue model ticked: Start trains the kept LeNet, and the diagram draws it. The stop
    must not put resnet8 in the (disabled) Network box under it: it says why it cannot."""
    train = window.train_tab
    with qtbot.waitSignal(train.model_load_finished, timeout=LOAD_MS):
        train.load_model_file(resources.shipped_model_path())
    train.continue_check.setChecked(True)
    panel = window.start_tour()
    _family_stop(panel, qtbot)
    assert train.setup.architecture_name() == "lenet5"
    assert not any("layer1" in n for n in train.setup.architecture_view.node_names())
    assert panel.problem_label.isVisible()
    assert "Continue model" in panel.problem_label.text() and "lenet5" in panel.problem_label.text()


def test_the_family_stop_leaves_a_running_network_in_the_network_box(window, qtbot, monkeypatch):
    discard = QMessageBox.StandardButton.Discard  # closing at the end: the run's model
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: discard)
    train = window.train_tab
    train.setup.set_source("mnist", 600)
    train.setup.batch_spin.setValue(16)
    train.setup.epochs_spin.setValue(50)
    qtbot.waitUntil(lambda: train.start_button.isEnabled(), timeout=LOAD_MS)
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(train.is_busy, timeout=LOAD_MS)
    panel = window.start_tour()
    _family_stop(panel, qtbot)
    assert train.is_busy()
    assert train.setup.architecture_name() == "lenet5"
    assert not any("layer1" in n for n in train.setup.architecture_view.node_names())
    assert panel.problem_label.isVisible() and "Stop" in panel.problem_label.text()
    train.stop_work()
    qtbot.waitUntil(lambda: not train.is_busy(), timeout=60_000)


def test_the_keyboard_moves_through_the_tour_wherever_the_focus_is(window, qtbot):
    """Each stop puts the focus in its tab (the step board takes ← and →): Alt+→ and Alt+←
    still move through the stops, Esc ends the tour with the offer, Enter takes the focused
    button of the panel."""
    panel = window.start_tour()
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow())
    step = next(i for i, s in enumerate(tour.STOPS) if s.setup.page == "step")
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(step)
    focus = QApplication.focusWidget()
    assert focus is not None and not panel.isAncestorOf(focus)
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        qtbot.keyClick(focus, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert panel.index == step + 1
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert panel.index == step
    for name, key in (("tourNext", "Alt+→"), ("tourBack", "Alt+←"), ("tourEnd", "Esc")):
        assert key in panel.findChild(QPushButton, name).toolTip()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    assert panel.pages.currentIndex() == 1 and QApplication.focusWidget() is panel.restore_button
    with qtbot.waitSignal(panel.ended, timeout=LOAD_MS) as ended:
        qtbot.keyClick(panel.restore_button, Qt.Key.Key_Return)
    assert ended.args == [True] and not panel.isVisible()
    qtbot.keyClick(window.tabs, Qt.Key.Key_Escape)  # the tour is over: its keys are off
    assert not panel.isVisible() and panel.index == -1


def test_the_family_stop_shows_the_network_box_it_names_in_a_small_window(window, qtbot):
    """ "Choose a network under '2 · Architecture'": the Network box is in sight, with the
    top of the diagram, at 1024x700 (the setup panel scrolls)."""
    window.resize(1024, 700)
    panel = window.start_tour()
    _family_stop(panel, qtbot)
    train = window.train_tab
    viewport = train.setup_area.viewport()

    def in_sight(widget) -> bool:
        top = widget.mapTo(viewport, widget.rect().topLeft()).y()
        return 0 <= top and top + widget.height() <= viewport.height()

    assert in_sight(train.setup.arch_combo)
    assert in_sight(train.setup.arch_tabs.tabBar())


def test_a_stop_after_a_pointed_cell_shows_the_network_from_the_top_unmarked(window, qtbot):
    """Back from the fully connected stop (fc1 cell 53 marked, the view scrolled down to it)
    to 'Follow the rows ... from the top', or on to softmax: the input row is in sight and no
    cell is still marked with its lines."""
    window.resize(1024, 700)
    panel = window.start_tour()
    tab = window.classify_tab
    pointed = next(
        i for i, s in enumerate(tour.STOPS) if getattr(s.setup, "hover", None) == ("fc1", 53)
    )
    for index in (pointed, pointed - 1, pointed, pointed + 1):
        with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
            panel.show_stop(index)
        qtbot.waitUntil(
            lambda: not tab.background_busy() and tab.result is not None, timeout=LOAD_MS
        )
        if index == pointed:
            assert (
                tab.network_view.drawn_links()
                and tab.network_scroll.verticalScrollBar().value() > 0
            )
            continue
        assert tour.STOPS[index].setup.hover is None
        assert tab.network_view.hover_text == "" and not tab.network_view.drawn_links()
        assert tab.network_scroll.verticalScrollBar().value() == 0


@pytest.mark.parametrize("height", [700, 560])
def test_the_cell_a_stop_points_at_is_in_sight(qtbot, settings, height):
    """'The output cell of the 8 is marked': in a 1024x700 window and in the smallest one
    (the Classify tab scrolls too), the marked cell is in sight, not cut at the bottom by
    the tab's or the panel's layout settling after the stop scrolled to it."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QScrollArea

    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1024, height)
    window.show()
    panel = window.start_tour()
    tab = window.classify_tab
    for index, stop in enumerate(tour.STOPS):
        if not isinstance(stop.setup, tour.ClassifySetup) or stop.setup.hover is None:
            continue
        with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
            panel.show_stop(index - 1)  # from the stop before, as Next comes
        qtbot.waitUntil(lambda: _idle(window), timeout=LOAD_MS)
        with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
            panel.show_stop(index)
        qtbot.waitUntil(lambda: _idle(window) and tab.result is not None, timeout=LOAD_MS)
        centre = tab.network_view.cell_center(*stop.setup.hover)
        for area in (tab.network_scroll, tab.findChild(QScrollArea, "classifyScroll")):
            viewport = area.viewport()
            y = tab.network_view.mapTo(viewport, centre).y()
            assert 20 <= y <= viewport.height() - 20, (stop.title, height, y)
        assert tab.network_view.mapTo(window, QPoint(0, centre.y())).y() < panel.y()


def test_the_last_stops_finish_button_says_finish_in_its_tooltip_too(window, qtbot):
    panel = window.start_tour()
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(len(tour.STOPS) - 1)
    assert panel.next_button.text() == "Finish"
    assert panel.next_button.toolTip() == "Finish (Alt+→)"
    with qtbot.waitSignal(panel.stop_shown, timeout=LOAD_MS):
        panel.show_stop(0)
    assert panel.next_button.toolTip() == "Next (Alt+→)"
