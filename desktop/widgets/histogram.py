"""A small histogram of output values, with the 0..255 window the display shows.

``Histogram.set_data(counts, edges, display_range=(0, 255))``: bars for ``counts`` over
``edges``; values outside ``display_range`` are drawn in a muted colour (they are clipped on
screen), and a zero line is drawn when 0 lies inside the range.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.widgets.pixel_inspector import short


class Histogram(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("histogram")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(96)
        self._counts: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self._window: tuple[float, float] | None = (0.0, 255.0)

    def sizeHint(self) -> QSize:
        return QSize(280, 96)

    def set_data(
        self,
        counts: np.ndarray,
        edges: np.ndarray,
        display_range: tuple[float, float] | None = (0.0, 255.0),
    ) -> None:
        self._counts = np.asarray(counts, dtype=np.float64)
        self._edges = np.asarray(edges, dtype=np.float64)
        self._window = display_range
        self.update()

    def counts(self) -> np.ndarray | None:
        return self._counts

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        p.setPen(QPen(QColor(210, 213, 218), 1))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if self._counts is None or self._edges is None or not self._counts.sum():
            p.end()
            return
        label_h = 16.0
        plot = QRectF(6, 6, self.width() - 12, self.height() - 12 - label_h)
        lo, hi = float(self._edges[0]), float(self._edges[-1])
        span = (hi - lo) or 1.0
        peak = np.log1p(self._counts).max() or 1.0
        n = len(self._counts)
        bw = plot.width() / n
        for i, c in enumerate(self._counts):
            if not c:
                continue
            centre = (self._edges[i] + self._edges[i + 1]) / 2
            inside = self._window is None or self._window[0] <= centre <= self._window[1]
            color = QColor(66, 133, 244) if inside else QColor(176, 190, 210)
            bh = plot.height() * np.log1p(c) / peak
            p.fillRect(QRectF(plot.x() + i * bw, plot.bottom() - bh, max(bw - 1, 1), bh), color)
        if lo < 0 < hi:
            x = plot.x() + plot.width() * (0 - lo) / span
            p.setPen(QPen(QColor(60, 64, 67), 1, Qt.PenStyle.DashLine))
            p.drawLine(int(x), int(plot.top()), int(x), int(plot.bottom()))
        p.setPen(QColor(95, 99, 104))
        labels = QRectF(plot.x(), plot.bottom() + 2, plot.width(), label_h)
        p.drawText(labels, Qt.AlignmentFlag.AlignLeft, short(lo))
        p.drawText(labels, Qt.AlignmentFlag.AlignRight, short(hi))
        if self.width() >= 260:  # room between the two end labels
            text = "log counts · dashed: 0" if lo < 0 < hi else "log counts"
            p.drawText(labels, Qt.AlignmentFlag.AlignHCenter, text)
        p.end()
