"""Convolution in "rows" layout: one patch row per output pixel, block by block, none kept.

The input is copied once, zero-bordered, into NHWC memory ``(N, Hp, Wp, C)``. Then kernel row
``i`` of the patch of output pixel ``(n, y, x)`` is ONE contiguous run of ``KW*C`` numbers
(``xp[n, y*stride + i, x*stride : x*stride + KW, :]``), so the patches of a block of samples,
``cols (rows, KH*KW*C)``, are one strided view copied in long runs, and

    out[block] = cols @ wt          wt = weight as (KH*KW*C, F)
    dweight   += cols.T @ dout[block]

are products with the pixels as the long axis, the orientation OpenBLAS runs fastest for
these shapes (measured, 1 thread, float32: 1.3-2x the GFLOP/s of ``weight @ cols`` with the
pixels as columns, e.g. 64 outputs x 800 patch entries x 16,384 pixels: 65 against 44). Each
block's ``(pixels, F)`` product is stored transposed while in cache, so the output is CNHW
memory as on the other paths (BatchNorm's per-channel passes read it 2-3x faster than
channels-innermost memory).

No patch matrix outlives a block: each block's patches live in a per-thread workspace
(:func:`engine.im2col.workspace`), rebuilt for the weight gradient (a copy costs a few
percent of the product it feeds). What a training step keeps per convolution is the padded
input, about the size of the input itself.

The input gradient of a stride-1 convolution is itself one: ``dout`` zero-padded by
``K-1-padding``, the kernel flipped in both axes with its channel axes swapped, through the
same blocked rows (:func:`input_grad`). Other strides scatter each block's patch gradients
``dout[block] @ wt.T`` back onto the padded input, one strided add per kernel offset.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import im2col as k

BLOCK_BYTES = 2 * 1024 * 1024  # patches of one block (cache-sized: the product reads them once)

# outputs below which the weight gradient is taken as dout.T @ patches: measured (1 thread,
# batch 64, best of 9) 0.86-0.95x the time of patches.T @ dout for DenseNet's 12 outputs,
# 0.96-1.01x for 16-48
NARROW_F = 16

# workspace slots (engine.im2col.workspace)
_COLS, _DPAD, _DCOLS, _RES = "conv_rows.cols", "conv_rows.dpad", "conv_rows.dcols", "conv_rows.res"


def pad_nhwc(
    x: np.ndarray, ph: int, pw: int, out: np.ndarray | None = None, layout: str = "nchw"
) -> np.ndarray:
    """``x`` (NCHW-shaped, any strides; ``layout="nhwc"``: already NHWC-shaped) copied into a
    zero-bordered NHWC buffer ``(N, H+2ph, W+2pw, C)``. ``out`` is reused when its shape and
    dtype fit: only the interior is ever written, so its border is still zero."""
    src = x.transpose(0, 2, 3, 1) if layout == "nchw" else x
    n, h, w, c = src.shape
    shape = (n, h + 2 * ph, w + 2 * pw, c)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.zeros(shape, dtype=x.dtype)
    out[:, ph : ph + h, pw : pw + w, :] = src
    return out


def _patches(xp: np.ndarray, kh: int, kw: int, stride: int, ho: int, wo: int) -> np.ndarray:
    """The patches of the padded NHWC ``xp`` as a strided view ``(N, H', W', KH, KW*C)``."""
    sn, sh, sw, sc = xp.strides
    c = xp.shape[3]
    return as_strided(
        xp,
        shape=(xp.shape[0], ho, wo, kh, kw * c),
        strides=(sn, sh * stride, sw * stride, sh, sc),
        writeable=False,
    )


def _blocks(n: int, rows_per_sample: int, row_bytes: int):
    """Sample ranges ``(n0, n1)`` whose patches fill about :data:`BLOCK_BYTES`."""
    step = max(1, BLOCK_BYTES // max(1, rows_per_sample * row_bytes))
    for n0 in range(0, n, step):
        yield n0, min(n, n0 + step)


def forward(
    xp: np.ndarray,
    wt: np.ndarray,
    bias: np.ndarray | None,
    kh: int,
    kw: int,
    stride: int,
    out_hw: tuple[int, int],
) -> np.ndarray:
    """The convolution of the padded NHWC ``xp`` with ``wt (KH*KW*C, F)`` (rows ordered
    ``(i, j, c)``): ``(F, N*H'*W')``, CNHW memory. Each block's product ``(pixels, F)`` is
    stored transposed while still in cache, so what follows (BatchNorm's per-channel passes,
    the next convolution's copy) reads channel-major memory as from every other path."""
    ho, wo = out_hw
    n = xp.shape[0]
    rows, f = wt.shape
    view = _patches(xp, kh, kw, stride, ho, wo)
    out = np.empty((f, n * ho * wo), dtype=xp.dtype)
    hw = ho * wo
    for n0, n1 in _blocks(n, hw, rows * xp.itemsize):
        cols = k.workspace((n1 - n0) * hw * rows, xp.dtype, _COLS)
        np.copyto(cols.reshape(n1 - n0, ho, wo, kh, -1), view[n0:n1])
        res = k.workspace((n1 - n0) * hw * f, xp.dtype, _RES).reshape(-1, f)
        np.matmul(cols.reshape(-1, rows), wt, out=res)
        out[:, n0 * hw : n1 * hw] = res.T
    if bias is not None:
        out += bias[:, None]
    return out


def weight_grad(
    xp: np.ndarray, d: np.ndarray, kh: int, kw: int, stride: int, out_hw: tuple[int, int]
) -> np.ndarray:
    """``sum over pixels of patch.T @ dout``: ``(KH*KW*C, F)`` from the padded NHWC ``xp`` and
    ``d (N*H'*W', F)``, the patches rebuilt block by block (for fewer than :data:`NARROW_F`
    outputs the transposed product, ``dout.T @ patches``, which OpenBLAS runs faster)."""
    ho, wo = out_hw
    n, c = xp.shape[0], xp.shape[3]
    rows = kh * kw * c
    hw = ho * wo
    view = _patches(xp, kh, kw, stride, ho, wo)
    f = d.shape[1]
    narrow = f < NARROW_F
    dw = np.zeros((f, rows) if narrow else (rows, f), dtype=d.dtype)
    tmp = np.empty_like(dw)
    for n0, n1 in _blocks(n, hw, rows * xp.itemsize):
        cols = k.workspace((n1 - n0) * hw * rows, xp.dtype, _COLS).reshape(-1, rows)
        np.copyto(cols.reshape(n1 - n0, ho, wo, kh, -1), view[n0:n1])
        db = d[n0 * hw : n1 * hw]
        if narrow:
            np.matmul(db.T, cols, out=tmp)
        else:
            np.matmul(cols.T, db, out=tmp)
        dw += tmp
    return dw.T if narrow else dw


def flipped_rows(weight: np.ndarray) -> np.ndarray:
    """``weight (F, C, KH, KW)`` flipped in both kernel axes as ``(KH*KW*F, C)``: the weights
    of the stride-1 input gradient seen as a convolution of ``dout``."""
    f, c, kh, kw = weight.shape
    flipped = weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
    return np.ascontiguousarray(flipped).reshape(kh * kw * f, c)


def input_grad(
    d: np.ndarray,
    weight: np.ndarray,
    wt: np.ndarray,
    x_shape: tuple[int, ...],
    stride: int,
    pad: int,
) -> np.ndarray:
    """The input gradient, NCHW-shaped ``(N, C, H, W)`` (CNHW or NHWC memory, a fresh array
    of exactly the input's size) from ``d (N, H', W', F)`` (C-contiguous), ``weight (F, C,
    KH, KW)`` and its rows ``wt (KH*KW*C, F)``."""
    n, c, h, w = x_shape
    f, _, kh, kw = weight.shape
    ho, wo = d.shape[1], d.shape[2]
    qh, qw = kh - 1 - pad, kw - 1 - pad  # dout's zero border
    if stride == 1 and qh >= 0 and qw >= 0:
        shape = (n, ho + 2 * qh, wo + 2 * qw, f)
        dp = k.workspace(int(np.prod(shape)), d.dtype, _DPAD).reshape(shape)
        dp[...] = 0  # (workspace contents are undefined; pad_nhwc writes the interior only)
        pad_nhwc(d, qh, qw, dp, layout="nhwc")
        dx = forward(dp, flipped_rows(weight), None, kh, kw, 1, (h, w))
        return dx.reshape(c, n, h, w).transpose(1, 0, 2, 3)
    return _scatter_grad(d, wt, x_shape, kh, kw, stride, pad).transpose(0, 3, 1, 2)


def _scatter_grad(
    d: np.ndarray,
    wt: np.ndarray,
    x_shape: tuple[int, ...],
    kh: int,
    kw: int,
    stride: int,
    pad: int,
) -> np.ndarray:
    """:func:`input_grad` for other strides: each block's patch gradients ``d @ wt.T`` added
    back onto the padded input, one strided add per kernel offset. The NHWC twin of
    :func:`engine.conv.input_grad` (CNHW, for the patch-matrix path): measured, each is the
    faster one in its own layout (this one 0.63-0.96x the other's time on the family's stride-2
    3x3 and 5x5 shapes, the other 0.38-1.00x on 1x1 and 3-channel ones, dout's transposing copy
    included), so both stay."""
    n, c, h, w = x_shape
    ho, wo, f = d.shape[1], d.shape[2], d.shape[3]
    rows = wt.shape[0]
    hw = ho * wo
    dx = np.empty((n, h, w, c), dtype=d.dtype)  # exactly the input's size: no padded border kept
    d2 = d.reshape(-1, f)
    wtt = np.ascontiguousarray(wt.T)  # (F, KH*KW*C)
    for n0, n1 in _blocks(n, hw, rows * d.itemsize):
        dcols = k.workspace((n1 - n0) * hw * rows, d.dtype, _DCOLS).reshape(-1, rows)
        np.matmul(d2[n0 * hw : n1 * hw], wtt, out=dcols)
        d6 = dcols.reshape(n1 - n0, ho, wo, kh, kw, c)
        shape = (n1 - n0, h + 2 * pad, w + 2 * pad, c)
        block = dx[n0:n1] if not pad else k.workspace(int(np.prod(shape)), d.dtype, _DPAD)
        block = block.reshape(shape)
        block[...] = 0
        for i in range(kh):
            for j in range(kw):
                block[:, i : i + stride * ho : stride, j : j + stride * wo : stride] += d6[
                    :, :, :, i, j
                ]
        if pad:
            dx[n0:n1] = block[:, pad : pad + h, pad : pad + w]
    return dx
