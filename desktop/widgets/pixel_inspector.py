"""The article's Figure 5 for one output pixel: input patch × kernel = products, and their sum.

:func:`draw_matrix` paints a small matrix of numbers (also used by the step-through
animation). :class:`PixelInspector` shows an :class:`engine.filters.Inspection`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.colormap import weight_tints
from engine.filters import Inspection, PoolInspection, format_number

TEXT = QColor(32, 33, 36)
NARROW = 640  # narrower than this, a pooled pixel shows only the window (and sums in words)
MUTED = QColor(120, 124, 130)
MARK = QColor(24, 128, 56)  # a winner, a zeroed cell


def short(v: float) -> str:
    """A number in about 5 characters: 255, -12.5, 0.111, 12346, 5.8e+05 (three significant
    digits from 100,000 up)."""
    if float(v).is_integer() and abs(v) < 100000:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.0f}" if abs(v) < 100000 else f"{v:.3g}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return format_number(round(v, 3))


def draw_matrix(
    painter: QPainter,
    rect: QRectF,
    values: np.ndarray,
    *,
    fill: np.ndarray | None = None,
    shown: np.ndarray | None = None,
    highlight: tuple[int, int, int, int] | None = None,
    shaded: np.ndarray | None = None,
    title: str = "",
    max_cell: float = 46.0,
    marks: list[tuple[int, int]] | None = None,
) -> QRectF:
    """Paint ``values`` (h, w) as square cells centred in ``rect``; returns the grid's rect.

    ``fill`` (h, w, 3) uint8 colours the cells (default: a gray ramp of the values);
    ``shown`` (h, w) bool hides the numbers of cells not yet filled; ``highlight`` =
    (row, col, h, w) is outlined; ``shaded`` (h, w) bool marks padding cells with hatching;
    ``marks``: cells ringed in green inside their border (a pooling window's winner, a cell
    ReLU set to 0).
    """
    h, w = values.shape
    title_h = 18.0 if title else 0.0
    cell = min((rect.width()) / w, (rect.height() - title_h) / h)
    cell = max(6.0, min(cell, max_cell))
    gw, gh = cell * w, cell * h
    x0 = rect.x() + (rect.width() - gw) / 2
    y0 = rect.y() + title_h + (rect.height() - title_h - gh) / 2
    if title:
        title_font = QFont(painter.font())
        title_font.setPixelSize(12)
        painter.setFont(title_font)
        painter.setPen(MUTED)
        painter.drawText(  # may overhang the grid: titles are wider than a 3x3 of numbers
            QRectF(rect.x() - 30, y0 - title_h, rect.width() + 60, title_h),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            title,
        )
    texts = [[short(v) for v in row] for row in values]
    font, writes = _cell_font(painter.font(), cell, texts)
    painter.setFont(font)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for r in range(h):
        for c in range(w):
            cr = QRectF(x0 + c * cell, y0 + r * cell, cell, cell)
            if fill is not None:
                color = QColor(*(int(x) for x in fill[r, c]))
            else:
                t = 0.5 if hi == lo else (values[r, c] - lo) / (hi - lo)
                g = int(250 - 70 * t)
                color = QColor(g, g, g)
            if shown is not None and not shown[r, c]:
                color = QColor(245, 246, 248)
            painter.fillRect(cr, color)
            if shaded is not None and shaded[r, c]:
                painter.fillRect(cr, QColor(0, 0, 0, 25))
                painter.fillRect(cr, Qt.BrushStyle.BDiagPattern)
            painter.setPen(QPen(QColor(200, 203, 208), 1))
            painter.drawRect(cr)
            if (shown is None or shown[r, c]) and writes:
                lum = color.red() * 0.3 + color.green() * 0.59 + color.blue() * 0.11
                painter.setPen(TEXT if lum > 120 else QColor(250, 250, 250))
                painter.drawText(cr, Qt.AlignmentFlag.AlignCenter, texts[r][c])
    for mr, mc in marks or ():
        painter.setPen(QPen(MARK, 3))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(x0 + mc * cell + 3, y0 + mr * cell + 3, cell - 6, cell - 6))
    if highlight is not None:
        hr, hc, hh, hw = highlight
        pen = QPen(QColor(230, 120, 0), 3)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(x0 + hc * cell, y0 + hr * cell, hw * cell, hh * cell))
    return QRectF(x0, y0, gw, gh)


def _cell_font(base: QFont, cell: float, texts: list[list[str]]) -> tuple[QFont, bool]:
    """The font for numbers in ``cell``-pixel cells, and whether they are written at all:
    every number keeps 2 pixels to spare each side (0.111 0.111, never 0.1110.111); tiny
    cells, or numbers that even 6-pixel digits cannot fit, show colours only."""
    font = QFont(base)
    font.setPixelSize(max(7, int(cell * (0.36 if len(texts[0]) <= 7 else 0.3))))
    room = cell - 4

    def widest() -> float:
        metrics = QFontMetricsF(font)
        return max(metrics.horizontalAdvance(t) for row in texts for t in row)

    if widest() > room:  # Box blur's 0.111 in a 22-pixel cell: smaller digits
        font.setPixelSize(max(6, int(font.pixelSize() * room / widest())))
    return font, cell >= 16 and widest() <= room


def patch_colors(patch: np.ndarray) -> np.ndarray:
    """Input pixels coloured as they look (0 black .. 255 white)."""
    g = np.clip(patch, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


class PixelInspector(QWidget):
    """Shows patch × weights = products, Σ = total (+ offset) for the hovered result pixel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pixelInspector")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(130)
        self._inspection: Inspection | None = None
        self._caption = ""
        self._relu_value: float | None = None
        self._pool: PoolInspection | None = None

    def sizeHint(self) -> QSize:
        return QSize(560, 150)

    def inspection(self) -> Inspection | None:
        return self._inspection

    def pool(self) -> PoolInspection | None:
        """The pooling window shown beside the convolution (None when not pooled)."""
        return self._pool

    def relu_value(self) -> float | None:
        return self._relu_value

    def result_lines(self) -> list[str]:
        """The text written right of the products: sum, offset, ReLU (what a user reads)."""
        ins = self._inspection
        if ins is None:
            return []
        lines = [f"sum = {short(ins.total)}"]
        if ins.value != ins.total:
            lines.append(f"+ offset {short(ins.value - ins.total)} = {short(ins.value)}")
        if self._relu_value is not None:
            lines.append(f"after ReLU: {short(self._relu_value)}")
        return lines

    def pool_lines(self) -> list[str]:
        pool = self._pool
        if pool is None:
            return []
        n = pool.window.values.shape[0]
        what = f"{pool.kind} of the {n}×{n} window"
        return [what, f"= {short(pool.window.result)}"]

    def show_inspection(
        self,
        inspection: Inspection | None,
        caption: str = "",
        *,
        relu_value: float | None = None,
        pool: PoolInspection | None = None,
    ) -> None:
        self._inspection = inspection
        self._caption = caption
        self.setToolTip(caption)  # the whole of it, when the painted one is shortened
        self._relu_value = relu_value if inspection is not None else None
        self._pool = pool if inspection is not None else None
        self.update()

    def shown_caption(self) -> str:
        """The caption as painted: shortened with … to the room left of a pooling window."""
        room = self.width() - 16.0
        if self._pool is not None and self.width() >= NARROW:
            room -= max(190.0, self.width() * 0.3)
        metrics = QFontMetricsF(self.font())
        return metrics.elidedText(self._caption, Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(self.rect(), QColor(255, 255, 255))
        ins = self._inspection
        if ins is None:
            painter.setPen(MUTED)
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Hover the result to see how one output pixel is computed:\n"
                "the input patch under the kernel × the weights = the products; their sum "
                "is the output value.",
            )
            painter.end()
            return
        W, H = self.width(), self.height()
        if self._pool is not None:
            narrow = W < NARROW
            pool_w = W if narrow else max(190.0, W * 0.3)
            self._paint_pool(painter, QRectF(W - pool_w, 0, pool_w, H), narrow)
            if narrow:  # no room for patch × weights: the window, and the sums in words
                painter.end()
                return
            W = int(W - pool_w)
        caption_h = 20.0
        sign_w = 26.0
        sum_w = min(170.0, max(120.0, W * 0.22))
        mw = (W - sum_w - 3 * sign_w - 16) / 3
        top = QRectF(8, caption_h + 2, mw, H - caption_h - 8)
        painter.setPen(TEXT)
        painter.setFont(self.font())  # the pooling window's part set its own
        painter.drawText(
            QRectF(8, 2, W - 16, caption_h), Qt.AlignmentFlag.AlignVCenter, self.shown_caption()
        )
        x = 8.0
        parts = [
            (ins.patch, patch_colors(ins.patch), "input patch"),
            (ins.weights, weight_tints(ins.weights), "weights"),
            (ins.products, weight_tints(ins.products), "products"),
        ]
        big = QFont(painter.font())
        for i, (values, fill, title) in enumerate(parts):
            draw_matrix(
                painter, QRectF(x, top.y(), mw, top.height()), values, fill=fill, title=title
            )
            x += mw
            sign = "×" if i == 0 else "=" if i == 1 else "Σ"
            big.setPixelSize(20)
            painter.setFont(big)
            painter.setPen(MUTED)
            painter.drawText(
                QRectF(x, top.y(), sign_w, top.height()), Qt.AlignmentFlag.AlignCenter, sign
            )
            x += sign_w
        big.setPixelSize(15)
        painter.setFont(big)
        painter.setPen(TEXT)
        if self._relu_value is not None:
            big.setPixelSize(13)
            painter.setFont(big)
        painter.drawText(
            QRectF(x, top.y(), W - x - 4, top.height()),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
            "\n".join(self.result_lines()),
        )
        painter.end()

    def _paint_pool(self, painter: QPainter, rect: QRectF, narrow: bool) -> None:
        """The pooling window (Figure 10): its values, the winner outlined, the result;
        ``narrow``: the whole width, with the winner's convolution in words on top."""
        pool = self._pool
        assert pool is not None
        painter.setPen(QPen(QColor(220, 223, 228), 1))
        painter.drawLine(rect.topLeft(), rect.bottomLeft())
        win = pool.window
        text_w = 130.0 if narrow else 100.0
        title = "after ReLU" if pool.relu else "conv values"
        grid = QRectF(rect.x() + 8, rect.y() + 22, rect.width() - text_w - 12, rect.height() - 28)
        highlight = (*win.winner, 1, 1) if win.winner is not None else None
        draw_matrix(
            painter,
            grid,
            win.values,
            fill=weight_tints(win.values),
            highlight=highlight,
            title=title,
            max_cell=40.0,
        )
        font = QFont(painter.font())
        font.setPixelSize(13)
        painter.setFont(font)
        painter.setPen(TEXT)
        painter.drawText(
            QRectF(rect.x() + 8, rect.y() + 2, rect.width() - 16, 18),
            Qt.AlignmentFlag.AlignVCenter,
            f"{pool.kind} pooling"
            + (" · winner: " + " · ".join(self.result_lines()) if narrow else ""),
        )
        painter.drawText(
            QRectF(rect.right() - text_w, grid.y(), text_w - 4, grid.height()),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
            "\n".join(self.pool_lines()),
        )
