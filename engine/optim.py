"""Optimisers: update a model's parameters in place from its gradients, both reached by name.

    opt = make_optimizer("momentum", model.parameters(), lr=0.01, momentum=0.9)
    ...; model.backward(dlogits); opt.step(model.gradients())

The update rules are PyTorch's (``torch.optim.SGD`` / ``Adam``), weight decay included as an L2
term added to the gradient (``g + wd * p``). All arithmetic uses ``out=`` ufuncs on buffers made
once, so a step allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import EngineError


class OptimizerError(EngineError, ValueError):
    """Bad optimiser settings (unknown name, negative learning rate, ...)."""


class Optimizer:
    """Base class: ``params`` maps names to the live arrays updated in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, weight_decay: float = 0.0) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise OptimizerError(f"learning rate must be a positive number, got {lr}")
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise OptimizerError(f"weight decay must be >= 0, got {weight_decay}")
        self.params = params
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self._tmp = {k: np.zeros_like(p) for k, p in params.items()}
        self.steps = 0

    def _grad(self, key: str, g: np.ndarray) -> np.ndarray:
        """The gradient with weight decay folded in (in a scratch buffer; ``g`` is not touched)."""
        if not self.weight_decay:
            return g
        t = self._tmp[key]
        np.multiply(self.params[key], self.weight_decay, out=t)
        t += g
        return t

    def step(self, grads: dict[str, np.ndarray]) -> None:
        missing = set(self.params) - set(grads)
        if missing:
            raise OptimizerError(f"no gradient for {', '.join(sorted(missing))}")
        self.steps += 1
        for key, p in self.params.items():
            self._update(key, p, self._grad(key, grads[key]))

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def slots(self) -> dict[str, dict[str, np.ndarray]]:
        """The state a step reads besides the gradient, by slot then parameter name (the live
        arrays: copy them to keep them): ``{"velocity": ...}`` for momentum, ``{"m": ...,
        "s": ...}`` for Adam, ``{}`` for plain SGD. With :attr:`steps` it fixes the next step."""
        return {}


class SGD(Optimizer):
    """``p -= lr * g``; with momentum ``mu``: ``v = mu*v + g``, ``p -= lr * v``;
    Nesterov: ``p -= lr * (g + mu*v)``."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        if not 0 <= momentum < 1:
            raise OptimizerError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise OptimizerError("Nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._v = {k: np.zeros_like(p) for k, p in params.items()} if momentum else {}
        self._step_buf = {k: np.zeros_like(p) for k, p in params.items()}

    def slots(self) -> dict[str, dict[str, np.ndarray]]:
        return {"velocity": self._v} if self.momentum else {}

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        s = self._step_buf[key]
        if self.momentum:
            v = self._v[key]
            if self.steps == 1:
                v[...] = g  # torch: the first step initialises the velocity with the gradient
            else:
                v *= self.momentum
                v += g
            if self.nesterov:
                np.multiply(v, self.momentum, out=s)
                s += g
                g = s
            else:
                g = v
        np.multiply(g, self.lr, out=s)
        p -= s


class Adam(Optimizer):
    """Adam (Kingma & Ba): ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g^2``,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections ``m_hat = m/(1-b1^t)``,
    ``v_hat = v/(1-b2^t)``."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise OptimizerError(f"Adam betas must be in [0, 1), got {betas}")
        self.beta1, self.beta2, self.eps = float(b1), float(b2), float(eps)
        self._m = {k: np.zeros_like(p) for k, p in params.items()}
        self._s = {k: np.zeros_like(p) for k, p in params.items()}
        self._buf = {k: np.zeros_like(p) for k, p in params.items()}

    def slots(self) -> dict[str, dict[str, np.ndarray]]:
        return {"m": self._m, "s": self._s}

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        m, s, b = self._m[key], self._s[key], self._buf[key]
        t = self.steps
        m *= self.beta1
        np.multiply(g, 1 - self.beta1, out=b)
        m += b
        s *= self.beta2
        np.multiply(g, g, out=b)
        b *= 1 - self.beta2
        s += b
        bc1 = 1 - self.beta1**t
        bc2 = 1 - self.beta2**t
        # p -= lr/bc1 * m / (sqrt(s)/sqrt(bc2) + eps), as torch computes it
        np.sqrt(s, out=b)
        b *= 1 / math.sqrt(bc2)
        b += self.eps
        np.divide(m, b, out=b)
        b *= self.lr / bc1
        p -= b


# THE optimiser names: TrainConfig checks them, the CLI offers them, the Train tab lists them.
OPTIMIZERS = ("momentum", "sgd", "adam")
# THE default learning rate of each, for the CLI's --lr and the Train tab's field. Plain SGD
# takes 0.1, the step momentum 0.9 with 0.01 makes in the long run (0.01 / (1 - 0.9)).
DEFAULT_LR = {"momentum": 0.01, "sgd": 0.1, "adam": 0.001}


def make_optimizer(
    name: str,
    params: dict[str, np.ndarray],
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    """``"sgd"`` (plain), ``"momentum"`` (SGD with ``momentum``, optionally Nesterov) or
    ``"adam"`` (``momentum`` is ignored) over ``params`` (``model.parameters()``)."""
    if name == "sgd":
        return SGD(params, lr, weight_decay=weight_decay)
    if name == "momentum":
        return SGD(params, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return Adam(params, lr, weight_decay=weight_decay)
    raise OptimizerError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
