"""The network view (the article's Figure 18): every layer's activations for one image.

From top to bottom, in topological order: the input (in colour for a colour model), the feature
maps of every convolution (after its BatchNorm and activation), pooling and merge (add, concat),
the fully connected layers as rows of cells, and the output probabilities. The branches of a
block stand side by side (Inception's four, a ResNet projection beside its block), as
:func:`engine.visualize.arrange` groups them for the Train tab's live view too. Blocks
(``layer1.0``, ``inception3a``) fold to their output row by a click on a row title or a block's
header (a big network starts with all but its first block folded; both as the Train tab's view,
by :func:`engine.visualize.unfolded` and :func:`engine.visualize.block_header`).
Hovering a cell explains where it came from: a
pooled cell highlights the window it pooled; a convolution cell its kernel window in the row it
reads and, in every case, the receptive field in the input image through all paths. Hovering a
fully connected cell (a dense unit, or an output class) draws its strongest incoming and
outgoing connections (the article's Figure 20, :class:`engine.connections.LazyConnections`):
red for a positive weight, blue for a negative one, wider for a stronger one, each weight
written at its line's end and listed in a tooltip.

The widget is fed plain data (:class:`ViewLayer`); :func:`view_layers` builds those from a model
and its ``activations(x)`` through :func:`engine.visualize.shown_nodes`, the description the
Train tab's live view uses too.

Size: one painted widget whose layout, painting, folding, hover explanations and connection
lines share its row geometry (the small image widget is in ``pixel_view.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.qt_image import array_to_qimage
from desktop.widgets import plain_tip
from desktop.widgets.link_lines import Line, paint_links
from engine.colormap import ramp
from engine.connections import Connections, LazyConnections
from engine.graph_layout import Field, NodeFacts, describe_model
from engine.visualize import (
    Band,
    arrange,
    block_header,
    colour_input,
    folded_at_first,
    shown_nodes,
    unfolded,
)

LABEL_WIDTH = 140
ROW_GAP = 12
MAP_GAP = 4
MIN_SIDE = 360  # the view's least width and height
MIN_SHRINK = 0.5  # maps shrink to half their size to fit, then the view grows
MIN_TILE = 40  # a map this wide at least, else its row wraps (24 in a branch's column)
BRANCH_TILE = 24
COLUMN_GAP = 14  # between branches side by side
ACCENT = QColor(230, 120, 30)
OUTPUT_CELL = 30  # an output cell with its class name under it; many classes: dense-sized cells
FIELD = QColor(60, 200, 255)


@dataclass(frozen=True)
class ViewLayer:
    name: str  # node name, e.g. "pool1"
    title: str  # shown at the left, e.g. "conv1 + relu1"
    kind: str  # "input" | "conv" | "pool" | "merge" | "dense" | "output"
    values: np.ndarray  # (C, H, W) for input/conv/pool/merge, (K,) for dense/output
    kernel: int = 1  # conv/pool window size
    stride: int = 1
    padding: int = 0
    labels: tuple[str, ...] = ()  # class names of the output
    source: str = ""  # the row whose value this one reads ("" when not shown)
    field: Field | None = None  # receptive field in the input, through all paths
    block: str = ""  # the block a click on the title folds ("layer1.0")
    details: str = ""  # the node's description, shown on hover
    unit_node: str = ""  # the dense node whose units the cells are (dense and output rows)
    # the strongest connections of every dense node (Figure 20), worked out on first hover
    connections: Mapping[str, list[Connections]] = dataclasses.field(default_factory=dict)
    lane: int = 0  # its lane in engine.graph_layout.layout: branches side by side
    facts: NodeFacts | None = None  # the node's description (None for the output)

    @property
    def links(self) -> tuple[Connections, ...]:
        """Per cell, its strongest connections (none for a row that is not a dense node's)."""
        return tuple(self.connections[self.unit_node]) if self.unit_node else ()

    @property
    def colour(self) -> bool:
        """A colour input: one RGB tile rather than three grey maps."""
        return self.kind == "input" and self.values.ndim == 3 and self.values.shape[0] == 3

    @property
    def tiles(self) -> int:
        """Pictures in the row: one per map (one for a colour input) or one per cell."""
        if self.values.ndim != 3:
            return int(self.values.size)
        return 1 if self.colour else int(self.values.shape[0])


_KINDS = {"conv2d": "conv", "maxpool2d": "pool", "avgpool2d": "pool", "add": "merge"}


def view_layers(model: object, activations: list[tuple[str, np.ndarray]]) -> list[ViewLayer]:
    """What to show for ``model.activations(x)`` of ONE image (x of shape (1, C, H, W)): the
    rows of :func:`engine.visualize.shown_nodes` (the logits left to the output row)."""
    acts = {name: np.asarray(a)[0] for name, a in activations}
    classes = tuple(str(c) for c in getattr(model, "classes", []))
    facts = describe_model(model)
    links = LazyConnections(model, facts=facts)  # a stroke redraws the view: links on hover
    out: list[ViewLayer] = []
    for row in shown_nodes(facts):
        f = row.facts
        if row.label.endswith("(logits)"):
            continue
        kind = "input" if f.kind == "input" else _KINDS.get(f.kind, "dense")
        if f.kind == "concat":
            kind = "merge"
        values = acts[row.value]
        if values.ndim != 3 and kind != "input":
            kind = "dense"
        title = "input" if kind == "input" else row.label
        out.append(
            ViewLayer(
                row.name, title, kind, values, max(1, f.kernel), max(1, f.stride), f.padding,
                source=row.source, field=f.field, block=f.block, details=f.details(),
                unit_node=row.name if row.name in links else "", connections=links,
                lane=row.lane, facts=f,
            )
        )  # fmt: skip
    if "softmax" in acts:
        head = str(getattr(model, "output", ""))
        out.append(
            ViewLayer(
                "softmax", "output", "output", acts["softmax"], labels=classes,
                unit_node=head if head in links else "", connections=links,
            )
        )  # fmt: skip
    return out


@dataclass
class _Row:
    layer: ViewLayer
    top: float
    height: float
    rects: list[QRectF]  # one per map (spatial) or per cell (dense/output)
    title: QRectF  # where the title and the shape are written (a click folds the block)
    scale: float = 1.0  # screen pixels per map pixel (spatial)
    # the maps' pictures (spatial) or the cells' colours, made when the row is first painted:
    # a 2,000-node network shows a few of its 1,000 rows at a time
    images: list[QImage] | None = None
    colors: list[QColor] | None = None
    header: QRectF | None = None  # the block's header above branches side by side

    def shows_in(self, area: QRectF) -> bool:
        """Does the row paint (its header, title, maps, cells and names) within ``area``'s
        height? (A row spans the view's width.)"""
        top = self.header.top() if self.header is not None else self.top
        bottom = max(self.title.bottom(), self.rects[-1].bottom() if self.rects else 0.0)
        return top <= area.bottom() and max(bottom, self.top + self.height) >= area.top()


def _lines(count, side, width, lines):  # numbers or arrays alike
    """How many lines ``count`` maps of ``side`` pixels take in ``width`` (never more than
    ``lines``, the plan at full size): maps that shrink to fit the height wrap into more
    columns instead of leaving the right of the view empty."""
    per_line = np.clip(np.floor((width + MAP_GAP) / (side + MAP_GAP) + 1e-6), 1, None)
    return np.minimum(np.ceil(count / per_line), lines)


def _maps_height(plan: tuple[float, float, float, int, tuple], shrink: float) -> float:
    """The height of a row's maps when they shrink by ``shrink`` (see :func:`_lines`)."""
    fixed, flexible, scale, rows, wrap = plan
    if not rows:
        return fixed + flexible * shrink
    count, h, w, width = wrap
    lines = float(_lines(count, w * scale * shrink, width, rows))
    return (lines - 1) * MAP_GAP + lines * h * scale * shrink


def _total_height(
    slots: list[list[list[tuple[int, float, float, bool]]]],
    heads: list[bool],
    plans: Mapping[int, tuple[float, float, float, int, tuple]],
    line: int,
) -> Callable[[float], float]:
    """The view's height as a function of how much the maps shrink: per band its headline and
    its tallest column, each row its maps (at least its title's two lines when the title is
    beside them, under its three-line title when above), and a gap. Arrays, since the layout
    tries a dozen shrinks over up to 1,000 rows."""
    rows = [(i, beside) for band in slots for column in band for i, *_r, beside in column]
    fixed = np.array([plans[i][0] for i, _ in rows])
    flexible = np.array([plans[i][1] for i, _ in rows])
    beside = np.array([b for _, b in rows], dtype=bool)
    lines = np.array([plans[i][3] for i, _ in rows], dtype=float)  # 0: cells, not maps
    maps_ = lines > 0
    wraps = np.array([plans[i][4] if plans[i][3] else (1, 1, 1, 1) for i, _ in rows], float)
    count, h, w, width = wraps.T if len(rows) else np.zeros((4, 0))
    scale = np.array([plans[i][2] for i, _ in rows])
    column_starts = np.cumsum([0] + [len(c) for band in slots for c in band])[:-1]
    band_starts = np.cumsum([0] + [len(band) for band in slots])[:-1]
    headlines = sum(line + 6 for head in heads if head)

    def height(shrink: float) -> float:
        wrapped = _lines(count, w * scale * shrink, width, lines)
        maps = np.where(
            maps_, (wrapped - 1) * MAP_GAP + wrapped * h * scale * shrink, fixed + flexible * shrink
        )
        each = np.where(beside, np.maximum(maps, 2 * line + 2), 3 * line + 2 + maps) + ROW_GAP
        columns = np.add.reduceat(each, column_starts)
        return float(np.maximum.reduceat(columns, band_starts).sum()) + headlines

    return height


class NetworkView(QWidget):
    """Paints the layers; ``cell_hovered(text)`` says what is under the mouse ("" when
    nothing is): the view is taller than its scroll area, so its owner shows the text where
    it stays in sight (the Classify tab: under the view)."""

    cell_hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("networkView")
        self.setMouseTracking(True)
        self.setMinimumSize(MIN_SIDE, MIN_SIDE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._layers: list[ViewLayer] = []
        self._all: list[ViewLayer] = []
        self._collapsed: set[str] = set()
        self._rows: list[_Row] = []
        self._hover: tuple[int, int, int, int] | None = None  # (row, channel/cell, y, x)
        self._title_block = ""  # the block whose title the mouse is on
        self.hover_text = ""
        self._message = "No activations yet"

    # ----- data ---------------------------------------------------------------------------
    def set_layers(self, layers: list[ViewLayer]) -> None:
        if [a.name for a in layers] != [a.name for a in self._all]:  # another network
            blocks = {a.block for a in layers if a.block}
            self._collapsed = folded_at_first(layers) or self._collapsed & blocks
            self._title_block = ""
        self._all = list(layers)
        self._show(relayout=False)

    def _show(self, relayout: bool) -> None:
        layers = self._visible()
        same_shapes = [(a.name, a.values.shape) for a in layers] == [
            (r.layer.name, r.layer.values.shape) for r in self._rows
        ]
        self._layers = layers
        if same_shapes and layers and not relayout:  # the next image: keep the layout
            for row, layer in zip(self._rows, layers, strict=True):
                row.layer, row.images, row.colors = layer, None, None  # made when painted
        else:
            hovered = self._hovered_name()
            self._layout()
            self._hover = self._hover_on(hovered)
        self._update_hover_text()
        self.update()

    def _hovered_name(self) -> str | None:
        if self._hover is None or self._hover[0] >= len(self._rows):
            return None
        return self._rows[self._hover[0]].layer.name

    def _hover_on(self, name: str | None) -> tuple[int, int, int, int] | None:
        """The hover after a new layout: the same cell of the same layer while it is still
        shown with that cell, else none (another network, a folded block, cleared)."""
        if name is None or self._hover is None:
            return None
        _, c, y, x = self._hover
        r = self._row_index(name)
        if r is None or c >= len(self._rows[r].rects):
            return None
        values = self._rows[r].layer.values
        size = values.shape[1:] if values.ndim == 3 else (1, 1)
        return (r, c, y, x) if y < size[0] and x < size[1] else None

    def _row_index(self, name: str) -> int | None:
        return next((i for i, row in enumerate(self._rows) if row.layer.name == name), None)

    def _visible(self) -> list[ViewLayer]:
        """The rows shown: a folded block by its last row (its output) alone."""
        return [self._all[i] for i in unfolded(self._all, self._collapsed)]

    def set_collapsed(self, block: str, collapsed: bool) -> None:
        """Fold a block to its output row (``collapsed``) or show all its rows."""
        (self._collapsed.add if collapsed else self._collapsed.discard)(block)
        self._show(relayout=True)

    def collapsed(self) -> set[str]:
        return set(self._collapsed)

    def clear(self, message: str = "No activations yet") -> None:
        self._message = message
        self.set_layers([])

    def layers(self) -> list[ViewLayer]:
        """The rows shown now."""
        return list(self._layers)

    def cell_center(self, name: str, index: int, y: int = 0, x: int = 0) -> QPoint:
        """Widget position of map ``index`` pixel (y, x) of layer ``name`` (or cell ``index``)."""
        row = next(r for r in self._rows if r.layer.name == name)
        rect = row.rects[index]
        if row.layer.values.ndim == 3:
            s = row.scale
            return QPoint(round(rect.x() + (x + 0.5) * s), round(rect.y() + (y + 0.5) * s))
        return rect.center().toPoint()

    def hover_cell(self, name: str, index: int, y: int = 0, x: int = 0) -> bool:
        """Show map ``index`` pixel (y, x) of layer ``name`` (or cell ``index``) as hovered, as
        the mouse would (the tour points at a cell this way); False when it is not shown."""
        r = self._row_index(name)
        if r is None or not 0 <= index < len(self._rows[r].rects):
            return False
        self._hover = (r, index, y, x)
        self._update_hover_text()
        self.update()
        return True

    def title_rect(self, name: str) -> QRectF:
        """Where a click folds the row's block: the block's header, else the row's title."""
        row = next(r for r in self._rows if r.layer.name == name)
        return row.header if row.header is not None else row.title

    def headers(self) -> list[str]:
        """The block headers drawn now, top to bottom."""
        return [self._header_text(r.layer.block) for r in self._rows if r.header is not None]

    def _header_text(self, block: str) -> str:
        return block_header(block, block in self._collapsed)

    def highlights(self) -> list[tuple[str, int | None, tuple[int, int, int, int]]]:
        """What the hover highlights: (layer name, map or None for all, (y0, x0, y1, x1)): the
        window read in the row below (when shown) and the receptive field in the input."""
        if self._hover is None:
            return []
        r, c, y, x = self._hover
        layer = self._rows[r].layer
        if layer.values.ndim != 3 or r == 0:
            return []
        result: list[tuple[str, int | None, tuple[int, int, int, int]]] = []
        below = next((rw.layer for rw in self._rows if rw.layer.name == layer.source), None)
        if layer.kind in ("conv", "pool") and below is not None:
            h, w = below.values.shape[-2:]
            y0, x0 = y * layer.stride - layer.padding, x * layer.stride - layer.padding
            window = (max(0, y0), max(0, x0), min(h, y0 + layer.kernel), min(w, x0 + layer.kernel))
            one = layer.kind == "pool" and not below.colour
            result.append((below.name, c if one else None, window))
        field = self._receptive_field(r, y, x)
        if field is not None and (below is None or below.name != "input"):
            result.append(("input", None, field))
        return result

    def _receptive_field(self, r: int, y: int, x: int) -> tuple[int, int, int, int] | None:
        field = self._rows[r].layer.field
        if field is None:
            return None
        h, w = self._rows[0].layer.values.shape[-2:]
        (y0, y1), (x0, x1) = field.window(y, h), field.window(x, w)
        return y0, x0, y1, x1

    # ----- layout -------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(640, 560)

    def resizeEvent(self, event) -> None:
        self._layout()
        super().resizeEvent(event)

    def _layout(self) -> None:
        """Place the rows band by band (:func:`engine.visualize.arrange`): a lone row with its
        title at the left, the branches of a block in columns with their titles above; an
        block under a header (a click folds or opens it); the maps shrink (down to
        :data:`MIN_SHRINK`) to fit the height, then the view grows."""
        self._rows = []
        if not self._layers:
            self.setMinimumHeight(MIN_SIDE)  # the message alone: no height left from the maps
            return
        line = self.fontMetrics().height()
        full = max(50.0, self.width() - 12.0)
        bands = arrange(self._layers)
        slots = [self._slots(band, full) for band in bands]
        heads = [  # a header opens each block
            b.block != "" and (k == 0 or bands[k - 1].block != b.block) for k, b in enumerate(bands)
        ]
        plans = {
            i: self._plan(
                self._layers[i], width - (LABEL_WIDTH if beside else 0), line,
                MIN_TILE if beside else BRANCH_TILE,
            )
            for band in slots for column in band for i, _x, width, beside in column
        }  # fmt: skip

        def height(i: int, beside: bool, shrink: float) -> float:
            maps = _maps_height(plans[i], shrink)
            return max(maps, 2 * line + 2) if beside else 3 * line + 2 + maps

        all_height = _total_height(slots, heads, plans, line)
        avail = self.height() - 6 + ROW_GAP
        shrink = 1.0
        if all_height(1.0) > avail:
            low, high = MIN_SHRINK, 1.0
            for _ in range(12):
                mid = (low + high) / 2
                low, high = (mid, high) if all_height(mid) <= avail else (low, mid)
            shrink = low
        least = all_height(MIN_SHRINK)
        self.setMinimumHeight(max(MIN_SIDE, int(least - avail + self.height()) + 1))
        placed: dict[int, _Row] = {}
        top = 6.0
        for band, head in zip(slots, heads, strict=True):
            header = None
            if head:
                header = QRectF(6, top, full - 6, line + 2)
                top += line + 6
            bottom = top
            for column in band:
                y = top
                for i, x, width, beside in column:
                    _f, _fl, scale, rows, wrap = plans[i]
                    size = scale * (shrink if rows else 1.0)
                    if rows:  # shrunk maps wrap into more columns (_lines)
                        rows = int(_lines(wrap[0], wrap[2] * size, wrap[3], rows))
                    row = self._place(self._layers[i], x, y, width, size, rows, beside)
                    placed[i] = row
                    y += height(i, beside, shrink) + ROW_GAP
                bottom = max(bottom, y)
            if header is not None:
                placed[band[0][0][0]].header = header
            top = bottom
        self._rows = [placed[i] for i in range(len(self._layers))]  # in the layers' order

    @staticmethod
    def _slots(band: Band, width: float) -> list[list[tuple[int, float, float, bool]]]:
        """(row index, left, width, title beside) of each row of ``band``, by column."""
        if len(band.columns) == 1:
            return [[(i, 0.0, width, True) for i in band.columns[0]]]
        n = len(band.columns)
        each = (width - 6 - COLUMN_GAP * (n - 1)) / n
        return [
            [(i, 6 + c * (each + COLUMN_GAP), each, False) for i in column]
            for c, column in enumerate(band.columns)
        ]

    def _plan(
        self, layer: ViewLayer, avail_w: float, line: int, min_tile: int
    ) -> tuple[float, float, float, int, tuple]:
        """(fixed height, height that shrinks, scale or cell size, lines of maps or 0, (maps,
        map height, map width, width) to wrap them when they shrink) of the arrangement of
        ``layer`` in ``avail_w``."""
        if layer.values.ndim == 3:
            c, (h, w) = layer.tiles, layer.values.shape[-2:]
            cap = (96 if layer.kind == "input" else 80) / max(h, w)
            for rows in range(1, c + 1):
                cols = math.ceil(c / rows)
                scale = min(cap, (avail_w - MAP_GAP * (cols - 1)) / (cols * w))
                if scale * w >= min_tile or rows == c:
                    wrap = (c, h, w, avail_w)
                    return (rows - 1) * MAP_GAP, rows * h * scale, scale, rows, wrap
        n = layer.values.size
        cell = float(OUTPUT_CELL)  # up to two lines of named output cells, else small cells
        if layer.kind != "output" or n * OUTPUT_CELL > 2 * avail_w:
            cell = min(12.0, max(6.0, avail_w / n))
        per_row = max(1, int(avail_w // cell))
        extra, last = self._name_lines(layer, cell, line)
        return math.ceil(n / per_row) * (cell + extra) + last, 0.0, cell, 0, ()

    @staticmethod
    def _name_lines(layer: ViewLayer, cell: float, line: int) -> tuple[int, int]:
        """(under each line of cells, under the last): an output row names each cell under it,
        or, its cells too small for names, only the most probable one, under the row."""
        if layer.kind != "output":
            return 0, 0
        return (line, 0) if cell >= OUTPUT_CELL else (0, line)

    def _place(
        self, layer: ViewLayer, left: float, top: float, width: float, size: float, rows: int,
        beside: bool,
    ) -> _Row:  # fmt: skip
        """Row ``layer`` at (left, top): its title beside (at the left) or above its maps (three
        lines: the title may take two)."""
        line = self.fontMetrics().height()
        if beside:
            title = QRectF(left + 4, top, LABEL_WIDTH - 10, 2 * line + 2)
            x0, y0, avail_w = left + LABEL_WIDTH, top, width - LABEL_WIDTH
        else:
            title = QRectF(left, top, width, 3 * line + 2)
            x0, y0, avail_w = left, top + 3 * line + 2, width
        if layer.values.ndim == 3:
            c, (h, w) = layer.tiles, layer.values.shape[-2:]
            cols = math.ceil(c / rows)
            rects = [
                QRectF(
                    x0 + (i % cols) * (w * size + MAP_GAP),
                    y0 + (i // cols) * (h * size + MAP_GAP),
                    w * size,
                    h * size,
                )
                for i in range(c)
            ]
            height = rows * h * size + (rows - 1) * MAP_GAP
            return _Row(layer, top, height, rects, title, size)
        n = layer.values.size
        per_row = max(1, int(avail_w // size))
        extra, last = self._name_lines(layer, size, line)
        rects = [
            QRectF(
                x0 + (i % per_row) * size, y0 + (i // per_row) * (size + extra), size - 1, size - 1
            )
            for i in range(n)
        ]
        height = math.ceil(n / per_row) * (size + extra) + last
        return _Row(layer, top, height, rects, title, size)

    @staticmethod
    def _map_images(layer: ViewLayer) -> list[QImage]:
        if layer.colour:  # one tile, the three channels on one scale (engine.visualize)
            return [array_to_qimage(colour_input(layer.values)[0][0])]
        values = layer.values
        if layer.kind == "input":
            values = values.astype(np.float64)
            lo, hi = float(values.min()), float(values.max())
            gray = ((values - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
            return [array_to_qimage(np.ascontiguousarray(m)) for m in gray]
        vmax = float(np.abs(values).max())
        rgb = ramp(values, vmax, diverging=bool(values.min() < 0))
        return [array_to_qimage(np.ascontiguousarray(m)) for m in rgb]

    @staticmethod
    def _cell_colors(layer: ViewLayer) -> list[QColor]:
        values = layer.values.astype(np.float64)
        vmax = 1.0 if layer.kind == "output" else float(np.abs(values).max())
        rgb = ramp(values, vmax, diverging=bool(values.min() < 0))
        return [QColor(int(r), int(g), int(b)) for r, g, b in rgb]

    # ----- painting -----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        text = self.palette().windowText().color()
        if not self._rows:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._message)
            return
        top_cell = int(np.argmax(self._rows[-1].layer.values)) if self._rows else -1
        exposed = QRectF(event.rect()).adjusted(-2, -2, 2, 2)  # a deep network: what shows
        for row in self._rows:
            if not row.shows_in(exposed):
                continue
            layer = row.layer
            painter.setPen(text)
            shape = (
                "×".join(str(s) for s in layer.values.shape[-2:])
                if layer.values.ndim == 3
                else str(layer.values.size)
            )
            count = f"{layer.values.shape[0]} @ " if layer.values.ndim == 3 else ""
            painter.drawText(
                row.title,
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                f"{self._title_text(row)}\n{count}{shape}",
            )
            if row.header is not None:
                painter.fillRect(row.header, QColor(0, 0, 0, 18))
                room = row.header.adjusted(4, 0, -4, 0)
                painter.drawText(
                    room,
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    painter.fontMetrics().elidedText(
                        self._header_text(layer.block), Qt.TextElideMode.ElideRight,
                        int(room.width()),
                    ),
                )  # fmt: skip
            if layer.values.ndim == 3:
                if row.images is None:
                    row.images = self._map_images(layer)
                for rect, image in zip(row.rects, row.images, strict=True):
                    painter.drawImage(rect, image)
            else:
                self._paint_cells(painter, row, top_cell if layer.kind == "output" else -1)
        self._paint_hover(painter)

    def _paint_cells(self, painter: QPainter, row: _Row, top_cell: int) -> None:
        """A dense or output row's cells; an output row's class names under its cells (only the
        most probable one's, whole, under the row when the cells are too small for names)."""
        layer, text = row.layer, self.palette().windowText().color()
        line = painter.fontMetrics().height()
        if row.colors is None:
            row.colors = self._cell_colors(layer)
        for rect, color in zip(row.rects, row.colors, strict=True):
            painter.fillRect(rect, color)
        if layer.kind != "output":
            return
        named = range(len(row.rects)) if row.scale >= OUTPUT_CELL else [top_cell]
        for i in named:
            rect = row.rects[i]
            painter.setPen(ACCENT if i == top_cell else text)
            label = layer.labels[i] if i < len(layer.labels) else str(i)
            where = QRectF(rect.x(), rect.bottom() + 1, rect.width(), line)
            if row.scale < OUTPUT_CELL:  # as wide as the name, inside the view
                wide = painter.fontMetrics().horizontalAdvance(label) + 4.0
                x = min(max(rect.center().x() - wide / 2, 0.0), self.width() - wide)
                where = QRectF(x, row.rects[-1].bottom() + 2, wide, line)
            else:  # a user's 'dog  friends' under a 30-pixel cell: 'do…', never 'frie'
                label = painter.fontMetrics().elidedText(
                    label, Qt.TextElideMode.ElideRight, int(where.width())
                )
            painter.drawText(where, Qt.AlignmentFlag.AlignCenter, label)
        if 0 <= top_cell < len(row.rects):
            painter.setPen(QPen(ACCENT, 2))
            painter.drawRect(row.rects[top_cell].adjusted(-1, -1, 1, 1))

    def _title_text(self, row: _Row) -> str:
        """The row's title elided to its place; above maps (a branch) on up to two lines."""
        metrics = self.fontMetrics()
        width = int(row.title.width())
        title = row.layer.title
        elide = Qt.TextElideMode.ElideRight
        if row.title.height() < 3 * metrics.height() or metrics.horizontalAdvance(title) <= width:
            return metrics.elidedText(title, elide, width)
        head, plus, rest = title.partition(" + ")
        return "\n".join(metrics.elidedText(t, elide, width) for t in (head + plus, rest) if t)

    def _paint_hover(self, painter: QPainter) -> None:
        if self._hover is None:
            return
        r, c, y, x = self._hover
        row = self._rows[r]
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(ACCENT, 2))
        if row.layer.values.ndim == 3:
            rect = row.rects[c]
            painter.drawRect(
                QRectF(rect.x() + x * row.scale, rect.y() + y * row.scale, row.scale, row.scale)
            )
        else:
            painter.drawRect(row.rects[c].adjusted(-1, -1, 1, 1))
        names = {rw.layer.name: rw for rw in self._rows}
        for name, channel, (y0, x0, y1, x1) in self.highlights():
            target = names[name]
            maps = range(len(target.rects)) if channel is None else [channel]
            painter.setPen(QPen(FIELD if name == "input" else ACCENT, 2))
            for m in maps:
                rect = target.rects[m]
                painter.drawRect(
                    QRectF(
                        rect.x() + x0 * target.scale,
                        rect.y() + y0 * target.scale,
                        (x1 - x0) * target.scale,
                        (y1 - y0) * target.scale,
                    )
                )
        paint_links(painter, self.drawn_links(), self.width())

    # ----- connections (Figure 20) ----------------------------------------------------------
    def hovered_connections(self) -> Connections | None:
        """The strongest connections of the hovered fully connected cell (None elsewhere)."""
        if self._hover is None or self._hover[0] >= len(self._rows):
            return None
        r, c, _, _ = self._hover
        links = self._rows[r].layer.links
        return links[c] if c < len(links) else None

    def drawn_links(self) -> list[Line]:
        """The lines drawn for the hovered cell, incoming then outgoing: ("in" or "out", row,
        unit, weight, from, to); a unit whose row is folded away gets none."""
        conn = self.hovered_connections()
        if conn is None or self._hover is None:
            return []
        start = self._rows[self._hover[0]].rects[self._hover[1]].center()
        lines = []
        ways = ["in"] * len(conn.incoming) + ["out"] * len(conn.outgoing)
        for way, link in zip(ways, [*conn.incoming, *conn.outgoing], strict=True):
            row = next(
                (w for w in self._rows if link.node in (w.layer.name, w.layer.unit_node)), None
            )
            if row is None:
                continue
            if row.layer.values.ndim == 3:
                ch, y, x = link.unit
                rect, s = row.rects[0 if row.layer.colour else ch], row.scale
                end = QPointF(rect.x() + (x + 0.5) * s, rect.y() + (y + 0.5) * s)
            else:
                end = row.rects[link.unit[0]].center()
            lines.append((way, row.layer.name, link.unit, link.weight, start, end))
        return lines

    def _links_text(self) -> tuple[str, str]:
        """(the strongest incoming and outgoing link for the text below, all for the tooltip)."""
        conn = self.hovered_connections()
        if conn is None:
            return "", ""
        ends = [(conn.incoming[:1], True), (conn.outgoing[:1], False)]
        first = [link.text(incoming) for links, incoming in ends for link in links]
        return "; strongest: " + ", ".join(first) + " (drawn: red +, blue −)", conn.text()

    # ----- hover --------------------------------------------------------------------------
    def _block_title_at(self, pos: QPointF) -> str:
        """The block whose row title (or header) is at ``pos``: a click there folds or opens
        it; "" elsewhere."""
        for row in self._rows:
            block = row.layer.block
            if block and self.title_rect(row.layer.name).contains(pos):
                return block
        return ""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click on a block's row title folds or unfolds the block."""
        block = self._block_title_at(event.position())
        if block:
            self.set_collapsed(block, block not in self._collapsed)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self._hit(event.position())
        block = "" if hit is not None else self._block_title_at(event.position())
        if (hit, block) != (self._hover, self._title_block):
            self._hover, self._title_block = hit, block
            self.setCursor(
                Qt.CursorShape.PointingHandCursor if block else Qt.CursorShape.ArrowCursor
            )
            self._update_hover_text()
            self.update()

    def leaveEvent(self, event) -> None:
        self.unhover()

    def unhover(self) -> None:
        """Nothing hovered, as when the mouse leaves (no cell marked, no lines drawn)."""
        self._hover, self._title_block = None, ""
        self._update_hover_text()
        self.update()

    def _hit(self, pos: QPointF) -> tuple[int, int, int, int] | None:
        for r, row in enumerate(self._rows):
            for i, rect in enumerate(row.rects):
                if rect.contains(pos):
                    if row.layer.values.ndim == 3:
                        x = int((pos.x() - rect.x()) / row.scale)
                        y = int((pos.y() - rect.y()) / row.scale)
                        h, w = row.layer.values.shape[-2:]
                        return r, i, min(y, h - 1), min(x, w - 1)
                    return r, i, 0, 0
        return None

    def _update_hover_text(self) -> None:
        text = ""
        if self._hover is None and self._title_block:  # what a click on the title does
            block = self._title_block
            rows = sum(1 for a in self._all if a.block == block)
            text = (
                f"{block}: click to show its {rows} rows"
                if block in self._collapsed
                else f"{block}: click to fold it to its output"
            )
        if self._hover is not None and self._hover[0] < len(self._rows):
            r, c, y, x = self._hover
            layer = self._rows[r].layer
            if layer.colour:
                r_, g_, b_ = (float(v) + 0.0 for v in layer.values[:, y, x])
                text = f"input pixel ({x}, {y}) = R {r_:.3g}, G {g_:.3g}, B {b_:.3g}"
            elif layer.values.ndim == 3:
                value = float(layer.values[c, y, x]) + 0.0  # no "-0"
                text = f"{layer.name} map {c + 1}, pixel ({x}, {y}) = {value:.3g}"
                k, below = layer.kernel, layer.source  # None: several rows (DenseNet's concat)
                if layer.kind == "pool":
                    where = f"{below} map {c + 1}" if below else f"map {c + 1} of the layer before"
                    text += f": pooled from the {k}×{k} window in {where}"
                elif layer.kind == "conv":
                    where = f"all maps of {below}" if below else "all the maps it reads"
                    text += f": a {k}×{k} kernel over {where}"
                elif layer.kind == "merge":
                    text += ": the branches joined (added or stacked)"
                field = self._receptive_field(r, y, x) if r > 0 else None
                if field is not None and layer.source != "input":
                    y0, x0, y1, x1 = field
                    text += f"; through all paths it sees {y1 - y0}×{x1 - x0} input pixels (blue)"
            else:
                label = layer.labels[c] if layer.kind == "output" and c < len(layer.labels) else c
                text = f"{layer.title} cell {label} = {float(layer.values[c]) + 0.0:.3g}"
        short, full = self._links_text()
        self.setToolTip(plain_tip(full))
        if text + short != self.hover_text:
            self.hover_text = text + short
            self.cell_hovered.emit(self.hover_text)
