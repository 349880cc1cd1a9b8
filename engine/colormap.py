"""Colour maps: every false-colour picture of the app takes its colours from here.

- :data:`DIVERGING_LUT` and :func:`diverging` (blue < 0 < red, through near white): signed
  values such as filter results and learned kernels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIVERGING_LUT", "diverging_lut"]


def diverging_lut() -> np.ndarray:
    """256 colours, uint8 ``(256, 3)``: blue (most negative) -> near white (0) -> red (most
    positive), linear between five anchors."""
    anchors = np.array(
        [[40, 80, 170], [120, 170, 215], [245, 245, 245], [225, 130, 100], [175, 30, 40]],
        dtype=np.float64,
    )
    t = np.linspace(0, len(anchors) - 1, 256)
    lo = np.floor(t).astype(int).clip(0, len(anchors) - 2)
    frac = (t - lo)[:, None]
    return np.rint(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.uint8)


#: :func:`diverging_lut`, made once.
DIVERGING_LUT = diverging_lut()
