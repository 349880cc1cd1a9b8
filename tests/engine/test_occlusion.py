"""Occlusion maps: one batched forward pass equals covering the image position by position."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ShapeError
from engine.model import InputSpec, lenet5
from engine.occlusion import CANCEL_PARTS, OcclusionCancelled, occlusion_map


class _BrightCornerModel:
    """Two classes; class 0's logit is the ink in the top-left 8x8 corner. Counts its forward
    passes."""

    input_spec = InputSpec((1, 28, 28))
    classes = ("corner", "other")

    def __init__(self) -> None:
        self.calls = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = np.asarray(x, dtype=np.float64)[:, 0]
        logit = (x[:, :8, :8] - x.min()).sum(axis=(1, 2)) / 10
        return np.stack([logit, np.full_like(logit, 5.0)], axis=1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.forward(x)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _slow_occlusion(model, image, patch, stride, fill, target):
    """Reference: cover each position, one forward pass each."""
    h, w = image.shape
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    ys += [h - patch] if ys[-1] != h - patch else []
    xs += [w - patch] if xs[-1] != w - patch else []
    base = model.predict_proba(image[None, None])[0, target]
    drop = np.zeros((len(ys), len(xs)))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            covered = image.copy()
            covered[y : y + patch, x : x + patch] = fill
            drop[i, j] = base - model.predict_proba(covered[None, None])[0, target]
    return drop


def test_one_forward_pass_and_the_drop_is_where_the_evidence_is():
    image = np.zeros((28, 28), np.uint8)
    image[2:6, 2:6] = 255  # evidence for class 0
    image[20:26, 18:26] = 255  # irrelevant ink
    model = _BrightCornerModel()
    result = occlusion_map(model, image, patch=4, stride=2)
    assert model.calls == 1
    assert result.target == 0
    assert result.drop.shape == (13, 13)
    i, j = np.unravel_index(np.argmax(result.drop), result.drop.shape)
    assert (result.ys[i], result.xs[j]) == (2, 2)  # covering exactly the evidence hurts most
    assert result.heat.shape == (28, 28)
    assert result.heat[3, 3] > 0.5 * result.drop.max()
    assert abs(result.heat[22, 22]) < 1e-6  # covering the irrelevant ink changes nothing


def test_matches_covering_position_by_position_with_lenet(rng):
    model = lenet5(rng)
    image = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    fast = occlusion_map(model, image, patch=7, stride=3, fill=0, target=4)
    slow = _slow_occlusion(model, image, 7, 3, 0, 4)
    assert fast.target == 4
    np.testing.assert_allclose(fast.drop, slow, atol=1e-5)
    assert fast.ys[-1] == 21 and fast.xs[-1] == 21  # the last position is always included


def test_heat_is_the_mean_drop_of_covering_patches(rng):
    model = lenet5(rng)
    image = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    result = occlusion_map(model, image, patch=6, stride=4)
    y, x = 10, 13
    covering = [
        result.drop[i, j]
        for i, yy in enumerate(result.ys)
        for j, xx in enumerate(result.xs)
        if yy <= y < yy + 6 and xx <= x < xx + 6
    ]
    assert result.heat[y, x] == pytest.approx(np.mean(covering), abs=1e-6)


class _CancelledAfter:
    """A cancel flag that reads False ``n`` times, then True (a newer input came meanwhile)."""

    def __init__(self, n: int) -> None:
        self.reads, self.n = 0, n

    @property
    def cancelled(self) -> bool:
        self.reads += 1
        return self.reads > self.n


def test_a_cancellable_map_goes_in_parts_and_stops_when_cancelled(rng):
    model = lenet5(rng)
    image = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    whole = occlusion_map(model, image, patch=6, stride=2)
    parts = occlusion_map(model, image, patch=6, stride=2, cancel=_CancelledAfter(99))
    np.testing.assert_allclose(parts.heat, whole.heat, atol=1e-6)
    counted = _BrightCornerModel()
    occlusion_map(counted, image, patch=4, stride=2, cancel=_CancelledAfter(99))
    assert counted.calls == CANCEL_PARTS
    stopped = _BrightCornerModel()
    with pytest.raises(OcclusionCancelled, match="cancelled"):
        occlusion_map(stopped, image, patch=4, stride=2, cancel=_CancelledAfter(2))
    assert stopped.calls == 2  # no part after the cancellation


@pytest.mark.parametrize("patch, stride", [(0, 1), (29, 1), (5, 0)])
def test_bad_patch_or_stride_is_refused(rng, patch, stride):
    with pytest.raises(ShapeError, match="patch"):
        occlusion_map(lenet5(rng), np.zeros((28, 28), np.uint8), patch=patch, stride=stride)


def test_a_float_image_is_refused(rng):
    with pytest.raises(ShapeError, match="uint8"):
        occlusion_map(lenet5(rng), np.zeros((28, 28), np.float32))


def test_the_overlay_is_orange_for_evidence_and_blue_against_on_the_dimmed_input():
    from engine.occlusion import overlay

    heat = np.array([[0.5, -0.5, 0.0]], dtype=np.float32)
    image = np.array([[0, 0, 200]], dtype=np.uint8)
    rgb = overlay(image, heat)
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > rgb[0, 0, 2]  # covering it lowers the class: orange
    assert rgb[0, 1, 2] > rgb[0, 1, 0]  # covering it raises the class: blue
    # no change: the input's gray, dimmed (200 * 0.35) over the ramp's near-black middle
    assert np.all(np.abs(rgb[0, 2].astype(int) - 70) <= 15)
