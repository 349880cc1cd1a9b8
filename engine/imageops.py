"""Image operations shared by the filters, digit preparation and reading: grey conversion,
window filters and Otsu's threshold. One home for each; NumPy and Pillow only.

Grey conversion has one rule, ITU-R BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B``, and the
caller says what alpha means:

* ``alpha="ignore"``: the colour as stored;
* ``alpha="white"``: transparent pixels are white paper (a drawing, a scanned digit, the
  Filters tab's and ``convscope convolve``'s input).

``dtype=np.uint8`` rounds as Pillow's ``convert("L")`` does (the digit pipeline depends on
those exact values); ``dtype=np.float32`` keeps the unrounded value (reading measures ink).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from engine.errors import ShapeError

__all__ = [
    "ALPHA_POLICIES",
    "LUMA",
    "box_blur3",
    "otsu_threshold",
    "to_gray",
    "to_gray_batch",
    "window_filter",
]

#: ITU-R BT.601 luma weights for R, G, B.
LUMA = (0.299, 0.587, 0.114)
ALPHA_POLICIES = ("ignore", "white")


def to_gray(image: np.ndarray, *, alpha: str = "ignore", dtype: type = np.uint8) -> np.ndarray:
    """Gray ``(H, W)`` of a uint8 ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``
    image, as ``dtype`` (uint8 or float32); ``alpha`` is ``"ignore"`` or ``"white"`` (see the
    module docstring). A gray uint8 image is returned as it is (not copied)."""
    if alpha not in ALPHA_POLICIES:
        raise ValueError(f"alpha {alpha!r}: use one of {', '.join(ALPHA_POLICIES)}")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return a if dtype == np.uint8 else a.astype(dtype)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ShapeError(f"expected an image of shape (H,W), (H,W,3) or (H,W,4), got {a.shape}")
    with_alpha = a.shape[2] == 4 and alpha == "white"
    if dtype == np.uint8:
        if with_alpha:
            rgba = Image.fromarray(np.ascontiguousarray(a), "RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("L"))
        rgb = np.ascontiguousarray(a[:, :, :3])
        return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    gray: np.ndarray = a[:, :, :3].astype(np.float32) @ np.array(LUMA, dtype=np.float32)
    if with_alpha:
        opacity = a[:, :, 3].astype(np.float32) / 255
        gray = gray * opacity + 255 * (1 - opacity)
    return gray.astype(dtype, copy=False)


def to_gray_batch(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` of uint8 colour images ``(N, 3, H, W)`` (a dataset), equal to
    :func:`to_gray` of each: Pillow's fixed-point luma ``(R*19595 + G*38470 + B*7471 + 2^15)
    >> 16``, in slices of 4,096 images so the integer copy stays small."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ShapeError(f"expected uint8 colour images (N, 3, H, W), got {x.dtype} {x.shape}")
    out = np.empty((x.shape[0], *x.shape[2:]), np.uint8)
    weights = np.array([19595, 38470, 7471], dtype=np.uint32)  # LUMA * 2^16, as Pillow rounds
    for start in range(0, len(x), 4096):
        part = x[start : start + 4096].astype(np.uint32)
        y = np.tensordot(weights, part, axes=([0], [1])) + (1 << 15)
        out[start : start + 4096] = y >> 16
    return out


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in 0..1: maximises the between-class variance (256 bins)."""
    hist = np.bincount(np.clip((values.ravel() * 255).astype(np.int64), 0, 255), minlength=256)
    p = hist / max(1, hist.sum())
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1 - omega))
    between[~np.isfinite(between)] = -1
    return (int(np.argmax(between)) + 0.5) / 255


def window_filter(a: np.ndarray, k: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """``reduce`` (np.max, np.min, np.mean) over the k x k window around each pixel of a small
    2-D array (edges replicated): grey dilation, erosion or a box mean."""
    padded = np.pad(a, k // 2, mode="edge")
    return reduce(np.lib.stride_tricks.sliding_window_view(padded, (k, k)), axis=(-2, -1))


def box_blur3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur of a small float image (edge replicated); smaller images pass unchanged."""
    if min(a.shape) < 3:
        return a
    p = np.pad(a, 1, mode="edge")
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) * np.float32(1 / 9)
