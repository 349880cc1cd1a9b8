"""A canvas to draw a digit with the mouse, classified while it is drawn.

The strokes live in a fixed 280x280 grayscale image (white ink on black, as MNIST), shown scaled
to the widget. Drawing is coalesced at the source: mouse moves only paint; at most one
``drawing_changed`` per ``interval_ms`` (and one when the stroke ends) carries a copy of the
pixels, so a slow consumer never makes the pen lag.

:class:`DrawPanel` adds the tools: pen width, eraser, undo and clear.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.qt_image import array_to_qimage, qimage_to_array

CANVAS_SIZE = 280
MAX_UNDO = 40


class DrawCanvas(QWidget):
    """The drawing surface. Signals: ``drawing_changed(uint8 (280, 280))``, ``cleared()``,
    ``undo_available(bool)`` when there comes to be a step to undo, or none any more."""

    drawing_changed = Signal(object)
    cleared = Signal()
    undo_available = Signal(bool)

    def __init__(self, parent: QWidget | None = None, *, interval_ms: int = 30) -> None:
        super().__init__(parent)
        self.setObjectName("drawCanvas")
        self.setMinimumSize(160, 160)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the mouse; it is classified as you draw")
        self._image = QImage(CANVAS_SIZE, CANVAS_SIZE, QImage.Format.Format_Grayscale8)
        self._image.fill(0)
        self._undo: list[QImage] = []
        self._last: QPointF | None = None
        self._drawing = False
        self.pen_width = 20
        self.eraser = False
        self._emit_timer = QTimer(self, singleShot=True, interval=interval_ms)
        self._emit_timer.timeout.connect(self._emit_drawing)

    # ----- public API ---------------------------------------------------------------------
    def pixels(self) -> np.ndarray:
        """A copy of the strokes: uint8 (280, 280), white ink on black."""
        return qimage_to_array(self._image)[:, :, 0]

    def is_empty(self) -> bool:
        return not self.pixels().any()

    def clear(self) -> None:
        if not self.is_empty():
            self._push_undo()
        self._image.fill(0)
        self.update()
        self.cleared.emit()

    def undo(self) -> None:
        if not self._undo:
            return
        self._image = self._undo.pop()
        if not self._undo:
            self.undo_available.emit(False)
        self.update()
        if self.is_empty():
            self.cleared.emit()
        else:
            self._emit_drawing()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def set_pixels(self, pixels: np.ndarray) -> None:
        """Replace the strokes by ``pixels`` (uint8 (280, 280)), e.g. for a demo or a test."""
        self._push_undo()
        self._image = array_to_qimage(np.ascontiguousarray(pixels, dtype=np.uint8))
        self.update()
        self._emit_drawing()

    # ----- geometry -----------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(CANVAS_SIZE, CANVAS_SIZE)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    def _target(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_canvas(self, pos: QPointF) -> QPointF:
        target = self._target()
        scale = CANVAS_SIZE / target.width()
        return QPointF((pos.x() - target.x()) * scale, (pos.y() - target.y()) * scale)

    # ----- painting and the mouse ---------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self._target()
        painter.drawImage(target, self._image)
        painter.setPen(QPen(QColor(90, 90, 90), 1))
        painter.drawRect(target.adjusted(0, 0, -1, -1))
        if self.is_empty():
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, "Draw a digit here")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._push_undo()
        self._drawing = True
        self._last = self._to_canvas(event.position())
        self._paint_segment(self._last, self._last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self._drawing or self._last is None:
            return
        point = self._to_canvas(event.position())
        self._paint_segment(self._last, point)
        self._last = point

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if not self._drawing:
            return
        self._drawing = False
        self._last = None
        self._emit_timer.stop()
        self._emit_drawing()  # the finished stroke is always classified

    def _paint_segment(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(0, 0, 0) if self.eraser else QColor(255, 255, 255)
        pen = QPen(
            color,
            self.pen_width,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.RoundCap,
            Qt.PenJoinStyle.RoundJoin,
        )
        painter.setPen(pen)
        if a == b:  # a tap: a zero-length line paints nothing, a point is a round dot
            painter.drawPoint(a)
        else:
            painter.drawLine(a, b)
        painter.end()
        self.update()
        if not self._emit_timer.isActive():
            self._emit_timer.start()

    def _push_undo(self) -> None:
        self._undo.append(self._image.copy())
        del self._undo[:-MAX_UNDO]
        if len(self._undo) == 1:
            self.undo_available.emit(True)

    def _emit_drawing(self) -> None:
        self.drawing_changed.emit(self.pixels())


class DrawPanel(QWidget):
    """The canvas with its tools: pen width, eraser, undo (Ctrl+Z) and clear."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = DrawCanvas(self)
        self.width_spin = QSpinBox(objectName="penWidth", minimum=4, maximum=48, suffix=" px")
        self.width_spin.setValue(self.canvas.pen_width)
        self.width_spin.setToolTip("Pen width on the 280x280 canvas (MNIST strokes are ~20)")
        self.width_spin.valueChanged.connect(self._on_width_changed)
        self.eraser_button = QToolButton(objectName="eraserButton", text="Eraser", checkable=True)
        self.eraser_button.toggled.connect(self._on_eraser_toggled)
        self.undo_button = QToolButton(objectName="undoButton", text="Undo")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.undo_button.setEnabled(False)  # nothing drawn yet
        self.canvas.undo_available.connect(self.undo_button.setEnabled)
        self.clear_button = QToolButton(objectName="clearButton", text="Clear")
        self.clear_button.clicked.connect(self.canvas.clear)
        undo_shortcut = QShortcut(QKeySequence.StandardKey.Undo, self)
        undo_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        undo_shortcut.activated.connect(self.canvas.undo)

        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        tools.addWidget(QLabel("Pen"))
        tools.addWidget(self.width_spin)
        tools.addWidget(self.eraser_button)
        tools.addStretch(1)
        tools.addWidget(self.undo_button)
        tools.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        hint = QLabel(
            "Draw one digit with the mouse; it is classified as you draw, so watch the bars "
            "and the feature maps change stroke by stroke. Ctrl+Z undoes a stroke.\n\n"
            "Or drop a photo or scan of a digit (or of a number, like a ZIP code) anywhere "
            "on this tab, or paste one with Ctrl+V.",
            wordWrap=True,
        )
        hint.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(self.canvas)
        layout.addLayout(tools)
        layout.addWidget(hint)
        layout.addStretch(1)

    def _on_width_changed(self, value: int) -> None:
        self.canvas.pen_width = value

    def _on_eraser_toggled(self, checked: bool) -> None:
        self.canvas.eraser = checked
