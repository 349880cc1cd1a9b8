"""The fast correlation: bands, grouped taps, optional separable passes, threads.

Speed (the preview must update in <= 16 ms for a 1920x1080 RGB photo on 2 cores): the image is
processed in bands of rows that fit in the L2 cache. Each band is converted from uint8 to float32
and padded in a preallocated buffer, then every non-zero tap is one in-place ufunc on a shifted
view (taps with the same weight are summed first and multiplied once; +-1 needs no multiply).
A rank-1 kernel (box, Gaussian, Sobel) runs as two 1-D passes when that takes fewer ufunc
passes. NumPy releases the GIL inside ufuncs, so bands are shared between the calling thread and
the threads of a small module-level ``ThreadPoolExecutor`` (``parallel=False`` turns it off).
The work is split inside a single call and joined before it returns, so callers still see a
plain function (or generator); :func:`run_parallel` is also used by the display mapping.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.errors import ShapeError
from engine.filters.geometry import (
    check_border,
    check_stride,
    fitted_output_size,
    index_map,
    padding_for,
)
from engine.filters.kernels import split_centre

__all__ = ["BAND_BYTES", "correlate", "run_parallel"]


BAND_BYTES = 1 << 20  # one band's padded float32 buffer: about 1 MB, well inside L2
_POOL: ThreadPoolExecutor | None = None
# helper threads besides the caller's: one per extra core, at most 3
_POOL_THREADS = max(1, min(4, os.cpu_count() or 1) - 1)
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_POOL_THREADS, thread_name_prefix="convscope-filter")
        return _POOL


def run_parallel(
    bands: Sequence[tuple[int, int]],
    work: Callable[..., None],
    make_scratch: Callable[[], object],
    parallel: bool,
) -> None:
    """Call ``work(y0, y1, scratch)`` for every band, on the calling thread and the pool's
    threads (each with its own scratch buffers); returns when all bands are done."""
    if not bands:
        return
    workers = 1 if not parallel else min(len(bands), _POOL_THREADS + 1)
    it = iter(bands)
    lock = threading.Lock()

    def loop() -> None:
        scratch = make_scratch()
        while True:
            with lock:
                band = next(it, None)
            if band is None:
                return
            work(*band, scratch)

    futures = [_pool().submit(loop) for _ in range(workers - 1)]
    try:
        loop()
    finally:
        for fut in futures:
            fut.result()


def _groups(taps: dict[tuple[int, int], float]) -> list[tuple[float, list[tuple[int, int]]]]:
    """Non-zero taps grouped by equal weight, best first group first (see :func:`_apply`)."""
    by_weight: dict[float, list[tuple[int, int]]] = {}
    for pos, w in taps.items():
        if w != 0:
            by_weight.setdefault(float(w), []).append(pos)
    groups = list(by_weight.items())

    def rank(g: tuple[float, list]) -> tuple[int, int]:
        w, members = g
        return (0 if abs(w) != 1 else (1 if w == 1 else 2), -len(members))

    groups.sort(key=rank)
    return groups


def _passes(groups: list[tuple[float, list]]) -> int:
    """How many full-size ufunc passes :func:`_apply` makes for these groups."""
    if not groups:
        return 1
    w0, first = groups[0]
    n = 1 if len(first) == 1 else len(first) - 1 + (w0 != 1)
    for w, members in groups[1:]:
        n += len(members) if abs(w) == 1 else (2 if len(members) == 1 else len(members) + 1)
    return n


def _apply(
    out: np.ndarray, groups, view: Callable[[tuple[int, int]], np.ndarray], tmp: np.ndarray
) -> None:
    """``out = sum(w * view(tap))`` with in-place ufuncs: taps of equal weight are summed first
    and multiplied once; a weight of +-1 needs no multiply."""
    if not groups:
        out.fill(0)
        return
    w0, first = groups[0]
    if len(first) == 1:
        np.multiply(view(first[0]), np.float32(w0), out=out)
    else:
        np.add(view(first[0]), view(first[1]), out=out)
        for pos in first[2:]:
            np.add(out, view(pos), out=out)
        if w0 != 1:
            np.multiply(out, np.float32(w0), out=out)
    for w, members in groups[1:]:
        if w == 1 or w == -1:
            op = np.add if w == 1 else np.subtract
            for pos in members:
                op(out, view(pos), out=out)
        elif len(members) == 1:
            np.multiply(view(members[0]), np.float32(w), out=tmp)
            np.add(out, tmp, out=out)
        else:
            np.add(view(members[0]), view(members[1]), out=tmp)
            for pos in members[2:]:
                np.add(tmp, view(pos), out=tmp)
            np.multiply(tmp, np.float32(w), out=tmp)
            np.add(out, tmp, out=out)


class Correlator:
    """One correlation job split into bands of output rows (see the module docstring)."""

    def __init__(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        border: str,
        stride: int,
        offset: float,
        out: np.ndarray | None = None,
        max_band: int = 0,
    ) -> None:
        img = image if image.ndim == 3 else image[:, :, None]
        h, w, c = img.shape
        f = weights.shape[0]
        self.img, self.f, self.s, self.c, self.offset = img, f, stride, c, np.float32(offset)
        self.pad = padding_for(border, f)
        self.oh = fitted_output_size(h, f, stride, self.pad)
        self.ow = fitted_output_size(w, f, stride, self.pad)
        self.rows = index_map(h, self.pad, border)
        self.cols = index_map(w, self.pad, border)
        self.wp = w + 2 * self.pad
        self.w = w
        shape = (self.oh, self.ow, c)
        self.out = np.empty(shape, np.float32) if out is None else out
        taps = {(i, j): float(weights[i, j]) for i in range(f) for j in range(f)}
        self.groups2d = _groups(taps)
        self.sep = None
        self.delta = 0.0  # a centre weight added to a separable kernel (see split_centre)
        rank1, delta = split_centre(weights)
        if rank1 is not None:
            col, row = rank1
            g_row = _groups({(0, j): float(v) for j, v in enumerate(row)})
            g_col = _groups({(i, 0): float(v) for i, v in enumerate(col)})
            # the row pass runs on the (band + F - 1) input rows, the column pass on the band
            cost = _passes(g_row) * 1.15 + _passes(g_col) + (0 if delta == 0 else 2)
            if cost < _passes(self.groups2d):
                self.sep = (g_col, g_row)
                self.delta = delta
        row_bytes = self.wp * c * 4
        in_rows = max(f + stride, BAND_BYTES // max(row_bytes, 1))
        self.band = max(1, (in_rows - f) // stride + 1)
        if max_band:
            self.band = min(self.band, max_band)
        self.bands = [(y, min(y + self.band, self.oh)) for y in range(0, self.oh, self.band)]

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """One thread's preallocated buffers: padded band, temp, and the separable pass's."""
        in_rows = (self.band - 1) * self.s + self.f
        buf = np.empty((in_rows, self.wp, self.c), np.float32)
        tmp = np.empty((self.band, self.ow, self.c), np.float32)
        if self.sep is None:
            return buf, tmp, tmp, tmp
        hbuf = np.empty((in_rows, self.ow, self.c), np.float32)
        htmp = np.empty_like(hbuf) if len(self.sep[1]) > 1 else hbuf  # unused when 1 group
        return buf, tmp, hbuf, htmp

    def run_band(self, y0: int, y1: int, scratch) -> None:
        buf_all, tmp_all, hbuf_all, htmp_all = scratch
        s, f, p, n = self.s, self.f, self.pad, y1 - y0
        r0, r1 = y0 * s, (y1 - 1) * s + f  # padded input rows needed
        buf = buf_all[: r1 - r0]
        src = self.rows[r0:r1]
        inner = buf[:, p : p + self.w]
        if src[0] >= 0 and src[-1] - src[0] == len(src) - 1 and np.all(np.diff(src) == 1):
            inner[...] = self.img[src[0] : src[-1] + 1]  # uint8 -> float32, fused per band
        else:
            for k, r in enumerate(src):
                if r < 0:
                    inner[k] = 0
                else:
                    inner[k] = self.img[r]
        if p:
            for j in (*range(p), *range(p + self.w, self.wp)):
                sc = self.cols[j]
                if sc < 0:
                    buf[:, j] = 0
                else:
                    buf[:, j] = buf[:, p + sc]
        out = self.out[y0:y1]
        tmp = tmp_all[:n]
        oh_span, ow_span = (n - 1) * s + 1, (self.ow - 1) * s + 1
        if self.sep is None:

            def view(pos: tuple[int, int]) -> np.ndarray:
                i, j = pos
                return buf[i : i + oh_span : s, j : j + ow_span : s]

            _apply(out, self.groups2d, view, tmp)
        else:
            g_col, g_row = self.sep
            hb = hbuf_all[: r1 - r0]
            _apply(
                hb, g_row, lambda pos: buf[:, pos[1] : pos[1] + ow_span : s], htmp_all[: r1 - r0]
            )
            _apply(out, g_col, lambda pos: hb[pos[0] : pos[0] + oh_span : s], tmp)
            if self.delta:
                m = (f - 1) // 2
                centre = buf[m : m + oh_span : s, m : m + ow_span : s]
                np.multiply(centre, np.float32(self.delta), out=tmp)
                np.add(out, tmp, out=out)
        if self.offset:
            np.add(out, self.offset, out=out)

    def run(self, bands: Sequence[tuple[int, int]], parallel: bool) -> None:
        run_parallel(bands, self.run_band, self._scratch, parallel)


def _as_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4)):
        raise ShapeError(f"image shape {a.shape}: expected (H, W) or (H, W, C)")
    if a.dtype != np.uint8 and a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def correlate(
    image: np.ndarray,
    weights: np.ndarray,
    *,
    border: str = "zero",
    stride: int = 1,
    offset: float = 0.0,
    parallel: bool = True,
) -> np.ndarray:
    """Cross-correlate every channel of ``image`` with ``weights`` (the fast path).

    Args:
        image: uint8 or float32 ``(H, W)`` or ``(H, W, C)``.
        weights: ``(F, F)``, F odd; applied as given (divide by the divisor before).
        border: one of :data:`BORDERS`. stride: 1..4. offset: added to every output value.
    Returns:
        float32 ``(H', W')`` or ``(H', W', C)`` with ``H' = (H - F + 2P) // S + 1``.
    """
    check_border(border)
    check_stride(stride)
    img = _as_image(image)
    w = np.asarray(weights, dtype=np.float64)
    job = Correlator(img, w, border, int(stride), offset)
    job.run(job.bands, parallel)
    return job.out if img.ndim == 3 else job.out[:, :, 0]
