"""The family's operations: float64 finite-difference gradients and PyTorch parity, one by one."""

from __future__ import annotations

import numpy as np
import pytest
from test_gradients import check_layer, numeric_grad

from engine.blocks import Add, BatchNorm2D, Concat, Dropout, GlobalAvgPool2D
from engine.errors import ShapeError
from engine.layers import AvgPool2D, Conv2D, MaxPool2D, layer_from_config
from engine.pooling import batch_inner


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(training, rng):
    bn = BatchNorm2D(3)
    bn.params["weight"][...] = rng.uniform(0.5, 2, 3)
    bn.params["bias"][...] = rng.standard_normal(3)
    bn.buffers["running_mean"][...] = rng.standard_normal(3)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2, 3)
    x = rng.standard_normal((4, 3, 3, 5)) * 2 + 1
    if training:
        check_layer(bn, x, rng)
    else:  # evaluation mode: an affine map of the running statistics
        bn.astype(np.float64)
        g = rng.standard_normal(x.shape)
        bn.forward(x, training=False)
        dx = np.array(bn.backward(g))

        def f() -> float:
            return float(np.sum(bn.forward(x, training=False) * g))

        np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-5, atol=1e-7)
        grads = {k: v.copy() for k, v in bn.grads.items()}
        for key, p in bn.params.items():
            np.testing.assert_allclose(grads[key], numeric_grad(f, p), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_equal_on_every_memory_layout_and_leaves_its_input_alone(training, rng):
    """BatchNorm reads CNHW and CHWN memory in place (a convolution's output, its wide rows
    cut short, or its samples innermost) and copies channels-innermost (NHWC) memory
    channel-major first: the same output and gradients as from plain NCHW memory, many
    channel blocks included, and neither the input nor dout changes (the layer keeps the
    input for backward)."""
    n, c, h, w = 4, 40, 20, 20  # 1600 values per channel: several blocks of channels
    wide = rng.standard_normal((c, n, h, w + 2)) * 3 + 1
    layouts = {
        "nchw": np.ascontiguousarray(wide[..., :w].transpose(1, 0, 2, 3)),
        "cnhw": np.ascontiguousarray(wide[..., :w]).transpose(1, 0, 2, 3),
        "wide": wide[..., :w].transpose(1, 0, 2, 3),
        "nhwc": np.ascontiguousarray(wide[..., :w].transpose(1, 2, 3, 0)).transpose(0, 3, 1, 2),
        "chwn": np.ascontiguousarray(wide[..., :w].transpose(0, 2, 3, 1)).transpose(3, 0, 1, 2),
    }
    g = rng.standard_normal((c, n, h, w + 1))[..., :w].transpose(1, 0, 2, 3)
    weight, results = rng.uniform(0.5, 2, c), {}
    for key, x in layouts.items():
        bn = BatchNorm2D(c).astype(np.float64)
        bn.params["weight"][...] = weight
        bn.params["bias"][...] = np.linspace(-1, 1, c)
        before, g_before = x.copy(), g.copy()
        y = bn.forward(x, training=training)
        dx = bn.backward(g)
        assert np.array_equal(x, before) and np.array_equal(g, g_before)
        results[key] = (y, dx, bn.grads["weight"].copy(), bn.grads["bias"].copy())
        if key == "chwn":  # samples innermost in, samples innermost out
            assert batch_inner(y) and batch_inner(dx)
    for key in ("cnhw", "wide", "nhwc", "chwn"):
        for a, b in zip(results[key], results["nchw"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=key)


def test_dropout_gradient_with_a_fixed_mask(rng):
    d = Dropout(0.4)
    x = rng.standard_normal((3, 2, 4, 4))
    mask = d.draw_mask(rng, x.shape)
    d.mask = mask
    y = d.forward(x, training=True)
    np.testing.assert_allclose(y, x * mask / 0.6)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(d.backward(g), g * mask / 0.6)
    assert abs((1 - mask.mean()) - 0.4) < 0.2 and mask.dtype == bool
    assert d.forward(x, training=False) is x  # evaluation: identity


def test_dropout_without_a_handed_mask_draws_fresh_ones(rng):
    d = Dropout(0.5)
    x = np.ones((64, 8), np.float32)
    a, b = d.forward(x, training=True), d.forward(x, training=True)
    assert set(np.unique(a)) == {0.0, 2.0} and not np.array_equal(a, b)


def test_global_average_pooling_gradient(rng):
    check_layer(GlobalAvgPool2D(), rng.standard_normal((2, 3, 4, 5)), rng)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "bias"),
    [(3, 4, 1, 1, 0, True), (2, 3, 3, 1, 1, False), (2, 2, 5, 1, 2, False), (3, 2, 3, 2, 1, False)],
)
def test_one_by_one_same_and_bias_free_convolution_gradients(cin, cout, k, stride, pad, bias, rng):
    layer = Conv2D(cin, cout, k, stride, pad, bias=bias, rng=rng)
    assert ("bias" in layer.params) == bias
    x = rng.standard_normal((2, cin, 6, 7))
    if pad == k // 2 and stride == 1:
        assert layer.output_shape(x.shape[1:]) == (cout, 6, 7)  # "same"
    check_layer(layer, x, rng)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("size", "stride", "pad", "hw"), [(3, 2, 1, (7, 7)), (3, 2, 1, (8, 6))])
def test_padded_overlapping_pool_gradients(cls, size, stride, pad, hw, rng):
    check_layer(cls(size, stride, pad), rng.standard_normal((2, 3, *hw)), rng)


def _multi_check(layer, xs: list[np.ndarray], rng) -> None:
    y = layer.forward(xs, training=True)
    g = rng.standard_normal(y.shape)
    dxs = [np.array(d) for d in layer.backward(g)]

    def f() -> float:
        return float(np.sum(layer.forward(xs, training=True) * g))

    for x, dx in zip(xs, dxs, strict=True):
        np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-5, atol=1e-7)


def test_add_and_concat_gradients(rng):
    _multi_check(Add(), [rng.standard_normal((2, 3, 4, 4)) for _ in range(3)], rng)
    xs = [rng.standard_normal((2, c, 3, 4)) for c in (1, 3, 2)]
    cat = Concat()
    assert cat.output_shape([x.shape[1:] for x in xs]) == (6, 3, 4)
    np.testing.assert_array_equal(cat.forward(xs), np.concatenate(xs, axis=1))
    _multi_check(cat, xs, rng)


def test_merge_shape_errors_say_how_to_fix():
    with pytest.raises(ShapeError, match="projection"):
        Add(name="add").output_shape([(4, 8, 8), (8, 4, 4)])
    with pytest.raises(ShapeError, match="one height and width"):
        Concat(name="cat").output_shape([(4, 8, 8), (4, 4, 4)])
    with pytest.raises(ShapeError, match="num_features=5"):
        BatchNorm2D(4, name="bn").output_shape((5, 2, 2))
    with pytest.raises(ShapeError, match="between 0 and half"):
        MaxPool2D(3, 2, 2)


def test_new_layers_rebuild_from_config(rng):
    for layer in (
        BatchNorm2D(4, eps=1e-3, momentum=0.2, name="bn"),
        Dropout(0.3, name="d"),
        Add(name="a"),
        Concat(name="c"),
        GlobalAvgPool2D(name="g"),
        Conv2D(2, 3, 1, bias=False, name="c1"),
        AvgPool2D(3, 2, 1, name="p"),
    ):
        again = layer_from_config(layer.config(), rng)
        assert type(again) is type(layer) and again.config() == layer.config()


# -- PyTorch parity ----------------------------------------------------------------------------

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity tests skipped")


def test_batchnorm_matches_pytorch_in_training_and_evaluation(rng):
    x = rng.standard_normal((5, 3, 4, 6)).astype(np.float32) * 3 + 2
    g = rng.standard_normal(x.shape).astype(np.float32)
    bn = BatchNorm2D(3)
    bn.params["weight"][...] = rng.uniform(0.5, 2, 3)
    bn.params["bias"][...] = rng.standard_normal(3)
    tb = torch.nn.BatchNorm2d(3)
    tb.load_state_dict(
        {f: torch.from_numpy(np.array(v)) for f, v in {**bn.params, **bn.buffers}.items()}
    )
    for _ in range(2):  # two steps: the running averages move twice
        y = bn.forward(x, training=True)
        dx = bn.backward(g)
        xt = torch.from_numpy(x).requires_grad_()
        tb.zero_grad()
        yt = tb.train()(xt)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(bn.grads["weight"], tb.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(bn.grads["bias"], tb.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    state = tb.state_dict()
    for key, b in bn.buffers.items():
        assert b.dtype == state[key].numpy().dtype, key  # float32, float32, int64
        np.testing.assert_allclose(b, state[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    assert int(bn.buffers["num_batches_tracked"]) == 2
    ye = bn.forward(x, training=False)
    np.testing.assert_allclose(ye, tb.eval()(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(("kind", "size", "stride", "pad"), [("max", 3, 2, 1), ("avg", 3, 2, 1)])
def test_padded_pools_match_pytorch(kind, size, stride, pad, rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    layer = (MaxPool2D if kind == "max" else AvgPool2D)(size, stride, pad)
    tl = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(size, stride, pad)
    xt = torch.from_numpy(x).requires_grad_()
    yt = tl(xt)
    g = rng.standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.forward(x, True), yt.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), atol=1e-6)


def test_bias_free_conv_and_global_pool_match_pytorch(rng):
    conv = Conv2D(3, 5, 3, 1, 1, bias=False, rng=rng)
    tc = torch.nn.Conv2d(3, 5, 3, 1, 1, bias=False)
    tc.load_state_dict({"weight": torch.from_numpy(conv.params["weight"].copy())})
    assert set(tc.state_dict()) == set(conv.params)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = GlobalAvgPool2D().forward(conv.forward(x))
    yt = torch.nn.AdaptiveAvgPool2d(1)(tc(torch.from_numpy(x))).flatten(1)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_matches_pytorch_semantics(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    d = Dropout(0.25)
    d.mask = d.draw_mask(rng, x.shape)
    y = d.forward(x, training=True)
    torch.manual_seed(0)
    yt = torch.nn.functional.dropout(torch.from_numpy(x), 0.25, training=True).numpy()
    # both scale kept values by 1/(1-p) and zero the others
    for out in (y, yt):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)


def test_batchnorm_refuses_one_value_per_channel_in_training_and_says_what_to_do(rng):
    """PyTorch raises "Expected more than 1 value per channel when training"; the engine
    says the same in its words, with the fix, instead of dividing by a zero variance."""
    bn = BatchNorm2D(3)
    x = rng.standard_normal((1, 3, 1, 1)).astype(np.float32)
    with pytest.raises(
        ShapeError, match=r"batchnorm2d: .*one value per channel.*batch of 2 or more"
    ) as err:
        bn.forward(x, training=True)
    assert "\n" not in str(err.value)
    assert np.isfinite(bn.forward(x)).all()  # evaluation uses the running statistics
    assert np.isfinite(bn.forward(np.repeat(x, 2, axis=0), training=True)).all()
