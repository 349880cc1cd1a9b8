"""One small image (the 28x28 the network sees, the occlusion map) enlarged with crisp pixels:
:class:`PixelView`."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from desktop.qt_image import array_to_qimage


class PixelView(QWidget):
    """A small uint8 image (gray or RGB) enlarged with crisp pixels and a caption below."""

    def __init__(self, caption: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(72, 72 + self.fontMetrics().height())
        self._image: QImage | None = None
        self._array: np.ndarray | None = None
        self.caption = caption

    def set_array(self, array: np.ndarray | None) -> None:
        self._array = None if array is None else np.array(array, dtype=np.uint8)
        self._image = None if array is None else array_to_qimage(self._array)
        self.update()

    def array(self) -> np.ndarray | None:
        return None if self._array is None else self._array.copy()

    def sizeHint(self) -> QSize:
        return QSize(140, 140 + self.fontMetrics().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        line = painter.fontMetrics().height()
        side = max(10, min(self.width(), self.height() - line - 2))
        frame = QRectF((self.width() - side) / 2, 0, side, side)
        painter.fillRect(frame, QColor(0, 0, 0))
        if self._image is not None:
            w, h = self._image.width(), self._image.height()
            scale = side / max(w, h)
            target = QRectF(
                frame.x() + (side - w * scale) / 2, (side - h * scale) / 2, w * scale, h * scale
            )
            # enlarged: crisp pixels (what the network sees); reduced: smooth
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1)
            painter.drawImage(target, self._image)
        painter.setPen(QPen(QColor(110, 110, 110), 1))
        painter.drawRect(frame.adjusted(0, 0, -1, -1))
        painter.setPen(self.palette().windowText().color())
        painter.drawText(
            QRectF(0, side + 2, self.width(), line),
            Qt.AlignmentFlag.AlignCenter,
            painter.fontMetrics().elidedText(
                self.caption, Qt.TextElideMode.ElideRight, self.width()
            ),
        )
