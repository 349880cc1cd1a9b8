"""Evaluation of a trained model: accuracy, per-class accuracy, confusion matrix, mistakes.

The images stay uint8; each batch of ``batch_size`` is converted with ``model.input_spec.to_tensor``
and run forward, so the dataset is never held twice (as uint8 and as float). What is kept per
image is its predicted class (int64) and its confidence (float32, the largest softmax
probability): 12 bytes an image.

Formulas, for logits z of one image with true class y:
    predicted  = argmax_k z_k
    confidence = max_k softmax(z)_k = 1 / sum_k exp(z_k - max z)
    loss       = -log softmax(z)_y = log sum_k exp(z_k - max z) + max z - z_y   (cross-entropy)
    confusion[t, p] = number of images of true class t predicted as p  (rows = true)
    per_class[t]    = confusion[t, t] / sum_p confusion[t, p]  (NaN when class t has no image)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError
from engine.inference import not_finite
from engine.progress import Progress, run_through
from engine.training import check_images_labels

if TYPE_CHECKING:
    from engine.graph import Network


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """What :func:`evaluate` measured on N images of K classes.

    accuracy: fraction correct. per_class: K fractions (NaN for a class without images).
    confusion: int64 (K,K), rows = true class, columns = predicted class.
    predicted: int64 (N,). confidence: float32 (N,), the predicted class's probability.
    misclassified: int64 indices of the wrong predictions, most confident mistake first.
    labels: int64 (N,), the true classes. loss: mean cross-entropy.
    """

    accuracy: float
    per_class: list[float]
    confusion: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    misclassified: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: list[str] = field(default_factory=list)
    loss: float = math.nan

    @property
    def count(self) -> int:
        return len(self.predicted)

    def mistakes(self, limit: int = 10, files: Sequence[str] | None = None) -> list[dict]:
        """The ``limit`` most confident mistakes, as dicts with keys
        ``index``, ``true``, ``predicted``, ``confidence``, and ``file`` (``files[index]``: an
        image folder's test files, ``Dataset.test_files``) when ``files`` is given."""
        out = []
        for i in self.misclassified[:limit]:
            out.append(
                {
                    "index": int(i),
                    **({"file": str(files[i])} if files is not None else {}),
                    "true": int(self.labels[i]) if len(self.labels) else None,
                    "predicted": int(self.predicted[i]),
                    "confidence": float(self.confidence[i]),
                }
            )
        return out

    def confused_pairs(self, limit: int = 20) -> list[tuple[int, int, int]]:
        """The ``limit`` off-diagonal cells of the confusion matrix holding the most images,
        as (true class, predicted class, images), most first (equal ones row by row): the
        matrix in short, for a model of too many classes to print it."""
        off = np.array(self.confusion, dtype=np.int64)
        np.fill_diagonal(off, 0)
        flat = np.argsort(-off, axis=None, kind="stable")[: max(0, limit)]
        k = off.shape[1]
        return [(int(i // k), int(i % k), int(off.flat[i])) for i in flat if off.flat[i] > 0]

    def to_json(self, mistakes: int = 10, files: Sequence[str] | None = None) -> dict:
        """Numbers only (NaN as null): accuracy, per_class, confusion, classes, count, loss,
        misclassified (how many) and the ``mistakes`` most confident ones (with their
        ``files``)."""
        return {
            "accuracy": float(self.accuracy),
            "per_class": [None if math.isnan(p) else float(p) for p in self.per_class],
            "confusion": self.confusion.tolist(),
            "classes": list(self.classes),
            "count": self.count,
            "loss": None if math.isnan(self.loss) else float(self.loss),
            "misclassified": len(self.misclassified),
            "most_confident_mistakes": self.mistakes(mistakes, files),
        }


def evaluate(
    model: Network, images: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> EvaluationResult:
    """Evaluate ``model`` on uint8 images (N,H,W) or (N,C,H,W) with integer labels (N,)."""
    result = run_through(evaluate_iter(model, images, labels, batch_size))
    assert isinstance(result, EvaluationResult)
    return result


def evaluate_iter(
    model: Network,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 500,
    *,
    control: Any = None,
) -> Iterator[Progress | EvaluationResult]:
    """Like :func:`evaluate`, as a generator for a progress bar or a GUI worker.

    Yields ``Progress("evaluate", images done, images in all)`` after each batch (the one
    progress shape of :mod:`engine.progress`), then the :class:`EvaluationResult`.
    ``control``: anything with a ``cancelled`` attribute (a ``CancelFlag`` or ``TrainControl``);
    when it turns true the generator ends without a result. Bad input raises at the call, not at
    the first ``next()``; a batch whose logits are not finite numbers (a damaged model file)
    raises :class:`~engine.errors.ModelFileError` naming the first such image
    (:data:`engine.inference.NOT_FINITE`).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise EngineError(f"batch size must be a whole number >= 1, got {batch_size!r}")
    images, labels = check_images_labels(images, labels, len(model.classes), "evaluation")
    model.input_spec.to_tensor(images[:1])  # a ShapeError now if the images do not fit
    return _run(model, images, labels, batch_size, control)


def _run(
    model: Network,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    control: Any,
) -> Iterator[Progress | EvaluationResult]:
    n = len(images)
    k = len(model.classes)
    spec = model.input_spec
    predicted = np.empty(n, np.int64)
    confidence = np.empty(n, np.float32)
    loss_sum = 0.0
    for start in range(0, n, batch_size):
        if control is not None and control.cancelled:
            return
        stop = min(start + batch_size, n)
        with np.errstate(all="ignore"):  # the logits are checked instead
            z = model.forward(spec.to_tensor(images[start:stop]), training=False)
        z = z.astype(np.float64, copy=False)
        finite = np.isfinite(z).all(axis=1)
        if not finite.all():  # a NaN accuracy, or every image "the first class", means nothing
            raise not_finite(f"image {start + int(np.argmin(finite)) + 1:,} of the {n:,} evaluated")
        top = z.max(axis=1)
        sum_exp = np.exp(z - top[:, None]).sum(axis=1)
        predicted[start:stop] = z.argmax(axis=1)
        confidence[start:stop] = 1.0 / sum_exp
        true_logit = z[np.arange(stop - start), labels[start:stop]]
        loss_sum += float(np.sum(np.log(sum_exp) + top - true_logit))
        yield Progress("evaluate", stop, n)
    yield summarize(labels, predicted, confidence, k, list(model.classes), loss_sum / n)


def summarize(
    labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    num_classes: int,
    classes: list[str] | None = None,
    loss: float = math.nan,
) -> EvaluationResult:
    """Build an :class:`EvaluationResult` from true and predicted classes (N,) and confidences."""
    labels = np.asarray(labels, np.int64)
    predicted = np.asarray(predicted, np.int64)
    confidence = np.asarray(confidence, np.float32)
    k = num_classes
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    per_row = confusion.sum(axis=1)
    diag = np.diagonal(confusion)
    per_class = [float(d / r) if r else math.nan for d, r in zip(diag, per_row, strict=True)]
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    return EvaluationResult(
        accuracy=float(diag.sum() / len(labels)),
        per_class=per_class,
        confusion=confusion.astype(np.int64),
        predicted=predicted,
        confidence=confidence,
        misclassified=wrong,
        labels=labels,
        classes=list(classes) if classes is not None else [str(i) for i in range(k)],
        loss=loss,
    )
