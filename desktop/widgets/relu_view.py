"""The article's Figure 8: the feature map before ReLU, the ReLU curve y = max(0, x), and the
map after ReLU, side by side on one colour scale (blue < 0 < red). Hovering either map marks
that pixel's value on the curve and outlines the pixel in the other map.

A view: :meth:`ReluView.show_figure` takes an :class:`engine.filters.ReluFigure` (the maps,
pictures and curve the engine computed off the GUI thread).
Signal: ``value_marked(float, float)`` (x, max(0, x)) when a hovered pixel is marked.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from desktop.filter_render import ordinal
from desktop.widgets.image_view import ImageView
from desktop.widgets.pixel_inspector import MUTED, TEXT, short
from desktop.widgets.tone import set_tone
from engine.filters import ReluFigure

CURVE = QColor(217, 48, 37)
POINT = QColor(24, 128, 56)


class ReluCurve(QWidget):
    """y = max(0, x) over the feature map's value range, with one point marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reluCurve")
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self._figure: ReluFigure | None = None
        self._point: tuple[float, float] | None = None

    def sizeHint(self) -> QSize:
        return QSize(260, 260)

    def set_figure(self, figure: ReluFigure | None) -> None:
        self._figure = figure
        self._point = None
        self.update()

    def set_point(self, point: tuple[float, float] | None) -> None:
        self._point = point
        self.update()

    def point(self) -> tuple[float, float] | None:
        return self._point

    def _plot_rect(self) -> QRectF:
        side = max(min(self.width() - 24.0, self.height() - 64.0), 40.0)
        top = max(22.0, (self.height() - side - 42.0) / 2)
        return QRectF((self.width() - side) / 2, top, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        fig = self._figure
        if fig is None:
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = self._plot_rect()
        lim = fig.limit
        y_lo = -0.1 * lim  # a little room under y = 0 so the flat half is seen

        def at(x: float, y: float) -> QPointF:
            return QPointF(
                r.left() + (x + lim) / (2 * lim) * r.width(),
                r.bottom() - (y - y_lo) / (lim - y_lo) * r.height(),
            )

        p.setPen(QPen(QColor(200, 203, 208), 1))
        p.drawLine(at(-lim, 0), at(lim, 0))  # x axis
        p.drawLine(at(0, y_lo), at(0, lim))  # y axis
        p.setPen(QPen(CURVE, 3))
        p.drawPolyline(QPolygonF([at(float(x), float(y)) for x, y in fig.curve]))
        font = QFont(p.font())
        font.setPixelSize(12)
        p.setFont(font)
        p.setPen(TEXT)
        p.drawText(
            QRectF(0, r.top() - 22, self.width(), 20),
            Qt.AlignmentFlag.AlignCenter,
            "ReLU: y = max(0, x)",
        )
        p.setPen(MUTED)
        p.drawText(
            QRectF(r.left(), r.bottom() + 2, r.width(), 18), Qt.AlignmentFlag.AlignLeft, short(-lim)
        )
        p.drawText(
            QRectF(r.left(), r.bottom() + 2, r.width(), 18), Qt.AlignmentFlag.AlignRight, short(lim)
        )
        p.drawText(
            QRectF(r.left(), r.bottom() + 2, r.width(), 18), Qt.AlignmentFlag.AlignHCenter, "x"
        )
        if self._point is not None:
            x, y = self._point
            dot = at(x, y)
            p.setPen(QPen(POINT, 1, Qt.PenStyle.DashLine))
            p.drawLine(at(x, y_lo), dot)
            p.drawLine(at(-lim, y), dot)
            p.setPen(QPen(POINT, 2))
            p.setBrush(POINT)
            p.drawEllipse(dot, 5, 5)
            p.setPen(TEXT)
            p.drawText(
                QRectF(0, r.bottom() + 20, self.width(), 18),
                Qt.AlignmentFlag.AlignCenter,
                f"x = {short(x)}  →  y = {short(y)}",
            )
        p.end()


class ReluView(QWidget):
    value_marked = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reluFigure")
        self._figure: ReluFigure | None = None
        intro = QLabel(
            "<b>ReLU</b> (Figure 8) replaces every negative value of a feature map by 0 and "
            "keeps the others: y = max(0, x). Blue is negative, red positive, white 0, on one "
            "scale for both maps. Hover a map to follow one pixel through the curve."
        )
        intro.setWordWrap(True)
        self.before_view = ImageView(placeholder="The feature map appears here")
        self.before_view.setObjectName("reluBeforeView")
        self.after_view = ImageView(placeholder="")
        self.after_view.setObjectName("reluAfterView")
        self.before_view.link(self.after_view)
        self.curve = ReluCurve()
        self.summary = QLabel(objectName="reluSummary")
        self.summary.setWordWrap(True)
        self.hover_label = QLabel(objectName="reluHover")
        set_tone(self.hover_label, "QLabel { color: #3c4043; }")
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addLayout(self._pane("Feature map (convolution)", self.before_view), 3)
        row.addWidget(self.curve, 2)
        row.addLayout(self._pane("After ReLU (rectified feature map)", self.after_view), 3)
        v = QVBoxLayout(self)
        v.setContentsMargins(6, 6, 6, 6)
        v.addWidget(intro)
        v.addLayout(row, 1)
        v.addWidget(self.summary)
        v.addWidget(self.hover_label)
        for view in (self.before_view, self.after_view):
            view.pixel_hovered.connect(self._on_view_pixel_hovered)

    @staticmethod
    def _pane(caption: str, view: ImageView) -> QVBoxLayout:
        pane = QVBoxLayout()
        pane.setSpacing(3)
        label = QLabel(caption)
        set_tone(label, "QLabel { font-weight: 600; color: #3c4043; }")
        pane.addWidget(label)
        pane.addWidget(view, 1)
        return pane

    # ----- what the tab calls ------------------------------------------------------------
    def figure(self) -> ReluFigure | None:
        return self._figure

    def show_figure(self, figure: ReluFigure | None, what: str = "") -> None:
        """Show ``figure`` (None clears); ``what`` names the kernel in the summary."""
        self._figure = figure
        self.curve.set_figure(figure)
        self.hover_label.setText("")
        if figure is None:
            self.before_view.clear()
            self.after_view.clear()
            self.summary.setText("")
            return
        self.before_view.set_image(figure.before_picture, values=figure.before)
        self.after_view.set_image(figure.after_picture, values=figure.after)
        n = figure.before.size
        every = "" if figure.step == 1 else f" (every {ordinal(figure.step)} pixel shown)"
        self.summary.setText(
            f"{what}{figure.zeroed:,} of {n:,} values ({100 * figure.zeroed / n:.0f}%) are "
            f"negative and become 0; values run from {short(float(figure.before.min()))} to "
            f"{short(float(figure.before.max()))}{every}."
        )

    def mark(self, row: int, col: int) -> tuple[float, float] | None:
        """Mark figure pixel ``(row, col)`` on the curve and in both maps."""
        fig = self._figure
        point = None if fig is None else fig.value_at(row, col)
        self.curve.set_point(point)
        for view in (self.before_view, self.after_view):
            view.set_marker(None if point is None else (row, col, 1, 1))
        if point is None:
            self.hover_label.setText("")
            return None
        x, y = point
        step = fig.step if fig is not None else 1
        verdict = "negative → 0" if x < 0 else "kept"
        self.hover_label.setText(
            f"Feature map x {col * step}, y {row * step}: {short(x)} → ReLU → {short(y)} "
            f"({verdict})"
        )
        self.value_marked.emit(x, y)
        return point

    def _on_view_pixel_hovered(self, row: int, col: int) -> None:
        self.mark(row, col)
