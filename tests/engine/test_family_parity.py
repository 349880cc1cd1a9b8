"""Every family member against PyTorch on the same weights, in TRAINING mode: one optimiser
step on one batch gives the same logits, loss, gradients, updated parameters and BatchNorm
buffers (``num_batches_tracked`` included), then the same evaluation outputs.

The PyTorch side is the module of the exported file (``engine.export_torch.render``), so the
file a user takes to PyTorch is what is checked. Dropout draws its masks from the engine's
generator; the PyTorch module is handed the same masks. In float64 the two agree to rounding
(in float32 a ReLU input within rounding of 0 can flip either way in either library)."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest

from engine import architectures
from engine.export_torch import render
from engine.model import build_model
from engine.optim import make_optimizer

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity test skipped")
F = torch.nn.functional

pytestmark = pytest.mark.usefixtures("one_torch_thread", "one_blas_thread")


def _exported(model, tmp_path):
    path = tmp_path / "net.py"
    path.write_text(render(model), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"parity_{tmp_path.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _masks(model, n: int) -> dict[str, np.ndarray]:
    """The dropout masks the engine's next training batch of ``n`` will draw."""
    state = copy.deepcopy(model.rng.bit_generator.state)
    masks = model._masks(n)
    model.rng.bit_generator.state = state
    return masks


CASES = [  # (member, channels, classes, batch, optimiser, weight decay)
    ("lenet5", 1, 10, 3, "momentum", 5e-4),
    ("lenet-article", 3, 4, 2, "adam", 1e-3),
    ("alexnet", 3, 3, 3, "momentum", 5e-4),
    ("zfnet", 1, 4, 2, "sgd", 0.0),
    ("vgg", 3, 10, 3, "adam", 0.0),
    ("googlenet", 1, 3, 3, "momentum", 5e-4),
    ("resnet8", 3, 4, 3, "momentum", 5e-4),
    ("resnet20", 1, 3, 1, "momentum", 5e-4),  # BatchNorm on a batch of one (maps > 1x1)
    ("densenet", 3, 10, 2, "adam", 1e-3),
]


def test_the_cases_cover_every_member():
    assert {c[0] for c in CASES} == set(architectures.names())


@pytest.mark.parametrize(("name", "channels", "k", "n", "opt", "wd"), CASES)
def test_one_training_step_equals_pytorch(name, channels, k, n, opt, wd, tmp_path):
    choice = architectures.choose(name, channels)
    model = build_model(choice.architecture(k), np.random.default_rng(1)).astype(np.float64)
    rng = np.random.default_rng(7)
    for key, a in model.state_dict().items():  # nothing at its initial value hides a bug
        if key.endswith(("bias", "running_mean")):
            a[...] = rng.normal(0, 0.1, a.shape)
        elif key.endswith("running_var"):
            a[...] = rng.uniform(0.5, 2.0, a.shape)
    mod = _exported(model, tmp_path)
    net = mod.Network(model.graph_spec(), [str(i) for i in range(k)]).double().train()
    net.load_state_dict({key: torch.from_numpy(v.copy()) for key, v in model.state_dict().items()})
    x = rng.standard_normal((n, *choice.input_shape))
    y = rng.integers(0, k, n)
    masks = _masks(model, n)
    keep = {key: model.layer(key).p for key in masks}

    def dropout(node, xs, training):
        if not training:
            return xs[0]
        return xs[0] * torch.from_numpy(masks[node["name"]] / (1 - keep[node["name"]]))

    mod._FUNCTIONS["dropout"] = dropout
    lr = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.01}[opt]
    ours = make_optimizer(opt, model.parameters(), lr, momentum=0.9, weight_decay=wd)
    if opt == "adam":
        theirs = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    else:
        mu = 0.9 if opt == "momentum" else 0.0
        theirs = torch.optim.SGD(net.parameters(), lr=lr, momentum=mu, weight_decay=wd)

    loss, z = model.train_step(x, y)
    zt = net(torch.from_numpy(x))
    loss_t = F.cross_entropy(zt, torch.from_numpy(y))
    loss_t.backward()
    tol = 1e-9
    np.testing.assert_allclose(z, zt.detach().numpy(), rtol=tol, atol=tol)
    assert loss == pytest.approx(loss_t.item(), rel=tol)
    grads = model.gradients()
    for key, p in net.named_parameters():
        np.testing.assert_allclose(grads[key], p.grad.numpy(), rtol=1e-7, atol=tol, err_msg=key)
    ours.step(grads)
    theirs.step()
    state, expected = model.state_dict(), net.state_dict()
    assert set(state) == set(expected)
    for key, v in expected.items():
        if key.endswith("num_batches_tracked"):
            assert state[key].dtype == np.int64 and int(state[key]) == int(v) == 1, key
        else:
            np.testing.assert_allclose(state[key], v.numpy(), rtol=1e-7, atol=tol, err_msg=key)
    net.eval()
    with torch.no_grad():
        expect = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expect, rtol=1e-7, atol=tol)
