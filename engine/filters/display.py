"""Display: signed float results -> uint8 RGB pictures; the histogram; the mosaic of maps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from engine.colormap import DIVERGING_LUT
from engine.filters.correlate import BAND_BYTES, run_parallel
from engine.filters.kernels import KernelError

DISPLAYS = ("clip", "abs", "normalize", "diverging")

__all__ = ["DISPLAYS", "Mosaic", "display", "histogram", "tile_maps"]


def display(
    values: np.ndarray,
    mode: str = "clip",
    *,
    value_range: tuple[float, float] | None = None,
    parallel: bool = True,
) -> np.ndarray:
    """Map float results to uint8 RGB ``(H, W, 3)`` for the screen or a PNG.

    ``values``: ``(H, W)`` or ``(H, W, C)`` with C = 1 or 3. Modes: ``clip`` (round, then
    clip to 0..255), ``abs`` (``|v|`` clipped), ``normalize`` (``(v - min) * 255 / (max - min)``,
    all 0 when flat), ``diverging`` (blue < 0 < red, scaled by ``max |v|``; an RGB result is
    averaged over its channels first). ``value_range`` overrides the measured (min, max).
    """
    if mode not in DISPLAYS:
        raise KernelError(f"display {mode!r}: use one of {', '.join(DISPLAYS)}")
    v = np.asarray(values, dtype=np.float32)
    if v.ndim == 2:
        v = v[:, :, None]
    if mode == "diverging":
        g = v.mean(axis=2) if v.shape[2] > 1 else v[:, :, 0]
        lo, hi = value_range or (float(g.min()), float(g.max()))
        m = max(abs(lo), abs(hi)) or 1.0
        idx = np.clip(g * np.float32(127.5 / m) + np.float32(128.0), 0, 255).astype(np.uint8)
        return DIVERGING_LUT[idx]
    if mode == "normalize":
        lo, hi = value_range or (float(v.min()), float(v.max()))
        scale = np.float32(255.0 / (hi - lo)) if hi > lo else np.float32(0)
        shift = np.float32(-lo * scale + 0.5) if hi > lo else np.float32(0)
    else:
        scale, shift = np.float32(1), np.float32(0.5)
    out = np.empty((*v.shape[:2], 3), np.uint8)
    rows = max(8, BAND_BYTES // max(1, v.shape[1] * v.shape[2] * 4))

    def band(y0: int, y1: int, t: np.ndarray) -> None:
        t = t[: y1 - y0]
        src = v[y0:y1]
        if mode == "abs":
            np.abs(src, out=t)
            np.add(t, shift, out=t)
        else:
            np.multiply(src, scale, out=t)
            np.add(t, shift, out=t)
        np.clip(t, 0, 255, out=t)
        out[y0:y1] = t  # float32 -> uint8 (truncation of v + 0.5: rounding); gray -> R = G = B

    run_parallel(
        [(y, min(y + rows, v.shape[0])) for y in range(0, v.shape[0], rows)],
        band,
        lambda: np.empty((rows, *v.shape[1:]), np.float32),
        parallel,
    )
    return out


def histogram(
    values: np.ndarray, bins: int = 64, max_samples: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the output values over ``[min, max]``; big arrays are sampled on
    a regular grid of about ``max_samples`` values (enough for the shape of the histogram)."""
    v = np.asarray(values)
    step = max(1, math.ceil(math.sqrt(v.size / max_samples)))
    sample = v[::step, ::step] if v.ndim >= 2 else v[::step]
    lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(sample, bins=bins, range=(lo, hi))
    return counts, edges


def _map_gap(height: int, width: int) -> int:
    """Pixels between maps in a mosaic: 6, or a quarter of a small map's side (at least 1),
    so the gaps never dwarf the maps (3x3 maps of the article's 5x5 example: 1)."""
    return max(1, min(6, min(height, width) // 4))


class Mosaic:
    """A grid of N ``(H, W, 3)`` pictures filled one at a time (:func:`tile_maps` at once):
    ``ceil(sqrt(N))`` columns, ``gap`` pixels of ``background`` between them (default
    :func:`_map_gap`). ``pillow``: the grid is a Pillow image (:attr:`picture`, no
    :attr:`canvas`) that is saved as it is, without a copy of the whole grid for encoding."""

    def __init__(
        self,
        n: int,
        height: int,
        width: int,
        gap: int | None = None,
        background: int = 40,
        *,
        pillow: bool = False,
    ) -> None:
        if n < 1:
            raise KernelError("no maps to lay out")
        gap = _map_gap(height, width) if gap is None else gap
        self.cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / self.cols)
        self.h, self.w, self.gap = height, width, gap
        size = (rows * height + (rows - 1) * gap, self.cols * width + (self.cols - 1) * gap)
        self.picture: Image.Image | None = None
        if pillow:
            self.picture = Image.new("RGB", size[::-1], (background,) * 3)
            self.canvas = np.zeros((0, 0, 3), np.uint8)
        else:
            self.canvas = np.full((*size, 3), background, np.uint8)

    def place(self, index: int, picture: np.ndarray) -> None:
        if self.picture is not None:
            y, x = self._origin(index)
            self.picture.paste(Image.fromarray(np.ascontiguousarray(picture), "RGB"), (x, y))
        else:
            self.view(index)[...] = picture

    def view(self, index: int) -> np.ndarray:
        """Picture ``index``'s place in the canvas (a view: no copy of the picture)."""
        y, x = self._origin(index)
        return self.canvas[y : y + self.h, x : x + self.w]

    def _origin(self, index: int) -> tuple[int, int]:
        r, c = divmod(index, self.cols)
        return r * (self.h + self.gap), c * (self.w + self.gap)


def tile_maps(
    maps: Sequence[np.ndarray], gap: int | None = None, background: int = 40
) -> np.ndarray:
    """Lay out N uint8 ``(H, W, 3)`` maps of one size in a grid (depth-N feature maps)."""
    if len(maps) == 0:
        raise KernelError("no maps to lay out")
    h, w = maps[0].shape[:2]
    mosaic = Mosaic(len(maps), h, w, gap=gap, background=background)
    for i, m in enumerate(maps):
        mosaic.place(i, m)
    return mosaic.canvas
