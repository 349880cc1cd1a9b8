"""The step-through's drawing: one picture per position of an
:class:`engine.filters.StepSequence`.

Three layouts, one per stage: *convolution* (input ∗ kernel → feature map, the window
outlined), *ReLU* (feature map → max(0, x) → rectified map, filled cell by cell) and
*pooling* (rectified map with the window and its winner → pooled map). A view only: the
numbers come from the sequence; :class:`StepBoard` is told what to draw.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.widgets.pixel_inspector import MUTED, draw_matrix
from engine.colormap import weight_tints
from engine.filters import StepSequence

SIGN_W = 40.0  # room for ∗ and →
WIDE_SIGN_W = 78.0  # room for "max(0, x)"
MAX_CELL = 72.0


def _tints(values: np.ndarray) -> np.ndarray | None:
    """Signed maps in warm/cool tints (negatives stand out); non-negative ones in gray."""
    return weight_tints(values) if values.min() < 0 else None


def _filled(shape: tuple[int, ...], cells: list[tuple[int, int]]) -> np.ndarray:
    shown = np.zeros(shape, bool)
    for r, c in cells:
        shown[r, c] = True
    return shown


class StepBoard(QWidget):
    """Paints the sequence at one position (0 = nothing done yet)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepBoard")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(200)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._seq: StepSequence | None = None
        self._pos = 0
        self._input_fill: np.ndarray | None = None

    def sizeHint(self) -> QSize:
        return QSize(760, 320)

    def show_position(
        self, seq: StepSequence | None, pos: int, input_fill: np.ndarray | None = None
    ) -> None:
        """Draw ``seq`` at ``pos``; ``input_fill`` (h, w, 3) colours the input (None: gray)."""
        self._seq, self._pos, self._input_fill = seq, pos, input_fill
        self.update()

    def stage(self) -> str:
        """The stage drawn now: conv, relu or pool."""
        return "conv" if self._seq is None else self._seq.at(self._pos)[0]

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        seq = self._seq
        if seq is not None:
            stage, i = seq.at(self._pos)
            if stage == "relu":
                self._paint_relu(p, seq, i)
            elif stage == "pool":
                self._paint_pool(p, seq, i)
            else:
                self._paint_conv(p, seq, i)
        p.end()

    # ----- layout helpers -------------------------------------------------------------------
    def _columns(self, *widths: int, rows: int, sign_w: float = SIGN_W) -> tuple[float, float]:
        """``(unit, x0)``: the cell size and left edge that fit matrices of these widths
        (columns) side by side with a sign ``sign_w`` wide between each two."""
        W, H = float(self.width()), float(self.height())
        signs = sign_w * (len(widths) - 1)
        unit = min((W - signs - 24) / sum(widths), (H - 30) / max(rows, 1), MAX_CELL)
        return unit, (W - unit * sum(widths) - signs) / 2

    def _sign(self, p: QPainter, x: float, text: str, size: int = 22, w: float = SIGN_W) -> None:
        font = QFont(p.font())
        font.setPixelSize(size)
        p.setFont(font)
        p.setPen(MUTED)
        p.drawText(QRectF(x, 0, w, self.height()), Qt.AlignmentFlag.AlignCenter, text)

    def _matrix(self, p: QPainter, x: float, unit: float, values: np.ndarray, **kw) -> float:
        draw_matrix(
            p, QRectF(x, 0, unit * values.shape[1], self.height()), values, max_cell=MAX_CELL, **kw
        )
        return x + unit * values.shape[1]

    # ----- the three stages -----------------------------------------------------------------
    def _paint_conv(self, p: QPainter, seq: StepSequence, i: int) -> None:
        conv = seq.conv
        m, k, out = conv.matrix, conv.kernel, conv.output
        current = conv.steps[i] if i >= 0 else None
        unit, x = self._columns(m.shape[1], k.shape[1], out.shape[1], rows=m.shape[0])
        shaded = np.zeros(m.shape, bool)
        if conv.pad:
            shaded[:] = True
            shaded[conv.pad : -conv.pad, conv.pad : -conv.pad] = False
        f = k.shape[0]
        x = self._matrix(
            p,
            x,
            unit,
            m,
            fill=self._input_fill,
            highlight=(current.row0, current.col0, f, f) if current else None,
            shaded=shaded,
            title="input" + (" (padded)" if conv.pad else ""),
        )
        self._sign(p, x, "∗")
        x = self._matrix(p, x + SIGN_W, unit, k, fill=weight_tints(k), title="kernel")
        self._sign(p, x, "→")
        done = [(s.out_row, s.out_col) for s in conv.steps[: i + 1]]
        self._matrix(
            p,
            x + SIGN_W,
            unit,
            out,
            shown=_filled(out.shape, done),
            highlight=(current.out_row, current.out_col, 1, 1) if current else None,
            fill=_tints(out),
            title="output (feature map)",
        )

    def _paint_relu(self, p: QPainter, seq: StepSequence, i: int) -> None:
        fmap, rect = seq.conv.output, seq.rectified
        step = seq.relu[i]
        unit, x = self._columns(
            fmap.shape[1], rect.shape[1], rows=fmap.shape[0], sign_w=WIDE_SIGN_W
        )
        here = (step.row, step.col, 1, 1)
        x = self._matrix(p, x, unit, fmap, fill=_tints(fmap), highlight=here, title="feature map")
        self._sign(p, x, "max(0, x)\n→", 13, WIDE_SIGN_W)
        done = [(s.row, s.col) for s in seq.relu[: i + 1]]
        self._matrix(
            p,
            x + WIDE_SIGN_W,
            unit,
            rect,
            shown=_filled(rect.shape, done),
            highlight=here,
            fill=_tints(fmap) if fmap.min() < 0 else None,
            title="after ReLU (rectified)",
            marks=[(s.row, s.col) for s in seq.relu[: i + 1] if s.zeroed],
        )

    def _paint_pool(self, p: QPainter, seq: StepSequence, i: int) -> None:
        rect, pooled = seq.rectified, seq.pooled
        assert pooled is not None
        win = seq.pool[i]
        n = win.values.shape[0]
        unit, x = self._columns(
            rect.shape[1], pooled.shape[1], rows=rect.shape[0], sign_w=WIDE_SIGN_W
        )
        winner = [(win.row0 + win.winner[0], win.col0 + win.winner[1])] if win.winner else []
        title = "after ReLU" if seq.relu else "feature map"
        x = self._matrix(
            p,
            x,
            unit,
            rect,
            fill=_tints(rect),
            highlight=(win.row0, win.col0, n, n),
            title=title,
            marks=winner,
        )
        how = f"{seq.pool_kind} {n}×{n}\nstride {seq.pool_stride}\n→"
        self._sign(p, x, how, 13, WIDE_SIGN_W)
        done = [(w.out_row, w.out_col) for w in seq.pool[: i + 1]]
        self._matrix(
            p,
            x + WIDE_SIGN_W,
            unit,
            pooled,
            shown=_filled(pooled.shape, done),
            highlight=(win.out_row, win.out_col, 1, 1),
            fill=_tints(pooled),
            title=f"{seq.pool_kind} pooled",
        )
