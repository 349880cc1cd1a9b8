"""Max pooling kernels: phase planes, flat running maxima, first-maximum codes; 2x2 by reshape.

General ``size x size`` pooling with stride ``s`` and padding (:func:`maxpool_forward`) works in
the input's own memory order, seen as a grid ``(G, H, W, Cc)``: ``G = N*C`` and ``Cc = 1`` for
NCHW or CNHW memory (spatial axes last), ``G = N`` and ``Cc = C`` for NHWC memory (channels
innermost, as a strided rows convolution hands its input gradient back), ``G = C`` and
``Cc = N`` for CHWN memory (samples innermost, as a batch-inner convolution hands out its
output, :mod:`engine.conv_inner`). The input is copied once, bordered with ``-inf``, into
phase planes: plane ``(b, a)`` holds padded pixel ``(s*r + b, s*x + a)`` at ``(g, r, x)``,
``r < Hr``, ``x < L`` (the padded sides divided by ``s``, rounded up). Each plane, and the
wide output, is one flat run of ``n = G*Hr*L*Cc`` numbers, so with ``k = size``::

    R_b[t] = max_j plane(b, j % s)[t + (j // s)*Cc]       row maxima, for each row phase b
    Y[t]   = max_i R_(i % s)[t + (i // s)*L*Cc]           the pooling, t over all n

are all plain 1-D, unit-stride, vectorised maxima over a whole block of groups: no loop over
pixels, no short rows, no strided gathers but the copy in. The entries at the rounding column
and rows are junk: dropped from ``Y`` and given no gradient (only junk ever reads past a
plane). Training keeps, per stage, the FIRST offset holding the maximum (uint8 codes from
equality tests after the maxima): the row stage's code in the column stage's first maximal
row is the window's first maximum in row-major order, as PyTorch routes it, so a window of
ties (zeros after ReLU) gives its gradient to exactly one input. Backward runs the same views
in reverse: ``g * (code == k)`` per offset, assigned for the first ``min(s, k)`` offsets (whole
planes) and added for the others (overlapping windows sum).

The work runs block by block of the ``G`` axis so that a block's buffers (per-thread
workspaces, :func:`engine.im2col.workspace`) stay in cache: every pass is then a cache pass,
not a memory one. A training step keeps the codes, a byte per output and per row maximum.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.im2col import output_size, view, workspace

# workspace slots (engine.im2col.workspace)
_PAD, _ROWS, _WIDE = "pooling.pad", "pooling.rows", "pooling.wide"
BLOCK_BYTES = 256 * 1024  # one phase plane of a block (measured best for 8-32 px, 32-96 channels)


class _Geometry:
    """Phase planes and views for one pooling of a grid ``(G, H, W, Cc)``."""

    def __init__(self, grid: tuple[int, ...], size: int, stride: int, pad: int) -> None:
        g, h, w, cc = grid
        s = stride
        self.grid, self.size, self.stride, self.pad = grid, size, stride, pad
        self.ho = output_size(h, size, s, pad)
        self.wo = output_size(w, size, s, pad)
        self.hr = -(-(h + 2 * pad) // s)
        self.lr = -(-(w + 2 * pad) // s)
        self.q = min(s, size)  # phases in use along each axis
        self.per = self.hr * self.lr * cc  # one group's share of a plane
        self.n = g * self.per
        self.rows = [_phase(b, s, pad, h, self.hr) for b in range(self.q)]
        self.cols = [_phase(a, s, pad, w, self.lr) for a in range(self.q)]
        reach = (size - 1) // s  # the farthest views read this far past their plane (junk)
        self.slack_pad = reach * cc
        self.slack_row = reach * self.lr * cc

    def pad_views(self, flat: np.ndarray, b: int) -> list[np.ndarray]:
        """Offset ``j`` of the row-stage windows of row phase ``b``, for each ``j``."""
        s, q, cc = self.stride, self.q, self.grid[3]
        return [self._run(flat, (b * q + j % s) * self.n + j // s * cc) for j in range(self.size)]

    def row_views(self, flat: np.ndarray) -> list[np.ndarray]:
        """Offset ``i`` of the column-stage windows (over the row maxima), for each ``i``."""
        s, run = self.stride, self.lr * self.grid[3]
        return [self._run(flat, i % s * self.n + i // s * run) for i in range(self.size)]

    def _run(self, flat: np.ndarray, start: int) -> np.ndarray:
        return view(flat, (self.n,), (flat.itemsize,), start * flat.itemsize)

    def plane(self, flat: np.ndarray, index: int) -> np.ndarray:
        """Plane ``index`` of ``flat`` as ``(G, Hr, L, Cc)``."""
        g, _, _, cc = self.grid
        return flat[index * self.n : (index + 1) * self.n].reshape(g, self.hr, self.lr, cc)


def _phase(a: int, s: int, pad: int, size: int, length: int) -> tuple[slice, slice]:
    """Phase ``a`` along one axis: ``(dst, src)``: plane entries ``dst`` are the input's
    pixels ``src`` (a stride-``s`` slice); the other entries are padding or junk."""
    t0 = max(0, -((a - pad) // s))
    t1 = max(t0, min(length, -(-(size + pad - a) // s)))
    first = a + s * t0 - pad
    return slice(t0, t1), slice(first, first + s * (t1 - t0), s)


def _grid(x: np.ndarray) -> tuple[tuple[int, ...], np.ndarray, tuple[int, ...]]:
    """``(perm, grid, mshape)``: ``x (N,C,H,W)`` in its memory order ``x.transpose(perm)``
    (shape ``mshape``: NHWC, CNHW or NCHW) seen as ``(G, H, W, Cc)``, a view where the memory
    allows (NCHW made contiguous otherwise)."""
    _, c, h, w = x.shape
    if c > 1 and not x.flags.c_contiguous and _channels_last(x):
        xt = x.transpose(0, 2, 3, 1)
        return (0, 2, 3, 1), xt, xt.shape
    if batch_inner(x):  # seen as (C, H, W, N): the samples play the channels' part
        xt = x.transpose(1, 2, 3, 0)
        return (1, 2, 3, 0), xt, xt.shape
    perm, xm = memory_order(x)
    return perm, xm.reshape(-1, h, w, 1), xm.shape


def _channels_last(x: np.ndarray) -> bool:
    """NHWC memory (rows may be longer than W*C, as in a wide buffer)."""
    it = x.itemsize
    sn, sc, sh, sw = x.strides
    _, c, h, w = x.shape
    return sc == it and sw == c * it and sh >= w * c * it and sn == h * sh


def batch_inner(x: np.ndarray) -> bool:
    """CHWN memory, compact (as a batch-inner convolution hands out, :mod:`engine.conv_inner`),
    holding more than one sample."""
    n, _, h, w = x.shape
    it = x.itemsize
    return n > 1 and x.strides == (it, h * w * n * it, w * n * it, n * it)


def inverse_perm(perm: tuple[int, ...]) -> tuple[int, ...]:
    """The axes that undo ``transpose(perm)``."""
    return tuple(int(i) for i in np.argsort(perm))


def maxpool_forward(
    x: np.ndarray, size: int, stride: int, pad: int = 0, training: bool = True
) -> tuple[np.ndarray, tuple]:
    """Max pooling of ``x (N,C,H,W)`` (any memory order; padding reads ``-inf``) ->
    ``(y (N,C,H',W'), state)``, ``H' = 1 + (H + 2*pad - size) // stride``; ``y`` has the
    memory order of ``x`` (NCHW when ``x`` had none of the three). Block by block of the grid's
    ``G`` axis; see the module docstring. ``training=False`` skips the codes (``state`` is
    empty)."""
    perm, xg, mshape = _grid(x)
    g, _, _, cc = xg.shape
    geo = _Geometry(xg.shape, size, stride, pad)
    if cc > 1:  # NHWC or CHWN
        y = np.empty((g, geo.ho, geo.wo, cc), x.dtype)
    else:
        y = np.empty((mshape[0], mshape[1], geo.ho, geo.wo), x.dtype)
    yg = y.reshape(g, geo.ho, geo.wo, cc)
    code_col = np.empty(geo.n, np.uint8)
    code_row = np.empty((geo.q, geo.n), np.uint8)
    for g0, g1, blk in _blocks(geo, x.itemsize):
        cols = slice(g0 * geo.per, g1 * geo.per)
        codes = (code_col[cols], code_row[:, cols]) if training else None
        _forward_block(xg[g0:g1], blk, yg[g0:g1], codes)
    y = y.transpose(inverse_perm(perm))
    if not training:
        return y, ()
    return y, (perm, mshape, geo, code_col, code_row)


def _blocks(geo: _Geometry, itemsize: int):
    """``(g0, g1, geometry)`` for each block of groups whose phase plane fits BLOCK_BYTES."""
    g, h, w, cc = geo.grid
    step = max(1, BLOCK_BYTES // (geo.per * itemsize))
    blk = _Geometry((min(step, g), h, w, cc), geo.size, geo.stride, geo.pad)
    for g0 in range(0, g, step):
        g1 = min(g, g0 + step)
        if g1 - g0 != blk.grid[0]:
            blk = _Geometry((g1 - g0, h, w, cc), geo.size, geo.stride, geo.pad)
        yield g0, g1, blk


def _forward_block(xg: np.ndarray, geo: _Geometry, yg: np.ndarray, codes: tuple | None) -> None:
    """One block of :func:`maxpool_forward`: ``yg[...]`` = the pooling of ``xg (G, H, W, Cc)``
    and, given ``codes`` (``(column stage (n,), row stage (q, n))``), the first maxima."""
    dt, n, q = xg.dtype, geo.n, geo.q
    flat = workspace(q * q * n + geo.slack_pad, dt, _PAD)
    flat.fill(-np.inf)  # padding, rounding and slack; in cache, cheaper than strided fills
    for b, (rd, rs) in enumerate(geo.rows):
        for a, (cd, cs) in enumerate(geo.cols):
            geo.plane(flat, b * q + a)[:, rd, cd] = xg[:, rs, cs]
    rflat = workspace(q * n + geo.slack_row, dt, _ROWS)
    rflat[q * n :] = -np.inf
    for b in range(q):
        _max_of(geo.pad_views(flat, b), rflat[b * n : (b + 1) * n])
    rv = geo.row_views(rflat)
    wide = _max_of(rv, workspace(n, dt, _WIDE))
    yg[...] = geo.plane(wide, 0)[:, : geo.ho, : geo.wo]
    if codes is not None:
        _first_max(rv, wide, codes[0])
        for b in range(q):
            _first_max(geo.pad_views(flat, b), rflat[b * n : (b + 1) * n], codes[1][b])


def _max_of(views: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """Elementwise maximum of same-shaped ``views`` into ``out``."""
    if len(views) == 1:
        np.copyto(out, views[0])
        return out
    np.maximum(views[0], views[1], out=out)
    for v in views[2:]:
        np.maximum(out, v, out=out)
    return out


def _first_max(views: list[np.ndarray], m: np.ndarray, code: np.ndarray) -> None:
    """``code[...]`` = per element, the index of the first of ``views`` equal to their
    maximum ``m``: the number of leading views that miss it."""
    if len(views) == 1:
        code.fill(0)
        return
    miss = np.not_equal(views[0], m)
    np.copyto(code, miss.view(np.uint8))
    hit = np.empty_like(miss)
    for v in views[1:-1]:
        np.not_equal(v, m, out=hit)
        miss &= hit
        code += miss.view(np.uint8)


def maxpool_backward(dout: np.ndarray, state: tuple) -> np.ndarray:
    """Adjoint of :func:`maxpool_forward`: route ``dout (N,C,H',W')`` to the first maximum of
    each window (summed where windows overlap) -> ``dx (N,C,H,W)`` in the input's memory
    order; block by block, as forward."""
    perm, mshape, geo, code_col, code_row = state
    g, h, w, cc = geo.grid
    dg = dout.transpose(perm).reshape(g, geo.ho, geo.wo, cc)
    dx = np.empty(mshape, dout.dtype)
    dxg = dx.reshape(g, h, w, cc)
    if geo.size < geo.stride:
        dx.fill(0)  # pixels in no window
    for g0, g1, blk in _blocks(geo, dout.itemsize):
        cols = slice(g0 * geo.per, g1 * geo.per)
        _backward_block(dg[g0:g1], blk, code_col[cols], code_row[:, cols], dxg[g0:g1])
    return dx.transpose(inverse_perm(perm))


def _backward_block(
    dg: np.ndarray, geo: _Geometry, code_col: np.ndarray, code_row: np.ndarray, dxg: np.ndarray
) -> None:
    """One block of :func:`maxpool_backward`: ``dxg[...]`` = the input gradient."""
    dt, n, q = dg.dtype, geo.n, geo.q
    dwide = workspace(n, dt, _WIDE)
    dwide.fill(0)  # junk outputs route nothing
    geo.plane(dwide, 0)[:, : geo.ho, : geo.wo] = dg
    drow = workspace(q * n + geo.slack_row, dt, _ROWS)
    _route(dwide, code_col, geo.row_views(drow), q)
    dpad = workspace(q * q * n + geo.slack_pad, dt, _PAD)
    for b in range(q):
        _route(drow[b * n : (b + 1) * n], code_row[b], geo.pad_views(dpad, b), q)
    for b, (rd, rs) in enumerate(geo.rows):
        for a, (cd, cs) in enumerate(geo.cols):
            dxg[:, rs, cs] = geo.plane(dpad, b * q + a)[:, rd, cd]


def _route(g: np.ndarray, code: np.ndarray, targets: list[np.ndarray], q: int) -> None:
    """Adjoint of one stage: ``targets[k] += g * (code == k)``. The first ``q`` targets are
    whole planes, so they are assigned (no zeroing); the others overlap them and add. Only
    junk (zero gradient) reaches past a plane. The mask is made a float array first: a
    float-by-float product is cheaper than one casting a bool operand on the fly."""
    mask = np.empty(code.shape, bool)
    mf = np.empty(code.shape, g.dtype)
    for k, t in enumerate(targets):
        np.equal(code, k, out=mask)
        np.copyto(mf, mask)
        if k < q:
            np.multiply(g, mf, out=t)
        else:
            mf *= g
            t += mf


def memory_order(x: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """``(perm, xm)`` with ``xm = x.transpose(perm)`` C-contiguous and the spatial axes last.

    A convolution's output is CNHW memory seen as NCHW; pooling it in its own memory order
    avoids a transposing copy. Anything else is made C-contiguous (NCHW) first.
    """
    xm = x.transpose(1, 0, 2, 3)
    if _rows_compact(xm):
        return (1, 0, 2, 3), xm
    if _rows_compact(x):
        return (0, 1, 2, 3), x
    return (0, 1, 2, 3), np.ascontiguousarray(x)


def _rows_compact(a: np.ndarray) -> bool:
    """C-ordered except that rows may be longer than W (a wide convolution's output)."""
    it = a.itemsize
    s0, s1, s2, s3 = a.strides
    _, n1, n2, n3 = a.shape
    return s3 == it and s2 >= n3 * it and s1 == n2 * s2 and s0 == n1 * s1


def _tiles(xm: np.ndarray, size: int) -> np.ndarray:
    """``xm (A, B, H, W)`` (rows compact) as ``(A*B*H/size, size, W/size, size)``, a view."""
    a, b, h, w = xm.shape
    it, rs = xm.itemsize, xm.strides[2]
    shape = (a * b * h // size, size, w // size, size)
    strides = (size * rs, rs, size * it, it)
    base = xm.base
    if (
        base is not None
        and base.flags.c_contiguous
        and base.nbytes >= a * b * h * rs
        and xm.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    ):
        return view(base, shape, strides)
    return as_strided(xm, shape=shape, strides=strides, writeable=False)


def _windows(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray]:
    """``(perm, mshape, x5)``: ``x`` in its memory order ``x.transpose(perm)`` (shape
    ``mshape``) and, a view, its 2x2 windows ``(M, 2, W/2, 2, I)``: ``I = N`` for CHWN memory
    (``M = C*H/2``), else ``I = 1`` (``M = C*N*H/2``, spatial axes last)."""
    if batch_inner(x):
        xm = x.transpose(1, 2, 3, 0)
        c, h, w, n = xm.shape
        return (1, 2, 3, 0), xm.shape, xm.reshape(c * h // 2, 2, w // 2, 2, n)
    perm, xm = memory_order(x)
    return perm, xm.shape, _tiles(xm, 2)[..., None]


def maxpool2x2_forward(x: np.ndarray, training: bool = True) -> tuple[np.ndarray, tuple]:
    """2x2, stride-2 max pooling of ``x (N,C,H,W)`` with even H, W, by reshaping (no gather).

    In memory order, ``x`` is ``(M, 2, W/2, 2, I)`` (:func:`_windows`): the max of the two
    rows of each window (long contiguous runs), then of the two columns; ``y`` keeps the
    memory order of ``x``. ``state`` keeps which row won in each column and which column won
    (bool), so backward routes each gradient to exactly one input: the window's first
    maximum in row-major order, as PyTorch does. On a tie between the columns that is the
    right one when only its top holds the maximum while the left column's comes from the
    bottom row. With ``training=False`` no state is computed (it is empty).
    """
    if not training and x.flags.c_contiguous:  # inference on NCHW memory: just the maxima
        n, c, h, w = x.shape
        r = x.reshape(n * c * h // 2, 2, w // 2, 2)
        rows = np.maximum(r[:, 0], r[:, 1])
        return np.maximum(rows[..., 0], rows[..., 1]).reshape(n, c, h // 2, w // 2), ()
    perm, mshape, x5 = _windows(x)
    r0, r1 = x5[:, 0], x5[:, 1]
    rm = np.maximum(r0, r1)  # (M, W/2, 2, I): each window column's maximum
    left, right = rm[:, :, 0], rm[:, :, 1]
    y = np.maximum(left, right)
    yshape = list(mshape)
    for axis in (perm.index(2), perm.index(3)):
        yshape[axis] //= 2
    y = y.reshape(yshape).transpose(inverse_perm(perm))
    if not training:
        return y, ()
    row1 = np.greater(r1, r0)  # the bottom row wins in that column (first on ties: top)
    col1 = np.greater(right, left)
    tie = np.equal(right, left)  # then the right column wins if its max is on top, left's not
    tie &= np.greater(row1[:, :, 0], row1[:, :, 1])
    col1 |= tie
    return y, (perm, mshape, row1, col1)


def maxpool2x2_backward(dout: np.ndarray, state: tuple) -> np.ndarray:
    """Adjoint of :func:`maxpool2x2_forward`: ``dout (N,C,H/2,W/2)`` -> ``dx (N,C,H,W)``."""
    perm, mshape, row1, col1 = state
    dy = np.ascontiguousarray(dout.transpose(perm)).reshape(col1.shape)
    drm = np.empty(row1.shape, dtype=dout.dtype)
    np.multiply(dy, col1, out=drm[:, :, 1])
    np.subtract(dy, drm[:, :, 1], out=drm[:, :, 0])  # exactly one column gets dy
    m, half, _, inner = row1.shape
    dx = np.empty((m, 2, half, 2, inner), dtype=dout.dtype)
    np.multiply(drm, row1, out=dx[:, 1])
    np.subtract(drm, dx[:, 1], out=dx[:, 0])  # exactly one row gets it
    return dx.reshape(mshape).transpose(inverse_perm(perm))
