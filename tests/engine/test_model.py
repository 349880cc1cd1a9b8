"""Model API: builders, names, shapes, activations, weights, shape errors, input conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import ShapeError
from engine.losses import softmax_cross_entropy
from engine.model import InputSpec, build_model, custom, lenet5, lenet_article
from engine.optim import make_optimizer

LENET_NAMES = [
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
    "flatten", "fc1", "relu3", "fc2", "relu4", "fc3",
]  # fmt: skip

TORCH_SHAPES = {
    "conv1.weight": (6, 1, 5, 5),
    "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5),
    "conv2.bias": (16,),
    "fc1.weight": (120, 400),
    "fc1.bias": (120,),
    "fc2.weight": (84, 120),
    "fc2.bias": (84,),
    "fc3.weight": (10, 84),
    "fc3.bias": (10,),
}


def test_lenet5_names_shapes_and_parameter_keys(rng):
    m = lenet5(rng)
    assert [info.name for info in m.summary()] == LENET_NAMES
    shapes = {k: v.shape for k, v in m.parameters().items()}
    assert shapes == TORCH_SHAPES
    assert list(m.parameters()) == list(m.gradients())
    assert all(p.dtype == np.float32 for p in m.parameters().values())
    info = {i.name: i for i in m.summary()}
    assert info["pool2"].output_shape == (16, 5, 5)
    assert info["fc1"].n_params == 400 * 120 + 120
    assert m.forward(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)


def test_lenet_article_takes_32x32_and_pads_mnist(rng):
    m = lenet_article(rng)
    assert m.input_spec.shape == (1, 32, 32)
    assert m.parameters()["fc2.weight"].shape == (100, 120)
    img = np.full((2, 28, 28), 255, np.uint8)
    x = m.input_spec.to_tensor(img)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    pad = (0 - 0.1307) / 0.3081
    assert np.allclose(x[:, :, :2, :], pad) and np.allclose(x[:, :, -2:, :], pad)
    assert np.allclose(x[:, :, 2:30, 2:30], (1 - 0.1307) / 0.3081)
    zero = m.input_spec.to_tensor(np.zeros((1, 28, 28), np.uint8))
    assert np.all(zero == zero[0, 0, 0, 0])  # padding == what pixel 0 maps to, exactly


def test_input_spec_formula_and_errors():
    spec = InputSpec((1, 28, 28), scale=1 / 255, mean=0.5, std=0.25)
    img = np.arange(28 * 28, dtype=np.int64).reshape(28, 28) % 256
    x = spec.to_tensor(img.astype(np.uint8))
    assert x.shape == (1, 1, 28, 28)
    assert np.allclose(x[0, 0], (img / 255 - 0.5) / 0.25, atol=1e-6)
    assert InputSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(ShapeError, match="40x40 but the model takes 28x28"):
        spec.to_tensor(np.zeros((1, 40, 40), np.uint8))
    with pytest.raises(ShapeError, match="3 channel"):
        spec.to_tensor(np.zeros((1, 3, 28, 28), np.uint8))


def test_activations_in_order_by_name(rng):
    m = lenet5(rng)
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    acts = m.activations(x)
    assert [n for n, _ in acts] == ["input", *LENET_NAMES, "softmax"]
    assert acts[0][1].shape == (2, 1, 28, 28)
    assert dict(acts)["conv1"].shape == (2, 6, 28, 28)
    assert all(a.flags.c_contiguous for _, a in acts)
    probs = acts[-1][1]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(probs, m.predict_proba(x), atol=1e-5)
    assert np.array_equal(dict(acts)["relu1"], np.maximum(dict(acts)["conv1"], 0))


def test_activations_do_not_disturb_a_training_step(rng):
    m = lenet5(rng)
    x = rng.standard_normal((6, 1, 28, 28)).astype(np.float32)
    y = np.arange(6)
    _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
    m.backward(dz)
    expect = {k: g.copy() for k, g in m.gradients().items()}
    _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
    m.activations(rng.standard_normal((1, 1, 28, 28)).astype(np.float32))  # e.g. a GUI view
    m.backward(dz)
    for key, g in m.gradients().items():
        np.testing.assert_array_equal(g, expect[key], err_msg=key)


def test_conv_filters_is_a_copy(rng):
    m = lenet5(rng)
    f = m.conv_filters("conv2")
    assert f.shape == (16, 6, 5, 5)
    f[...] = 0
    assert np.any(m.parameters()["conv2.weight"] != 0)
    with pytest.raises(ShapeError, match="not a convolution"):
        m.conv_filters("fc1")


def test_seeded_init_is_repeatable_and_he_scaled():
    a = lenet5(np.random.default_rng(7)).get_weights()
    b = lenet5(np.random.default_rng(7)).get_weights()
    c = lenet5(np.random.default_rng(8)).get_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])
    std = a["fc1.weight"].std()
    assert abs(std - np.sqrt(2 / 400)) < 0.1 * np.sqrt(2 / 400)


def test_pytorch_initialisation_starts_near_the_loss_of_a_uniform_guess():
    """Layers default to PyTorch's init (weight and bias uniform(+-1/sqrt(fan_in))): the same
    LeNet as a graph of default-initialised nodes starts near ln 10; LeNet's own He start is
    higher (explained by engine.layers.INIT_NOTE)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 64)
    spec = lenet5().graph_spec()
    for node in spec["nodes"]:
        node.pop("init", None)
    for seed in range(3):
        m = build_model(spec, np.random.default_rng(seed))
        w = m.parameters()
        for key, fan_in in (("fc1.weight", 400), ("fc1.bias", 400), ("conv2.weight", 150)):
            lim = 1 / np.sqrt(fan_in)
            assert np.abs(w[key]).max() <= lim
            assert abs(w[key].std() - lim / np.sqrt(3)) < 0.15 * lim / np.sqrt(3), key
        loss, _ = softmax_cross_entropy(m.forward(images), labels)
        assert abs(loss - np.log(10)) < 0.15, (seed, loss)


def test_layers_built_without_a_generator_differ():
    from engine.layers import Conv2D, Dense

    assert not np.array_equal(Conv2D(3, 8, 3).params["weight"], Conv2D(3, 8, 3).params["weight"])
    assert not np.array_equal(Dense(5, 4).params["weight"], Dense(5, 4).params["weight"])


def test_set_weights_validates_and_writes_in_place(rng):
    m = lenet5(rng)
    live = m.parameters()["fc3.weight"]
    w = lenet5(np.random.default_rng(99)).get_weights()
    m.set_weights(w)
    assert live is m.parameters()["fc3.weight"] and np.array_equal(live, w["fc3.weight"])
    bad = dict(w)
    bad["fc3.weight"] = np.zeros((9, 84), np.float32)
    del bad["conv1.bias"]
    bad["extra"] = np.zeros(1, np.float32)
    with pytest.raises(ShapeError) as e:
        m.set_weights(bad)
    msg = str(e.value)
    assert "missing conv1.bias" in msg and "unexpected extra" in msg and "(9, 84)" in msg
    nan = dict(w)
    nan["fc1.bias"] = np.full(120, np.nan, np.float32)
    with pytest.raises(ShapeError, match="NaN"):
        m.set_weights(nan)


@pytest.mark.parametrize("name", ["lenet5", "lenet-article"])
def test_architecture_json_rebuilds_same_structure(name, rng):
    m = build_model(name, rng, classes=list("abcdefghij"))
    arch = json.loads(json.dumps(m.architecture))
    m2 = build_model(arch, classes=m.classes)
    assert m2.summary() == m.summary() and m2.classes == list("abcdefghij")
    m2.set_weights(m.get_weights())
    x = rng.standard_normal((2, *m.input_spec.shape)).astype(np.float32)
    assert np.array_equal(m.forward(x), m2.forward(x))


def test_custom_builder_and_generic_sequential_roundtrip(rng):
    m = custom(
        rng,
        input_shape=(3, 20, 20),
        conv_filters=(4, 5, 6),
        kernel_size=3,
        padding=1,
        fc_widths=(12,),
        activation="tanh",
        pooling="avg",
        num_classes=3,
    )
    names = [i.name for i in m.summary()]
    assert names[:3] == ["conv1", "tanh1", "pool1"] and names[-1] == "fc2"
    assert m.summary()[-4].output_shape == (6 * 2 * 2,)
    m2 = build_model(json.loads(json.dumps(m.architecture)))
    assert m2.summary() == m.summary()
    from engine.model import Sequential

    generic = Sequential(m.layers, m.input_spec)
    m3 = build_model(json.loads(json.dumps(generic.architecture)))
    assert m3.summary() == m.summary()


def test_custom_builder_says_what_does_not_fit():
    with pytest.raises(ShapeError, match=r"conv2: a 5x5 kernel does not fit its 3x3 input"):
        custom(input_shape=(1, 10, 10), conv_filters=(4, 4), kernel_size=5)
    with pytest.raises(ShapeError, match="fewer pooling layers"):
        custom(input_shape=(1, 10, 10), conv_filters=(4, 4), kernel_size=5)
    with pytest.raises(ShapeError, match="pool3: a 2x2 pooling window does not fit its 1x1"):
        custom(input_shape=(1, 4, 4), conv_filters=(2, 2, 2), kernel_size=1)
    with pytest.raises(ShapeError, match="unknown activation"):
        custom(activation="gelu")
    with pytest.raises(ShapeError, match="unknown architecture"):
        build_model("resnet50")


def test_tiny_batch_overfits_with_every_optimiser(one_blas_thread):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 1, 28, 28)).astype(np.float32)
    y = np.arange(20) % 10
    for name, lr in (("sgd", 0.05), ("momentum", 0.02), ("adam", 0.002)):
        m = lenet5(np.random.default_rng(0))
        opt = make_optimizer(name, m.parameters(), lr=lr, momentum=0.9)
        for _ in range(60):
            _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
            m.backward(dz, input_grad=False)
            opt.step(m.gradients())
        acc = (m.forward(x).argmax(axis=1) == y).mean()
        assert acc == 1.0, (name, acc)


def test_big_inference_batches_equal_small_ones(rng):
    m = lenet5(rng)
    x = rng.standard_normal((150, 1, 28, 28)).astype(np.float32)  # > one inference block
    whole = m.forward(x)
    parts = np.concatenate([m.forward(x[i : i + 7]) for i in range(0, 150, 7)])
    assert whole.shape == (150, 10)
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-5)


def test_empty_batch_gives_empty_output(rng):
    for m in (lenet5(rng), custom(rng, kernel_size=3, pooling="avg", activation="sigmoid")):
        assert m.forward(np.zeros((0, 1, 28, 28), np.float32)).shape == (0, 10)
        assert m.predict_proba(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)


def test_clone_is_independent(rng):
    m = lenet5(rng)
    m.meta = {"history": {"batch_loss": [1.0]}}
    c = m.clone()
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert np.array_equal(c.forward(x), m.forward(x)) and c.meta == m.meta
    c.parameters()["fc3.bias"][...] += 1
    c.meta["history"]["batch_loss"].append(2.0)
    assert not np.array_equal(c.forward(x), m.forward(x))
    assert m.meta == {"history": {"batch_loss": [1.0]}}
