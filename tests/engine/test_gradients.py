"""Every layer's and loss's backward against central finite differences, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from engine import conv, conv_inner, conv_rows, layers
from engine.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, Tanh
from engine.losses import softmax_cross_entropy, total_error
from engine.model import custom, lenet5

EPS = 1e-6


def numeric_grad(f, a: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every element of a (changed in place)."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + EPS
        hi = f()
        a[i] = old - EPS
        lo = f()
        a[i] = old
        g[i] = (hi - lo) / (2 * EPS)
    return g


def check_layer(layer, x: np.ndarray, rng: np.random.Generator) -> None:
    layer.astype(np.float64)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float64, "a float64 input must give a float64 output"
    g = rng.standard_normal(y.shape)
    g_before = g.copy()
    dx = layer.backward(g)
    assert np.array_equal(g, g_before), "backward must not mutate dout"
    analytic = {"x": np.array(dx)} | {k: v.copy() for k, v in layer.grads.items()}

    def f() -> float:
        return float(np.sum(layer.forward(x, training=True) * g))

    np.testing.assert_allclose(analytic["x"], numeric_grad(f, x), rtol=1e-5, atol=1e-7)
    for key, p in layer.params.items():
        np.testing.assert_allclose(
            analytic[key], numeric_grad(f, p), rtol=1e-5, atol=1e-7, err_msg=key
        )


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [(1, 3, 5, 1, 2, (7, 7)), (2, 3, 3, 2, 1, (7, 6)), (3, 2, (2, 3), 1, 0, (5, 6))],
)
def test_conv2d_gradients(cin, cout, k, stride, pad, hw, rng):
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng)
    layer.params["bias"][...] = rng.standard_normal(cout)
    check_layer(layer, rng.standard_normal((2, cin, *hw)), rng)


def test_conv2d_gradients_with_the_input_gradient_in_blocks_of_samples(rng, monkeypatch):
    # engine.conv.input_grad, one sample per block: a stride-2 convolution through patches
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)
    layer = Conv2D(2, 4, 3, 2, 1, rng=rng)
    check_layer(layer, rng.standard_normal((3, 2, 7, 7)), rng)
    assert not (layer._direct or layer._wide or layers._input_grad_as_conv(2, 3, 3, 1, 4, 2))


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [
        (2, 3, 3, 1, 1, (5, 6)),  # the input gradient as a convolution of dout
        (3, 2, 5, 1, 2, (6, 6)),
        (2, 3, (2, 3), 1, 0, (5, 6)),
        (2, 4, 3, 2, 1, (7, 6)),  # the patch gradients scattered back
        (2, 2, 2, 3, 0, (8, 7)),
        (2, 2, 3, 1, 3, (4, 4)),  # padding wider than the kernel: scattered too
    ],
)
@pytest.mark.parametrize("block_bytes", [1, 1 << 22])
def test_conv2d_gradients_in_rows_layout(
    cin, cout, k, stride, pad, hw, block_bytes, rng, monkeypatch
):
    """engine.conv_rows forced on small shapes, one sample per block and all in one."""
    monkeypatch.setattr(layers, "ROWS_ALL", True)
    monkeypatch.setattr(conv_rows, "BLOCK_BYTES", block_bytes)
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng)
    layer.params["bias"][...] = rng.standard_normal(cout)
    check_layer(layer, rng.standard_normal((3, cin, *hw)), rng)
    assert layer._rows


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [(1, 3, 3, 1, 1, (5, 6)), (2, 3, (2, 3), 1, 0, (5, 6)), (2, 4, 3, 2, 1, (7, 6))],
)
def test_conv2d_gradients_with_the_samples_innermost(
    cin, cout, k, stride, pad, hw, rng, monkeypatch
):
    """engine.conv_inner forced on, one output row per block, and a 2x2 max pool reading its
    CHWN output."""
    monkeypatch.setattr(layers, "INNER_ALL", True)
    monkeypatch.setattr(conv_inner, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv_inner, "GRAD_BLOCK_BYTES", 1)
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng)
    layer.params["bias"][...] = rng.standard_normal(cout)
    check_layer(layer, rng.standard_normal((3, cin, *hw)), rng)
    assert layer._inner


@pytest.mark.parametrize("layer_cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("size", "stride", "hw"), [(2, 2, (6, 8)), (3, 2, (7, 7)), (2, 3, (7, 5))])
def test_pool_gradients(layer_cls, size, stride, hw, rng):
    check_layer(layer_cls(size, stride), rng.standard_normal((2, 3, *hw)), rng)


@pytest.mark.parametrize("layer_cls", [ReLU, Tanh, Sigmoid])
def test_activation_gradients(layer_cls, rng):
    x = rng.standard_normal((3, 2, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    check_layer(layer_cls(), x, rng)


def test_dense_and_flatten_gradients(rng):
    layer = Dense(12, 5, rng=rng)
    layer.params["bias"][...] = rng.standard_normal(5)
    check_layer(layer, rng.standard_normal((4, 12)), rng)
    check_layer(Flatten(), rng.standard_normal((2, 3, 2, 2)), rng)


@pytest.mark.parametrize("loss", [softmax_cross_entropy, total_error])
def test_loss_gradients(loss, rng):
    z = rng.standard_normal((5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    _, dz = loss(z, y)
    num = numeric_grad(lambda: loss(z, y)[0], z)
    np.testing.assert_allclose(dz, num, rtol=1e-5, atol=1e-8)


def test_losses_values_and_stability():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 1])
    loss, dz = softmax_cross_entropy(z, y)
    assert np.isfinite(loss) and np.isfinite(dz).all()
    assert loss == pytest.approx((2000 + np.log(3)) / 2)
    p = np.array([1 / 3, 1 / 3, 1 / 3])
    err, _ = total_error(np.zeros((1, 3)), np.array([0]))
    assert err == pytest.approx(0.5 * ((1 - p[0]) ** 2 + p[1] ** 2 + p[2] ** 2))


@pytest.mark.parametrize("threads", [1, 2])
def test_whole_model_gradient_matches_finite_differences(threads, rng, one_blas_thread):
    """The model's execution plan (activation moved after max-pool) and its batch sharding
    must not change the gradient."""
    m = custom(
        rng,
        input_shape=(1, 10, 10),
        conv_filters=(2, 3),
        kernel_size=3,
        fc_widths=(5,),
        activation="tanh",
        num_classes=3,
    ).astype(np.float64)
    m.threads = threads
    x = rng.standard_normal((16, 1, 10, 10))
    y = rng.integers(0, 3, 16)
    _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
    dx = m.backward(dz)
    grads = {k: v.copy() for k, v in m.gradients().items()}

    def f() -> float:
        return softmax_cross_entropy(m.forward(x, training=True), y)[0]

    for key in ("conv1.weight", "conv2.bias", "fc1.weight"):
        np.testing.assert_allclose(
            grads[key], numeric_grad(f, m.parameters()[key]), rtol=1e-5, atol=1e-8, err_msg=key
        )
    np.testing.assert_allclose(dx[:2], numeric_grad(f, x)[:2], rtol=1e-5, atol=1e-8)


def test_sharded_batches_equal_one_thread(rng, one_blas_thread):
    a = lenet5(np.random.default_rng(1))
    b = lenet5(np.random.default_rng(1))
    b.threads = 2
    x = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    za, zb = a.forward(x, True), b.forward(x, True)
    np.testing.assert_allclose(za, zb, rtol=1e-5, atol=1e-6)
    a.backward(softmax_cross_entropy(za, y)[1], input_grad=False)
    b.backward(softmax_cross_entropy(zb, y)[1], input_grad=False)
    for key, g in a.gradients().items():
        np.testing.assert_allclose(g, b.gradients()[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("plain", [True, False])
def test_conv2d_gradients_on_each_stride1_path(plain, rng, monkeypatch):
    """The stride-1 paths a family member's shape may take, each forced on a small shape: the
    plain patch matrix (WIDE_F, WIDE_ROWS at 0) and the input gradient as a direct convolution
    of dout (F = C; its forward direct at 12 px, through patches at 5 px)."""
    if plain:
        monkeypatch.setattr(layers, "WIDE_F", 0)
        monkeypatch.setattr(layers, "WIDE_ROWS", 0)
        layer = Conv2D(2, 3, 3, 1, 1, rng=rng)
        layer.params["bias"][...] = rng.standard_normal(3)
        check_layer(layer, rng.standard_normal((2, 2, 5, 6)), rng)
        assert not layer._wide
        return
    monkeypatch.setattr(layers, "_input_grad_direct", lambda f, c: True)
    for hw in (12, 5):
        layer = Conv2D(2, 2, 3, 1, 1, rng=rng)
        layer.params["bias"][...] = rng.standard_normal(2)
        check_layer(layer, rng.standard_normal((2, 2, hw, hw)), rng)
