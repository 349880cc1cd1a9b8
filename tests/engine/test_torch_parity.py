"""LeNet-5 in the engine and in PyTorch, on the same weights: same logits, same gradients."""

from __future__ import annotations

import numpy as np
import pytest

from engine.losses import softmax_cross_entropy
from engine.model import lenet5

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity test skipped")
F = torch.nn.functional


class TorchLeNet5(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(400, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lenet5_forward_and_backward_match_pytorch(dtype):
    rng = np.random.default_rng(5)
    model = lenet5(rng)
    # non-zero biases, so a bias bug cannot hide
    for key, p in model.parameters().items():
        if key.endswith("bias"):
            p[...] = rng.normal(0, 0.1, p.shape)
    model.astype(dtype)
    net = TorchLeNet5()
    # the state_dict keys and shapes are the engine's parameter names and shapes
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.get_weights().items()})
    net = net.to(torch.float64 if dtype == np.float64 else torch.float32)

    x = rng.standard_normal((16, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, 16)
    logits = model.forward(x, training=True)
    loss, dz = softmax_cross_entropy(logits, y)
    dx = model.backward(dz)

    xt = torch.from_numpy(x).requires_grad_()
    lt = net(xt)
    loss_t = F.cross_entropy(lt, torch.from_numpy(y))
    loss_t.backward()

    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert logits.dtype == dtype
    np.testing.assert_allclose(logits, lt.detach().numpy(), rtol=tol, atol=tol)
    assert loss == pytest.approx(loss_t.item(), rel=tol)
    grads = model.gradients()
    for name, p in net.named_parameters():
        scale = max(1.0, float(np.abs(p.grad.numpy()).max()))
        np.testing.assert_allclose(
            grads[name], p.grad.numpy(), rtol=tol, atol=tol * scale, err_msg=name
        )
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol * 1e-2)
