"""Display maths for the Train tab: small pure-NumPy helpers that turn engine results into pictures.

Nothing here draws; each function returns plain arrays or numbers that a front end shows as is:
per-class counts, an exponentially smoothed loss curve, feature maps scaled to ``uint8``, kernels
on a blue-white-red scale, image grids, the images behind a confusion-matrix cell.

Images are ``uint8``; feature maps are ``float32`` ``(C, H, W)`` for one sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.colormap import blue_white_red

ACTIVATION_KINDS = ("relu", "tanh", "sigmoid")


# ----- dataset ----------------------------------------------------------------------------
def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Number of samples per class: int64 ``(K,)``, ``counts[k] = #{i : labels[i] == k}``."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    return np.bincount(labels.astype(np.int64), minlength=num_classes).astype(np.int64)


def sample_indices(labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """The first ``per_class`` indices of each class: int64 ``(K, per_class)``, -1 where missing."""
    labels = np.asarray(labels)
    out = np.full((num_classes, per_class), -1, dtype=np.int64)
    for k in range(num_classes):
        found = np.flatnonzero(labels == k)[:per_class]
        out[k, : found.size] = found
    return out


def image_grid(images: np.ndarray, cols: int, *, pad: int = 1, pad_value: int = 40) -> np.ndarray:
    """Tile ``(N, H, W)`` uint8 images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad)`` image.

    Row-major: image ``i`` goes to row ``i // cols``, column ``i % cols``; empty cells stay
    ``pad_value``.
    """
    images = np.asarray(images)
    n, h, w = images.shape
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, -(-n // cols))
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), pad_value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return grid


# ----- curves -----------------------------------------------------------------------------
class EmaSmoother:
    """Exponential moving average with bias correction (as TensorBoard's smoothing).

    ``s_t = w * s_{t-1} + (1 - w) * x_t`` with ``s_0 = 0``, reported as ``s_t / (1 - w**t)`` so
    the first values are not pulled towards zero. Non-finite values are skipped.
    """

    def __init__(self, weight: float = 0.9) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state = 0.0
        self._count = 0

    def update(self, value: float) -> float:
        if np.isfinite(value):
            self._state = self.weight * self._state + (1.0 - self.weight) * float(value)
            self._count += 1
        if self._count == 0:
            return float("nan")
        return self._state / (1.0 - self.weight**self._count)


def ema(values: Sequence[float] | np.ndarray, weight: float = 0.9) -> np.ndarray:
    """The :class:`EmaSmoother` curve of a whole series: float64 ``(N,)``."""
    smoother = EmaSmoother(weight)
    return np.array([smoother.update(v) for v in np.asarray(values, dtype=np.float64)])


def epoch_position(epoch: int, batch: int, batches_per_epoch: int) -> float:
    """x coordinate of a batch on an "epochs" axis: ``epoch + batch / batches_per_epoch``.

    ``epoch`` counts finished epochs before this one and ``batch`` the batches done in it, so the
    last batch of the first epoch sits at 1.0.
    """
    return epoch + batch / max(1, batches_per_epoch)


def format_duration(seconds: float | None) -> str:
    """``"0:07"``, ``"12:30"``, ``"1:02:03"``; ``"–"`` when unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    total = round(max(0.0, seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ----- feature maps and kernels -----------------------------------------------------------
@dataclass(frozen=True)
class LayerView:
    """One row of the activation view.

    ``kind`` is ``"maps"`` (``images`` uint8 ``(C,H,W)``) or ``"bars"`` (``values`` ``(K,)``);
    ``low``/``high`` per map or per bar group give the value range shown on hover.
    """

    name: str
    label: str
    kind: str
    values: np.ndarray
    images: np.ndarray | None
    low: np.ndarray
    high: np.ndarray


def maps_to_uint8(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale feature maps ``(C,H,W)`` to uint8 with one scale for the whole layer.

    ``u = 255 * (x - lo) / (hi - lo)`` with ``lo = min(0, min x)`` and ``hi = max x`` over the
    layer, so 0 (an inactive unit) is black and maps can be compared within the layer. Returns
    ``(images, low, high)`` with ``low``/``high`` the range of each map ``(C,)``.
    """
    maps = np.asarray(maps, dtype=np.float32)
    finite = np.where(np.isfinite(maps), maps, 0.0)
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    span = hi - lo if hi > lo else 1.0
    images = np.clip((finite - lo) * (255.0 / span), 0, 255).round().astype(np.uint8)
    flat = finite.reshape(finite.shape[0], -1)
    return images, flat.min(axis=1), flat.max(axis=1)


def display_layers(
    activations: Sequence[tuple[str, np.ndarray]], kinds: dict[str, str]
) -> list[LayerView]:
    """Choose and scale the rows of the activation view for ONE sample.

    ``activations`` is ``Sequential.activations(x)`` for a batch of one: ``("input", x)``, one
    entry per layer, then ``("softmax", probs)``. ``kinds`` maps layer name to its kind (from
    ``model.summary()``). Convolution and dense layers are shown after their activation function
    when one follows ("conv1 + relu1": the rectified feature map), pooling layers as they are,
    the last dense layer as logits, and the softmax as class probabilities.
    """
    views: list[LayerView] = []
    items = list(activations)
    for i, (name, array) in enumerate(items):
        x = np.asarray(array)[0]
        kind = kinds.get(name, name).lower()
        nxt = items[i + 1] if i + 1 < len(items) else None
        next_kind = kinds.get(nxt[0], nxt[0]).lower() if nxt else ""
        follows_act = nxt is not None and any(a in next_kind for a in ACTIVATION_KINDS)
        label = name
        if name == "input":
            label = "input"
        elif "conv" in kind or "dense" in kind or "linear" in kind:
            if follows_act:
                assert nxt is not None  # follows_act implies a next layer
                x = np.asarray(nxt[1])[0]
                label = f"{name} + {nxt[0]}"
            elif "conv" not in kind and nxt is not None and nxt[0] == "softmax":
                label = f"{name} (logits)"
        elif "pool" in kind or name == "softmax":
            pass
        else:
            continue  # activation functions and flatten are folded into their neighbours
        if x.ndim == 3:
            images, low, high = maps_to_uint8(x)
            views.append(LayerView(name, label, "maps", x, images, low, high))
        else:
            flat = x.reshape(-1).astype(np.float32)
            lo = np.array([flat.min() if flat.size else 0.0], dtype=np.float32)
            hi = np.array([flat.max() if flat.size else 0.0], dtype=np.float32)
            views.append(LayerView(name, label, "bars", flat, None, lo, hi))
    return views


def kernel_images(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Kernels ``(F, C, KH, KW)`` as RGB ``(F, C, KH, KW, 3)`` with one symmetric scale.

    One ``limit = max |w|`` for the whole layer, so strong and weak filters are told apart;
    returns ``(images, limit)``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    limit = float(np.abs(weights).max()) if weights.size else 1.0
    return blue_white_red(weights, limit), limit


def kernel_colours(weights: np.ndarray) -> np.ndarray:
    """Three-channel kernels ``(F, 3, KH, KW)`` as colour images ``(F, KH, KW, 3)`` uint8: each
    weight's channel becomes that colour channel, ``u = 127.5 + 127.5 * w / limit`` with one
    ``limit = max |w|`` for the layer, so 0 is mid-grey and a filter tuned to red looks red
    (the way AlexNet's first-layer filters are shown)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 4 or weights.shape[1] != 3:
        raise ValueError(f"expected kernels (F, 3, KH, KW), got shape {weights.shape}")
    limit = float(np.abs(weights).max()) if weights.size else 1.0
    scaled = 127.5 + 127.5 * weights / (limit if limit > 0 else 1.0)
    return np.clip(scaled, 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)


# ----- results ----------------------------------------------------------------------------
def confusion_cell(
    labels: np.ndarray, predicted: np.ndarray, true_class: int, predicted_class: int
) -> np.ndarray:
    """Indices of the samples in one confusion-matrix cell (row = true, column = predicted)."""
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    return np.flatnonzero((labels == true_class) & (predicted == predicted_class))


def row_fractions(confusion: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (rows with no samples stay 0)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    sums = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, sums, out=np.zeros_like(confusion), where=sums > 0)


def probe_loss(model, images: np.ndarray, labels: np.ndarray, loss: str = "cross_entropy") -> float:
    """Mean loss of ``model`` on a small fixed set (uint8 images, int labels), no training.

    Shown before and after a single training step, so the user sees one update's effect on the
    same images. ``loss`` is ``"cross_entropy"`` or ``"total_error"`` (see :mod:`engine.losses`).
    """
    from engine.losses import get_loss

    logits = model.forward(model.input_spec.to_tensor(images), training=False)
    value, _ = get_loss(loss)(logits, np.asarray(labels, dtype=np.int64))
    return float(value)
