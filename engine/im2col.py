"""The fast kernels behind Conv2D and average pooling: stride tricks + one BLAS matmul.

Layout trick: the convolution works internally in *CNHW* memory order (channels outermost).
With the patches laid out as ``cols`` of shape ``(C*KH*KW, N*H'*W')`` the whole batch becomes
ONE matrix multiply ``weight (F, C*KH*KW) @ cols -> (F, N*H'*W')``, whose result already is the
output in CNHW order. Returned to the caller as ``out.transpose(1, 0, 2, 3)`` it has the NCHW
shape the layer contract promises without any copy; the next convolution reads its input through
strides and never needs NCHW memory either. The naive, obviously-correct versions of these
operations live in :mod:`engine.reference` and are the tests' oracle.

Stride-1 convolutions (all of LeNet's) use "wide" patch rows over the padded width (see
:func:`wide_chunks`), so im2col and col2im copy long contiguous runs; average pooling takes one
strided slice per window offset (max pooling lives in :mod:`engine.pooling`). Loops in this
module run over kernel offsets or blocks of samples, never pixels.

Output size of a convolution or pooling window along one axis::

    H' = 1 + (H + 2*pad - KH) // stride

"""

from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """``1 + (size + 2*padding - kernel) // stride`` (<= 0 when the kernel does not fit)."""
    return 1 + (size + 2 * padding - kernel) // stride


def pad_to_cnhw(x: np.ndarray, pad: int, out: np.ndarray | None = None) -> np.ndarray:
    """Copy NCHW ``x`` (any strides) into a zero-bordered CNHW buffer ``(C, N, H+2p, W+2p)``.

    ``out`` is reused when it has the right shape and dtype: its border is still zero from the
    previous call (only the interior is ever written), so no ``np.pad`` per batch.
    """
    n, c, h, w = x.shape
    shape = (c, n, h + 2 * pad, w + 2 * pad)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.zeros(shape, dtype=x.dtype)
    out[:, :, pad : pad + h, pad : pad + w] = x.transpose(1, 0, 2, 3)
    return out


def as_cnhw(x: np.ndarray) -> np.ndarray:
    """An NCHW-shaped array as a CNHW-shaped one (a view; no copy)."""
    return x.transpose(1, 0, 2, 3)


def im2col(
    xc: np.ndarray, kh: int, kw: int, stride: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Patches of a CNHW array (any strides, already padded) as ``cols (C*KH*KW, N*H'*W')``.

    Row ``(c, i, j)`` holds input pixel ``(c, n, y*stride + i, x*stride + j)`` in column
    ``(n, y, x)``. Built as a strided *view* ``(C, KH, KW, N, H', W')`` and copied once.
    """
    c, n, h, w = xc.shape
    ho = output_size(h, kh, stride)
    wo = output_size(w, kw, stride)
    sc, sn, sh, sw = xc.strides
    view = as_strided(
        xc,
        shape=(c, kh, kw, n, ho, wo),
        strides=(sc, sh, sw, sn, sh * stride, sw * stride),
        writeable=False,
    )
    shape = (c * kh * kw, n * ho * wo)
    if out is None or out.shape != shape or out.dtype != xc.dtype:
        out = np.empty(shape, dtype=xc.dtype)
    np.copyto(out.reshape(c, kh, kw, n, ho, wo), view)
    return out


def col2im(
    dcols: np.ndarray,
    padded_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``dcols (C*KH*KW, N*H'*W')`` into CNHW
    ``(C, N, Hp, Wp)`` (into ``out`` when given: it is zeroed first).

    One strided slice-add per kernel offset (KH*KW of them), never a loop over pixels.
    """
    c, n, h, w = padded_shape
    ho = output_size(h, kh, stride)
    wo = output_size(w, kw, stride)
    d = dcols.reshape(c, kh, kw, n, ho, wo)
    if out is None:
        dx = np.zeros(padded_shape, dtype=dcols.dtype)
    else:
        dx = out
        dx.fill(0)
    for i in range(kh):
        hi = i + stride * ho
        for j in range(kw):
            dx[:, :, i:hi:stride, j : j + stride * wo : stride] += d[:, i, j]
    return dx


def _window_slices(size: int, stride: int, ho: int, wo: int):
    """For each window offset (i, j): the slice of the input it reads in every window."""
    for i in range(size):
        for j in range(size):
            yield (
                i * size + j,
                (
                    slice(None),
                    slice(None),
                    slice(i, i + stride * (ho - 1) + 1, stride),
                    slice(j, j + stride * (wo - 1) + 1, stride),
                ),
            )


def avgpool_forward(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Average pooling of ``x (N,C,H,W)`` -> ``(N,C,H',W')``: the mean of each window."""
    _n, _c, h, w = x.shape
    ho = output_size(h, size, stride)
    wo = output_size(w, size, stride)
    slices = _window_slices(size, stride, ho, wo)
    _, s0 = next(slices)
    y = x[s0].copy()
    for _, s in slices:
        y += x[s]
    y *= y.dtype.type(1.0 / (size * size))
    return y


def avgpool_backward(
    dout: np.ndarray, x_shape: tuple[int, ...], size: int, stride: int
) -> np.ndarray:
    """Each input of a window gets ``dout / size**2`` (summed over overlapping windows)."""
    ho, wo = dout.shape[2], dout.shape[3]
    g = dout * dout.dtype.type(1.0 / (size * size))
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for _, s in _window_slices(size, stride, ho, wo):
        dx[s] += g
    return dx


def view(
    buf: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0
) -> np.ndarray:
    """A strided view into the C-contiguous array ``buf`` starting ``offset`` bytes in.

    Like ``as_strided`` but about six times cheaper per call (which matters for one image),
    and NumPy checks that the view stays inside ``buf``.
    """
    return np.ndarray(shape, buf.dtype, buffer=buf, offset=offset, strides=strides)


# -- stride-1 convolutions: "wide" rows ------------------------------------------------------
#
# For stride 1, im2col is built over output positions (n, y, x) with x running over the whole
# PADDED width Wp instead of W' (the columns x >= W' are junk and are dropped afterwards).
# Then, for each (c, i, j) and each sample, the patch row is ONE contiguous run of H'*Wp input
# values, so im2col and its adjoint move long runs instead of W'-long snippets: several times
# faster for small images, for ~(Wp/W') more matmul columns. The buffers carry KW-1 elements of
# slack because the last run of a block reads (or writes zeros) up to KW-1 elements past it
# (junk columns only, whose gradients are zero).


def padded_flat(
    x: np.ndarray, pad: int, slack: int, buf: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Copy NCHW ``x`` into a zero-bordered CNHW buffer with ``slack`` trailing elements.

    Returns ``(flat, xc)``: the 1-D buffer (reused when its size fits) and its
    ``(C, N, H+2p, W+2p)`` view. Only the interior is written, so borders stay zero.
    """
    n, c, h, w = x.shape
    shape = (c, n, h + 2 * pad, w + 2 * pad)
    size = int(np.prod(shape)) + slack
    if buf is None or buf.size != size or buf.dtype != x.dtype:
        buf = np.zeros(size, dtype=x.dtype)
    xc = buf[: size - slack].reshape(shape)
    xc[:, :, pad : pad + h, pad : pad + w] = x.transpose(1, 0, 2, 3)
    return buf, xc


def shifted_view(
    flat: np.ndarray, shape: tuple[int, int, int, int], kh: int, i: int, j: int
) -> np.ndarray:
    """The ``(C, N, H'*Wp)`` window of the padded CNHW buffer ``flat`` that kernel offset
    ``(i, j)`` of a stride-1 convolution touches, in the wide layout: adding each offset's
    ``weight[:, :, i, j].T @ dout`` into its window is the adjoint of the wide im2col."""
    c, n, hp, wp = shape
    ho = hp - kh + 1
    it = flat.itemsize
    return view(flat, (c, n, ho * wp), (n * hp * wp * it, hp * wp * it, it), (i * wp + j) * it)


def wide_chunks(
    flat: np.ndarray,
    shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    cols: np.ndarray,
    chunk: int,
):
    """The wide im2col, per block of ``chunk`` samples: yields ``(src, dst, columns)``; copying
    ``src`` into ``dst`` (rows ``0..C*KH*KW-1`` of ``cols (C*KH*KW+1, N*H'*Wp)``) fills
    ``cols[:, columns]`` with the block's patches::

        cols[(c,i,j), (n,y,x)] = xpad[c, n, y+i, x+j]    x in 0..Wp-1 (x >= W' is junk)

    ``flat`` is the padded CNHW buffer of :func:`padded_flat` (with KW-1 slack). The views
    depend only on the buffers, so a layer keeps them between calls."""
    c, n, hp, wp = shape
    ho = hp - kh + 1
    run = ho * wp
    it = flat.itemsize
    ci = cols.itemsize
    rows_stride = cols.strides[0]
    for n0 in range(0, n, chunk):
        nc = min(chunk, n - n0)
        src = view(
            flat,
            (c, kh, kw, nc, run),
            (n * hp * wp * it, wp * it, it, hp * wp * it, it),
            n0 * hp * wp * it,
        )
        dst = view(
            cols,
            (c, kh, kw, nc, run),
            (kh * kw * rows_stride, kw * rows_stride, rows_stride, run * ci, ci),
            n0 * run * ci,
        )
        yield src, dst, slice(n0 * run, (n0 + nc) * run)


def wide_matmul(
    flat: np.ndarray,
    shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    cols: np.ndarray,
    wmat: np.ndarray,
    chunk: int,
) -> np.ndarray:
    """``wmat (F, C*KH*KW) @`` the wide patches of ``flat`` (see :func:`wide_chunks`), block by
    block of ``chunk`` samples: each block's patches are copied into ``cols`` (which has exactly
    ``C*KH*KW`` rows) and multiplied while still in cache. Returns ``(F, N*H'*Wp)`` (CNHW
    memory, junk columns included)."""
    out = np.empty((wmat.shape[0], cols.shape[1]), dtype=cols.dtype)
    for src, dst, cs in wide_chunks(flat, shape, kh, kw, cols, chunk):
        np.copyto(dst, src)
        np.matmul(wmat, cols[:, cs], out=out[:, cs])
    return out


# -- stride-1 convolutions without patches: "direct" ------------------------------------------
#
# With the output laid out over the WHOLE padded grid, (F, N*Hp*Wp) (the rows y >= H' and the
# columns x >= W' are junk and are dropped afterwards), kernel offset (i, j) reads, for every
# channel c, one contiguous run of the padded CNHW buffer starting i*Wp + j elements in. So the
# inputs of one offset are a plain strided matrix (C, N*Hp*Wp) over that buffer, and
#
#     out = sum over (i, j) of weight[:, :, i, j] @ X_ij        dweight[:, :, i, j] = dout @ X_ij.T
#
# with no patch matrix at all: no C*KH*KW-row copy to build and, above all, none to keep for
# backward. The products run block by block of columns so each block's sum stays in cache.
# The buffer carries (KH-1)*Wp + KW-1 elements of zero slack (the last channel's run of the
# farthest offset reads that far past it; only junk outputs see them).

DIRECT_BLOCK = 4096  # output columns per block of the direct products


def direct_slack(kh: int, kw: int, wp: int) -> int:
    """Zero elements the direct products read past a ``(C, N, Hp, Wp)`` buffer."""
    return (kh - 1) * wp + kw - 1


def _offset_matrix(flat: np.ndarray, c: int, m: int, offset: int, cols: int) -> np.ndarray:
    """Columns ``offset .. offset+cols-1`` of every channel's run in ``flat``: ``(C, cols)``."""
    it = flat.itemsize
    return view(flat, (c, cols), (m * it, it), offset * it)


def direct_conv(
    flat: np.ndarray,
    shape: tuple[int, int, int, int],
    taps: np.ndarray,
    bias: np.ndarray | None,
) -> np.ndarray:
    """``sum_(i,j) taps[i, j] @ X_ij (+ bias)``: a stride-1 convolution of the padded CNHW
    buffer ``flat`` (``shape`` ``(C, N, Hp, Wp)`` plus :func:`direct_slack` zeros) with
    ``taps (KH, KW, F, C)``. Returns ``(F, N*Hp*Wp)``: CNHW memory over the padded grid."""
    c, n, hp, wp = shape
    kh, kw, f, _ = taps.shape
    m = n * hp * wp
    out = np.empty((f, m), dtype=flat.dtype)
    tmp = np.empty((f, min(m, DIRECT_BLOCK)), dtype=flat.dtype)
    for a in range(0, m, DIRECT_BLOCK):
        cols = min(DIRECT_BLOCK, m - a)
        o, t = out[:, a : a + cols], tmp[:, :cols]
        for i in range(kh):
            for j in range(kw):
                x = _offset_matrix(flat, c, m, a + i * wp + j, cols)
                if i == 0 and j == 0:
                    np.matmul(taps[0, 0], x, out=o)
                else:
                    np.matmul(taps[i, j], x, out=t)
                    o += t
        if bias is not None:
            o += bias[:, None]
    return out


def direct_weight_grad(
    flat: np.ndarray, shape: tuple[int, int, int, int], d2: np.ndarray, kh: int, kw: int
) -> np.ndarray:
    """Adjoint of :func:`direct_conv` for the weights: ``(KH, KW, C, F)``, entry ``[i, j]`` is
    ``X_ij @ d2.T`` with ``d2 (F, N*Hp*Wp)`` zero at the junk outputs. Block by block of
    columns, the offsets' inputs are stacked into a small patch block that stays in cache, so
    each block is ONE product with ``KH*KW*C`` rows (as fast as a full im2col's, without
    keeping one)."""
    c, n, hp, wp = shape
    f = d2.shape[0]
    m = n * hp * wp
    rows = kh * kw * c
    block = max(256, (PATCH_BLOCK_BYTES // (rows * flat.itemsize)) // 256 * 256)
    patches = np.empty((kh, kw, c, min(block, m)), dtype=flat.dtype)
    dw = np.zeros((rows, f), dtype=d2.dtype)
    tmp = np.empty_like(dw)
    for a in range(0, m, block):
        cols = min(block, m - a)
        p = patches[..., :cols]
        for i in range(kh):
            for j in range(kw):
                np.copyto(p[i, j], _offset_matrix(flat, c, m, a + i * wp + j, cols))
        np.matmul(p.reshape(rows, cols), d2[:, a : a + cols].T, out=tmp)
        dw += tmp
    return dw.reshape(kh, kw, c, f)


PATCH_BLOCK_BYTES = 2 * 1024 * 1024  # one block of patches in direct_weight_grad


_WORKSPACE = threading.local()


def workspace(size: int, dtype: np.dtype, slot: str) -> np.ndarray:
    """A scratch array of ``size`` elements, one per thread, dtype and ``slot``, shared by
    every layer (contents undefined; valid until the next call for the same slot from the same
    thread): the transient buffers of a backward pass need no copy per layer. ``slot`` is a
    name its module gives it (``"conv_rows.cols"``), so two modules never share one by
    accident."""
    bufs = _WORKSPACE.__dict__.setdefault("bufs", {})
    key = (np.dtype(dtype), slot)
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=key[0])
        bufs[key] = buf
    return buf[:size]
