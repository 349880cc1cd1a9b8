"""The fast layers against the naive loop references, shapes, dtypes and error messages."""

from __future__ import annotations

import numpy as np
import pytest

from engine import im2col, layers
from engine import reference as ref
from engine.errors import ShapeError
from engine.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
    layer_from_config,
)
from engine.model import lenet5


def random_conv_cases(rng, count=12):
    for _ in range(count):
        k = int(rng.integers(1, 6))
        stride = int(rng.integers(1, 4))
        pad = int(rng.integers(0, 3))
        h = int(rng.integers(max(1, k - 2 * pad), 12))
        w = int(rng.integers(max(1, k - 2 * pad), 12))
        yield int(rng.integers(1, 4)), int(rng.integers(1, 5)), k, stride, pad, h, w


def test_conv_matches_reference_on_random_shapes(rng):
    for cin, cout, k, stride, pad, h, w in random_conv_cases(rng):
        layer = Conv2D(cin, cout, k, stride, pad, rng=rng)
        layer.params["bias"][...] = rng.standard_normal(cout)
        x = rng.standard_normal((3, cin, h, w)).astype(np.float32)
        y = layer.forward(x, training=True)
        expect = ref.conv2d(x, layer.params["weight"], layer.params["bias"], stride, pad)
        case = (cin, cout, k, stride, pad, h, w)
        assert y.shape == expect.shape == (3, *layer.output_shape((cin, h, w))), case
        np.testing.assert_allclose(y, expect, rtol=1e-4, atol=1e-5, err_msg=str(case))
        dout = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dout)
        rdx, rdw, rdb = ref.conv2d_backward(x, layer.params["weight"], dout, stride, pad)
        np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4, err_msg=str(case))
        np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "pad", "bias", "dtype"),
    [
        (5, 3, 3, 1, True, np.float64),
        (3, 3, 3, 2, False, np.float32),
        (6, 2, 1, 0, True, np.float64),
        (3, 3, 3, 1, True, np.float32),
    ],
)
def test_direct_stride1_conv_matches_the_reference(
    cin, cout, k, pad, bias, dtype, rng, monkeypatch
):
    """Stride 1 with F <= C runs without a patch matrix (engine.im2col.direct_conv over the
    padded grid, the weight gradient in blocks of patches; small blocks here, so several):
    forward, all three gradients, a second batch of another size through the reused buffers."""
    monkeypatch.setattr(im2col, "DIRECT_BLOCK", 200)
    monkeypatch.setattr(im2col, "PATCH_BLOCK_BYTES", 1024)
    layer = Conv2D(cin, cout, k, 1, pad, bias=bias, rng=rng).astype(dtype)
    w = layer.params["weight"]
    b = layer.params["bias"] if bias else np.zeros(cout, dtype)
    for n, h, wd in ((1, 18, 17), (2, 19, 18), (2, 19, 18)):
        x = rng.standard_normal((n, cin, h, wd)).astype(dtype)
        y = layer.forward(x, training=True)
        assert layer._direct  # the path under test
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref.conv2d(x, w, b, 1, pad), rtol=1e-4, atol=1e-4)
        dout = rng.standard_normal(y.shape).astype(dtype)
        dx = layer.backward(dout)
        rdx, rdw, rdb = ref.conv2d_backward(x, w, dout, 1, pad)
        np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-3)
        if bias:
            np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("cin", "cout", "dtype"),
    [(4, 4, np.float32), (2, 6, np.float32), (6, 2, np.float32), (6, 2, np.float64)],
)
def test_stride1_conv_input_gradient_in_blocks_and_buffer_reuse(cin, cout, dtype, rng):
    """With F <= C the stride-1 input gradient is computed as a convolution of dout (in blocks
    of samples for a batch of 40, in the forward's patch buffer): it matches the reference, and
    the next forward (whose bias row was overwritten) is still right."""
    layer = Conv2D(cin, cout, 3, 1, 1, rng=rng)
    layer.params["bias"][...] = rng.standard_normal(cout)
    layer.astype(dtype)
    w, b = layer.params["weight"], layer.params["bias"]  # after astype: the live arrays
    for _ in range(2):
        x = rng.standard_normal((40, cin, 16, 16)).astype(dtype)
        y = layer.forward(x, training=True)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref.conv2d(x, w, b, 1, 1), rtol=1e-4, atol=1e-4)
        dout = rng.standard_normal(y.shape).astype(dtype)
        dx = layer.backward(dout)
        rdx, rdw, _ = ref.conv2d_backward(x, w, dout, 1, 1)
        np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("cls", "mode"), [(MaxPool2D, "max"), (AvgPool2D, "avg")])
def test_pooling_matches_reference_on_random_shapes(cls, mode, rng):
    for _ in range(12):
        size = int(rng.integers(1, 4))
        stride = int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(size, 11, 2))
        x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        layer = cls(size, stride)
        y = layer.forward(x, training=True)
        np.testing.assert_allclose(y, ref.pool2d(x, size, stride, mode), rtol=1e-6, atol=1e-6)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        expect = ref.pool2d_backward(x, dout, size, stride, mode)
        np.testing.assert_allclose(layer.backward(dout), expect, rtol=1e-5, atol=1e-6)


def test_fast_2x2_maxpool_on_a_conv_output_view(rng):
    """A convolution returns CNHW memory seen as NCHW; pooling reads it in that order."""
    conv = Conv2D(2, 4, 3, padding=1, rng=rng)
    x = rng.standard_normal((5, 2, 8, 6)).astype(np.float32)
    z = conv.forward(x)
    assert not z.flags.c_contiguous
    pool = MaxPool2D(2)
    y = pool.forward(z, training=True)
    np.testing.assert_array_equal(y, ref.pool2d(np.ascontiguousarray(z), 2, 2))
    dout = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(
        pool.backward(dout), ref.pool2d_backward(np.ascontiguousarray(z), dout, 2, 2)
    )


@pytest.mark.parametrize(("size", "stride"), [(3, 2), (3, 1), (2, 3)])
def test_overlapping_maxpool_on_a_conv_output_view(size, stride, rng):
    """The general max-pool (phase planes) reads CNHW memory seen as NCHW, as the 2x2 does."""
    conv = Conv2D(2, 4, 3, padding=1, rng=rng)
    z = conv.forward(rng.standard_normal((5, 2, 9, 7)).astype(np.float32))
    assert not z.flags.c_contiguous
    pool = MaxPool2D(size, stride)
    y = pool.forward(z, training=True)
    zc = np.ascontiguousarray(z)
    np.testing.assert_array_equal(y, ref.pool2d(zc, size, stride))
    dout = rng.standard_normal(y.shape).astype(np.float32)
    expect = ref.pool2d_backward(zc, dout, size, stride)
    np.testing.assert_allclose(pool.backward(dout), expect, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("size", "stride"), [(2, 2), (3, 1)])
def test_maxpool_ties_send_each_gradient_to_exactly_one_input(size, stride):
    x = np.zeros((1, 1, 6, 6), np.float32)  # every window is a tie
    pool = MaxPool2D(size, stride)
    y = pool.forward(x, training=True)
    dout = np.ones_like(y)
    dx = pool.backward(dout)
    assert dx.sum() == dout.sum()
    assert set(np.unique(dx)) <= set(range(size * size + 1))


def test_float32_stays_float32_and_float64_stays_float64(rng):
    m = lenet5(rng)
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert all(a.dtype == np.float32 for _, a in m.activations(x))
    assert m.forward(x).dtype == np.float32
    m.astype(np.float64)
    assert m.forward(x.astype(np.float64)).dtype == np.float64


def test_execution_plan_equals_declared_order(rng):
    m = lenet5(rng)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    logits = dict(m.activations(x))["fc3"]
    np.testing.assert_allclose(m.forward(x), logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [ReLU, Tanh, Sigmoid])
def test_activations_forward(cls, rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32) * 4
    expect = {
        ReLU: np.maximum(x, 0),
        Tanh: np.tanh(x),
        Sigmoid: 1 / (1 + np.exp(-x.astype(np.float64))),
    }[cls]
    np.testing.assert_allclose(cls().forward(x), expect, rtol=1e-6, atol=1e-6)
    big = np.array([[-1000.0, 1000.0]], np.float32)
    assert np.isfinite(Sigmoid().forward(big)).all()


def test_dense_and_flatten_shapes(rng):
    d = Dense(6, 4, rng=rng)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(d.forward(x), x @ d.params["weight"].T + d.params["bias"], atol=1e-6)
    f = Flatten()
    a = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    assert np.array_equal(f.forward(a)[1], a[1].ravel())  # C, H, W order, as torch.flatten
    with pytest.raises(ShapeError, match="put a Flatten layer before it"):
        d.output_shape((1, 2, 3))
    with pytest.raises(ShapeError, match="expects 6 input features but gets 7"):
        d.output_shape((7,))


def test_shape_errors_name_the_layer_and_the_fix(rng):
    conv = Conv2D(1, 2, 5, name="conv9", rng=rng)
    with pytest.raises(ShapeError, match="conv9: a 5x5 kernel does not fit its 3x4 input"):
        conv.output_shape((1, 3, 4))
    with pytest.raises(ShapeError, match="conv9: expects 1 input channel"):
        conv.output_shape((3, 8, 8))
    with pytest.raises(ShapeError, match="pooling window does not fit"):
        MaxPool2D(3, name="p").output_shape((1, 2, 2))
    assert Conv2D(1, 1, 3, stride=2, padding=1).output_shape((1, 7, 8)) == (1, 4, 4)


def test_layers_rebuild_from_config(rng):
    for layer in (Conv2D(2, 3, (3, 2), 2, 1, name="c"), MaxPool2D(3, 2, name="p"), Dense(4, 2)):
        again = layer_from_config(layer.config(), rng)
        assert again.config() == layer.config()
        assert {k: v.shape for k, v in again.params.items()} == {
            k: v.shape for k, v in layer.params.items()
        }
    with pytest.raises(ShapeError, match="unknown layer type"):
        layer_from_config({"type": "lstm"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stride1_conv_with_a_plain_patch_matrix_matches_the_reference(dtype, rng, monkeypatch):
    """Stride-1 convolutions with many outputs and patch rows (32->64 5x5, zfnet's) keep a
    plain patch matrix, not the wide one; forced onto every stride-1 shape (the wide layout's
    thresholds at 0), forward and all three gradients match the reference, kernels 1 to 5."""
    assert not layers._wide(1, 5, 5, 32, 64) and layers._wide(1, 5, 5, 6, 16)  # LeNet: wide
    assert layers._wide(1, 3, 3, 60, 12) and not layers._wide(2, 3, 3, 3, 4)
    monkeypatch.setattr(layers, "WIDE_F", 0)
    monkeypatch.setattr(layers, "WIDE_ROWS", 0)
    for cin, cout, k, pad, h, w in ((3, 4, 3, 1, 9, 8), (2, 5, 5, 2, 7, 6), (3, 4, 1, 0, 5, 5)):
        layer = Conv2D(cin, cout, k, 1, pad, rng=rng)
        layer.params["bias"][...] = rng.standard_normal(cout)
        layer.astype(dtype)
        wt, b = layer.params["weight"], layer.params["bias"]
        x = rng.standard_normal((3, cin, h, w)).astype(dtype)
        y = layer.forward(x, training=True)
        assert not layer._direct and not layer._wide  # the path under test
        np.testing.assert_allclose(y, ref.conv2d(x, wt, b, 1, pad), rtol=1e-4, atol=1e-5)
        dout = rng.standard_normal(y.shape).astype(dtype)
        rdx, rdw, rdb = ref.conv2d_backward(x, wt, dout, 1, pad)
        np.testing.assert_allclose(layer.backward(dout), rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(("cin", "cout"), [(6, 2), (4, 4), (8, 6)])
def test_stride1_input_gradient_direct_and_wide_agree(cin, cout, direct, rng, monkeypatch):
    """The F <= C input gradient runs as a direct convolution of the padded dout (4F >= 3C)
    or through wide patches (else); both, forced on each shape, match the reference, at 16 px
    (the forward direct) and 6 px (the forward through patches)."""
    assert layers._input_grad_direct(12, 16) and not layers._input_grad_direct(12, 60)
    monkeypatch.setattr(layers, "_input_grad_direct", lambda f, c: direct)
    layer = Conv2D(cin, cout, 3, 1, 1, rng=rng)
    w = layer.params["weight"]
    for hw in (16, 6, 16):
        x = rng.standard_normal((5, cin, hw, hw)).astype(np.float32)
        y = layer.forward(x, training=True)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        rdx, rdw, _ = ref.conv2d_backward(x, w, dout, 1, 1)
        np.testing.assert_allclose(layer.backward(dout), rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-4, atol=1e-3)
