"""Random distortions of training images: digits (so a model trained on MNIST reads real
handwriting) and photos (random crop with padding, horizontal flip).

MNIST digits are all centred by their centre of mass, fit in a 20x20 box and written with a
similar pen. A user's digit is drawn with a different pen, a little rotated, slanted or off
centre. :func:`augment_digits` shows the network such variations during training:

* an affine warp per image: rotation, scale (with a little anisotropy), shear and shift,
* a stroke-width change: blend towards a 3x3 grey dilation (thicker) or erosion (thinner).

Everything is vectorised over the batch (no Python loop over pixels or images): the trick is
one inverse-affine sampling grid per image, ``src = A^-1 (dst - c - t) + c``, evaluated for
the whole batch with one batched matrix product and gathered with bilinear interpolation from
a zero-padded copy of the batch. Its signature matches ``engine.training.train(..., augment=...)``.

Photos get the standard CIFAR recipe instead (:func:`augment_photos`): each image is padded by
``pad`` zero pixels on every side and a random ``H x W`` window of the padded image is kept
(a shift of up to ``pad`` pixels each way), then mirrored left-right with probability 1/2.
Digits must never be mirrored, photos never slanted: :func:`augmenter` picks by the data
(colour = photos, gray = digits) unless told, and :func:`augment_images` dispatches on the shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ShapeError

__all__ = [
    "AUGMENTATIONS",
    "AugmentConfig",
    "augment_digits",
    "augment_images",
    "augment_photos",
    "augmenter",
    "random_affine_matrices",
]

#: What ``augmenter`` (and ``convscope train --augment``) accepts.
AUGMENTATIONS = ("auto", "digits", "photos")


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random distortions (each drawn uniformly, independently per image).

    rotation: degrees, +-; scale: (low, high) isotropic factor; aspect: +- relative change of
    the x scale; shear: +- shear factor (x += shear * y); shift: pixels, +- in x and y;
    stroke: probability of a stroke-width change; stroke_strength: (low, high) blend weight.
    """

    rotation: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    aspect: float = 0.1
    shear: float = 0.2
    shift: float = 2.0
    stroke: float = 0.5
    stroke_strength: tuple[float, float] = (0.3, 1.0)


DEFAULT = AugmentConfig()


def augment_digits(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig = DEFAULT
) -> np.ndarray:
    """Randomly distorted copies of a batch of digits.

    Args:
        images: ``uint8`` (N, H, W), white ink on black (MNIST polarity).
        rng: the only source of randomness; the same generator state gives the same output.
        config: the ranges of the distortions.

    Returns:
        A new ``uint8`` (N, H, W) array; the input is not modified.
    """
    x = np.asarray(images)
    if x.ndim != 3:
        raise ShapeError(f"augment_digits expects a uint8 batch (N, H, W), got shape {x.shape}")
    if x.dtype != np.uint8:
        raise ShapeError(f"augment_digits expects uint8 images, got dtype {x.dtype}")
    n = x.shape[0]
    if n == 0:
        return x.copy()
    matrices, shifts = random_affine_matrices(n, rng, config)
    out = _warp_bilinear(x, matrices, shifts)  # float32 (N, H, W) in 0..255
    out = _stroke_width(out, rng, config)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def augment_images(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`augment_digits` for (N, H, W) and (N, 1, H, W) batches, :func:`augment_photos`
    for colour (N, 3, H, W) ones."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] == 1:
        return augment_digits(x[:, 0], rng)[:, None]
    if x.ndim == 3:
        return augment_digits(x, rng)
    return augment_photos(x, rng)


def augment_photos(images: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Randomly shifted (crop of the zero-padded image) and mirrored copies of a batch.

    Args:
        images: ``uint8`` (N, C, H, W) or (N, H, W).
        rng: the only source of randomness (per image: two offsets in ``0..2*pad``, one coin).
        pad: the largest shift in pixels.
    """
    x = np.asarray(images)
    if x.ndim not in (3, 4) or x.dtype != np.uint8:
        raise ShapeError(f"augment_photos needs uint8 (N, C, H, W), got {x.dtype} {x.shape}")
    gray = x.ndim == 3
    if gray:
        x = x[:, None]
    n, c, h, w = x.shape
    if pad < 0:
        raise ShapeError(f"padding must be >= 0, got {pad}")
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), np.uint8)
    padded[:, :, pad : pad + h, pad : pad + w] = x
    oy = np.asarray(rng.integers(0, 2 * pad + 1, size=n), dtype=np.int64)
    ox = np.asarray(rng.integers(0, 2 * pad + 1, size=n), dtype=np.int64)
    flip = np.asarray(rng.random(size=n)) < 0.5
    cols = np.arange(w)
    cols = np.where(flip[:, None], cols[::-1], cols) + ox[:, None]  # (N, W)
    rows = oy[:, None] + np.arange(h)  # (N, H)
    idx = np.arange(n)[:, None, None]
    out = np.empty_like(x)
    for ch in range(c):
        out[:, ch] = padded[:, ch][idx, rows[:, :, None], cols[:, None, :]]
    return out[:, 0] if gray else out


def augmenter(kind: str, images: np.ndarray):  # -> engine.training.Augment
    """The augmentation for ``kind`` ("digits", "photos" or "auto": photos for colour
    (N, 3, H, W) data, digits for gray) as a ``train(..., augment=...)`` function."""
    if kind not in AUGMENTATIONS:
        raise ShapeError(f"unknown augmentation {kind!r}; choose {', '.join(AUGMENTATIONS)}")
    if kind == "auto":
        kind = "photos" if np.ndim(images) == 4 and np.shape(images)[1] == 3 else "digits"
    if kind == "photos":
        return augment_photos
    return augment_images


def random_affine_matrices(
    n: int, rng: np.random.Generator, config: AugmentConfig = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random forward transforms: matrices (n, 2, 2) acting on (x, y), shifts (n, 2).

    ``A = R(theta) @ Shear(k) @ diag(s * a, s)``; a point p (relative to the image centre) moves
    to ``A p + t``.
    """
    theta = np.deg2rad(rng.uniform(-config.rotation, config.rotation, n))
    s = rng.uniform(config.scale[0], config.scale[1], n)
    a = 1.0 + rng.uniform(-config.aspect, config.aspect, n)
    k = rng.uniform(-config.shear, config.shear, n)
    t = rng.uniform(-config.shift, config.shift, (n, 2))
    cos, sin = np.cos(theta), np.sin(theta)
    # R @ [[1, k], [0, 1]] @ diag(s*a, s), written out per entry
    sx, sy = s * a, s
    m = np.empty((n, 2, 2))
    m[:, 0, 0] = cos * sx
    m[:, 0, 1] = (cos * k - sin) * sy
    m[:, 1, 0] = sin * sx
    m[:, 1, 1] = (sin * k + cos) * sy
    return m, t


def _warp_bilinear(x: np.ndarray, matrices: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Warp each image of a uint8 batch by its forward affine map, bilinear, zero outside.

    For each output pixel ``p`` (relative to the image centre ``c``) the source is
    ``A^-1 (p - t) + c = A^-1 p - A^-1 t + c``; its four neighbours are gathered from a
    zero-padded flat copy of the batch. Written with few, in-place temporaries: allocating
    large arrays is what costs most at this size.
    """
    n, h, w = x.shape
    inv = np.linalg.inv(matrices).astype(np.float32)  # (N, 2, 2)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([xs.ravel() - cx, ys.ravel() - cy])  # (2, P), P = H*W
    src = inv @ grid  # (N, 2, P): one small matrix product per image, batched
    offset = inv @ shifts.astype(np.float32)[:, :, None]  # (N, 2, 1) = A^-1 t
    offset[:, 0] -= cx + 1.0  # +1: coordinates in the zero-padded image
    offset[:, 1] -= cy + 1.0
    src -= offset
    # Clipping to the zero border makes everything outside the image sample zeros.
    np.clip(src[:, 0], 0.0, w + 0.999, out=src[:, 0])
    np.clip(src[:, 1], 0.0, h + 0.999, out=src[:, 1])
    corner = src.astype(np.int32)  # top-left neighbour (x0, y0)
    src -= corner  # now the fractional parts (fx, fy)
    fx, fy = src[:, 0], src[:, 1]
    pw = w + 2
    # Flat index of the top-left neighbour in the whole padded batch.
    idx = corner[:, 1]
    idx *= pw
    idx += corner[:, 0]
    idx += (np.arange(n, dtype=np.int32) * ((h + 2) * pw))[:, None]
    padded = np.zeros((n, h + 2, pw), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = x
    flat = padded.ravel()
    top = np.take(flat, idx)  # v00, then the interpolated top row
    step = np.take(flat, idx + 1)  # v01 - v00, then the same for the bottom row
    step -= top
    step *= fx
    top += step
    idx += pw
    bottom = np.take(flat, idx)
    np.take(flat, idx + 1, out=step)
    step -= bottom
    step *= fx
    bottom += step
    bottom -= top
    bottom *= fy
    top += bottom
    return top.reshape(n, h, w)


def _stroke_width(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Blend some images (in place) towards their 3x3 grey dilation (thicker) or erosion."""
    n: int = x.shape[0]
    change = rng.random(n) < config.stroke
    thicker = rng.random(n) < 0.5
    weight = rng.uniform(config.stroke_strength[0], config.stroke_strength[1], n)
    # Erosion of thin MNIST strokes is harsh: use it at most at half strength.
    weight = np.where(thicker, weight, 0.5 * weight).astype(np.float32)
    for sel, op in ((change & thicker, np.maximum), (change & ~thicker, np.minimum)):
        idx = np.flatnonzero(sel)
        if idx.size:
            sub = x[idx]
            target = _filter3x3(sub, op)
            target -= sub
            target *= weight[idx, None, None]
            x[idx] = sub + target
    return x


def _filter3x3(x: np.ndarray, op) -> np.ndarray:
    """3x3 grey max (``np.maximum``) or min (``np.minimum``) filter, separable, edge-replicated."""
    rows = op(op(x[:, :-2], x[:, 1:-1]), x[:, 2:])
    rows = np.concatenate([op(x[:, :1], x[:, 1:2]), rows, op(x[:, -2:-1], x[:, -1:])], axis=1)
    cols = op(op(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])
    return np.concatenate(
        [op(rows[:, :, :1], rows[:, :, 1:2]), cols, op(rows[:, :, -2:-1], rows[:, :, -1:])],
        axis=2,
    )
