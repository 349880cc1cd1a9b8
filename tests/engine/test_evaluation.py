"""evaluate(): numbers checked by hand on a tiny case, batching, cancellation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import DatasetError, ShapeError
from engine.evaluation import EvaluationResult, evaluate, evaluate_iter
from engine.model import InputSpec, lenet5
from engine.progress import Progress


class TableModel:
    """A stand-in model: image i is one pixel holding i; its logits are row i of a table.

    Records the batch sizes it was given, to check the batching.
    """

    def __init__(self, table: np.ndarray, classes: list[str]) -> None:
        self.table = np.asarray(table, np.float32)
        self.classes = classes
        self.input_spec = InputSpec((1, 1, 1), scale=1.0, mean=0.0, std=1.0)
        self.batches: list[int] = []

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        assert x.dtype == np.float32 and x.shape[1:] == (1, 1, 1)
        self.batches.append(len(x))
        return self.table[x[:, 0, 0, 0].astype(int)]


# Six images of three classes. Predicted: 0, 1, 1, 1, 0, 2 (argmax of each row).
TABLE = [
    [2.0, 0.0, 0.0],  # true 0 -> 0, right
    [0.0, 1.0, 0.0],  # true 0 -> 1, wrong (confidence e/(e+2) = 0.576)
    [0.0, 3.0, 0.0],  # true 1 -> 1, right
    [0.0, 0.5, 0.0],  # true 1 -> 1, right
    [4.0, 0.0, 0.0],  # true 2 -> 0, wrong (confidence e^4/(e^4+2) = 0.965)
    [0.0, 0.0, 1.0],  # true 2 -> 2, right
]
LABELS = np.array([0, 0, 1, 1, 2, 2])


def _images(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint8).reshape(n, 1, 1)


def test_hand_checked_confusion_per_class_and_mistakes():
    model = TableModel(TABLE, ["zero", "one", "two"])
    result = evaluate(model, _images(6), LABELS, batch_size=4)

    assert model.batches == [4, 2]
    assert result.accuracy == pytest.approx(4 / 6)
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert result.per_class == pytest.approx([0.5, 1.0, 0.5])
    np.testing.assert_array_equal(result.predicted, [0, 1, 1, 1, 0, 2])
    e = math.e
    assert result.confidence[1] == pytest.approx(e / (e + 2), rel=1e-6)
    assert result.confidence[4] == pytest.approx(e**4 / (e**4 + 2), rel=1e-6)
    # most confident mistake first
    np.testing.assert_array_equal(result.misclassified, [4, 1])
    assert result.mistakes(1) == [
        {"index": 4, "true": 2, "predicted": 0, "confidence": pytest.approx(0.9647, abs=1e-4)}
    ]
    # mean cross-entropy: -log softmax(row)[true]
    z = np.array(TABLE)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert result.loss == pytest.approx(-np.mean(logp[np.arange(6), LABELS]), rel=1e-6)


def test_to_json_is_plain_numbers_and_a_missing_class_is_null():
    model = TableModel(TABLE, ["a", "b", "c"])
    result = evaluate(model, _images(4), LABELS[:4])  # no image of class "c"
    doc = result.to_json()
    assert doc["per_class"] == [0.5, 1.0, None]
    assert doc["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert doc["accuracy"] == 0.75 and doc["count"] == 4 and doc["misclassified"] == 1
    assert doc["classes"] == ["a", "b", "c"]
    import json

    json.dumps(doc, allow_nan=False)  # strict JSON


def test_evaluate_iter_reports_progress_then_the_result():
    model = TableModel(TABLE, ["a", "b", "c"])
    items = list(evaluate_iter(model, _images(6), LABELS, batch_size=2))
    assert items[:-1] == [Progress("evaluate", d, 6) for d in (2, 4, 6)]
    assert isinstance(items[-1], EvaluationResult)


def test_evaluate_iter_stops_without_result_when_cancelled():
    class Flag:
        cancelled = False

    flag = Flag()
    model = TableModel(TABLE, ["a", "b", "c"])
    items = []
    for item in evaluate_iter(model, _images(6), LABELS, batch_size=2, control=flag):
        items.append(item)
        flag.cancelled = True
    assert items == [Progress("evaluate", 2, 6)]
    assert model.batches == [2]


def test_bad_input_is_refused_at_the_call():
    model = TableModel(TABLE, ["a", "b", "c"])
    with pytest.raises(DatasetError, match="uint8"):
        evaluate_iter(model, _images(6).astype(np.float32), LABELS)
    with pytest.raises(DatasetError, match="6 images but 5 labels"):
        evaluate_iter(model, _images(6), LABELS[:5])
    with pytest.raises(DatasetError, match="3 classes"):
        evaluate_iter(model, _images(6), LABELS + 1)
    with pytest.raises(ShapeError, match="2x2"):
        evaluate_iter(model, np.zeros((6, 2, 2), np.uint8), LABELS)


def test_real_model_matches_a_direct_forward_pass(rng):
    model = lenet5(np.random.default_rng(0))
    images = rng.integers(0, 256, size=(37, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=37)
    result = evaluate(model, images, labels, batch_size=10)
    probs = model.predict_proba(model.input_spec.to_tensor(images))
    np.testing.assert_array_equal(result.predicted, probs.argmax(axis=1))
    np.testing.assert_allclose(result.confidence, probs.max(axis=1), rtol=1e-5)
    assert result.accuracy == pytest.approx(np.mean(probs.argmax(axis=1) == labels))
    assert result.confusion.sum() == 37


def test_confused_pairs_are_the_fullest_mistake_cells_first():
    confusion = np.array([[5, 3, 0], [1, 9, 3], [0, 7, 2]])
    result = EvaluationResult(1.0, [1.0] * 3, confusion, *([np.zeros(0)] * 3))
    assert result.confused_pairs(3) == [(2, 1, 7), (0, 1, 3), (1, 2, 3)]
    assert result.confused_pairs(9) == [(2, 1, 7), (0, 1, 3), (1, 2, 3), (1, 0, 1)]  # no zeros
