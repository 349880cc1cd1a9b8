"""The Train tab's feature-map view (:class:`ActivationView`, on the live page of
:mod:`desktop.widgets.live_panel`): one row per shown node in topological order, maps as tiles,
FC layers as bars, the branches of a block side by side, blocks folded to their output by a
click on their header; a big network starts with all but its first block folded; both as the
Classify tab's view, by :func:`engine.visualize.unfolded` and :func:`engine.visualize.block_header`.

Fed with :class:`engine.visualize.LayerView` rows (already scaled to uint8 by the engine); this
widget only lays them out and paints them. Hovering a map or a bar group reports its layer, index
and value range through ``hovered`` (the tab shows it under the view) and its node's details
(window, parameters, receptive field through all paths) in a tooltip. Hovering one bar of a
fully connected row draws that unit's strongest connections (the article's Figure 20,
:func:`engine.connections.every_connection`, painted by ``link_lines``) and lists their weights
in the tooltip.

Size: one widget: its row layout, hover and connection lines, and painting go together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QSizePolicy,
    QToolTip,
    QWidget,
)

from desktop.qt_image import grid_to_qimage
from desktop.widgets.link_lines import Line, paint_links
from engine.connections import Connections
from engine.visualize import (
    Band,
    LayerView,
    arrange,
    block_header,
    folded_at_first,
    unfolded,
)

LABEL_W = 112
GAP = 4
ROW_GAP = 10
BAR_H = 32
MIN_ROW = 34  # the label needs two lines
LINE_H = 16  # one more line of a title above its maps
MARGIN = 8
HEADER_H = 20


@dataclass
class _Hit:
    rect: QRectF
    text: str


@dataclass
class _Item:
    """One thing to paint: a block header, or a row (``index`` into the layers) with its label
    at ``label`` and its tiles (maps) or bar area (bars) at ``rects``."""

    kind: str  # "header" | "row"
    label: QRectF
    rects: list[QRectF]
    index: int = -1
    block: str = ""


class ActivationView(QWidget):
    """Paints :class:`LayerView` rows in :func:`engine.visualize.arrange` bands: branches of a
    block side by side, each block under a header that a click collapses or expands. Signal
    ``hovered(text)`` ("" when leaving a map)."""

    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="activationView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._layers: list[LayerView] = []
        self._images: list[QImage | None] = []  # per layer: its maps side by side, one image
        self._bands: list[Band] = []
        self._classes: list[str] = []
        self._hits: list[_Hit] = []
        self._items: list[_Item] = []
        self._collapsed: set[str] = set()
        self._height = 120
        self._hover_text = ""
        self._caption = "Train or load a model to see what each layer makes of the pinned image."
        self._links: Mapping[str, list[Connections]] = {}
        self._unit: tuple[int, int] | None = None  # (row, unit) of the hovered bar

    # ----- data -------------------------------------------------------------------------
    def set_layers(self, layers: list[LayerView], classes: list[str]) -> None:
        if [v.name for v in layers] != [v.name for v in self._layers]:  # another network
            blocks = {v.block for v in layers if v.block}
            self._collapsed = folded_at_first(layers) or self._collapsed & blocks
        self._layers = layers
        self._classes = classes
        self._images = [  # a row's maps side by side in one picture
            None if layer.images is None else grid_to_qimage(layer.images[None]) for layer in layers
        ]
        self._relayout()
        self.update()

    def set_links(self, links: Mapping[str, list[Connections]]) -> None:
        """The strongest connections of each dense node's units, drawn when a bar is hovered."""
        self._links = links
        self.update()

    def layers(self) -> list[LayerView]:
        """The rows shown (folded ones included), as set."""
        return list(self._layers)

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    def shown_names(self) -> list[str]:
        """The rows drawn now (collapsed blocks' rows left out)."""
        return [self._layers[i].name for i in self._visible()]

    def blocks(self) -> list[str]:
        return list(dict.fromkeys(v.block for v in self._layers if v.block))

    def set_collapsed(self, block: str, collapsed: bool) -> None:
        (self._collapsed.add if collapsed else self._collapsed.discard)(block)
        self._relayout()
        self.update()

    def header_rect(self, block: str) -> QRectF:
        return next(i.label for i in self._items if i.kind == "header" and i.block == block)

    def headers(self) -> list[str]:
        """The block headers drawn now, top to bottom."""
        return [self._header_text(i.block) for i in self._items if i.kind == "header"]

    def _header_text(self, block: str) -> str:
        return block_header(block, block in self._collapsed)

    def clear(self, caption: str) -> None:
        self._caption = caption
        self.set_layers([], [])

    def _visible(self) -> list[int]:
        return [i for b in self._bands for col in b.columns for i in col]

    def _shown_bands(self) -> list[Band]:
        """The bands of the rows drawn (a folded block: its output row), indices into all."""
        shown = unfolded(self._layers, self._collapsed)
        bands = arrange([self._layers[i] for i in shown])
        return [Band(b.block, [[shown[k] for k in col] for col in b.columns]) for b in bands]

    # ----- layout -----------------------------------------------------------------------
    @staticmethod
    def _tile_size(count: int, h: int, avail: float) -> tuple[int, int]:
        """(tile px, tiles per line) for a maps row."""
        biggest = min(48, max(24, 3 * h))
        fit = int((avail - GAP * (count - 1)) // max(1, count))
        tile = max(12, min(biggest, fit))
        per_line = max(1, int((avail + GAP) // (tile + GAP)))
        return tile, per_line

    def _row(self, index: int, x: float, y: float, width: float, beside: bool) -> float:
        """Place row ``index`` at (x, y) in ``width``; the label left of it (``beside``) or
        above it; returns the height used."""
        layer = self._layers[index]
        label = QRectF(x, y, (LABEL_W - 8) if beside else width, MIN_ROW)
        if not beside:  # above its maps (a branch's column): room for a title on two lines
            label.setHeight(MIN_ROW + LINE_H)  # in every column, so the maps line up
        label_h = 0.0 if beside else label.height()
        left = x + (LABEL_W if beside else 0)
        avail = width - (LABEL_W if beside else 0)
        top = y + label_h
        base = layer.details()
        if layer.kind == "maps":
            count, h = layer.images.shape[0], layer.images.shape[1]
            tile, per_line = self._tile_size(count, h, avail)
            rects = []
            for i in range(count):
                row, col = divmod(i, per_line)
                rect = QRectF(left + col * (tile + GAP), top + row * (tile + GAP), tile, tile)
                rects.append(rect)
                text = (
                    f"{layer.label} · "
                    + ("colour (RGB)" if layer.images.ndim == 4 else f"map {i + 1} of {count}")
                    + " · "
                    + f"values {layer.low[i] + 0.0:.3g} … {layer.high[i] + 0.0:.3g}\n{base}"
                )
                self._hits.append(_Hit(rect, text))
            lines = -(-count // per_line)
            used = label_h + lines * (tile + GAP) - GAP
        else:
            rect = QRectF(left, top, avail, BAR_H)
            rects = [rect]
            n = layer.values.size
            what = "class probabilities" if layer.name == "softmax" else f"{n} units"
            text = f"{layer.label} · {what} · values {layer.low[0]:.3g} … {layer.high[0]:.3g}"
            self._hits.append(_Hit(rect, f"{text}\n{base}"))
            used = label_h + BAR_H + (14 if layer.name == "softmax" else 0)
        self._items.append(_Item("row", label, rects, index))
        return max(MIN_ROW if beside else 0, used)

    def _relayout(self) -> None:
        self._hits = []
        self._items = []
        self._bands = self._shown_bands()
        width = max(120 + LABEL_W, self.width() - 2 * MARGIN)
        y = float(MARGIN)
        block = ""
        for band in self._bands:
            if band.block and band.block != block:
                header = QRectF(MARGIN, y, width, HEADER_H)
                self._items.append(_Item("header", header, [], block=band.block))
                y += HEADER_H + 2
            block = band.block
            if len(band.columns) == 1:
                for index in band.columns[0]:
                    y += self._row(index, MARGIN, y, width, beside=True) + ROW_GAP
                continue
            col_w = (width - GAP * 3 * (len(band.columns) - 1)) / len(band.columns)
            bottom = y
            for c, column in enumerate(band.columns):
                x, cy = MARGIN + c * (col_w + 3 * GAP), y
                for index in column:
                    cy += self._row(index, x, cy, col_w, beside=False) + ROW_GAP
                bottom = max(bottom, cy)
            y = bottom
        height = max(120, int(y) + MARGIN)
        if height != self._height:  # a relayout of the page repaints every widget on it
            self._height = height
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        return QSize(600, self._height)

    def minimumSizeHint(self) -> QSize:
        return QSize(300, self._height)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, _width: int) -> int:
        return self._height

    def resizeEvent(self, event) -> None:
        self._relayout()
        super().resizeEvent(event)

    # ----- connections (Figure 20) -------------------------------------------------------
    def _bar_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(row, unit) of the bar under ``pos`` in a row whose units have connections."""
        for item in self._items:
            layer = self._layers[item.index] if item.kind == "row" else None
            if layer is None or layer.kind != "bars" or layer.name not in self._links:
                continue
            rect, n = item.rects[0], layer.values.size
            if n and rect.contains(pos):
                return item.index, min(n - 1, int((pos.x() - rect.left()) / rect.width() * n))
        return None

    def bar_center(self, name: str, unit: int) -> QPointF:
        """Where bar ``unit`` of row ``name`` is drawn."""
        point = self._unit_point(name, (unit,))
        assert point is not None, f"{name} is not shown"
        return point

    def hovered_connections(self) -> Connections | None:
        if self._unit is None or self._unit[0] >= len(self._layers):
            return None
        units = self._links.get(self._layers[self._unit[0]].name, [])
        return units[self._unit[1]] if self._unit[1] < len(units) else None

    def _unit_point(self, node: str, unit: tuple[int, ...]) -> QPointF | None:
        rows = [i for i in self._items if i.kind == "row" and self._layers[i.index].name == node]
        if not rows:  # not shown (a folded block)
            return None
        item = rows[0]
        layer = self._layers[item.index]
        if layer.kind == "maps":
            c, y, x = unit
            rect = item.rects[c if len(item.rects) > 1 else 0]  # a photo input: one colour tile
            h, w = layer.values.shape[-2:]
            fx, fy = (x + 0.5) / w, (y + 0.5) / h
            return QPointF(rect.left() + fx * rect.width(), rect.top() + fy * rect.height())
        rect = item.rects[0]
        fx = (unit[0] + 0.5) / layer.values.size
        return QPointF(rect.left() + fx * rect.width(), rect.center().y())

    def drawn_links(self) -> list[Line]:
        """The lines drawn for the hovered bar, incoming then outgoing: ("in" or "out", row,
        unit, weight, from, to); a unit in a folded block gets none."""
        conn = self.hovered_connections()
        if conn is None:
            return []
        start = self._unit_point(conn.node, (conn.unit,))
        lines: list[Line] = []
        ways = ["in"] * len(conn.incoming) + ["out"] * len(conn.outgoing)
        for way, link in zip(ways, [*conn.incoming, *conn.outgoing], strict=True):
            end = self._unit_point(link.node, link.unit)
            if start is not None and end is not None:
                lines.append((way, link.node, link.unit, link.weight, start, end))
        return lines

    # ----- hover and clicks -------------------------------------------------------------
    def text_at(self, pos: QPointF) -> str:
        for hit in self._hits:
            if hit.rect.contains(pos):
                return hit.text
        return ""

    def hit_rects(self) -> list[QRectF]:
        return [h.rect for h in self._hits]

    def mousePressEvent(self, event: QMouseEvent) -> None:
        for item in self._items:
            if item.kind == "header" and item.label.contains(event.position()):
                self.set_collapsed(item.block, item.block not in self._collapsed)
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        unit = self._bar_at(event.position())
        if unit != self._unit:
            self._unit = unit
            self.update()
        text = self.text_at(event.position())
        conn = self.hovered_connections()
        if conn is not None and self._unit is not None:
            value = float(self._layers[self._unit[0]].values[self._unit[1]]) + 0.0
            text = f"{conn.node} unit {conn.unit} = {value:.3g}\n{conn.text()}"
        if text != self._hover_text:
            self._hover_text = text
            self.hovered.emit(text.split("\n")[0])
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()

    def leaveEvent(self, event) -> None:
        if self._unit is not None:
            self._unit = None
            self.update()
        if self._hover_text:
            self._hover_text = ""
            self.hovered.emit("")
        super().leaveEvent(event)

    # ----- painting ---------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#fafafa"))
        exposed = QRectF(event.rect()).adjusted(-2, -2, 2, 2)  # a deep network: what shows
        if not self._layers:
            painter.setPen(QColor("#777"))
            painter.drawText(
                self.rect().adjusted(12, 0, -12, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._caption,
            )
            return
        small = self._small_font()
        for item in self._items:
            if not any(r.intersects(exposed) for r in (item.label, *item.rects)):
                continue
            if item.kind == "header":
                self._draw_header(painter, item)
                continue
            layer = self._layers[item.index]
            self._draw_label(painter, layer, item.label, small)
            if layer.kind == "maps":
                painter.setPen(QPen(QColor("#bbb"), 1))
                maps = self._images[item.index]
                assert maps is not None and layer.images is not None
                h, w = layer.images.shape[1:3]
                for i, rect in enumerate(item.rects):
                    painter.drawImage(rect, maps, QRectF(i * w, 0, w, h))
                    painter.drawRect(rect.adjusted(-0.5, -0.5, 0.5, 0.5))
            else:
                self._draw_bars(painter, layer, item.rects[0], small)
        painter.setFont(small)
        paint_links(painter, self.drawn_links(), self.width())
        painter.end()

    def _small_font(self) -> QFont:
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        return small

    def _draw_header(self, painter: QPainter, item: _Item) -> None:
        painter.fillRect(item.label, QColor("#e8edf3"))
        painter.setFont(self.font())
        painter.setPen(QColor("#223"))
        text = item.label.adjusted(6, 0, -6, 0)
        painter.drawText(
            text,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self.fontMetrics().elidedText(
                self._header_text(item.block), Qt.TextElideMode.ElideRight, int(text.width())
            ),
        )

    def _title_lines(self, title: str, width: float, two: bool) -> list[str]:
        """The row's title as written in ``width``: one line, elided; or (``two``: above the
        maps of a narrow branch column) a title too long for one line on two, after its " + "
        ("branch2.0 +" / "branch2.1")."""
        metrics = self.fontMetrics()
        elide, w = Qt.TextElideMode.ElideRight, int(width)
        head, plus, rest = title.partition(" + ")
        if not two or not plus or metrics.horizontalAdvance(title) <= w:
            return [metrics.elidedText(title, elide, w)]
        return [metrics.elidedText(t, elide, w) for t in (head + plus.rstrip(), rest)]

    def title_lines(self, name: str) -> list[str]:
        """The title lines of row ``name`` as painted (it must be shown)."""
        item = next(
            i for i in self._items if i.kind == "row" and self._layers[i.index].name == name
        )
        two = item.label.height() > MIN_ROW
        return self._title_lines(self._layers[item.index].label, item.label.width(), two)

    def _draw_label(self, painter: QPainter, layer: LayerView, rect: QRectF, font: QFont) -> None:
        painter.setFont(self.font())
        painter.setPen(QColor("#222"))
        extra = int(rect.height() > MIN_ROW)  # lines above the usual two (title, shape)
        lines = self._title_lines(layer.label, rect.width(), bool(extra))
        for n, line in enumerate(lines):  # the title ends just above the shape
            painter.drawText(
                QRectF(rect.left(), rect.top() + (n + 1 + extra - len(lines)) * LINE_H,
                       rect.width(), 18),
                Qt.AlignmentFlag.AlignLeft,
                line,
            )  # fmt: skip
        painter.setFont(font)
        painter.setPen(QColor("#777"))
        shape = "×".join(str(s) for s in layer.values.shape)
        painter.drawText(
            QRectF(rect.left(), rect.top() + 17 + extra * LINE_H, rect.width(), 16),
            Qt.AlignmentFlag.AlignLeft,
            shape,
        )

    def _draw_bars(self, painter: QPainter, layer: LayerView, rect: QRectF, font: QFont) -> None:
        values = layer.values
        n = values.size
        painter.fillRect(rect, QColor("#ffffff"))
        painter.setPen(QPen(QColor("#ddd"), 1))
        painter.drawRect(rect)
        if n == 0:
            return
        is_softmax = layer.name == "softmax"
        scale = float(np.abs(values).max()) or 1.0
        lo = min(0.0, float(values.min()))
        base = rect.bottom() if lo >= 0 else rect.top() + rect.height() / 2
        half = rect.height() - 2 if lo >= 0 else rect.height() / 2 - 1
        if is_softmax:
            scale = 1.0
        slot = rect.width() / n
        width = max(1.0, slot * (0.7 if n <= 20 else 0.9))
        best = int(np.argmax(values))
        for i, v in enumerate(values):
            height = float(v) / scale * half
            if abs(height) < 0.5 and i != best:
                continue  # nothing to see (most of a 1,000-class row)
            color = QColor(
                "#d62728" if (is_softmax and i == best) else ("#1f77b4" if v >= 0 else "#ff7f0e")
            )
            x = rect.left() + i * slot + (slot - width) / 2
            painter.fillRect(QRectF(x, base - max(height, 0), width, abs(height)), color)
        if is_softmax and best < len(self._classes):
            painter.setFont(font)
            painter.setPen(QColor("#333"))
            for place, name in self._class_names(values, rect, slot, best, font):
                painter.drawText(place, Qt.AlignmentFlag.AlignHCenter, name)

    def _class_names(
        self, values: np.ndarray, rect: QRectF, slot: float, best: int, font: QFont
    ) -> list[tuple[QRectF, str]]:
        """Where the softmax row's class names go: the top class always, whole, with its
        probability; the others where their slot fits them and they stay clear of the top's."""
        metrics = QFontMetrics(font)
        top = f"{self._classes[best]} {values[best] * 100:.0f}%"
        width = metrics.horizontalAdvance(top) + 4
        left = rect.left() + (best + 0.5) * slot - width / 2
        left = max(rect.left(), min(left, rect.right() - width))  # whole, inside the row
        top_rect = QRectF(left, rect.bottom() + 1, width, 14)
        names = []
        if slot >= 6:  # below that no name fits
            for i in range(min(len(values), len(self._classes))):
                cell = QRectF(rect.left() + i * slot, rect.bottom() + 1, slot, 14)
                name = self._classes[i]
                if i == best or cell.intersects(top_rect) or metrics.horizontalAdvance(name) > slot:
                    continue
                names.append((cell, name))
        return [*names, (top_rect, top)]

    def softmax_names(self) -> list[str]:
        """The class names written under the softmax row as painted (none without one)."""
        for item in self._items:
            layer = self._layers[item.index] if item.kind == "row" else None
            if layer is not None and layer.kind != "maps" and layer.name == "softmax":
                rect, values = item.rects[0], layer.values
                best = int(np.argmax(values))
                if best >= len(self._classes):
                    return []
                font = self._small_font()
                slot = rect.width() / values.size
                return [name for _r, name in self._class_names(values, rect, slot, best, font)]
        return []
