"""Learned convolution kernels as small blue-white-red images (blue < 0 < red).

One block per layer: a row per input channel, a column per filter; a layer that takes colour
(3 channels) first shows each filter in colour (``kernel_colours``). Titles wrap to the width.
Clicking a kernel emits ``kernel_clicked(layer, filter_index, channel)``; hovering reports its
weight range. In picking mode (``set_picking(True)``, while the step explainer is open) a click
picks one weight of any kernel instead: ``weight_clicked(layer, (filter, channel, row, col))``,
and the picked weight is outlined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from desktop.qt_image import grid_to_qimage
from engine.visualize import kernel_colours, kernel_images, kernel_limit

MARGIN = 8
GAP = 3
WRAP = Qt.TextFlag.TextWordWrap
COLOUR_TILE = 26  # a colour filter's tile at least this wide (its filters wrap to more lines)
# a wide layer shows its first filters and input channels (its title says so): 512 x 512
# kernels were 262,144 tiles, 3 s per weight update and a page 80,000 pixels tall
MAX_FILTERS, MAX_CHANNELS = 64, 32


@dataclass
class _Tile:
    """One kernel on screen: drawn at ``rect`` from ``source`` of its layer's ``atlas`` (every
    kernel of the layer in one image: one conversion per layer, not one per kernel)."""

    rect: QRectF
    layer: str
    index: int
    channel: int  # -1: the filter's colour tile
    atlas: QImage
    source: QRectF
    cells: tuple[int, int] = (1, 1)  # the kernel's (KH, KW)


def _shown_part(filters: int, channels: int) -> str:
    """What a title adds when only part of a wide layer is drawn ("" when all of it is)."""
    parts = []
    if filters > MAX_FILTERS:
        parts.append(f"filters 1-{MAX_FILTERS}")
    if channels > MAX_CHANNELS:
        parts.append(f"input channels 1-{MAX_CHANNELS}")
    return f" · shown: {' and '.join(parts)}" if parts else ""


class FilterView(QWidget):
    """Paints the kernels of some conv layers (``set_filters``)."""

    kernel_clicked = Signal(str, int, int)
    weight_clicked = Signal(str, tuple)
    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="filterView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._layers: list[tuple[str, np.ndarray]] = []
        self._tiles: list[_Tile] = []
        self._titles: list[tuple[QRectF, str]] = []
        self._height = 80
        self._hover = ""
        self.clickable_layers: tuple[str, ...] = ()
        self.picking = False
        self.picked: tuple[str, tuple[int, ...]] | None = None  # (layer, (f, c, row, col))

    def set_picking(self, on: bool) -> None:
        """Clicks pick a weight (True) or send a first-layer filter to the Filters tab."""
        self.picking = on
        self._relayout()
        self.update()

    def set_picked(self, layer: str, index: tuple[int, ...] | None) -> None:
        """Outline weight ``index`` (filter, channel, row, col) of ``layer`` (None: none)."""
        self.picked = None if index is None else (layer, tuple(index))
        self.update()

    def weight_rect(self, layer: str, index: tuple[int, ...]) -> QRectF | None:
        """Where weight (filter, channel, row, col) of ``layer`` is drawn, if it is shown."""
        f, c, row, col = index
        for t in self._tiles:
            if (t.layer, t.index, t.channel) == (layer, f, c):
                kh, kw = t.cells
                w, h = t.rect.width() / kw, t.rect.height() / kh
                return QRectF(t.rect.left() + col * w, t.rect.top() + row * h, w, h)
        return None

    def set_filters(self, layers: list[tuple[str, np.ndarray]], clickable: tuple[str, ...] = ()):
        """``layers``: (name, weights (F, C, KH, KW)); kernels of ``clickable`` layers click."""
        self._layers = layers
        self.clickable_layers = clickable
        self._relayout()
        self.update()

    def tiles(self) -> list[tuple[str, int, int, QRectF]]:
        return [(t.layer, t.index, t.channel, t.rect) for t in self._tiles]

    def titles(self) -> list[tuple[QRectF, str]]:
        """The title lines drawn, with where they are."""
        return list(self._titles)

    def _title(self, y: float, avail: int, text: str) -> float:
        """Lay out one wrapped title line at ``y``; returns the y below it."""
        height = QFontMetrics(self.font()).boundingRect(QRect(0, 0, avail, 1000), WRAP, text)
        self._titles.append((QRectF(MARGIN, y, avail, height.height() + 2), text))
        return y + height.height() + 2

    def _relayout(self) -> None:
        self._tiles, self._titles = [], []
        avail = max(100, self.width() - 2 * MARGIN)
        y = MARGIN
        for name, layer in self._layers:
            f, c, kh, kw = layer.shape
            limit = kernel_limit(layer)  # the whole layer's scale, also for a part of it
            weights = layer[:MAX_FILTERS, :MAX_CHANNELS]
            images, _ = kernel_images(weights, limit)
            title = f"{name}: {f} filters of {c}×{kh}×{kw} · blue < 0 < red, ±{limit:.2g}"
            y = self._title(y, avail, title + _shown_part(f, c))
            if self.picking:
                y = self._title(y, avail, "click a weight to follow it through the step")
            elif name in self.clickable_layers:
                y = self._title(y, avail, "click a filter to try it on a photo in the Filters tab")
            y += 2
            biggest = 44 if c in (1, 3) else 22
            shown = len(weights)  # the filters drawn (f in the title counts them all)
            tile = max(8, min(biggest, (avail - GAP * (shown - 1)) // shown))
            if c == 3:  # each filter in colour, then its channels (R, G, B) in blue-white-red
                y = self._colour_tiles(name, weights, limit, y, avail, max(COLOUR_TILE, tile))
                y = self._title(y, avail, "the same filters channel by channel: rows R, G, B")
                tile = max(8, tile // 2)
            y = self._channel_tiles(name, weights, images, y, avail, tile)
        height = int(max(60, y + MARGIN))
        if height != self._height:  # a relayout of the page repaints every widget on it
            self._height = height
            self.updateGeometry()

    def _colour_tiles(
        self, name: str, weights: np.ndarray, limit: float, y: float, avail: int, tile: int
    ) -> float:
        """Each filter of a colour layer as one colour tile, in lines of ``avail`` (a first
        layer's colours are what a reader looks for: they never shrink below COLOUR_TILE);
        returns the y below them."""
        colours = kernel_colours(weights, limit)  # (F, KH, KW, 3)
        f, kh, kw, _ = colours.shape
        atlas = grid_to_qimage(colours[None])
        per_line = max(1, (avail + GAP) // (tile + GAP))
        for k in range(f):
            row, col = divmod(k, per_line)
            rect = QRectF(MARGIN + col * (tile + GAP), y + row * (tile + GAP), tile, tile)
            source = QRectF(k * kw, 0, kw, kh)
            self._tiles.append(_Tile(rect, name, k, -1, atlas, source, (kh, kw)))
        lines = -(-f // per_line)
        return y + lines * (tile + GAP) + 4

    def _channel_tiles(
        self, name: str, weights: np.ndarray, images: np.ndarray, y: float, avail: int, tile: int
    ) -> float:
        """A row per input channel, a column per filter; when the filters do not fit the width
        they go on in a second group of rows below (filters 1..n, then n+1..), never off the
        edge. Returns the y below them."""
        f, c, kh, kw = weights.shape
        atlas = grid_to_qimage(np.swapaxes(images, 0, 1))  # a row of kernels per input channel
        per_line = max(1, (avail + GAP) // (tile + GAP))
        for first in range(0, f, per_line):
            for ch in range(c):
                for k in range(first, min(f, first + per_line)):
                    left = MARGIN + (k - first) * (tile + GAP)
                    rect = QRectF(left, y + ch * (tile + GAP), tile, tile)
                    source = QRectF(k * kw, ch * kh, kw, kh)
                    self._tiles.append(_Tile(rect, name, k, ch, atlas, source, (kh, kw)))
            y += c * (tile + GAP) + 8
        return y

    def sizeHint(self) -> QSize:
        return QSize(300, self._height)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, self._height)

    def resizeEvent(self, event) -> None:
        self._relayout()
        super().resizeEvent(event)

    def _tile_at(self, pos: QPointF) -> _Tile | None:
        for tile in self._tiles:
            if tile.rect.contains(pos):
                return tile
        return None

    def _tile_text(self, tile: _Tile) -> str:
        """What hovering ``tile`` reports (worked out on hover, not for every tile on every
        weight update)."""
        if tile.channel < 0:
            return f"{tile.layer} filter {tile.index + 1} in colour (grey = 0)"
        kernel = dict(self._layers)[tile.layer][tile.index, tile.channel]
        return (
            f"{tile.layer} filter {tile.index + 1}, input channel {tile.channel + 1} · weights "
            f"{kernel.min():.3g} … {kernel.max():.3g}"
        )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        tile = self._tile_at(event.position())
        text = self._tile_text(tile) if tile else ""
        if text != self._hover:
            self._hover = text
            self.hovered.emit(text)
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        tile = self._tile_at(event.position())
        if self.picking:
            if tile is not None and tile.channel >= 0:
                kh, kw = tile.cells
                pos = event.position() - tile.rect.topLeft()
                row = min(kh - 1, int(pos.y() / tile.rect.height() * kh))
                col = min(kw - 1, int(pos.x() / tile.rect.width() * kw))
                index = (tile.index, tile.channel, row, col)
                self.set_picked(tile.layer, index)
                self.weight_clicked.emit(tile.layer, index)
            return
        if (
            tile is not None
            and tile.layer in self.clickable_layers
            and tile.channel >= 0
            and event.button() == Qt.MouseButton.LeftButton
        ):
            self.kernel_clicked.emit(tile.layer, tile.index, tile.channel)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#fafafa"))
        if not self._layers:
            painter.setPen(QColor("#777"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No conv filters yet")
            return
        for rect, title in self._titles:
            painter.setPen(QColor("#666" if title.startswith("click") else "#222"))
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft) | int(WRAP), title)
        painter.setPen(QPen(QColor("#999"), 1))
        exposed = QRectF(event.rect()).adjusted(-2, -2, 2, 2)  # in a scroll area: what shows
        for tile in self._tiles:
            if not tile.rect.intersects(exposed):
                continue
            painter.drawImage(tile.rect, tile.atlas, tile.source)
            painter.drawRect(tile.rect.adjusted(-0.5, -0.5, 0.5, 0.5))
        cell = self.weight_rect(*self.picked) if self.picked and self.picking else None
        if cell is not None:
            painter.setPen(QPen(QColor("#111"), 2))
            painter.drawRect(cell.adjusted(-1, -1, 1, 1))
        painter.end()
