"""The step explainer's numbers against PyTorch: the pinned image's outputs, errors and gradients,
the batch's gradients and loss, and the optimiser's update (momentum with weight decay, Adam),
for LeNet-5 and for a graph network with BatchNorm and a residual connection.

The explainer runs around the real training loop (``engine.training.train`` stepped through its
``TrainControl``); PyTorch recomputes everything from the weights before the step (the network
comes from ``convscope export --pytorch``'s renderer, so the two share nothing but the weights).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from engine.export_torch import render
from engine.model import build_model, lenet5
from engine.step_explain import StepExplanation, StepNotExplained, StepRecorder, explain_steps
from engine.training import TrainConfig, TrainControl, make_optimizer, train

torch = pytest.importorskip("torch", reason="PyTorch is not installed; step explainer parity")
F = torch.nn.functional
N = 12  # training images: one batch holds them all, so PyTorch can recompute the batch
PINNED = 3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _steps(model, images, labels, config, count, pinned=PINNED):
    """Run ``count`` single steps of the real loop; returns the explanations and the optimiser."""
    opt = make_optimizer(config, model.parameters())
    control = TrainControl()
    control.step()  # start paused, one batch allowed: the Step button on an idle tab
    recorder = StepRecorder(model, opt, config.loss, config.batch_size, len(labels))
    image = None if pinned is None else (images[pinned], int(labels[pinned]))
    recorder.before(*(image or (None, None)))
    out = []
    events = train(model, images, labels, config, control=control, optimizer=opt)
    for event in explain_steps(events, recorder, lambda: image):
        if isinstance(event, (StepExplanation, StepNotExplained)):
            out.append(event)
            control.step() if len(out) < count else control.cancel()
    return out, opt


def _torch_net(model, weights, tmp_path):
    """The network in PyTorch (the exporter's module) with ``weights``."""
    source = tmp_path / "net.py"
    source.write_text(render(model))
    spec = importlib.util.spec_from_file_location(f"net_{id(model)}", source)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.Network().double()
    state = net.state_dict()
    state.update({k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in weights.items()})
    net.load_state_dict(state)
    return net


def _grads(net):
    return {k: p.grad.numpy().copy() for k, p in net.named_parameters()}


def _check_against_torch(e: StepExplanation, model, images, labels, tmp_path, loss="ce"):
    x = torch.from_numpy(model.input_spec.to_tensor(images).astype(np.float64))
    y = torch.from_numpy(labels.astype(np.int64))
    net = _torch_net(model, e.weights_before, tmp_path)
    # the pinned image alone, evaluation mode
    net.eval()
    z = net(x[PINNED : PINNED + 1])
    p = z.softmax(1)
    t = F.one_hot(y[PINNED : PINNED + 1], len(e.classes)).double()
    ce = F.cross_entropy(z, y[PINNED : PINNED + 1])
    te = 0.5 * ((t - p) ** 2).sum()
    (ce if loss == "ce" else te).backward()
    np.testing.assert_allclose(e.before.probs, p[0].detach().numpy(), atol=2e-5)
    assert e.before.cross_entropy == pytest.approx(ce.item(), rel=1e-4, abs=1e-5)
    assert e.before.total_error == pytest.approx(te.item(), rel=1e-4, abs=1e-6)
    assert list(e.target) == list(t[0].numpy())
    for key, g in _grads(net).items():
        np.testing.assert_allclose(e.image_grads[key], g, rtol=2e-3, atol=2e-5, err_msg=key)
    # the whole batch, training mode: the gradient the step used
    net.zero_grad()
    net.train()
    batch_loss = F.cross_entropy(net(x), y)
    batch_loss.backward()
    assert e.batch_loss == pytest.approx(batch_loss.item(), rel=1e-4)
    batch = _grads(net)
    for key, g in batch.items():
        np.testing.assert_allclose(e.batch_grads[key], g, rtol=2e-3, atol=2e-5, err_msg=key)
    # the layer norms are those of the gradients
    for layer in e.layers:
        keys = [k for k in batch if k.rsplit(".", 1)[0] == layer.node]
        assert keys, layer.node
        assert layer.batch_norm == pytest.approx(
            math.sqrt(sum(float((batch[k] ** 2).sum()) for k in keys)), rel=2e-3
        )
    return net


def test_momentum_with_weight_decay_second_step_matches_pytorch(tmp_path, one_blas_thread):
    rng = np.random.default_rng(3)
    model = lenet5(rng)
    images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, N)
    config = TrainConfig(
        epochs=3, batch_size=N, lr=0.05, optimizer="momentum", weight_decay=0.01, seed=1
    )
    (first, second), _ = _steps(model, images, labels, config, 2)
    assert first.untrained and not second.untrained
    assert second.batch_size == N and second.epoch == 2 and second.batch == 1
    assert [layer.node for layer in second.layers] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert second.uniform_loss == pytest.approx(math.log(10))
    net = _check_against_torch(second, model, images, labels, tmp_path)

    # PyTorch's SGD from the same state (velocity and batch gradient) gives the same weights
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for key, param in net.named_parameters():
        param.data = torch.from_numpy(second.weights_before[key].astype(np.float64))
        param.grad = torch.from_numpy(second.batch_grads[key].astype(np.float64))
        opt.state[param]["momentum_buffer"] = torch.from_numpy(
            second.slots_before["velocity"][key].astype(np.float64)
        )
    opt.step()
    live = model.parameters()  # the run was cancelled right after the step
    for key, param in net.named_parameters():
        np.testing.assert_allclose(second.weights_after[key], param.detach().numpy(), atol=1e-6)
        np.testing.assert_array_equal(second.weights_after[key], live[key])

    key, index = second.default_weight()
    assert key == "conv1.weight"
    w = second.weight(key, index)
    assert abs(w.image_grad) == np.abs(second.image_grads[key]).max()
    assert w.new_value == float(live[key][index])  # what the optimiser really did
    assert w.expected == pytest.approx(w.new_value, abs=1e-6)
    assert w.rule == "SGD with momentum 0.9"
    assert any("velocity" in line for line in w.rule_lines)
    assert w.plain_sgd == pytest.approx(w.value - 0.05 * w.batch_grad)
    # the pinned image after the step, in PyTorch with the new weights
    after = _torch_net(model, second.weights_after, tmp_path).eval()
    x = model.input_spec.to_tensor(images[PINNED : PINNED + 1]).astype(np.float64)
    probs = after(torch.from_numpy(x))
    np.testing.assert_allclose(second.after.probs, probs.softmax(1)[0].detach().numpy(), atol=2e-5)


def _graph(rng):
    conv = {"kernel_size": 3, "padding": 1, "bias": False}
    nodes = [
        {"type": "conv2d", "name": "conv1", "inputs": ["input"], "in_channels": 3,
         "out_channels": 4, **conv},
        {"type": "batchnorm2d", "name": "bn1", "inputs": ["conv1"], "num_features": 4},
        {"type": "relu", "name": "relu1", "inputs": ["bn1"]},
        {"type": "conv2d", "name": "block.conv", "inputs": ["relu1"], "in_channels": 4,
         "out_channels": 4, **conv},
        {"type": "batchnorm2d", "name": "block.bn", "inputs": ["block.conv"], "num_features": 4},
        {"type": "add", "name": "block.add", "inputs": ["block.bn", "relu1"]},
        {"type": "relu", "name": "block.relu", "inputs": ["block.add"]},
        {"type": "globalavgpool", "name": "gap", "inputs": ["block.relu"]},
        {"type": "dense", "name": "fc", "inputs": ["gap"], "in_features": 4, "out_features": 4},
    ]  # fmt: skip
    spec = {"name": "graph", "input_shape": [3, 12, 12], "nodes": nodes, "output": "fc"}
    return build_model(spec, rng, classes=["boat", "dog", "cat", "bird"])


def test_adam_on_a_graph_with_batchnorm_matches_pytorch(tmp_path, one_blas_thread):
    rng = np.random.default_rng(8)
    model = _graph(rng)
    images = rng.integers(0, 256, (N, 3, 12, 12), dtype=np.uint8)
    labels = np.arange(N) % 4
    config = TrainConfig(epochs=2, batch_size=N, lr=0.01, optimizer="adam", seed=2)
    (e,), _ = _steps(model, images, labels, config, 1)
    assert [layer.node for layer in e.layers] == ["conv1", "bn1", "block.conv", "block.bn", "fc"]
    assert e.layers[1].kind == "batchnorm2d" and e.layers[1].parameters == 8
    net = _check_against_torch(e, model, images, labels, tmp_path)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for key, param in net.named_parameters():
        param.data = torch.from_numpy(e.weights_before[key].astype(np.float64))
        param.grad = torch.from_numpy(e.batch_grads[key].astype(np.float64))
    opt.step()
    for key, param in net.named_parameters():
        np.testing.assert_allclose(e.weights_after[key], param.detach().numpy(), atol=1e-6)
    w = e.weight("bn1.weight", (2,))
    assert w.rule.startswith("Adam") and w.expected == pytest.approx(w.new_value, abs=1e-6)
    # Adam's first step moves a weight by about lr, whatever its gradient
    assert abs(w.new_value - w.value) == pytest.approx(0.01, rel=1e-3)
    assert e.classes == ("boat", "dog", "cat", "bird")
    assert list(e.target) == [0, 0, 0, 1]  # labels 0, 1, 2, 3, 0, ...: the pinned one is 3


def test_total_error_gradient_and_plain_sgd_by_hand(tmp_path, one_blas_thread):
    rng = np.random.default_rng(4)
    model = lenet5(rng)
    images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, N)
    config = TrainConfig(epochs=1, batch_size=4, lr=0.1, optimizer="sgd", loss="total_error")
    (e,), _ = _steps(model, images, labels, config, 1)
    assert e.batch_size == 4 and e.loss == "total_error"
    # the pinned image's gradient of its total error, by central differences in float64
    key, index = "fc3.bias", (int(labels[PINNED]),)
    clone = model.clone().astype(np.float64)
    clone.set_weights({k: v.astype(np.float64) for k, v in e.weights_before.items()})
    x = model.input_spec.to_tensor(images[PINNED : PINNED + 1]).astype(np.float64)
    t = np.eye(10)[labels[PINNED]]

    def error(delta: float) -> float:
        clone.parameters()[key][index] = e.weights_before[key][index] + delta
        p = clone.predict_proba(x)[0]
        return 0.5 * float(np.sum((t - p) ** 2))

    h = 1e-5
    numeric = (error(h) - error(-h)) / (2 * h)
    w = e.weight(key, index)
    assert w.image_grad == pytest.approx(numeric, rel=1e-3, abs=1e-7)
    assert e.before.total_error == pytest.approx(error(0.0), rel=1e-5)
    assert w.rule == "plain SGD" and w.new_value == pytest.approx(w.plain_sgd, abs=1e-7)
    assert w.expected == pytest.approx(w.new_value, abs=1e-7)


def test_no_pinned_image_or_one_that_does_not_fit_is_said(one_blas_thread):
    rng = np.random.default_rng(5)
    model = lenet5(rng)
    images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, N)
    config = TrainConfig(epochs=1, batch_size=4)
    (e,), _ = _steps(model, images, labels, config, 1, pinned=None)
    assert isinstance(e, StepNotExplained) and "no image is pinned" in e.reason
    recorder = StepRecorder(model, make_optimizer(config, model.parameters()))
    recorder.before(np.zeros((3, 32, 32), np.uint8), 0)
    assert "does not fit" in recorder.problem
    with pytest.raises(Exception, match="outside"):
        _steps(model, images, labels, config, 1)[0][0].weight("conv1.weight", (9, 0, 0, 0))


@pytest.mark.parametrize("k", [2, 4, 10])
def test_uniform_guess_loss_is_the_loss_of_equal_scores(k):
    from engine.losses import softmax_cross_entropy, total_error, uniform_guess_loss

    z = np.zeros((3, k))
    y = np.arange(3) % k
    assert uniform_guess_loss(k) == pytest.approx(softmax_cross_entropy(z, y)[0])
    assert uniform_guess_loss(k) == pytest.approx(math.log(k))
    assert uniform_guess_loss(k, "total_error") == pytest.approx(total_error(z, y)[0])


def test_an_image_pinned_while_paused_is_followed_from_the_weights_before_the_step(
    one_blas_thread,
):
    rng = np.random.default_rng(6)
    model = lenet5(rng)
    images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, N)
    config = TrainConfig(epochs=1, batch_size=4)
    opt = make_optimizer(config, model.parameters())
    control = TrainControl()
    control.step()
    recorder = StepRecorder(model, opt, config.loss, 4, N)
    recorder.before(images[0], int(labels[0]))  # image 0 pinned when the run paused
    start = model.clone()
    pinned = [(images[5], int(labels[5]))]  # ... then image 5, before the step ran
    events = train(model, images, labels, config, control=control, optimizer=opt)
    e = next(x for x in explain_steps(events, recorder, lambda: pinned[0]) if hasattr(x, "image"))
    control.cancel()
    assert e.label == labels[5] and np.array_equal(e.image, images[5])
    np.testing.assert_allclose(e.before.probs, start.predict_proba(images[5:6])[0], atol=1e-6)
    np.testing.assert_allclose(e.after.probs, model.predict_proba(images[5:6])[0], atol=1e-6)
