"""engine.imageops: the one grey conversion (single images and dataset batches)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import ShapeError
from engine.imageops import to_gray, to_gray_batch


def test_gray_equals_pillow_and_the_batch_equals_each_image():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (4, 3, 40, 30), dtype=np.uint8)
    gray = to_gray_batch(batch)
    assert gray.shape == (4, 40, 30) and gray.dtype == np.uint8
    for image, g in zip(batch, gray, strict=True):
        hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
        pillow = np.asarray(Image.fromarray(hwc, "RGB").convert("L"))
        np.testing.assert_array_equal(g, pillow)
        np.testing.assert_array_equal(to_gray(hwc), pillow)


def test_the_alpha_policy_is_explicit():
    red_clear = np.zeros((2, 2, 4), np.uint8)
    red_clear[..., 0] = 255  # pure red, fully transparent
    assert to_gray(red_clear, alpha="ignore")[0, 0] == 76  # the red as stored
    assert to_gray(red_clear, alpha="white")[0, 0] == 255  # white paper shows through
    assert to_gray(red_clear, alpha="white", dtype=np.float32)[0, 0] == pytest.approx(255)
    with pytest.raises(ValueError, match="alpha 'black'"):
        to_gray(red_clear, alpha="black")


def test_a_batch_that_is_not_colour_images_is_refused():
    with pytest.raises(ShapeError, match=r"\(N, 3, H, W\)"):
        to_gray_batch(np.zeros((2, 1, 4, 4), np.uint8))
