"""Image operations shared by the filters, digit preparation and reading: grey conversion.

One :func:`to_gray`, with the alpha policy said by the caller.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError

__all__ = ["LUMA", "to_gray"]

#: ITU-R BT.601 luma weights for R, G, B.
LUMA = (0.299, 0.587, 0.114)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)`` luma ``0.299 R + 0.587 G + 0.114 B`` (alpha ignored); gray passes."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a
    if a.ndim != 3:
        raise ShapeError(f"image shape {a.shape}: expected (H, W) or (H, W, C)")
    if a.shape[2] == 1:
        return a[:, :, 0]
    rgb = a[:, :, :3].astype(np.float32)
    y = rgb @ np.array(LUMA, dtype=np.float32)
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)
