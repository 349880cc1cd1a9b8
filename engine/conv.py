"""The input gradient of a convolution through patches, block by block of samples.

For a stride-2 convolution, or a stride-1 one with more outputs than inputs, the input
gradient is ``weight.T @ dout`` (the patch gradients, ``C*KH*KW`` rows, one column per output
pixel) scattered back onto the padded input (:func:`engine.im2col.col2im`). For the whole batch
those patch gradients are ``KH*KW/stride**2`` times the input's size (50 MB for a batch of 64
through a 32->64 5x5 convolution at 16 px), the largest array of a training step; here they
exist for one block of samples at a time, in reused per-thread workspaces
(:func:`engine.im2col.workspace`), each block's product still in cache when it is scattered.
Measured (1 thread, batch 64, CPU time, against the whole-batch product and col2im): 0.7-1.0x
for blocks of 4 MB on the family's shapes.
"""

from __future__ import annotations

import numpy as np

from engine import im2col as k

BLOCK_BYTES = 4 * 1024 * 1024  # patch gradients of one block of samples (measured: 1-8 MB alike)

# workspace slots (engine.im2col.workspace) of the block buffers
_DCOLS, _DXPAD = "conv.dcols", "conv.dxpad"


def input_grad(
    d2: np.ndarray,
    wt: np.ndarray,
    x_shape: tuple[int, ...],
    kh: int,
    kw: int,
    stride: int,
    pad: int,
) -> np.ndarray:
    """The input gradient ``(C, N, H, W)`` (CNHW memory, a fresh array of exactly that size)
    of a convolution of ``x_shape (N, C, H, W)`` through patches, from ``d2 (F, N*H'*W')`` and
    ``wt (F, C*KH*KW)``: ``wt.T @ d2`` scattered back (:func:`engine.im2col.col2im`), block by
    block of samples, so the patch gradients never exist for the whole batch at once."""
    n, c, h, w = x_shape
    rows = wt.shape[1]
    hw = k.output_size(h, kh, stride, pad) * k.output_size(w, kw, stride, pad)
    dx = np.empty((c, n, h, w), dtype=d2.dtype)
    wtt = np.ascontiguousarray(wt.T)  # (C*KH*KW, F)
    step = max(1, BLOCK_BYTES // max(1, rows * hw * d2.itemsize))
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        db = d2[:, n0 * hw : n1 * hw]
        dcols = k.workspace(rows * db.shape[1], d2.dtype, _DCOLS).reshape(rows, -1)
        np.matmul(wtt, db, out=dcols)
        shape = (c, n1 - n0, h + 2 * pad, w + 2 * pad)
        if not pad:  # scattered straight into dx
            k.col2im(dcols, shape, kh, kw, stride, out=dx[:, n0:n1])
            continue
        dxp = k.workspace(int(np.prod(shape)), d2.dtype, _DXPAD).reshape(shape)
        k.col2im(dcols, shape, kh, kw, stride, out=dxp)
        dx[:, n0:n1] = dxp[:, :, pad : pad + h, pad : pad + w]
    return dx
