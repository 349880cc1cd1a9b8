"""Losses on logits ``z (N, K)`` with integer labels ``y (N,)``; each returns ``(loss, dz)``.

``loss`` is the batch mean (a Python float); ``dz = d loss / d z`` has the shape and dtype of ``z``.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError


def softmax(z: np.ndarray) -> np.ndarray:
    """``p_k = exp(z_k - max z) / sum_j exp(z_j - max z)`` row by row (stable: no overflow)."""
    p = z - z.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def _check(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ShapeError(
            f"loss: logits must be (N, K) and labels (N,), got {z.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= z.shape[1]):
        raise ShapeError(
            f"loss: labels must lie in 0..{z.shape[1] - 1} for {z.shape[1]} classes, "
            f"got {labels.min()}..{labels.max()}"
        )
    return labels


def softmax_cross_entropy(
    z: np.ndarray, labels: np.ndarray, batch: int | None = None
) -> tuple[float, np.ndarray]:
    """Fused softmax + cross-entropy: ``L = mean_n(-log p[n, y_n])``, ``dz = (p - onehot(y)) / N``.

    Computed through log-sum-exp (``-log p_y = logsumexp(z) - z_y``), so large logits never
    overflow and a confident wrong answer gives a large finite loss, not inf. ``batch`` is the
    ``N`` to divide by (default ``len(z)``): a shard of a batch passes the whole batch's size,
    so its rows of ``dz`` equal the whole batch's and the shards' losses add up to ``L``.
    """
    labels = _check(z, labels)
    rows = np.arange(z.shape[0])
    n = z.shape[0] if batch is None else int(batch)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    loss = (float(np.log(s).sum()) - float(shifted[rows, labels].sum())) / n
    e /= s
    e[rows, labels] -= 1
    e *= e.dtype.type(1.0 / n)
    return loss, e


def total_error(
    z: np.ndarray, labels: np.ndarray, batch: int | None = None
) -> tuple[float, np.ndarray]:
    """The article's "total error" ``E = 1/2 * sum_k (t_k - p_k)^2`` on softmax outputs ``p``,
    averaged over the batch (``t`` = one-hot target).

    Gradient through the softmax (Jacobian ``dp_k/dz_j = p_k (delta_kj - p_j)``)::

        g = p - t;   dz = p * (g - sum_k p_k g_k) / N

    A teaching option: it learns more slowly than cross-entropy, which is worth seeing.
    ``batch`` is the ``N`` to average over (default ``len(z)``), as in
    :func:`softmax_cross_entropy`.
    """
    labels = _check(z, labels)
    n = z.shape[0] if batch is None else int(batch)
    p = softmax(z)
    g = p.copy()
    g[np.arange(z.shape[0]), labels] -= 1
    loss = 0.5 * float(np.sum(g * g)) / n
    dz = g - np.sum(p * g, axis=1, keepdims=True)
    dz *= p
    dz *= dz.dtype.type(1.0 / n)
    return loss, dz


def uniform_guess_loss(num_classes: int, loss: str = "cross_entropy") -> float:
    """The loss of a network that gives every one of K classes 1/K (an untrained one that
    knows nothing): ``ln K`` for cross-entropy, ``(K - 1) / (2K)`` for the total error
    (``1/2 * ((1 - 1/K)^2 + (K - 1) / K^2)``)."""
    k = int(num_classes)
    if k < 1:
        raise ShapeError(f"a uniform guess needs at least one class, got {num_classes}")
    if loss == "total_error":
        return (k - 1) / (2 * k)
    get_loss(loss)  # a clear error for an unknown name
    return float(np.log(k))


# THE loss names: TrainConfig checks them, the CLI offers them, the Train tab lists them.
LOSSES = {"cross_entropy": softmax_cross_entropy, "total_error": total_error}


def get_loss(name: str):
    """The loss function called ``name`` ("cross_entropy" or "total_error")."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ShapeError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}") from None
