"""engine.pooling's max pooling (general and 2x2) against the loop oracle, in every memory
layout."""

from __future__ import annotations

import numpy as np
import pytest

from engine import pooling
from engine import reference as ref
from engine.layers import MaxPool2D
from tests.engine.test_gradients import check_layer


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` (NCHW) with the same values in NCHW, NHWC, CNHW or CHWN memory, still
    NCHW-shaped."""
    if layout == "chwn":
        return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    if layout == "nhwc":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "cnhw":
        return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(a)


def oracle(x: np.ndarray, dout: np.ndarray, size: int, stride: int, pad: int):
    """``(y, dx)`` by the loop reference on the input bordered with ``-inf``."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * pad, w + 2 * pad), -np.inf, x.dtype)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    dx = ref.pool2d_backward(xp, dout, size, stride)[:, :, pad : pad + h, pad : pad + w]
    return ref.pool2d(xp, size, stride), dx


LAYOUTS = ["nchw", "nhwc", "cnhw", "chwn"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_matches_the_oracle_with_ties_padding_and_any_stride(layout, dtype, rng):
    """Values from {0, 1, 2}: most windows hold ties, whose gradient goes to the FIRST maximum
    in row-major order; stride above, at and below the size, padding up to size // 2."""
    for size, stride, pad in [(3, 2, 1), (3, 1, 1), (2, 3, 0), (3, 3, 1), (1, 2, 0), (4, 2, 2)]:
        x = in_layout(rng.integers(0, 3, (3, 4, 7, 9)).astype(dtype), layout)
        y, state = pooling.maxpool_forward(x, size, stride, pad)
        dout = rng.standard_normal(y.shape).astype(dtype)
        ey, edx = oracle(x, dout, size, stride, pad)
        np.testing.assert_array_equal(y, ey)
        assert y.dtype == dtype
        dx = pooling.maxpool_backward(in_layout(dout, layout), state)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, edx, rtol=1e-6, atol=1e-6)


def test_maxpool_keeps_the_memory_order_and_takes_dout_in_any(rng):
    x = in_layout(rng.standard_normal((2, 5, 8, 8)).astype(np.float32), "nhwc")
    y, state = pooling.maxpool_forward(x, 3, 2, 1)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous  # NHWC in, NHWC out: no transposing copy
    dout = rng.standard_normal(y.shape).astype(np.float32)
    _, edx = oracle(x, dout, 3, 2, 1)
    for layout in LAYOUTS:
        dx = pooling.maxpool_backward(in_layout(dout, layout), state)
        assert dx.transpose(0, 2, 3, 1).flags.c_contiguous
        np.testing.assert_allclose(dx, edx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("general", [False, True])
def test_maxpool_keeps_samples_innermost_memory(layout, general, rng):
    """CHWN memory in (a batch-inner convolution's output), CHWN memory out, on the 2x2 and
    the general path, whatever the memory order of ``dout``; the numbers are the oracle's
    (ties included: first maximum in row-major order)."""
    x = in_layout(rng.integers(0, 3, (5, 3, 6, 8)).astype(np.float32), "chwn")
    assert pooling.batch_inner(x)
    if general:
        y, state = pooling.maxpool_forward(x, 3, 2, 1)
    else:
        y, state = pooling.maxpool2x2_forward(x)
    assert pooling.batch_inner(y)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    ey, edx = oracle(x, dout, *((3, 2, 1) if general else (2, 2, 0)))
    np.testing.assert_array_equal(y, ey)
    back = pooling.maxpool_backward if general else pooling.maxpool2x2_backward
    dx = back(in_layout(dout, layout), state)
    assert pooling.batch_inner(dx)
    np.testing.assert_allclose(dx, edx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_maxpool2x2_matches_the_oracle_in_every_layout(layout, rng):
    x = in_layout(rng.integers(0, 3, (4, 3, 6, 4)).astype(np.float64), layout)
    y, state = pooling.maxpool2x2_forward(x)
    dout = rng.standard_normal(y.shape)
    ey, edx = oracle(x, dout, 2, 2, 0)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_allclose(pooling.maxpool2x2_backward(dout, state), edx, atol=1e-12)
    y2, state2 = pooling.maxpool2x2_forward(x, training=False)
    np.testing.assert_array_equal(y2, ey)
    assert state2 == ()


def test_maxpool_in_small_blocks_and_without_training_state(monkeypatch, rng):
    """Many blocks of groups with a shorter last one give the same result as one block."""
    x = rng.integers(0, 4, (3, 7, 10, 6)).astype(np.float32)
    dout = rng.standard_normal((3, 7, 5, 3)).astype(np.float32)
    ey, edx = oracle(x, dout, 3, 2, 1)
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 600)  # two of the 21 groups per block
    y, state = pooling.maxpool_forward(x, 3, 2, 1)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_allclose(pooling.maxpool_backward(dout, state), edx, rtol=1e-6, atol=1e-6)
    y2, state2 = pooling.maxpool_forward(x, 3, 2, 1, training=False)
    np.testing.assert_array_equal(y2, ey)
    assert state2 == ()


def test_maxpool_matches_pytorch_on_a_relu_output():
    """The gradient of windows of zeros (after ReLU) goes where PyTorch sends it."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((4, 6, 11, 11)), 0).astype(np.float32)
    x[:, :, 2:6, 3:8] = 0  # whole windows of ties
    for size, stride, pad in [(3, 2, 1), (3, 1, 1), (2, 2, 1)]:
        layer = MaxPool2D(size, stride, pad)
        y = layer.forward(in_layout(x, "nhwc"), training=True)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.nn.functional.max_pool2d(xt, size, stride, pad)
        yt.backward(torch.from_numpy(dout))
        np.testing.assert_array_equal(y, yt.detach().numpy())
        dx = layer.backward(dout)  # overlapping windows may sum in another order
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("size", "stride", "pad"), [(3, 2, 1), (3, 1, 1), (2, 3, 1)])
def test_padded_maxpool_gradients(size, stride, pad, rng):
    check_layer(MaxPool2D(size, stride, pad), rng.standard_normal((2, 3, 7, 6)), rng)
