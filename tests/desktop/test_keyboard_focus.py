"""Keyboard-only use: Tab goes through each tab's controls, and wherever it stops the user sees
where the focus is."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication

from desktop.widgets.focus_ring import focus_ring


@pytest.fixture
def window(qtbot, filters_window):
    """The main window on the Filters tab, active (keys go to the active window)."""
    filters_window.activateWindow()
    qtbot.waitUntil(filters_window.isActiveWindow)
    return filters_window


def _looks_focused(win, widget) -> bool:
    """The window around the focused ``widget`` looks different than without the focus."""
    corner = widget.mapTo(win, widget.rect().topLeft())
    area = QRect(corner, widget.size()).adjusted(-4, -4, 4, 4)
    with_focus = win.grab(area).toImage()
    widget.clearFocus()
    without = win.grab(area).toImage()
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    return with_focus != without


def _tab_stops(qtbot, win) -> dict[str, bool]:
    """Tab from the tab bar round to it again: the widgets that took the focus, each with
    whether it looked focused."""
    bar = win.tabs.tabBar()
    bar.setFocus(Qt.FocusReason.TabFocusReason)
    stops = {}
    for _ in range(100):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        widget = QApplication.focusWidget()
        if widget is bar:
            return stops
        stops[_name(widget)] = _looks_focused(win, widget)
    raise AssertionError("Tab never came back to the tab bar")


def _name(widget) -> str:
    return widget.objectName() or type(widget).__name__


@pytest.mark.parametrize(
    ("tab", "expected"),
    [
        ("filters_tab", {"presetBox", "kernelCell_1_1", "sourceView", "fitButton", "copyButton"}),
        ("train_tab", {"datasetSource", "architectureView", "startButton", "stepButton"}),
        ("classify_tab", {"drawMode", "penWidth", "modelBox", "openModelButton"}),
    ],
)
def test_tab_shows_where_the_focus_is_at_each_stop(qtbot, window, tab, expected):
    page = getattr(window, tab)
    window.tabs.setCurrentWidget(page)
    if tab == "train_tab":
        qtbot.waitUntil(lambda: page.setup.dataset is not None and not page.setup.is_loading())
    stops = _tab_stops(qtbot, window)
    assert expected <= set(stops)
    # (an empty list has no current item to frame)
    assert [name for name, seen in stops.items() if not seen and name != "runsList"] == []


def test_the_focus_ring_follows_keyboard_focus_only(qtbot):
    from PySide6.QtWidgets import QPushButton, QScrollArea, QVBoxLayout, QWidget

    top = QWidget()
    qtbot.addWidget(top)
    button, area = QPushButton("first"), focus_ring(QScrollArea())
    layout = QVBoxLayout(top)
    layout.addWidget(button)
    layout.addWidget(area)
    top.show()
    top.activateWindow()
    qtbot.waitUntil(top.isActiveWindow)
    ring = area.findChild(QWidget, "focusRing")
    qtbot.mouseClick(area.viewport(), Qt.MouseButton.LeftButton)
    area.setFocus(Qt.FocusReason.MouseFocusReason)
    assert not ring.isVisible()  # a click: the look of a mouse user's window is unchanged
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_Tab)
    assert area.hasFocus() and ring.isVisible()
    assert ring.geometry() == area.rect()
