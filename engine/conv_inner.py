"""Convolution in "batch-inner" layout: the samples as the innermost axis, CHWN memory.

For convolutions with few input channels (LeNet's, and a colour photo's first layer) a patch
row is short in every other layout: ``KW`` numbers in NCHW, ``KW*C`` in NHWC. With the input
copied once, zero-bordered, into ``xp (C, Hp, Wp, N)``, patch entry ``(c, i, j)`` of every
output pixel of one output row ``y`` is ONE contiguous run of ``W'*N`` numbers (stride 1)::

    cols[(c, i, j), (y, x, n)] = xp[c, y*s + i, x*s + j, n]

so the patch matrix of a block of output rows, ``(C*KH*KW + 1, rows*W'*N)`` (the blocks kept
one after another, each contiguous: :func:`patch_matrix`), is filled by one strided copy, in
runs of hundreds of numbers and without the junk columns of the "wide" NCHW rows. Its last row
is ones: ``[weight | bias] @ cols`` adds the bias inside the product, and
``cols @ dout.T`` gives the bias gradient with the weight gradient. Each block is multiplied
while its patches are still in cache. The output ``(F, H'*W'*N)`` is CHWN memory too, which
ReLU and BatchNorm keep, max pooling reads in place, a concatenation copies and the next
batch-inner convolution reads with a plain copy; a graph hands it to nothing else
(:func:`engine.executor.mark_batch_inner`).

The patch matrix is kept from forward to backward (it is the weight gradient's operand, and
small for the few channels this layout serves). The input gradient is the patch gradients
``weight.T @ dout``, block by block in a per-thread workspace (:func:`engine.im2col.workspace`),
added back onto the padded input one kernel offset at a time, each add a strided view whose
rows are again runs of ``W'*N`` numbers.
"""

from __future__ import annotations

import numpy as np

from engine import im2col as k

BLOCK_BYTES = 512 * 1024  # patches of one block of output rows in forward (cache-sized)
GRAD_BLOCK_BYTES = 2 * 1024 * 1024  # patch gradients of one block in backward

_DCOLS = "conv_inner.dcols"  # workspace slot (engine.im2col.workspace)


def pad_chwn(x: np.ndarray, pad: int, out: np.ndarray | None = None) -> np.ndarray:
    """``x (N, C, H, W)`` (any strides) copied into a zero-bordered CHWN buffer
    ``(C, H+2p, W+2p, N)``; ``out`` is reused when its shape and dtype fit (only the interior
    is ever written, so its border is still zero)."""
    n, c, h, w = x.shape
    shape = (c, h + 2 * pad, w + 2 * pad, n)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.zeros(shape, dtype=x.dtype)
    out[:, pad : pad + h, pad : pad + w, :] = x.transpose(1, 2, 3, 0)
    return out


def blocks(
    k1: int, out_hw: tuple[int, int], n: int, itemsize: int, budget: int | None = None
) -> list[tuple[int, int]]:
    """The blocks of output rows ``(y0, y1)`` whose patches (``k1`` rows, ``W'*N`` columns
    per output row) fill about ``budget`` bytes (:data:`BLOCK_BYTES`)."""
    ho, wo = out_hw
    budget = BLOCK_BYTES if budget is None else budget
    step = max(1, budget // max(1, k1 * wo * n * itemsize))
    return [(y0, min(ho, y0 + step)) for y0 in range(0, ho, step)]


def patch_matrix(
    shape: tuple[int, int, int], out_hw: tuple[int, int], n: int, dtype: np.dtype, cols
) -> np.ndarray:
    """The patch matrices of every block (:func:`blocks`), one after another in one flat
    buffer: block ``(y0, y1)`` is ``(C*KH*KW + 1, (y1-y0)*W'*N)``, contiguous, its last row
    (the bias row) ones. ``cols`` is reused when it fits (kept between calls). Contiguous
    blocks, not column slices of one long matrix: with rows ``H'*W'*N`` apart (often a power
    of two: 16,384 numbers at 16 px for 64 samples) the product ran 2-4x slower (measured,
    OpenBLAS, 12 outputs x 201 patch entries: 6.8 ms whole, 1.8 ms in contiguous blocks)."""
    k1 = shape[0] * shape[1] * shape[2] + 1
    size = k1 * out_hw[0] * out_hw[1] * n
    if cols is None or cols.size != size or cols.dtype != dtype:
        cols = np.empty(size, dtype=dtype)
        run = out_hw[1] * n
        for y0, y1 in blocks(k1, out_hw, n, cols.itemsize):
            block(cols, k1, run, y0, y1)[-1] = 1
    return cols


def block(cols: np.ndarray, k1: int, run: int, y0: int, y1: int) -> np.ndarray:
    """Block ``(y0, y1)``'s patch matrix ``(k1, (y1-y0)*run)``, a view into ``cols``."""
    return cols[k1 * y0 * run : k1 * y1 * run].reshape(k1, (y1 - y0) * run)


def _copy_patches(
    xp: np.ndarray, mat: np.ndarray, kh: int, kw: int, stride: int, wo: int, y0: int, y1: int
) -> None:
    """Fill ``mat``, the patch matrix of output rows ``y0..y1-1``, from ``xp``: one copy."""
    c, _, _, n = xp.shape
    sc, sh, sw, sn = xp.strides
    rs, it = mat.strides[0], mat.itemsize
    shape = (c, kh, kw, y1 - y0, wo, n)
    src = k.view(xp, shape, (sc, sh, sw, stride * sh, stride * sw, sn), y0 * stride * sh)
    dst_strides = (kh * kw * rs, kw * rs, rs, wo * n * it, n * it, it)
    np.copyto(k.view(mat, shape, dst_strides), src)


def forward(
    xp: np.ndarray,
    wb: np.ndarray,
    kh: int,
    kw: int,
    stride: int,
    out_hw: tuple[int, int],
    cols: np.ndarray,
) -> np.ndarray:
    """``wb (F, C*KH*KW + 1) @`` the patches of the padded CHWN input ``xp``, filling ``cols``
    (from :func:`patch_matrix`) block by block of output rows. Returns ``(F, H'*W'*N)``:
    CHWN memory of the output."""
    n = xp.shape[3]
    k1 = wb.shape[1]
    run = out_hw[1] * n  # the columns of one output row
    out = np.empty((wb.shape[0], out_hw[0] * run), dtype=cols.dtype)
    for y0, y1 in blocks(k1, out_hw, n, cols.itemsize):
        mat = block(cols, k1, run, y0, y1)
        _copy_patches(xp, mat, kh, kw, stride, out_hw[1], y0, y1)
        np.matmul(wb, mat, out=out[:, y0 * run : y1 * run])
    return out


def weight_grad(cols: np.ndarray, d2: np.ndarray, k1: int, out_hw: tuple[int, int]) -> np.ndarray:
    """``(C*KH*KW + 1, F)``: the weight gradient's rows and, last, the bias gradient, from the
    kept patch blocks and ``d2 (F, H'*W'*N)``, block by block. This orientation (patches @
    dout.T) runs 1.5-1.9x faster in OpenBLAS than ``dout @ patches.T`` on these long, thin
    shapes (measured, 1 thread)."""
    f = d2.shape[0]
    n = d2.shape[1] // (out_hw[0] * out_hw[1])
    run = out_hw[1] * n
    dwb = np.zeros((k1, f), dtype=d2.dtype)
    tmp = np.empty_like(dwb)
    for y0, y1 in blocks(k1, out_hw, n, cols.itemsize):
        np.matmul(block(cols, k1, run, y0, y1), d2[:, y0 * run : y1 * run].T, out=tmp)
        dwb += tmp
    return dwb


def input_grad(
    d2: np.ndarray,
    wt: np.ndarray,
    xp_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: int,
    out_hw: tuple[int, int],
) -> np.ndarray:
    """The gradient of the padded input, ``(C, Hp, Wp, N)`` (a fresh array), from
    ``d2 (F, H'*W'*N)`` and ``wt (C*KH*KW, F)`` (the weights transposed): the patch gradients
    ``wt @ d2`` of a block of output rows, added back one kernel offset at a time."""
    c, _, _, n = xp_shape
    wo = out_hw[1]
    s = stride
    run = wo * n
    dxp = np.zeros(xp_shape, dtype=d2.dtype)
    for y0, y1 in blocks(wt.shape[0], out_hw, n, d2.itemsize, GRAD_BLOCK_BYTES):
        dc = k.workspace(wt.shape[0] * (y1 - y0) * run, d2.dtype, _DCOLS)
        dc2 = dc.reshape(wt.shape[0], -1)
        np.matmul(wt, d2[:, y0 * run : y1 * run], out=dc2)
        dc6 = dc2.reshape(c, kh, kw, y1 - y0, wo, n)
        for i in range(kh):
            rows = slice(y0 * s + i, (y1 - 1) * s + i + 1, s)
            for j in range(kw):
                target = dxp[:, rows, j : j + (wo - 1) * s + 1 : s]
                np.add(target, dc6[:, i, j], out=target)
    return dxp
