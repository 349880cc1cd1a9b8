"""The app with a larger font than the default (a desktop's font setting, or a high-DPI
screen with its fonts enlarged): nothing is cut at the right of the Filters tab's columns."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QScrollArea,
    QWidget,
)


@pytest.fixture
def large_font(qapp):
    """The application's font half as large again, for the test."""
    normal = qapp.font()
    font = qapp.font()
    font.setPointSizeF(font.pointSizeF() * 1.5)
    qapp.setFont(font)
    yield
    qapp.setFont(normal)


def _cut_controls(tab) -> list[str]:
    """The controls of the Filters tab's left column that stick out of its visible width."""
    controls = tab.findChild(QWidget, "filterControls")
    viewport = tab.findChild(QScrollArea).viewport()
    cut = []
    for kind in (QAbstractButton, QComboBox, QAbstractSpinBox):
        for w in controls.findChildren(kind):
            if w.isVisible() and w.mapTo(viewport, QPoint(w.width(), 0)).x() > viewport.width():
                cut.append(w.objectName() or getattr(w, "text", lambda: "")() or type(w).__name__)
    return cut


def _open(qtbot, settings, size):
    from desktop.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitUntil(lambda: win.filters_tab.result() is not None, timeout=10000)
    return win


def test_filters_controls_are_whole_with_a_large_font(qtbot, settings, large_font):
    win = _open(qtbot, settings, (1400, 900))
    assert _cut_controls(win.filters_tab) == []
    title = next(
        w for w in win.filters_tab.findChildren(QLabel) if w.text() == "Show signed results as"
    )
    assert title.width() >= title.minimumSizeHint().width()  # wrapped, not cut
    assert title.height() >= title.heightForWidth(title.width())


def test_filters_controls_keep_their_width_with_the_usual_font(qtbot, settings):
    win = _open(qtbot, settings, (1400, 900))
    assert _cut_controls(win.filters_tab) == []
    assert win.filters_tab.findChild(QScrollArea).maximumWidth() == 380
    assert QApplication.font().pointSizeF() < 13
