"""The fast kernels behind Conv2D and the pooling layers: stride tricks + one BLAS matmul.

Layout trick: the convolution works internally in *CNHW* memory order (channels outermost).
With the patches laid out as ``cols`` of shape ``(C*KH*KW, N*H'*W')`` the whole batch becomes
ONE matrix multiply ``weight (F, C*KH*KW) @ cols -> (F, N*H'*W')``, whose result already is the
output in CNHW order. Returned to the caller as ``out.transpose(1, 0, 2, 3)`` it has the NCHW
shape the layer contract promises without any copy; the next convolution reads its input through
strides and never needs NCHW memory either. The naive, obviously-correct versions of these
operations live in :mod:`engine.reference` and are the tests' oracle.

Stride-1 convolutions (all of LeNet's) use "wide" patch rows over the padded width (see
:func:`wide_chunks`), so im2col and col2im copy long contiguous runs; 2x2 max-pooling is a
reshape and two maxima (:func:`maxpool2x2_forward`); other pooling takes one strided slice per
window offset. Loops in this module run over kernel offsets or blocks of samples, never pixels.

Output size of a convolution or pooling window along one axis::

    H' = 1 + (H + 2*pad - KH) // stride

Size: the kernels of every convolution path (im2col, wide rows, direct products) and of the
pooling layers share the strided-view helpers and the layout conventions above; split, each
part would repeat them.
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


def _phase_planes(
    xm: np.ndarray, size: int, stride: int, pad: int, fill: float
) -> tuple[list[list[np.ndarray]], int, int]:
    """The padded input of a pooling, split by phase: ``planes[a][b][:, :, t, u]`` is padded
    pixel ``(a + stride*t, b + stride*u)`` of ``xm (A, B, H, W)`` (padding reads ``fill``), for
    ``a, b < min(stride, size)``. Window offset ``(i, j)`` of output pixel ``(y, x)`` is then
    ``planes[i % stride][j % stride][:, :, y + i // stride, x + j // stride]``: each offset is
    a slice with unit inner stride (fast, SIMD) instead of a stride-``stride`` gather.
    Returns ``(planes, H', W')``."""
    a_, b_, h, w = xm.shape
    ho = output_size(h, size, stride, pad)
    wo = output_size(w, size, stride, pad)
    if stride == 1 and not pad:
        return [[xm]], ho, wo
    phases = range(min(stride, size))
    rows = [_phase_range(a, size, stride, pad, ho, h) for a in phases]
    cols = [_phase_range(b, size, stride, pad, wo, w) for b in phases]
    planes = []
    for ha, rdst, rsrc in rows:
        line = []
        for wb, cdst, csrc in cols:
            shape = (a_, b_, ha, wb)
            full = rdst == slice(0, ha) and cdst == slice(0, wb)
            plane = np.empty(shape, xm.dtype) if full else np.full(shape, fill, xm.dtype)
            plane[:, :, rdst, cdst] = xm[:, :, rsrc, csrc]
            line.append(plane)
        planes.append(line)
    return planes, ho, wo


def _phase_range(
    a: int, size: int, stride: int, pad: int, out: int, n: int
) -> tuple[int, slice, slice]:
    """Phase ``a`` along one axis: ``(length, dst, src)``: the plane has ``length`` entries;
    entries ``dst`` are the input's pixels ``src`` (a stride-``stride`` slice); the others are
    padding."""
    length = out + (size - 1 - a) // stride
    t0 = max(0, -((a - pad) // stride))
    t1 = max(t0, min(length, (n - 1 + pad - a) // stride + 1))
    first = a + stride * t0 - pad
    return length, slice(t0, t1), slice(first, first + stride * (t1 - t0), stride)


def maxpool_forward(
    x: np.ndarray, size: int, stride: int, pad: int = 0, training: bool = True
) -> tuple[np.ndarray, tuple]:
    """Max pooling of ``x (N,C,H,W)`` (padding reads ``-inf``) -> ``(y (N,C,H',W'), state)``.

    Separable, on the phase planes of the whole batch in its memory order (see
    :func:`_phase_planes`; every step reads unit-stride slices): a running maximum over the
    ``size`` column offsets of each padded row, then over the ``size`` row offsets of those
    maxima, no loop over pixels, no branches. ``state`` keeps, at each stage, which offset
    held the FIRST maximum, which together is the first maximum of the window in row-major
    order (as PyTorch), so backward routes each gradient to exactly one input even when a
    window holds ties (zeros after ReLU); ``training=False`` skips them.
    """
    perm, xm = memory_order(x)
    planes, ho, wo = _phase_planes(xm, size, stride, pad, -np.inf)
    s = stride
    rows = [
        _running_max([line[j % s][..., j // s : j // s + wo] for j in range(size)], training)
        for line in planes
    ]
    views = [rows[i % s][0][:, :, i // s : i // s + ho] for i in range(size)]
    y, argi = _running_max(views, training)
    if not training:
        return y.transpose(perm), ()
    argj = [a for _, a in rows]
    shapes = [[p.shape for p in line] for line in planes]
    return y.transpose(perm), (perm, xm.shape, size, stride, pad, argi, argj, shapes)


def _running_max(views: list[np.ndarray], track: bool) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise max of same-shaped ``views`` and (with ``track``) the index of the first
    view holding it (int8; an empty array without ``track``)."""
    y = views[0].copy()
    if not track:
        for v in views[1:]:
            np.maximum(y, v, out=y)
        return y, np.empty(0, np.int8)
    arg = np.zeros(y.shape, dtype=np.int8)
    step = np.empty_like(arg)
    m = np.empty(y.shape, dtype=bool)
    for k, v in enumerate(views[1:], start=1):
        np.greater(v, y, out=m)  # strictly: the first maximum keeps its place
        np.maximum(y, v, out=y)
        np.subtract(k, arg, out=step)  # arg += m * (k - arg): branch-free
        step *= m
        arg += step
    return y, arg


def maxpool_backward(dout: np.ndarray, state: tuple) -> np.ndarray:
    """Adjoint of :func:`maxpool_forward`: route ``dout (N,C,H',W')`` to the first maximum of
    each window (summed where windows overlap) -> ``dx (N,C,H,W)``."""
    perm, shape, size, s, pad, argi, argj, shapes = state
    h, w = shape[2], shape[3]
    ho, wo = argi.shape[2], argi.shape[3]
    drows = [np.zeros(a.shape, dtype=dout.dtype) for a in argj]
    _route(
        dout.transpose(perm), argi, [drows[i % s][:, :, i // s : i // s + ho] for i in range(size)]
    )
    dplanes = [[np.zeros(p, dtype=dout.dtype) for p in line] for line in shapes]
    for dr, aj, dline in zip(drows, argj, dplanes, strict=True):
        _route(dr, aj, [dline[j % s][..., j // s : j // s + wo] for j in range(size)])
    if s == 1 and not pad:
        return dplanes[0][0].transpose(perm)
    dx = np.zeros(shape, dtype=dout.dtype)
    phases = range(min(s, size))
    prows = [_phase_range(a, size, s, pad, ho, h) for a in phases]
    pcols = [_phase_range(b, size, s, pad, wo, w) for b in phases]
    for (_, rdst, rsrc), line in zip(prows, dplanes, strict=True):
        for (_, cdst, csrc), dp in zip(pcols, line, strict=True):
            dx[:, :, rsrc, csrc] = dp[:, :, rdst, cdst]
    return dx.transpose(perm)


def _route(g: np.ndarray, arg: np.ndarray, targets: list[np.ndarray]) -> None:
    """Adjoint of :func:`_running_max`: add ``g`` where ``arg == k`` into ``targets[k]``."""
    m = np.empty(arg.shape, dtype=bool)
    tmp = np.empty(arg.shape, dtype=g.dtype)
    for k, t in enumerate(targets):
        np.equal(arg, k, out=m)
        np.multiply(g, m, out=tmp)
        t += tmp


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


def view(
    buf: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0
) -> np.ndarray:
    """A strided view into the C-contiguous array ``buf`` starting ``offset`` bytes in.

    Like ``as_strided`` but about six times cheaper per call (which matters for one image),
    and NumPy checks that the view stays inside ``buf``.
    """
    return np.ndarray(shape, buf.dtype, buffer=buf, offset=offset, strides=strides)


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


def maxpool2x2_forward(x: np.ndarray, training: bool = True) -> tuple[np.ndarray, tuple]:
    """2x2, stride-2 max pooling of ``x (N,C,H,W)`` with even H, W, by reshaping (no gather).

    In memory order, ``x`` is ``(M, 2, W/2, 2)`` with ``M = C*N*H/2``: the max of the two rows
    of each window, then of the two columns. ``state`` keeps which row and which column won
    (bool, first one on ties), so backward routes each gradient to exactly one input; with
    ``training=False`` it is not computed (state is empty).
    """
    perm, xm = memory_order(x)  # both possible perms are their own inverse
    a, b, h, w = xm.shape
    x4 = _tiles(xm, 2)
    r0, r1 = x4[:, 0], x4[:, 1]
    rm = np.maximum(r0, r1)
    y = np.maximum(rm[..., 0], rm[..., 1])
    y = y.reshape(a, b, h // 2, w // 2).transpose(perm)
    if not training:
        return y, ()
    row1 = np.greater(r1, r0)  # the bottom row wins
    col1 = np.greater(rm[..., 1], rm[..., 0])  # the right column wins
    return y, (perm, xm.shape, row1, col1)


def maxpool2x2_backward(dout: np.ndarray, state: tuple) -> np.ndarray:
    """Adjoint of :func:`maxpool2x2_forward`: ``dout (N,C,H/2,W/2)`` -> ``dx (N,C,H,W)``."""
    perm, shape, row1, col1 = state
    a, b, h, w = shape
    dy = np.ascontiguousarray(dout.transpose(perm)).reshape(col1.shape)
    drm = np.empty(row1.shape, dtype=dout.dtype)
    np.multiply(dy, col1, out=drm[..., 1])
    np.subtract(dy, drm[..., 1], out=drm[..., 0])  # exactly one column gets dy
    dx = np.empty((a * b * h // 2, 2, w // 2, 2), dtype=dout.dtype)
    np.multiply(drm, row1, out=dx[:, 1])
    np.subtract(drm, dx[:, 1], out=dx[:, 0])  # exactly one row gets it
    return dx.reshape(shape).transpose(perm)


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


def workspace(size: int, dtype: np.dtype, slot: int = 0) -> np.ndarray:
    """A scratch array of ``size`` elements, one per thread, dtype and ``slot``, shared by
    every layer (contents undefined; valid until the next call for the same slot from the same
    thread): the transient buffers of a backward pass need no copy per layer."""
    bufs = _WORKSPACE.__dict__.setdefault("bufs", {})
    key = (np.dtype(dtype), slot)
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=key[0])
        bufs[key] = buf
    return buf[:size]
