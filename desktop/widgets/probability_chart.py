"""A bar chart of the class probabilities, the top class highlighted (as Teachable Machine).

Painted directly with QPainter: ten bars redraw in well under a millisecond, so the chart can
follow the pen on the drawing canvas. Many classes (up to 1,000): bars narrower than a few pixels
share one track, only bars at least half a pixel tall are drawn, names are written only where
they fit (the top class's always, whole), and the tooltip lists the most probable classes.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.widgets import plain_tip
from engine.inference import most_probable

TOP_COLOR = QColor(230, 120, 30)
BAR_COLOR = QColor(90, 130, 190)
TRACK_COLOR = QColor(128, 128, 128, 40)
TIP_CLASSES = 12  # the tooltip lists every class up to this many, else the most probable ones
TRACK_FROM = 3.0  # bars in slots at least this wide get a track each; narrower ones share one


class ProbabilityChart(QWidget):
    """Vertical bars, one per class, height = probability (0..1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probabilityChart")
        self.setMinimumSize(220, 130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._probs = np.zeros(0, dtype=np.float64)
        self._classes: list[str] = []

    # ----- data ---------------------------------------------------------------------------
    def set_probabilities(self, probs: np.ndarray, classes: list[str]) -> None:
        """Show ``probs`` (K,), which should sum to 1, for class names ``classes`` (K)."""
        probs = np.asarray(probs, dtype=np.float64).ravel()
        if len(classes) != probs.size:
            raise ValueError(f"{probs.size} probabilities for {len(classes)} classes")
        self._probs = probs.copy()
        self._classes = [str(c) for c in classes]
        self.setToolTip(plain_tip(self._tip()))
        self.update()

    def _tip(self) -> str:
        """Every class and its probability; the most probable ones when there are many."""
        k = len(self._classes)
        if k <= TIP_CLASSES:
            return "\n".join(
                f"{c}: {p:.1%}" for c, p in zip(self._classes, self._probs, strict=True)
            )
        shown = most_probable(self._probs, TIP_CLASSES - 2)
        lines = [f"{self._classes[i]}: {self._probs[i]:.1%}" for i in shown]
        return "\n".join([f"the {len(shown)} most probable of {k:,} classes:", *lines, "…"])

    def clear(self) -> None:
        self._probs = np.zeros(0, dtype=np.float64)
        self.setToolTip("")
        self.update()

    def probabilities(self) -> np.ndarray:
        """A copy of the probabilities shown (empty when nothing is shown)."""
        return self._probs.copy()

    def classes(self) -> list[str]:
        return list(self._classes)

    def highlighted_class(self) -> str | None:
        """The class drawn highlighted (the most probable one), or None."""
        if self._probs.size == 0:
            return None
        return self._classes[int(np.argmax(self._probs))]

    # ----- painting -----------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(320, 170)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_color = self.palette().windowText().color()
        metrics = painter.fontMetrics()
        line = metrics.height()
        if self._probs.size == 0:
            painter.setPen(text_color)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No prediction yet")
            return
        k = self._probs.size
        top = int(np.argmax(self._probs))
        left, right = 4.0, self.width() - 4.0
        plot_top, plot_bottom = line + 6.0, self.height() - line - 6.0
        slot = (right - left) / k
        self._paint_bars(painter, QRectF(left, plot_top, right - left, plot_bottom - plot_top), top)
        bold = QFont(painter.font())
        bold.setBold(True)
        elide = Qt.TextElideMode.ElideRight
        top_name = self._classes[top]
        if slot >= metrics.horizontalAdvance("00") + 2:  # every name, elided to its slot
            painter.setPen(text_color)
            for i, name in enumerate(self._classes):
                label = QRectF(left + i * slot, plot_bottom + 3, slot, line)
                name = metrics.elidedText(name, elide, int(slot) - 2)  # "T-shirt/top" -> "T-s…"
                if i != top:
                    painter.drawText(label, Qt.AlignmentFlag.AlignCenter, name)
            top_name = QFontMetrics(bold).elidedText(top_name, elide, int(slot) - 2)
        # the top class's name under its bar (whole when the others are left out), in the chart
        name_w = max(slot, QFontMetrics(bold).horizontalAdvance(top_name) + 4.0)
        x_name = left + top * slot + slot / 2 - name_w / 2
        x_name = min(max(x_name, 0.0), max(0.0, self.width() - name_w))
        painter.setFont(bold)
        painter.setPen(TOP_COLOR)
        painter.drawText(
            QRectF(x_name, plot_bottom + 3, name_w, line), Qt.AlignmentFlag.AlignCenter, top_name
        )
        x_top = left + top * slot + slot / 2
        text = f"{self._probs[top]:.1%}"
        width = metrics.horizontalAdvance(text) + 8
        x_text = min(max(x_top - width / 2, 0.0), self.width() - width)
        y_text = plot_bottom - self._probs[top] * (plot_bottom - plot_top) - line - 2
        painter.drawText(
            QRectF(x_text, max(0.0, y_text), width, line), Qt.AlignmentFlag.AlignCenter, text
        )

    def _paint_bars(self, painter: QPainter, plot: QRectF, top: int) -> None:
        """A bar per class in ``plot``, each on its track; in slots narrower than TRACK_FROM
        one track for all (a thousand would be a grey wall) and only bars half a pixel tall."""
        k = self._probs.size
        slot = plot.width() / k
        bar_w = max(2.0, slot * 0.7)
        heights = np.clip(self._probs, 0.0, 1.0) * plot.height()
        if slot < TRACK_FROM:
            painter.fillRect(plot, TRACK_COLOR)
            drawn = [int(i) for i in np.flatnonzero(heights >= 0.5) if i != top]
        else:
            drawn = [i for i in range(k) if i != top]
            for i in range(k):
                x = plot.left() + i * slot + (slot - bar_w) / 2
                painter.fillRect(QRectF(x, plot.top(), bar_w, plot.height()), TRACK_COLOR)
        for i in [*drawn, top]:  # the top bar last, over its neighbours
            x = plot.left() + i * slot + (slot - bar_w) / 2
            color = TOP_COLOR if i == top else BAR_COLOR
            painter.fillRect(QRectF(x, plot.bottom() - heights[i], bar_w, heights[i]), color)
