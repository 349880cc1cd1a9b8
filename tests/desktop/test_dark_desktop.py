"""The app on a dark desktop: every hint, caption and note reads on the user's dark colours,
and the light look stays as designed."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from desktop.widgets.tone import MIN_CONTRAST, contrast, is_dark

Role = QPalette.ColorRole


def _dark() -> QPalette:
    palette = QPalette(QApplication.palette())
    for role, rgb in (
        (Role.Window, (45, 45, 48)),
        (Role.WindowText, (230, 230, 230)),
        (Role.Base, (30, 30, 30)),
        (Role.Text, (230, 230, 230)),
        (Role.Button, (53, 53, 53)),
        (Role.ButtonText, (230, 230, 230)),
    ):
        palette.setColor(role, QColor(*rgb))
    return palette


@pytest.fixture
def dark_desktop(qapp):
    """``dark_desktop()`` makes the application's palette a dark one (as a dark theme or colour
    scheme gives) for the rest of the test."""
    light = QPalette(qapp.palette())
    yield lambda: qapp.setPalette(_dark())
    qapp.setPalette(light)


def _open_window(qtbot, settings):
    from desktop.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    qtbot.waitUntil(lambda: win.filters_tab.result() is not None, timeout=10000)
    win.start_tour().show_stop(0)
    return win


def _labels(window) -> list[QLabel]:
    return [w for w in window.findChildren(QLabel) if w.isVisible() and w.text().strip()]


def _unreadable(window) -> list[str]:
    """The visible labels whose text colour does not read on their background."""
    bad = []
    for label in _labels(window):
        palette = label.palette()
        ratio = contrast(palette.color(Role.WindowText), palette.color(Role.Window))
        if ratio < MIN_CONTRAST:
            bad.append(f"{label.objectName() or label.text()[:40]!r}: {ratio:.1f}")
    return bad


def _each_tab(win):
    for index in range(win.tabs.count()):
        win.tabs.setCurrentIndex(index)
        yield win.tabs.currentWidget()


def test_every_label_reads_on_a_dark_desktop(qtbot, settings, dark_desktop):
    dark_desktop()  # dark before the app starts, as a dark desktop is
    win = _open_window(qtbot, settings)
    for _tab in _each_tab(win):
        assert _unreadable(win) == []
    win.tour.finish()


def _light_labels(window) -> list[str]:
    """The visible labels that still have a light palette."""
    return [w.objectName() or w.text()[:40] for w in _labels(window) if not is_dark(w.palette())]


def test_labels_follow_a_switch_to_a_dark_desktop(qtbot, settings, dark_desktop):
    win = _open_window(qtbot, settings)
    assert _unreadable(win) == []  # the light look reads
    dark_desktop()
    for _tab in _each_tab(win):
        # no label keeps the light palette it was polished with (its colours then lie)
        qtbot.waitUntil(lambda: _light_labels(win) == [], timeout=3000)
        assert _unreadable(win) == []
    win.tour.finish()


def test_the_tour_panel_reads_on_a_dark_desktop(filters_window, dark_desktop, qtbot):
    panel = filters_window.start_tour()
    panel.show_stop(0)
    dark_desktop()
    qtbot.waitUntil(lambda: is_dark(panel.pages.palette()), timeout=3000)
    behind = panel.pages.palette().color(Role.Window)
    for label in (panel.title_label, panel.text_label, panel.where_label):
        text = label.palette().color(Role.WindowText)
        assert contrast(text, behind) >= MIN_CONTRAST, label.objectName()
    panel.finish()


def test_the_light_look_is_as_designed(filters_window):
    tab = filters_window.filters_tab
    assert tab.timing.styleSheet() == "QLabel { color: #5f6368; }"
    panel = filters_window.start_tour()
    assert "background: #e8f0fe" in panel.styleSheet()
    panel.finish()


def test_a_span_colour_reads_on_a_dark_desktop_and_stays_as_designed_on_a_light_one():
    from desktop.widgets.tone import readable

    light, dark = QApplication.palette(), _dark()
    assert readable("#188038", light) == QColor("#188038")
    green = readable("#188038", dark)
    assert contrast(green, dark.color(Role.Window)) >= MIN_CONTRAST
    assert green.green() > green.red() and green.green() > green.blue()  # still a green
