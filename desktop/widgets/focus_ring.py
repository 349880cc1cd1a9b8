"""A visible keyboard focus for views that the style draws none for.

Tab reaches the image views, the architecture diagram and the scrolled pictures of the live
panel (their arrow and page keys pan or scroll them), but the style draws no focus frame around
a scroll area or a graphics view: a keyboard user tabbed into a blank. :func:`focus_ring` puts
a ring in the palette's highlight colour around such a widget while it has the focus, after
keyboard use as the style's own focus frames (not after a click of the mouse); it lies over the
widget and changes neither its size nor its look otherwise.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)
RING_WIDTH = 2


class _Ring(QWidget):
    def __init__(self, target: QWidget) -> None:
        super().__init__(target, objectName="focusRing")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide()
        target.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if isinstance(watched, QWidget) and kind in (
            QEvent.Type.FocusIn,
            QEvent.Type.FocusOut,
            QEvent.Type.Resize,
        ):
            keyboard = watched.window().testAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange)
            self.setGeometry(watched.rect())
            self.setVisible(watched.hasFocus() and keyboard)
            self.raise_()
        return False

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), RING_WIDTH))
        half = RING_WIDTH / 2
        painter.drawRect(QRectF(self.rect()).adjusted(half, half, -half, -half))


def focus_ring(widget: W) -> W:
    """``widget``, with a ring around it while it has the keyboard focus."""
    _Ring(widget)
    return widget
