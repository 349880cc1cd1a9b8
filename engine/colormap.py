"""Colour maps: every false-colour picture of the app takes its colours from here.

- :data:`DIVERGING_LUT` (blue < 0 < red through near white, 256 colours): filter results.
- :func:`blue_white_red`: any signed array (learned kernels), symmetric around 0.
- :func:`ramp`: the network view's activation colours, sequential (dark -> blue -> orange ->
  pale yellow) or diverging (blue -> black -> orange) on a dark background.
- :func:`weight_tints`: the pale warm/cool tints of kernel weights behind their numbers.
- :func:`sign_colours`: the diverging map's two ends by sign (connection lines, Figure 20).

Every function returns uint8 ``(..., 3)`` RGB.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DIVERGING_LUT",
    "blue_white_red",
    "diverging_lut",
    "ramp",
    "sign_colours",
    "weight_tints",
]


def diverging_lut() -> np.ndarray:
    """256 colours, uint8 ``(256, 3)``: blue (most negative) -> near white (0) -> red (most
    positive), linear between five anchors."""
    anchors = np.array(
        [[40, 80, 170], [120, 170, 215], [245, 245, 245], [225, 130, 100], [175, 30, 40]],
        dtype=np.float64,
    )
    return _interpolated(anchors, 256)


def _interpolated(anchors: np.ndarray, levels: int) -> np.ndarray:
    """uint8 ``(levels, 3)``: ``anchors`` interpolated linearly at evenly spaced points,
    rounded (the first and last are the end anchors)."""
    pos = np.linspace(0.0, len(anchors) - 1, levels)
    lo = np.minimum(pos.astype(np.int64), len(anchors) - 2)
    frac = (pos - lo)[:, None]
    return np.rint(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.uint8)


#: :func:`diverging_lut`, made once.
DIVERGING_LUT = diverging_lut()


def blue_white_red(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive) for any array: uint8 ``(..., 3)``.

    ``t = clip(v / limit, -1, 1)``; ``limit`` defaults to ``max |v|``. Positive ``t`` fades white
    to red (255, 255(1-t), 255(1-t)), negative to blue.
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    if limit is None:
        limit = float(np.abs(v).max()) if v.size else 1.0
    t = np.clip(v / (limit if limit > 0 else 1.0), -1.0, 1.0)
    fade = 255.0 * (1.0 - np.abs(t))
    r = np.where(t >= 0, 255.0, fade)
    b = np.where(t <= 0, 255.0, fade)
    return np.stack([r, fade, b], axis=-1).round().astype(np.uint8)


_SEQUENTIAL = np.array(
    [[8, 8, 20], [40, 50, 140], [150, 60, 140], [235, 125, 40], [255, 240, 170]], dtype=np.float64
)
_DIVERGING_DARK = np.array(
    [[90, 170, 255], [20, 40, 90], [10, 10, 14], [110, 50, 10], [255, 170, 60]], dtype=np.float64
)


RAMP_LEVELS = 4097  # colours per ramp (each anchor one of them): neighbours differ by < 1/4


_RAMPS = {
    False: _interpolated(_SEQUENTIAL, RAMP_LEVELS),
    True: _interpolated(_DIVERGING_DARK, RAMP_LEVELS),
}


def ramp(values: np.ndarray, vmax: float, diverging: bool) -> np.ndarray:
    """uint8 (..., 3) colours of ``values``: 0..vmax sequential, or -vmax..vmax diverging.

    Looked up in a table of :data:`RAMP_LEVELS` colours (a 512-channel layer's maps, 350,000
    values, in 3 ms instead of 17 interpolating each); NaN takes the colour of 0."""
    vmax = float(vmax) if vmax > 0 and np.isfinite(vmax) else 1.0
    top = RAMP_LEVELS - 1
    scale, offset = (top / (2 * vmax), top / 2) if diverging else (top / vmax, 0.0)
    t = np.asarray(values, dtype=np.float32) * np.float32(scale) + np.float32(offset + 0.5)
    np.clip(t, 0, top + 0.5, out=t)  # NaN stays NaN; +-inf are clipped
    index = np.nan_to_num(t, copy=False, nan=offset + 0.5).astype(np.intp)
    return _RAMPS[bool(diverging)][index]


def weight_tints(weights: np.ndarray) -> np.ndarray:
    """Warm for positive, cool for negative, white for 0 (as in the kernel grid)."""
    peak = float(np.abs(weights).max()) or 1.0
    t = np.clip(weights / peak, -1, 1)[..., None]
    warm = np.array([255, 183, 120], float)
    cool = np.array([130, 170, 255], float)
    white = np.array([255, 255, 255], float)
    tint = np.where(t > 0, warm, cool)
    return np.rint(white + (tint - white) * np.abs(t) * 0.8).astype(np.uint8)


def sign_colours(values: np.ndarray) -> np.ndarray:
    """The strong ends of :data:`DIVERGING_LUT` by sign: red for ``v > 0``, blue for ``v < 0``,
    its middle for 0 (a connection's strength is drawn by its width, its sign by its colour)."""
    v = np.asarray(values, dtype=np.float64)
    index = np.where(v > 0, 255, np.where(v < 0, 0, 128))
    return DIVERGING_LUT[index]
