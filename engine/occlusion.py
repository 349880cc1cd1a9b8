"""Occlusion maps: which parts of the input most change the prediction when covered.

Zeiler & Fergus's experiment: slide a square patch over the input and watch the probability of
the predicted class. A digit's patch is black, the background of an MNIST-style digit, so
covering means *erasing* ink; a photo's patch is the mean colour of the training photos (what
normalises to zero), so covering means *removing* what was there. All occluded copies go
through the network in one batched forward pass (in :data:`CANCEL_PARTS` parts when the work
may be cancelled: a 512-channel network's map takes seconds, and a newer input makes it moot).

For an input ``(H, W)`` (a digit) or ``(C, H, W)`` (a photo), a ``P x P`` patch and stride
``S``, the patch's top-left corners are ``y in {0, S, 2S, ...} ∪ {H - P}`` (the last position
is always included, so every pixel is covered) and the same for ``x``:

    drop[i, j] = p(target | image) - p(target | image with the patch at (y_i, x_j))

A large positive drop means the covered part was evidence *for* the class; a negative one, that
it spoke against it. ``heat`` spreads the drops back onto pixels: each pixel gets the mean drop
of all patch positions covering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.colormap import ramp
from engine.errors import EngineError, ShapeError
from engine.inference import classify_inputs
from engine.progress import Cancellable

#: Parts of the occluded batch when the map may be cancelled (checked between them): a
#: cancelled map stops within about a sixth of its time; each part costs one more pass over
#: the layers (a 2,000-node network's per-node overhead).
CANCEL_PARTS = 6


class OcclusionCancelled(EngineError):
    """The map was cancelled (``cancel.cancelled``) before it was finished."""


@dataclass(frozen=True)
class OcclusionMap:
    target: int  # index of the class whose probability is tracked
    base_probability: float  # p(target) for the image without occlusion
    drop: np.ndarray  # float32 (len(ys), len(xs)): drop per patch position
    heat: np.ndarray  # float32 (H, W): mean drop of the patches covering each pixel
    ys: np.ndarray  # int (len(ys),) top rows of the patch positions
    xs: np.ndarray  # int (len(xs),) left columns
    patch: int
    stride: int
    fill: int | tuple[int, ...]  # the patch value (per channel for a photo)


def _positions(size: int, patch: int, stride: int) -> np.ndarray:
    pos = np.arange(0, size - patch + 1, stride)
    if pos[-1] != size - patch:
        pos = np.append(pos, size - patch)
    return pos


def occlusion_map(
    model,
    image: np.ndarray,
    *,
    patch: int = 6,
    stride: int = 2,
    fill: int | None = None,
    target: int | None = None,
    cancel: Cancellable | None = None,
) -> OcclusionMap:
    """The occlusion map of ``image`` (uint8 (H, W) digit or (C, H, W) photo, as the network
    sees it: ``engine.inference.Prepared.network``) for ``model``.

    ``fill`` is the patch's pixel value; default: 0 for a digit, the pixel value that the
    model's normalisation maps to zero (mean / scale, the mean colour) for a photo.
    ``target`` defaults to the predicted class. One forward pass of
    ``len(ys) * len(xs) + 1`` images (about 170 for 28x28, patch 6, stride 2); with ``cancel``,
    in :data:`CANCEL_PARTS` parts, raising :class:`OcclusionCancelled` once it is cancelled.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ShapeError(
            f"occlusion_map takes a uint8 (H, W) or (C, H, W) image, got {image.dtype} "
            f"{image.shape}; pass Prepared.network"
        )
    h, w = image.shape[-2:]
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise ShapeError(
            f"patch {patch} / stride {stride} do not fit a {h}x{w} image; use "
            f"1 <= patch <= {min(h, w)} and stride >= 1"
        )
    ys, xs = _positions(h, patch, stride), _positions(w, patch, stride)
    # rows[i, r] is True where patch row i covers image row r; the masks are their outer "and"
    rows = (np.arange(h)[None, :] >= ys[:, None]) & (np.arange(h)[None, :] < ys[:, None] + patch)
    cols = (np.arange(w)[None, :] >= xs[:, None]) & (np.arange(w)[None, :] < xs[:, None] + patch)
    masks = (rows[:, None, :, None] & cols[None, :, None, :]).reshape(-1, h, w)
    fills = _fill(model, image, fill)
    batch = np.repeat(image[None], len(masks) + 1, axis=0)  # copy 0 stays unoccluded
    if image.ndim == 2:
        batch[1:][masks] = fills[0]
    else:
        covered = batch[1:].transpose(0, 2, 3, 1)  # (N, H, W, C) view
        covered[masks] = fills
    probs = _probabilities(model, batch, cancel)
    cls = int(np.argmax(probs[0])) if target is None else int(target)
    base = float(probs[0, cls])
    drop = (base - probs[1:, cls]).astype(np.float32)
    cover = masks.sum(axis=0)
    heat = np.tensordot(drop, masks.astype(np.float32), axes=1) / np.maximum(cover, 1)
    return OcclusionMap(
        cls,
        base,
        drop.reshape(len(ys), len(xs)),
        heat.astype(np.float32),
        ys,
        xs,
        patch,
        stride,
        int(fills[0]) if fills.size == 1 else tuple(int(v) for v in fills),
    )


def _probabilities(model, batch: np.ndarray, cancel: Cancellable | None) -> np.ndarray:
    if cancel is None:
        return classify_inputs(model, batch)
    parts = []
    for part in np.array_split(batch, min(CANCEL_PARTS, len(batch))):
        if cancel.cancelled:
            raise OcclusionCancelled("the occlusion map was cancelled")
        parts.append(classify_inputs(model, part))
    return np.concatenate(parts)


def _fill(model, image: np.ndarray, fill: int | None) -> np.ndarray:
    """The patch's value per channel (uint8 (C,))."""
    channels = 1 if image.ndim == 2 else image.shape[0]
    if fill is not None:
        return np.full(channels, fill, dtype=np.uint8)
    if image.ndim == 2:
        return np.zeros(1, dtype=np.uint8)
    spec = model.input_spec
    mean = np.broadcast_to(np.asarray(spec.mean, dtype=np.float64), (channels,))
    return np.clip(np.rint(mean / float(spec.scale)), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): the gray input ``image`` (H, W), dimmed, under the heat map ``heat``
    (:attr:`OcclusionMap.heat`): orange where covering the pixel lowers the predicted class's
    probability (evidence for it), blue where it raises it."""
    vmax = max(float(np.abs(heat).max()), 0.05)  # tiny drops stay dark, not amplified noise
    colour = ramp(heat.astype(np.float64), vmax, diverging=True).astype(np.float64)
    gray = image.astype(np.float64)[..., None] * 0.35
    return np.clip(colour + gray, 0, 255).astype(np.uint8)
