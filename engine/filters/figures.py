"""The article's figures in numbers: the pooling window (Figures 10 and 12), the image as a
matrix of values (Figure 4) and the ReLU curve beside a feature map before and after (Figure 8).

Slow and obvious on purpose, like :mod:`.teaching`: a handful of pixels at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError, ShapeError
from engine.filters.display import display
from engine.filters.geometry import fitted_output_size, output_size, padding_for
from engine.filters.kernels import KernelError
from engine.filters.pipeline import MAX_POOL, FilterResult, FilterSettings, subsampled_maps
from engine.filters.teaching import Inspection, inspect_pixel

__all__ = [
    "FIGURE10_MAP",
    "MIN_COLOUR_CELL",
    "MIN_LABEL_CELL",
    "CellLabel",
    "PixelExplanation",
    "PoolInspection",
    "PoolWindow",
    "ReluFigure",
    "cell_labels",
    "explain_pixel",
    "inspect_pool",
    "pool_windows",
    "relu_curve",
    "relu_figure",
]

#: The article's Figure 10 feature map; 2x2 max pooling with stride 2 gives ``[[6, 8], [3, 4]]``.
FIGURE10_MAP = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)

#: The smallest cell (screen pixels) that gets its value written in it; colour pixels (three
#: lines, R/G/B) need :data:`MIN_COLOUR_CELL`.
MIN_LABEL_CELL = 28.0
MIN_COLOUR_CELL = 48.0


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class PoolWindow:
    """One pooling window: output cell ``(out_row, out_col)`` takes ``result`` from the
    ``values`` (size, size) whose top-left is ``(row0, col0)`` in the map; ``winner`` is the
    (row, col) of the maximum inside the window for max pooling (first one on ties), else None."""

    out_row: int
    out_col: int
    row0: int
    col0: int
    values: np.ndarray
    winner: tuple[int, int] | None
    result: float


def _window(values: np.ndarray, kind: str, out_rc: tuple[int, int], rc0: tuple[int, int]):
    if kind == "max":
        winner = np.unravel_index(int(np.argmax(values)), values.shape)
        w = (int(winner[0]), int(winner[1]))
        return PoolWindow(*out_rc, *rc0, values, w, float(values[w]))
    total = float(values.sum())
    return PoolWindow(*out_rc, *rc0, values, None, total / values.size if kind == "avg" else total)


def _check_pool(kind: str, size: int, stride: int) -> None:
    if kind not in ("max", "avg", "sum"):
        raise KernelError(f"pooling {kind!r}: use max, avg or sum")
    if not 1 <= size <= MAX_POOL or not 1 <= stride <= MAX_POOL:
        raise KernelError(f"pooling window size {size} / stride {stride}: use 1 to {MAX_POOL}")


def pool_windows(
    matrix: np.ndarray, kind: str = "max", size: int = 2, stride: int = 2
) -> tuple[list[PoolWindow], np.ndarray]:
    """Every pooling window of a small 2-D map in raster order, and the pooled output.

    ``pool_windows(FIGURE10_MAP)[1]`` is the article's ``[[6, 8], [3, 4]]``.
    """
    _check_pool(kind, size, stride)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.size > 64 * 64 or min(m.shape) < size:
        raise ShapeError(f"pooling figure map shape {m.shape}: use a small 2-D map >= {size}")
    oh, ow = output_size(m.shape[0], size, stride, 0), output_size(m.shape[1], size, stride, 0)
    windows = []
    out = np.zeros((oh, ow))
    for r in range(oh):
        for c in range(ow):
            r0, c0 = r * stride, c * stride
            win = _window(m[r0 : r0 + size, c0 : c0 + size].copy(), kind, (r, c), (r0, c0))
            out[r, c] = win.result
            windows.append(win)
    return windows, out


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class PoolInspection:
    """The pooling window behind one pooled pixel: ``window`` (convolution values, after ReLU
    when ``relu``), ``kind`` of pooling, and ``conv_rc``: the convolution pixel the inspector
    explains (the winner for max pooling, else the window's first pixel)."""

    window: PoolWindow
    kind: str
    relu: bool
    conv_rc: tuple[int, int]


def inspect_pool(
    result: FilterResult, index: int, row: int, col: int, channel: int = 0
) -> PoolInspection | None:
    """The Figure 10 view of pooled pixel ``(row, col)`` of kernel ``index``'s map: the NxN
    convolution values (recomputed, ReLU applied when on), the winner and the result; None when
    ``result`` is not pooled or the pixel is outside."""
    settings = result.settings
    if settings is None or settings.pool == "none":
        return None
    n, s = settings.pool_size, settings.pool_stride
    spec = settings.kernels[min(index, len(settings.kernels) - 1)]
    source = result.source
    values = np.zeros((n, n))
    try:
        for i in range(n):
            for j in range(n):
                values[i, j] = inspect_pixel(
                    source,
                    spec,
                    border=settings.border,
                    stride=settings.stride,
                    row=row * s + i,
                    col=col * s + j,
                    channel=channel if source.ndim == 3 else 0,
                ).value
    except EngineError:
        return None
    if settings.relu:
        values = np.maximum(values, 0.0)
    win = _window(values, settings.pool, (row, col), (row * s, col * s))
    first = win.winner or (0, 0)
    return PoolInspection(
        win, settings.pool, settings.relu, (row * s + first[0], col * s + first[1])
    )


@dataclass(frozen=True)
class CellLabel:
    """The text written in image cell ``(row, col)`` (one line per channel) and whether it
    should be dark (on a light pixel) or light."""

    row: int
    col: int
    text: str
    dark: bool


def _value_text(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.3g}"


def cell_labels(
    values: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    cell_px: float,
    *,
    shade: np.ndarray | None = None,
    max_cells: int = 2500,
) -> list[CellLabel]:
    """The Figure 4 numbers: one label per pixel of ``values`` (H, W) or (H, W, C) in the
    visible ``rows`` x ``cols`` ranges (half-open, clipped to the image) when a cell is at
    least :data:`MIN_LABEL_CELL` screen pixels wide (else none). Colour pixels get one line per
    channel (``R 12 / G 34 / B 56``) from :data:`MIN_COLOUR_CELL` pixels. ``shade`` (H, W[, C])
    uint8 is the picture shown, used to choose dark or light text; ``max_cells`` caps the work
    on a huge screen."""
    a = np.asarray(values)
    if cell_px < MIN_LABEL_CELL or a.ndim not in (2, 3):
        return []
    h, w = a.shape[:2]
    r0, r1 = max(rows[0], 0), min(rows[1], h)
    c0, c1 = max(cols[0], 0), min(cols[1], w)
    if r1 <= r0 or c1 <= c0 or (r1 - r0) * (c1 - c0) > max_cells:
        return []
    colour = a.ndim == 3 and a.shape[2] >= 3
    if colour and cell_px < MIN_COLOUR_CELL:
        return []
    names = "RGB"
    out = []
    for r in range(r0, r1):
        for c in range(c0, c1):
            px = np.atleast_1d(a[r, c])
            if colour:
                text = "\n".join(f"{names[k]} {_value_text(float(px[k]))}" for k in range(3))
            else:
                text = _value_text(float(px[0]))
            dark = True
            if shade is not None:
                g = np.atleast_1d(shade[r, c]).astype(np.float64)
                lum = g[0] if g.size < 3 else 0.3 * g[0] + 0.59 * g[1] + 0.11 * g[2]
                dark = bool(lum > 120)
            out.append(CellLabel(r, c, text, dark))
    return out


@dataclass(frozen=True)
class PixelExplanation:
    """Everything the pixel inspector shows for one result pixel: the convolution
    ``inspection`` of convolution pixel ``conv_rc`` (for max pooling: the window's winner),
    ``relu_value`` (``max(0, value)`` when ReLU is on, else None) and ``pool`` (the pooling
    window when the result is pooled, else None)."""

    inspection: Inspection
    conv_rc: tuple[int, int]
    relu_value: float | None
    pool: PoolInspection | None


def explain_pixel(
    result: FilterResult, index: int, row: int, col: int, channel: int = 0
) -> PixelExplanation | None:
    """The pixel inspector's content for result pixel ``(row, col)`` of kernel ``index``:
    convolution, then ReLU when on, then the pooling window when pooled; None outside."""
    settings = result.settings
    if settings is None:
        return None
    pooled = inspect_pool(result, index, row, col, channel)
    if settings.pool != "none" and pooled is None:
        return None
    conv_rc = pooled.conv_rc if pooled is not None else (row, col)
    spec = settings.kernels[min(index, len(settings.kernels) - 1)]
    source = result.source
    try:
        ins = inspect_pixel(
            source,
            spec,
            border=settings.border,
            stride=settings.stride,
            row=conv_rc[0],
            col=conv_rc[1],
            channel=channel if source.ndim == 3 else 0,
        )
    except EngineError:
        return None
    relu_value = max(ins.value, 0.0) if settings.relu else None
    return PixelExplanation(ins, conv_rc, relu_value, pooled)


def relu_curve(limit: float) -> np.ndarray:
    """The ReLU ``y = max(0, x)`` for ``x`` in ``[-limit, limit]`` as the (3, 2) corner points
    ``(x, y)`` of its two straight pieces: ``[[-limit, 0], [0, 0], [limit, limit]]``."""
    m = abs(float(limit)) or 1.0
    return np.array([[-m, 0.0], [0.0, 0.0], [m, m]])


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class ReluFigure:
    """Figure 8 for one kernel: ``before`` (h, w) float32, its convolution values (every
    ``step``-th output pixel of one channel: a screenful), ``after = max(0, before)``, their
    pictures on one blue-white-red scale of ``[-limit, limit]``, the ``curve``
    (:func:`relu_curve`) and ``zeroed``: how many of the ``before.size`` values ReLU sets to 0."""

    before: np.ndarray
    after: np.ndarray
    before_picture: np.ndarray
    after_picture: np.ndarray
    curve: np.ndarray
    limit: float
    step: int
    zeroed: int

    def value_at(self, row: int, col: int) -> tuple[float, float] | None:
        """``(x, max(0, x))`` of figure pixel ``(row, col)``; None outside."""
        h, w = self.before.shape
        if not (0 <= row < h and 0 <= col < w):
            return None
        x = float(self.before[row, col])
        return x, max(x, 0.0)

    def pixel_of(self, conv_row: int, conv_col: int) -> tuple[int, int]:
        """The figure pixel that shows convolution output pixel ``(conv_row, conv_col)`` (the
        nearest shown one when the figure shows every ``step``-th pixel)."""
        h, w = self.before.shape
        r = min(max(round(conv_row / self.step), 0), h - 1)
        c = min(max(round(conv_col / self.step), 0), w - 1)
        return r, c


def relu_figure(
    source: np.ndarray,
    settings: FilterSettings,
    index: int,
    *,
    channel: int = 0,
    max_side: int = 512,
) -> ReluFigure:
    """Figure 8 of kernel ``index`` on ``source`` (a :class:`FilterResult`'s source: gray (H, W)
    or RGB (H, W, 3) uint8): the convolution before ReLU and after, whatever the tab's ReLU and
    pooling settings, at most ``max_side`` pixels a side (an exact every-``step``-th pixel)."""
    spec = settings.kernels[min(index, len(settings.kernels) - 1)]
    colour = "rgb" if source.ndim == 3 else "gray"
    one = FilterSettings((spec,), settings.border, settings.stride, colour)
    p = padding_for(settings.border, spec.size)
    oh, ow = (fitted_output_size(n, spec.size, settings.stride, p) for n in source.shape[:2])
    step = max(1, math.ceil(max(oh, ow) / max_side))
    maps = subsampled_maps(source, one, step)[0]
    before = np.ascontiguousarray(maps[:, :, min(channel, maps.shape[2] - 1)])
    after = np.maximum(before, np.float32(0))
    limit = float(np.abs(before).max()) or 1.0
    window = (-limit, limit)
    return ReluFigure(
        before,
        after,
        display(before, "diverging", value_range=window),
        display(after, "diverging", value_range=window),
        relu_curve(limit),
        limit,
        step,
        int(np.count_nonzero(before < 0)),
    )
