"""engine.augment: shapes, seeding, the warp's geometry, stroke width."""

from __future__ import annotations

import numpy as np
import pytest

from engine.augment import AugmentConfig, _warp_bilinear, augment_digits, augment_images
from engine.errors import ShapeError

IDENTITY = AugmentConfig(
    rotation=0.0, scale=(1.0, 1.0), aspect=0.0, shear=0.0, shift=0.0, stroke=0.0
)


def _digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """Crude MNIST-like digits: a bright bar and a ring at random places, white on black."""
    out = np.zeros((n, 28, 28), np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(n):
        cy, cx = rng.integers(10, 18, 2)
        ring = np.abs(np.hypot(yy - cy, xx - cx) - 5) < 1.5
        out[i][ring] = 255
        out[i, 4:24, int(rng.integers(6, 22))] = 200
    return out


def test_keeps_shape_and_dtype_and_leaves_the_input_alone(rng):
    x = _digits(64, rng)
    before = x.copy()
    y = augment_digits(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.uint8
    np.testing.assert_array_equal(x, before)


def test_same_seed_same_result_other_seed_other_result(rng):
    x = _digits(16, rng)
    a = augment_digits(x, np.random.default_rng(7))
    b = augment_digits(x, np.random.default_rng(7))
    c = augment_digits(x, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_changes_every_image_but_keeps_the_ink(rng):
    x = _digits(32, rng)
    y = augment_digits(x, np.random.default_rng(3))
    diff = np.abs(y.astype(int) - x.astype(int)).reshape(32, -1).mean(axis=1)
    assert (diff > 0.5).all()
    ratio = y.reshape(32, -1).sum(axis=1) / x.reshape(32, -1).sum(axis=1)
    # scale 0.8-1.2 and stroke width change the ink mass, but never wipe it out or flood
    assert (ratio > 0.35).all() and (ratio < 2.5).all()


def test_identity_config_is_exactly_the_identity(rng):
    x = _digits(8, rng)
    np.testing.assert_array_equal(augment_digits(x, np.random.default_rng(0), IDENTITY), x)


def test_warp_shift_moves_the_image_by_whole_pixels(rng):
    x = _digits(2, rng)
    eye = np.repeat(np.eye(2)[None], 2, axis=0)
    shifts = np.array([[2.0, 0.0], [0.0, -3.0]])  # (x, y): right 2; up 3
    y = _warp_bilinear(x, eye, shifts)
    expected0 = np.zeros_like(x[0])
    expected0[:, 2:] = x[0][:, :-2]
    expected1 = np.zeros_like(x[1])
    expected1[:-3] = x[1][3:]
    np.testing.assert_allclose(y[0], expected0, atol=1e-3)
    np.testing.assert_allclose(y[1], expected1, atol=1e-3)


def test_warp_quarter_turn_matches_rot90(rng):
    x = _digits(1, rng)
    theta = np.pi / 2  # x' = -y, y' = x: with y pointing down, a clockwise quarter turn
    m = np.array([[[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]])
    y = _warp_bilinear(x, m, np.zeros((1, 2)))
    np.testing.assert_allclose(y[0], np.rot90(x[0], k=-1), atol=1e-2)


def test_stroke_width_thickens_and_thins():
    x = np.zeros((1, 28, 28), np.uint8)
    x[0, 6:22, 13:15] = 255
    no_warp = dict(rotation=0.0, scale=(1.0, 1.0), aspect=0.0, shear=0.0, shift=0.0)
    masses = set()
    for seed in range(12):
        cfg = AugmentConfig(**no_warp, stroke=1.0, stroke_strength=(1.0, 1.0))
        y = augment_digits(x, np.random.default_rng(seed), cfg)
        masses.add(int(y.sum()) // 1000)
    base = int(x.sum()) // 1000
    assert min(masses) < base < max(masses)


def test_bad_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="N, H, W"):
        augment_digits(np.zeros((28, 28), np.uint8), np.random.default_rng(0))
    with pytest.raises(ShapeError, match="uint8"):
        augment_digits(np.zeros((2, 28, 28), np.float32), np.random.default_rng(0))


def test_augment_images_dispatches_on_layout(rng):
    x = _digits(4, rng)
    y = augment_images(x[:, None], np.random.default_rng(1))
    assert y.shape == (4, 1, 28, 28)
    colour = np.zeros((4, 3, 32, 32), np.uint8)
    colour[:, :, 8:24, 8:24] = 200
    out = augment_images(colour, np.random.default_rng(1))
    assert out.shape == colour.shape and not np.array_equal(out, colour)
    assert out.sum() == colour.sum()  # shifted by at most 4 pixels: nothing cropped away


def test_augment_photos_crops_and_flips(rng):
    from engine.augment import augment_photos, augmenter

    x = rng.integers(0, 256, (300, 3, 8, 10), dtype=np.uint8)
    y = augment_photos(x, np.random.default_rng(5), pad=2)
    assert y.shape == x.shape and y.dtype == np.uint8
    matched = {"shift": 0, "flip": 0}
    for a, b in zip(x, y, strict=True):  # every output is a shifted, maybe mirrored, input
        found = None
        for flip in (False, True):
            src = a[:, :, ::-1] if flip else a
            padded = np.pad(src, ((0, 0), (2, 2), (2, 2)))
            for dy in range(5):
                for dx in range(5):
                    if np.array_equal(padded[:, dy : dy + 8, dx : dx + 10], b):
                        found = (flip, dy, dx)
        assert found is not None
        matched["flip" if found[0] else "shift"] += 1
    assert 100 < matched["flip"] < 200  # about half mirrored
    again = augment_photos(x, np.random.default_rng(5), pad=2)
    np.testing.assert_array_equal(again, y)
    assert augment_photos(x[:, 0], np.random.default_rng(5)).shape == (300, 8, 10)
    assert augmenter("auto", x) is augment_photos
    assert augmenter("auto", x[:, 0]) is not augment_photos
    assert augmenter("photos", x[:, 0]) is augment_photos


def test_empty_batch():
    x = np.zeros((0, 28, 28), np.uint8)
    assert augment_digits(x, np.random.default_rng(0)).shape == (0, 28, 28)
