"""Teaching: the pixel inspector and the convolution steps of the article's Figure 5
(:mod:`.stepping` continues them through ReLU and pooling).

Slow and obvious on purpose (a handful of pixels): these show the arithmetic, not the speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError, ShapeError
from engine.filters.geometry import (
    NP_PAD,
    check_border,
    check_stride,
    fitted_output_size,
    index_map,
    padding_for,
)
from engine.filters.kernels import KernelSpec
from engine.filters.pipeline import FilterResult

__all__ = [
    "FIGURE5_IMAGE",
    "FIGURE5_KERNEL",
    "ConvStep",
    "ConvSteps",
    "Inspection",
    "conv_steps",
    "inspect_pixel",
    "inspect_result",
]


#: The article's 5x5 binary image and 3x3 kernel; their valid convolution is
#: ``[[4, 3, 4], [2, 4, 3], [2, 3, 4]]``.
FIGURE5_IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
    dtype=np.float64,
)
FIGURE5_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class Inspection:
    """What is under the kernel at one output pixel: the input ``patch`` (F, F) (padding
    included), ``weights`` (kernel / divisor), ``products = patch * weights``, their ``total``
    and the output ``value = total + offset``; ``source_rc`` is the top-left input pixel
    (may be negative in the padding)."""

    patch: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    total: float
    value: float
    source_rc: tuple[int, int]


def inspect_pixel(
    image: np.ndarray,
    spec: KernelSpec,
    *,
    border: str,
    stride: int,
    row: int,
    col: int,
    channel: int = 0,
) -> Inspection:
    """The Figure 5 view of output pixel ``(row, col)`` of one channel of ``image``."""
    check_border(border)
    a = np.asarray(image)
    plane = a if a.ndim == 2 else a[:, :, channel]
    f = spec.size
    p = padding_for(border, f)
    oh = fitted_output_size(plane.shape[0], f, stride, p)
    ow = fitted_output_size(plane.shape[1], f, stride, p)
    if not (0 <= row < oh and 0 <= col < ow):
        raise ShapeError(f"output pixel ({row}, {col}) is outside the {oh}x{ow} result")
    rmap = index_map(plane.shape[0], p, border)[row * stride : row * stride + f]
    cmap = index_map(plane.shape[1], p, border)[col * stride : col * stride + f]
    patch = plane[np.clip(rmap, 0, None)[:, None], np.clip(cmap, 0, None)[None, :]]
    patch = patch.astype(np.float64) * ((rmap >= 0)[:, None] & (cmap >= 0)[None, :])
    w = spec.weights()
    products = patch * w
    total = float(products.sum())
    return Inspection(
        patch, w, products, total, total + spec.offset, (row * stride - p, col * stride - p)
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class ConvStep:
    """One position of the sliding window: output cell ``(out_row, out_col)`` is filled with
    ``total = sum(patch * kernel)``; the window's top-left is ``(row0, col0)`` in the padded
    matrix."""

    out_row: int
    out_col: int
    row0: int
    col0: int
    patch: np.ndarray
    products: np.ndarray
    total: float


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields yourself
class ConvSteps:
    """The whole step-through: the (padded) ``matrix``, ``pad``, the ``kernel``, the ``steps``
    in raster order and the final ``output`` (out_h, out_w)."""

    matrix: np.ndarray
    pad: int
    kernel: np.ndarray
    steps: list[ConvStep]
    output: np.ndarray


def conv_steps(
    matrix: np.ndarray, kernel: np.ndarray, *, stride: int = 1, border: str = "valid"
) -> ConvSteps:
    """The window positions of a small 2-D convolution, in the order the animation shows them.

    ``conv_steps(FIGURE5_IMAGE, FIGURE5_KERNEL).output`` is the article's
    ``[[4, 3, 4], [2, 4, 3], [2, 3, 4]]``.
    """
    check_border(border)
    check_stride(stride)
    m = np.asarray(matrix, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if m.ndim != 2 or m.size > 64 * 64:
        raise ShapeError(f"step-through matrix shape {m.shape}: use a small 2-D crop (<= 64x64)")
    f = k.shape[0]
    p = padding_for(border, f)
    padded = np.pad(m, p, mode=NP_PAD[border]) if p else m
    oh = fitted_output_size(m.shape[0], f, stride, p)
    ow = fitted_output_size(m.shape[1], f, stride, p)
    output = np.zeros((oh, ow))
    steps = []
    for r in range(oh):
        for c in range(ow):
            patch = padded[r * stride : r * stride + f, c * stride : c * stride + f].copy()
            products = patch * k
            total = float(products.sum())
            output[r, c] = total
            steps.append(ConvStep(r, c, r * stride, c * stride, patch, products, total))
    return ConvSteps(padded, p, k, steps, output)


def inspect_result(
    result: FilterResult, index: int, row: int, col: int, channel: int = 0
) -> Inspection | None:
    """:func:`inspect_pixel` for pixel ``(row, col)`` of kernel ``index``'s map in ``result``
    (after pooling: the first convolution pixel of its pooling window); None outside."""
    settings = result.settings
    if settings is None:
        return None
    spec = settings.kernels[min(index, len(settings.kernels) - 1)]
    if settings.pool != "none":
        row, col = row * settings.pool_stride, col * settings.pool_stride
    source = result.source
    try:
        return inspect_pixel(
            source,
            spec,
            border=settings.border,
            stride=settings.stride,
            row=row,
            col=col,
            channel=channel if source.ndim == 3 else 0,
        )
    except EngineError:
        return None
