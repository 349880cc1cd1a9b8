"""Convolution paths and buffers: the input gradient through patches in blocks of samples
(engine.conv.input_grad), the rows and batch-inner layouts, and what a training step frees
(Conv2D.release)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import conv, conv_inner, conv_rows, layers, pooling
from engine import reference as ref
from engine.layers import Conv2D


def _backward_matches_the_reference(layer, x, y, stride, pad, rng) -> np.ndarray:
    """Backward of a random ``dout``: the input, weight and bias gradients equal the naive
    reference's; returns the input gradient."""
    dout = rng.standard_normal(y.shape)
    dx = layer.backward(dout)
    rdx, rdw, rdb = ref.conv2d_backward(x, layer.params["weight"], dout, stride, pad)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["weight"], rdw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-10, atol=1e-10)
    return dx


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [
        (3, 5, 3, 2, 1, 9),
        (2, 4, 1, 2, 0, 8),
        (8, 40, 5, 1, 2, 6),
        (3, 4, 7, 2, 3, 10),
        (2, 3, 2, 3, 0, 9),
    ],
)
@pytest.mark.parametrize("block_bytes", [1, 1 << 22])
def test_input_gradient_in_blocks_matches_the_reference(
    cin, cout, k, stride, pad, hw, block_bytes, rng, monkeypatch
):
    """Stride 2 and 3 and a plain stride-1 F > C (the col2im path): one sample per block or
    all in one, padded or not, the input gradient equals the naive reference's, as a fresh
    array of exactly the input's size."""
    monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(layers, "ROWS_ALL", False)  # the patch-matrix path under test
    monkeypatch.setattr(layers, "INNER_ALL", False)
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng).astype(np.float64)
    x = rng.standard_normal((5, cin, hw, hw))
    y = layer.forward(x, training=True)
    assert not layer._direct and not layers._input_grad_as_conv(stride, k, k, pad, cout, cin)
    dx = _backward_matches_the_reference(layer, x, y, stride, pad, rng)
    assert dx.base is not None and dx.base.shape == (cin, 5, hw, hw)  # no bigger buffer kept


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [(3, 5, 3, 2, 1, 9), (8, 40, 5, 1, 2, 6), (3, 4, 7, 2, 3, 10), (2, 3, 2, 3, 0, 9)],
)
@pytest.mark.parametrize("block_bytes", [1, 1 << 22])
def test_rows_layout_matches_the_reference_and_keeps_only_the_padded_input(
    cin, cout, k, stride, pad, hw, block_bytes, rng, monkeypatch
):
    """engine.conv_rows (forced on): forward and every gradient equal the naive reference's;
    the input gradient is a fresh array of exactly the input's size; between forward and
    backward the layer keeps the padded input and nothing of patch size."""
    monkeypatch.setattr(conv_rows, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(layers, "ROWS_ALL", True)
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng).astype(np.float64)
    w, b = layer.params["weight"], layer.params["bias"]
    x = rng.standard_normal((5, cin, hw, hw))
    y = layer.forward(x, training=True)
    assert layer._rows and layer._cols is None
    assert layer._xbuf is not None and layer._xbuf.shape == (5, hw + 2 * pad, hw + 2 * pad, cin)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, stride, pad), atol=1e-10)
    dx = _backward_matches_the_reference(layer, x, y, stride, pad, rng)
    assert dx.base is not None and dx.base.size == x.size  # no bigger buffer kept


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "hw"),
    [
        (1, 6, 5, 1, 2, 9),
        (6, 16, 5, 1, 0, 9),
        (3, 5, 3, 2, 1, 9),
        (3, 4, 7, 2, 3, 10),
        (2, 3, 2, 3, 0, 9),
    ],
)
@pytest.mark.parametrize("block_bytes", [1, 1 << 22])
def test_batch_inner_layout_matches_the_reference(
    cin, cout, k, stride, pad, hw, block_bytes, rng, monkeypatch
):
    """engine.conv_inner (forced on), one output row per block and all in one: forward and
    every gradient equal the naive reference's; the output is CHWN memory; the layer keeps
    the padded CHWN input and the patch matrix (bias row included), nothing else."""
    monkeypatch.setattr(conv_inner, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_inner, "GRAD_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(layers, "INNER_ALL", True)
    layer = Conv2D(cin, cout, k, stride, pad, rng=rng).astype(np.float64)
    w, b = layer.params["weight"], layer.params["bias"]
    b[...] = rng.standard_normal(cout)
    x = rng.standard_normal((5, cin, hw, hw))
    y = layer.forward(x, training=True)
    assert layer._inner and pooling.batch_inner(y)
    assert layer._xbuf is not None and layer._xbuf.shape == (cin, hw + 2 * pad, hw + 2 * pad, 5)
    assert layer._cols is not None and layer._cols.size == (cin * k * k + 1) * y[0, 0].size * 5
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, stride, pad), atol=1e-10)
    _backward_matches_the_reference(layer, x, y, stride, pad, rng)
    assert layer.backward(rng.standard_normal(y.shape), input_grad=False) is None


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "expected"),
    [
        (1, 6, 5, 1, True),
        (6, 16, 5, 1, True),
        (3, 64, 7, 2, True),
        (8, 8, 3, 1, False),
        (8, 4, 3, 2, True),
        (16, 32, 3, 1, False),
        (3, 16, 1, 1, False),
    ],
)
def test_batch_inner_layout_takes_the_few_channel_convolutions(cin, cout, k, stride, expected):
    """LeNet's convolutions and colour first layers; not stride-1 F <= C (direct products),
    not 16+ channels (rows layout), not 1x1."""
    layer = Conv2D(cin, cout, k, stride, k // 2, rng=np.random.default_rng(0))
    layer.forward(np.zeros((2, cin, 12, 12), np.float32), training=True)
    assert layer._inner is expected


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "hw", "path"),
    [
        (12, 12, 3, 1, 6, "wide"),
        (6, 4, 3, 1, 16, "direct"),
        (4, 40, 1, 2, 6, "plain"),
        (24, 6, 1, 2, 9, "plain"),
        (24, 32, 3, 1, 8, "rows"),
        (24, 32, 3, 2, 9, "rows"),
        (6, 16, 5, 1, 14, "inner"),
    ],
)
def test_release_frees_the_buffers_and_changes_no_number(cin, cout, k, stride, hw, path, rng):
    """After release() a convolution holds no padded input or patch matrix; the next forward
    and backward (buffers made afresh) give exactly the numbers of a layer never released."""
    kept = Conv2D(cin, cout, k, stride, 1, rng=np.random.default_rng(0))
    freed = Conv2D(cin, cout, k, stride, 1, rng=np.random.default_rng(0))
    for _ in range(2):
        x = rng.standard_normal((4, cin, hw, hw)).astype(np.float32)
        ya, yb = kept.forward(x, training=True), freed.forward(x, training=True)
        paths = {"wide": freed._wide, "direct": freed._direct, "rows": freed._rows}
        paths["inner"] = freed._inner
        assert paths.get(path, not freed._rows)
        dout = rng.standard_normal(ya.shape).astype(np.float32)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(kept.backward(dout), freed.backward(dout))
        for key in kept.grads:
            np.testing.assert_array_equal(kept.grads[key], freed.grads[key])
        freed.release()
        assert freed._xbuf is None and freed._cols is None and freed._pad_buf is None
        assert not freed._chunks
