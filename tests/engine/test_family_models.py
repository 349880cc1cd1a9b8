"""The family built for real: every registered architecture becomes a network whose graph is
its spec, trains (forward, backward, SGD), and saves and loads through a model file."""

from __future__ import annotations

import numpy as np
import pytest

from engine import architectures as arch
from engine.archtext import to_spec
from engine.graphspec import spec_stats
from engine.losses import softmax_cross_entropy
from engine.model import build_model, lenet5, lenet_article
from engine.optim import make_optimizer

FAMILY = [n for n in arch.names() if n not in arch.LENETS]


@pytest.mark.parametrize("channels", [1, 3])
def test_every_member_builds_as_its_spec(channels):
    for name in arch.names():
        choice = arch.choose(name, channels)
        model = build_model(choice.architecture(4), np.random.default_rng(0))
        spec = arch.build_spec(name, choice.input_shape, 4)
        assert model.graph_spec() == spec, name
        assert tuple(model.input_spec.shape) == choice.input_shape
        assert model.num_classes == 4
        assert sum(p.size for p in model.parameters().values()) == spec_stats(spec)[0]
        if name not in arch.LENETS:  # the short form stays the architecture (model files)
            assert model.architecture == {
                "name": name,
                "num_classes": 4,
                "input_shape": list(choice.input_shape),
            }


def test_the_lenet_specs_are_the_lenets_the_app_builds():
    assert arch.build_spec("lenet5", (1, 28, 28), 10) == lenet5().graph_spec()
    assert (
        arch.build_spec("lenet-article", (3, 32, 32), 4)
        == lenet_article(num_classes=4, in_channels=3).graph_spec()
    )


def test_names_are_torch_state_dict_keys():
    model = build_model({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]})
    keys = set(model.parameters()) | set(model.buffers())
    assert {
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer1.0.bn1.weight",
        "layer1.0.bn2.num_batches_tracked",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var",
        "fc.weight",
        "fc.bias",
    } <= keys
    assert "conv1.bias" not in keys  # convolutions before BatchNorm have no bias


@pytest.mark.parametrize("name", FAMILY)
def test_one_training_step_reaches_every_parameter(name, one_blas_thread):
    model = build_model(arch.choose(name, 3).architecture(3), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    loss, logits = model.train_step(x, np.array([0, 1, 2, 0]), softmax_cross_entropy)
    assert logits.shape == (4, 3) and np.isfinite(loss)
    assert abs(loss - np.log(3)) < 0.5  # PyTorch's default init starts near a uniform guess
    for key, g in model.gradients().items():
        assert np.isfinite(g).all() and np.abs(g).max() > 0, f"{name}: no gradient for {key}"
    assert model.forward(x[:2]).shape == (2, 3)


def test_a_few_sgd_steps_fit_a_small_batch(one_blas_thread):
    """ResNet-8 on 8 grey images: the loss falls well below a uniform guess."""
    model = build_model(arch.choose("resnet8", 1).architecture(4), np.random.default_rng(0))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = np.arange(8) % 4
    opt = make_optimizer("momentum", model.parameters(), 0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        loss, _ = model.train_step(x, y, softmax_cross_entropy)
        opt.step(model.gradients())
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0], losses


def test_text_form_networks_build_and_train(one_blas_thread):
    spec = to_spec(
        "conv 8 3, batchnorm, relu, maxpool 2, dropout 0.25, flatten, dense 16, relu",
        (3, 32, 32),
        4,
    )
    model = build_model(spec, np.random.default_rng(0))
    assert model.graph_spec() == spec
    assert set(model.parameters()) >= {"conv1.weight", "bn1.weight", "fc1.weight", "fc2.bias"}
    x = np.random.default_rng(3).standard_normal((8, 3, 32, 32)).astype(np.float32)
    loss, _ = model.train_step(x, np.arange(8) % 4, softmax_cross_entropy)
    assert np.isfinite(loss)


def test_a_family_model_file_round_trips(tmp_path):
    from engine.modelfile import load_model, save_model

    model = build_model(arch.choose("densenet", 3).architecture(2), np.random.default_rng(0))
    x = np.random.default_rng(4).standard_normal((4, 3, 32, 32)).astype(np.float32)
    model.train_step(x, np.array([0, 1, 0, 1]))  # moves the BatchNorm running statistics
    save_model(model, tmp_path / "d.npz")
    back = load_model(tmp_path / "d.npz")
    assert back.architecture == model.architecture
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
