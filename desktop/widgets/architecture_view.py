"""The architecture diagram of the Train tab: the network's graph, node by node.

Fed with :func:`engine.graph_layout.describe` (one :class:`NodeFacts` per node) and placed by
:func:`engine.graph_layout.layout`: one box per node in its row and lane with its name, output
shape and parameters; Inception's branches side by side, ResNet's shortcuts and DenseNet's
concatenations as arcs beside the main path; blocks (``layer1.0``, ``inception3a``) framed and
named. Hovering a node shows its details (kind, window, shape, parameters, multiply-adds,
receptive field) as a tooltip and through ``hovered``.
"""

from __future__ import annotations

from bisect import bisect_right

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QDialog, QLabel, QScrollArea, QToolTip, QVBoxLayout, QWidget

from desktop.widgets.focus_ring import focus_ring
from desktop.widgets.tone import set_tone
from engine.graph_layout import Layout, NodeFacts, layout
from engine.visualize import name_in_block

ROW_H = 44
BOX_H = 34
LANE_GAP = 22  # room for the arcs right of each lane
GUTTER = 74  # block names at the left
MARGIN = 8
MIN_LANE = 84
MIN_NARROW_LANE = 62  # lanes of a narrow view: smaller gaps and text (4 fit 283 px)
NARROW = 8  # the gutter when the block names do not fit
MAX_LANE = 210

_COLOURS = {
    "input": "#e0e0e0",
    "conv2d": "#cfe2ff",
    "dense": "#e2d5f7",
    "maxpool2d": "#d4efd9",
    "avgpool2d": "#d4efd9",
    "globalavgpool": "#d4efd9",
    "batchnorm2d": "#eeeeee",
    "add": "#ffd8b0",
    "concat": "#ffd8b0",
}
_DEFAULT = "#fff6cc"  # activations, flatten, dropout


def _params(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


class _Canvas(QWidget):
    hovered = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setMouseTracking(True)
        self.facts: dict[str, NodeFacts] = {}
        self.grid: Layout | None = None
        self.rects: dict[str, QRectF] = {}
        self._lane_rows: dict[int, list[int]] = {}  # the rows taken in each lane, ascending
        self.message = "No network"
        self._hover = ""
        self._lane_w = float(MIN_LANE)
        self.gutter = GUTTER
        self.gap = LANE_GAP
        self.left = float(MARGIN)  # where the blocks' frames start (a narrow graph is centred)
        self.crowded: set[str] = set()  # blocks beside another: named in their boxes

    def set_facts(self, facts: list[NodeFacts]) -> None:
        self.facts = {f.name: f for f in facts}
        self.grid = layout(facts) if facts else None
        self._lane_rows = {}
        for p in self.grid.nodes if self.grid else []:
            self._lane_rows.setdefault(p.lane, []).append(p.row)
        for rows in self._lane_rows.values():
            rows.sort()
        self.relayout()

    def relayout(self) -> None:
        self.rects = {}
        grid = self.grid
        parent = self.parentWidget()
        if grid is None:
            self.setMinimumSize(0, 0)
            if parent is not None:
                self.resize(parent.size())
            self.update()
            return
        avail = (parent.width() if parent is not None else self.width()) - GUTTER - 2 * MARGIN
        self.gutter = GUTTER if avail >= grid.lanes * MIN_LANE else NARROW
        avail += GUTTER - self.gutter
        narrow = self.gutter < GUTTER
        self.gap = 6 if narrow else LANE_GAP
        least = MIN_NARROW_LANE if narrow else MIN_LANE
        self._lane_w = max(least, min(MAX_LANE, avail / grid.lanes))
        width = int(MARGIN * 2 + self.gutter + grid.lanes * self._lane_w)
        room = parent.width() if parent is not None else width
        self.left = MARGIN + max(0, room - width) // 2  # a chain in a wide window: centred
        for p in grid.nodes:
            x = self.left + self.gutter + p.lane * self._lane_w
            y = MARGIN + p.row * ROW_H
            self.rects[p.name] = QRectF(x, y, self._lane_w - self.gap, BOX_H)
        self.block_frames()  # which blocks are beside another (their boxes name them)
        self.setMinimumSize(width, MARGIN * 2 + grid.rows * ROW_H)
        self.resize(max(width, parent.width() if parent else width), self.minimumHeight())
        self.update()

    def text_at(self, pos: QPointF) -> str:
        for name, rect in self.rects.items():
            if rect.contains(pos):
                return self.facts[name].details()
        return ""

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        text = self.text_at(event.position())
        if text != self._hover:
            self._hover = text
            self.hovered.emit(text)
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()

    def leaveEvent(self, event) -> None:
        if self._hover:
            self._hover = ""
            self.hovered.emit("")
        super().leaveEvent(event)

    # ----- painting -------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#fbfbfb"))
        if self.grid is None:
            painter.setPen(QColor("#777"))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap  # a narrow panel
            painter.drawText(self.rect(), flags, self.message)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        small = self.small_font()
        self._paint_blocks(painter, small)
        exposed = QRectF(event.rect()).adjusted(-4, -4, 4, 4)  # a long network: what shows
        self._paint_edges(painter, exposed)
        for name, rect in self.rects.items():
            if rect.intersects(exposed):
                self._paint_node(painter, self.facts[name], rect, small)
        painter.end()

    def small_font(self) -> QFont:
        """The font of the boxes and block names (smaller in a narrow view)."""
        small = QFont(self.font())
        shrink = 1.5 if self.gutter == GUTTER else 2.5
        small.setPointSizeF(max(6.5, small.pointSizeF() - shrink))
        return small

    def block_frames(self) -> dict[str, QRectF]:
        """The frame of each block: from the margin across its rows, or, for a block beside
        another in the same rows (a network file's named branches), around its own boxes."""
        spans: dict[str, QRectF] = {}
        for name, rect in self.rects.items():
            block = self.facts[name].block
            if block:
                spans[block] = spans[block].united(rect) if block in spans else QRectF(rect)
        self.crowded = {
            a
            for a, one in spans.items()
            for b, other in spans.items()
            if a != b and one.top() < other.bottom() and other.top() < one.bottom()
        }
        frames = {}
        for block, span in spans.items():
            left = span.left() - 3 if block in self.crowded else self.left
            frames[block] = QRectF(left, span.top() - 4, span.right() + self.gap - 4 - left, 0)
            frames[block].setBottom(span.bottom() + 4)
        return frames

    def _paint_blocks(self, painter: QPainter, font: QFont) -> None:
        painter.setFont(font)
        metrics = painter.fontMetrics()
        for block, frame in self.block_frames().items():
            span = frame.adjusted(0, 4, 0, -4)
            painter.setPen(QPen(QColor("#c8c8c8"), 1))
            painter.setBrush(QColor(0, 0, 0, 10))
            painter.drawRoundedRect(frame, 5, 5)
            if self.gutter < GUTTER or block in self.crowded:
                continue  # narrow, or beside another: the block's name is in its boxes' tooltips
            painter.setPen(QColor("#555"))
            label = metrics.elidedText(block, Qt.TextElideMode.ElideMiddle, GUTTER - 6)
            painter.drawText(
                QRectF(self.left + 3, span.top(), GUTTER - 4, BOX_H),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _blocked(self, lane: int, row0: int, row1: int) -> bool:
        """Whether a node of ``lane`` sits between rows ``row0`` and ``row1``."""
        rows = self._lane_rows.get(lane, [])
        i = bisect_right(rows, row0)
        return i < len(rows) and rows[i] < row1

    def _paint_edges(self, painter: QPainter, exposed: QRectF) -> None:
        assert self.grid is not None
        pos = {p.name: p for p in self.grid.nodes}
        painter.setPen(QPen(QColor("#7a7a7a"), 1.3))
        for src, dst in self.grid.edges:
            a, b = self.rects[src], self.rects[dst]
            if not a.united(b).adjusted(0, 0, self.gap, 0).intersects(exposed):
                continue
            ps, pd = pos[src], pos[dst]
            path = QPainterPath(QPointF(a.center().x(), a.bottom()))
            if ps.lane == pd.lane and self._blocked(ps.lane, ps.row, pd.row):
                # a shortcut past nodes of the same lane: an arc on the lane's right
                out = a.right() + self.gap - 4
                path = QPainterPath(QPointF(a.right(), a.center().y()))
                path.cubicTo(
                    QPointF(out, a.center().y()),
                    QPointF(out, b.center().y()),
                    QPointF(b.right(), b.center().y()),
                )
                painter.setPen(QPen(QColor("#d0701a"), 1.5))
                painter.drawPath(path)
                painter.setPen(QPen(QColor("#7a7a7a"), 1.3))
                self._arrow(painter, QPointF(b.right(), b.center().y()), left=True)
                continue
            if ps.lane != pd.lane:
                if self.facts[dst].kind in ("add", "concat"):
                    bend = b.top() - 5  # down the source's lane, then across to the merge
                    path.lineTo(QPointF(a.center().x(), bend))
                else:
                    bend = a.bottom() + 5  # across to the branch's lane, then down it
                    path.lineTo(QPointF(a.center().x(), bend))
                path.lineTo(QPointF(b.center().x(), bend))
            path.lineTo(QPointF(b.center().x(), b.top()))
            painter.drawPath(path)
            self._arrow(painter, QPointF(b.center().x(), b.top()), left=False)

    @staticmethod
    def _arrow(painter: QPainter, tip: QPointF, left: bool) -> None:
        d = 4.0
        if left:
            pts = [tip, QPointF(tip.x() + d, tip.y() - d), QPointF(tip.x() + d, tip.y() + d)]
        else:
            pts = [tip, QPointF(tip.x() - d, tip.y() - d), QPointF(tip.x() + d, tip.y() - d)]
        path = QPainterPath(pts[0])
        path.lineTo(pts[1])
        path.lineTo(pts[2])
        path.closeSubpath()
        painter.fillPath(path, painter.pen().color())

    def label(self, f: NodeFacts, metrics: QFontMetrics, width: int) -> tuple[str, str]:
        """The two lines of a node's box: name (and window), shape (and parameters). What does
        not fit goes first (the window, the parameters: the tooltip has them); the name and
        shape are elided only when they alone do not fit."""
        name = f.name if f.block in self.crowded else name_in_block(f.name, f.block)
        wide = self.gutter == GUTTER  # narrow: the window and parameters in the tooltip only
        top = f"{name} {f.kernel}×{f.kernel}" if f.geometry() and wide else name
        bottom = f.shape_text()
        if f.params and wide:
            bottom += f" · {_params(f.params)}"
        if metrics.horizontalAdvance(top) > width:
            top = name
        if metrics.horizontalAdvance(bottom) > width:
            bottom = f.shape_text()
        elide = Qt.TextElideMode.ElideRight
        return metrics.elidedText(top, elide, width), metrics.elidedText(bottom, elide, width)

    def _paint_node(self, painter: QPainter, f: NodeFacts, rect: QRectF, font: QFont) -> None:
        painter.setPen(QPen(QColor("#8a8a8a"), 1))
        painter.setBrush(QColor(_COLOURS.get(f.kind, _DEFAULT)))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setFont(font)
        inner = rect.adjusted(4, 1, -4, -1)
        top, bottom = self.label(f, painter.fontMetrics(), int(inner.width()))
        painter.setPen(QColor("#111"))
        painter.drawText(
            QRectF(inner.left(), inner.top(), inner.width(), inner.height() / 2),
            Qt.AlignmentFlag.AlignCenter,
            top,
        )
        painter.setPen(QColor("#444"))
        painter.drawText(
            QRectF(inner.left(), inner.center().y(), inner.width(), inner.height() / 2),
            Qt.AlignmentFlag.AlignCenter,
            bottom,
        )


class ArchitectureView(QScrollArea):
    """The diagram in a scroll area. ``set_facts(describe(spec))``; ``hovered(text)``;
    ``changed()`` after each new network (or ``clear``)."""

    hovered = Signal(str)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("architectureView")
        focus_ring(self)  # arrow keys scroll it
        self.canvas = _Canvas()
        self.canvas.hovered.connect(self.hovered)
        self.setWidget(self.canvas)
        self.setWidgetResizable(False)
        self.setMinimumHeight(200)

    def set_facts(self, facts: list[NodeFacts]) -> None:
        self.canvas.set_facts(list(facts))
        self.changed.emit()

    def facts(self) -> list[NodeFacts]:
        return list(self.canvas.facts.values())

    def clear(self, message: str = "No network") -> None:
        self.canvas.message = message
        self.canvas.set_facts([])
        self.changed.emit()

    def message(self) -> str:
        return self.canvas.message

    def shows_block_names(self) -> bool:
        """Whether the blocks' names are written beside them (a narrow view leaves them to
        the tooltips, with the windows and parameters)."""
        return self.canvas.gutter == GUTTER

    def node_names(self) -> list[str]:
        return list(self.canvas.rects)

    def block_frames(self) -> dict[str, QRectF]:
        """Each block's frame, in the canvas's coordinates."""
        return self.canvas.block_frames()

    def node_rect(self, name: str) -> QRectF:
        """Where the node's box is, in the canvas's coordinates."""
        return QRectF(self.canvas.rects[name])

    def node_label(self, name: str) -> tuple[str, str]:
        """The two lines written in the node's box, as painted."""
        canvas = self.canvas
        width = int(canvas.rects[name].adjusted(4, 1, -4, -1).width())
        metrics = QFontMetrics(canvas.small_font())
        return canvas.label(canvas.facts[name], metrics, width)

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.canvas.relayout()


class ArchitectureWindow(QDialog):
    """``source``'s diagram in a window of its own, as large as the user makes it (the Train
    tab's panel is narrow: Inception's branches there lose their block names and parameters),
    following every change of ``source``."""

    def __init__(self, source: ArchitectureView, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="architectureWindow")
        self.setWindowTitle("Architecture")
        self.view = ArchitectureView()
        self.view.setObjectName("architectureWindowView")
        hint = QLabel("Hover a box for its details: window, parameters, multiply-adds, field.")
        set_tone(hint, "color: #555;")
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.view, 1)
        self.resize(960, 720)
        self._source = source
        source.changed.connect(self._on_source_changed)
        self._on_source_changed()

    def _on_source_changed(self) -> None:
        facts = self._source.facts()
        if facts:
            self.view.set_facts(facts)
        else:
            self.view.clear(self._source.message())
