"""The connection lines of a hovered fully connected unit (the article's Figure 20), painted
the same way in the Classify tab's network view and the Train tab's live view: red for a
positive weight, blue for a negative one (:func:`engine.colormap.sign_colours`), wider for a
stronger one, a small square on the other unit and its weight written beside it where there is
room (the views' tooltips list them all)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from engine.colormap import sign_colours

#: One drawn connection: ("in" or "out", row, unit, weight, from, to).
Line = tuple[str, str, tuple[int, ...], float, QPointF, QPointF]


def paint_links(painter: QPainter, lines: list[Line], right: float) -> None:
    """Paint ``lines``; weight labels stay left of ``right`` (the widget's width)."""
    if not lines:
        return
    weights = np.array([line[3] for line in lines])
    peak = float(np.abs(weights).max()) or 1.0
    metrics = painter.fontMetrics()
    taken: list[QRectF] = []
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for (_, _, _, weight, start, end), rgb in zip(lines, sign_colours(weights), strict=True):
        colour = QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))
        painter.setPen(QPen(colour, 1.0 + 3.0 * abs(weight) / peak))
        painter.drawLine(start, end)
        painter.drawRect(QRectF(end.x() - 3, end.y() - 3, 6, 6))
        text = f"{weight:+.2f}"
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 6, metrics.height())
        box.moveBottomLeft(QPointF(end.x() + 4, end.y() - 3))
        if box.right() > right:
            box.moveRight(end.x() - 4)
        if not any(box.intersects(t) for t in taken):  # crowded ends: the tooltip lists all
            taken.append(box)
            painter.fillRect(box, QColor(255, 255, 255, 225))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()
