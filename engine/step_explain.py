"""Figure 15 in numbers: what one training step did to one image and to one weight.

The Train tab's Step runs one batch of the ordinary training loop (:mod:`engine.training`).
This module looks at the model and its optimiser just before and just after that batch, while
the run is paused, and changes neither: the pinned image's own forward and backward passes run
in evaluation mode on replicas of the layers (shared weights, private gradients and work
buffers: no dropout mask drawn, no BatchNorm statistics updated, the model's gradients left as
the batch made them)::

    recorder = StepRecorder(run.model, run.optimizer, config.loss)
    for event in explain_steps(run.events(), recorder, pinned):  # pinned() -> (image, label)
        ...  # the run's events, plus a StepExplanation after every single step

What a step shows for the pinned image (the article's boat): the one-hot target, the softmax
outputs before and after, the total error ``E = 1/2 * sum_k (t_k - p_k)^2`` and the
cross-entropy ``-ln p_target`` before and after, the gradient norm of every parameterised node
(for this image alone and for the batch the step used), and for any weight its value, ``dE/dw``
(image and batch), the learning rate, the rule the optimiser applied with this weight's numbers
and the new value read from the model. With more than one image in a batch the step follows
the batch's mean gradient, not the pinned image's: both are shown, the batch's loss beside the
image's. ``E`` in ``dE/dw`` is the loss being trained (cross-entropy or total error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import executor
from engine.errors import EngineError
from engine.layers import INIT_NOTE
from engine.losses import (
    get_loss,
    softmax,
    softmax_cross_entropy,
    total_error,
    uniform_guess_loss,
)
from engine.training import BatchEnd, Paused

if TYPE_CHECKING:
    from engine.graph import Network

Pinned = Callable[[], "tuple[np.ndarray, int | None] | None"]


@dataclass(frozen=True)
class ImageLook:
    """One image through the network at one moment (evaluation mode)."""

    probs: np.ndarray  # (K,) float64 softmax outputs
    total_error: float  # 1/2 * sum_k (t_k - p_k)^2
    cross_entropy: float  # -ln p[label]


@dataclass(frozen=True)
class LayerGradient:
    """The gradient norm of one parameterised node: ``sqrt(sum of dE/dw^2)`` over its
    parameters (weights and biases, BatchNorm's scale and shift)."""

    node: str
    kind: str
    parameters: int
    image_norm: float  # the pinned image's own gradient
    batch_norm: float  # the batch's mean gradient: what the step used


@dataclass(frozen=True)
class WeightStep:
    """One weight through one step. ``new_value`` is read from the model after the step (what
    the optimiser really did); ``expected`` is the rule recomputed in float64 from the numbers
    here (``rule_lines`` writes it out), ``plain_sgd`` is ``value - lr * batch_grad``."""

    key: str  # "conv1.weight"
    index: tuple[int, ...]
    value: float
    image_grad: float  # dE/dw of the pinned image alone
    batch_grad: float  # dE/dw of the batch (mean over its images): the step used this
    lr: float
    rule: str  # "SGD with momentum 0.9", ...
    rule_lines: tuple[str, ...]
    expected: float
    new_value: float
    plain_sgd: float

    @property
    def name(self) -> str:
        return f"{self.key}[{', '.join(map(str, self.index))}]"

    @property
    def change(self) -> float:
        return self.new_value - self.value


@dataclass(frozen=True)
class StepExplanation:
    """Everything about one step: plain data, copies (see the module docstring)."""

    image: np.ndarray  # uint8, as pinned: (H, W) or (C, H, W)
    label: int
    classes: tuple[str, ...]
    loss: str  # the loss being trained: "cross_entropy" or "total_error"
    before: ImageLook
    after: ImageLook
    layers: tuple[LayerGradient, ...]
    batch_loss: float  # the batch's mean loss (the training loss), before the step
    batch_size: int
    epoch: int
    batch: int
    untrained: bool  # the first step of a new network (its weights as initialised)
    optimizer: dict[str, Any]  # kind, lr, momentum, nesterov, betas, eps, weight decay, steps
    weights_before: dict[str, np.ndarray]
    weights_after: dict[str, np.ndarray]
    image_grads: dict[str, np.ndarray]
    batch_grads: dict[str, np.ndarray]
    slots_before: dict[str, dict[str, np.ndarray]]  # the optimiser's state before the step

    @property
    def target(self) -> np.ndarray:
        """The one-hot target vector (K,), e.g. [0, 0, 1, 0] for the third class."""
        t = np.zeros(len(self.classes))
        t[self.label] = 1.0
        return t

    @property
    def probability_change(self) -> np.ndarray:
        """after - before, per class."""
        return self.after.probs - self.before.probs

    @property
    def total_error_change(self) -> float:
        return self.after.total_error - self.before.total_error

    @property
    def cross_entropy_change(self) -> float:
        return self.after.cross_entropy - self.before.cross_entropy

    @property
    def uniform_loss(self) -> float:
        """ln K: the cross-entropy of a uniform guess over K classes."""
        return uniform_guess_loss(len(self.classes))

    @property
    def init_note(self) -> str:
        """Why an untrained network's first loss is where it is (shown on the first step)."""
        return INIT_NOTE

    def parameter_keys(self) -> list[str]:
        return list(self.weights_before)

    def default_weight(self) -> tuple[str, tuple[int, ...]]:
        """The first node's weight whose gradient for the pinned image is the largest."""
        keys = self.parameter_keys()
        key = next((k for k in keys if k.endswith(".weight")), keys[0])
        return key, self.strongest(key)

    def strongest(self, key: str) -> tuple[int, ...]:
        """The index of ``key``'s weight with the largest |dE/dw| for the pinned image."""
        g = self.image_grads[key]
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g))), g.shape))

    def weight(self, key: str, index: tuple[int, ...]) -> WeightStep:
        """One weight's numbers; :class:`EngineError` naming the valid range when ``key`` or
        ``index`` does not exist."""
        if key not in self.weights_before:
            raise EngineError(
                f"no parameter {key!r}; the model has {', '.join(self.weights_before)}"
            )
        shape = self.weights_before[key].shape
        index = tuple(int(i) for i in index)
        if len(index) != len(shape) or any(
            not 0 <= i < n for i, n in zip(index, shape, strict=True)
        ):
            raise EngineError(f"{key} has shape {shape}; index {index} is outside it")
        w = float(self.weights_before[key][index])
        g = float(self.batch_grads[key][index])
        slots = {name: float(arrays[key][index]) for name, arrays in self.slots_before.items()}
        rule, lines, expected = update_rule(self.optimizer, w, g, slots)
        return WeightStep(
            key=key,
            index=index,
            value=w,
            image_grad=float(self.image_grads[key][index]),
            batch_grad=g,
            lr=float(self.optimizer["lr"]),
            rule=rule,
            rule_lines=lines,
            expected=expected,
            new_value=float(self.weights_after[key][index]),
            plain_sgd=w - float(self.optimizer["lr"]) * g,
        )


def update_rule(
    opt: dict[str, Any], w: float, g: float, slots: dict[str, float]
) -> tuple[str, tuple[str, ...], float]:
    """(the rule's name, its lines with this weight's numbers, the new value) for one weight
    ``w`` with batch gradient ``g`` and the optimiser's state ``slots`` before the step, in
    float64. The rules are :mod:`engine.optim`'s (PyTorch's), weight decay as ``g + wd * w``."""
    lr, wd, kind = float(opt["lr"]), float(opt["weight_decay"]), opt["kind"]
    lines: list[str] = []
    if wd:
        g_eff = g + wd * w
        lines.append(f"weight decay {wd:g}: g = dE/dw + {wd:g} × w = {g_eff:.6g}")
    else:
        g_eff = g
    first = opt["steps"] == 0
    if kind == "adam":
        b1, b2, eps = float(opt["beta1"]), float(opt["beta2"]), float(opt["eps"])
        t = opt["steps"] + 1
        m = b1 * slots["m"] + (1 - b1) * g_eff
        s = b2 * slots["s"] + (1 - b2) * g_eff * g_eff
        m_hat, s_hat = m / (1 - b1**t), s / (1 - b2**t)
        new = w - lr * m_hat / (math.sqrt(s_hat) + eps)
        lines += [
            f"m = {b1:g} × {slots['m']:.4g} + {1 - b1:.3g} × g = {m:.4g} (running mean of g)",
            f"s = {b2:g} × {slots['s']:.4g} + {1 - b2:.3g} × g² = {s:.4g} (running mean of g²)",
            f"step {t}: m̂ = m / (1 − {b1:g}^{t}) = {m_hat:.4g}, ŝ = s / (1 − {b2:g}^{t}) = "
            f"{s_hat:.4g}",
            f"w − lr × m̂ / (√ŝ + ε) = {w:.6g} − {lr:g} × {m_hat / (math.sqrt(s_hat) + eps):.4g}"
            f" = {new:.6g}",
        ]
        return "Adam (each weight's step scaled by its own gradient history)", tuple(lines), new
    mu = float(opt.get("momentum", 0.0))
    if not mu:
        new = w - lr * g_eff
        lines.append(f"w − lr × g = {w:.6g} − {lr:g} × {g_eff:.4g} = {new:.6g}")
        return "plain SGD", tuple(lines), new
    v = g_eff if first else mu * slots["velocity"] + g_eff
    if first:
        lines.append(f"first step: velocity v = g = {v:.4g}")
    else:
        lines.append(f"velocity v = {mu:g} × {slots['velocity']:.4g} (earlier steps) + g = {v:.4g}")
    if opt.get("nesterov"):
        d = g_eff + mu * v
        new = w - lr * d
        lines.append(
            f"Nesterov: w − lr × (g + {mu:g} × v) = {w:.6g} − {lr:g} × {d:.4g} = {new:.6g}"
        )
        return f"SGD with Nesterov momentum {mu:g}", tuple(lines), new
    new = w - lr * v
    lines.append(f"w − lr × v = {w:.6g} − {lr:g} × {v:.4g} = {new:.6g}")
    return f"SGD with momentum {mu:g}", tuple(lines), new


def optimizer_facts(optimizer: Any) -> dict[str, Any]:
    """The settings of an :mod:`engine.optim` optimiser that its rule needs, as plain data."""
    from engine.optim import Adam

    facts: dict[str, Any] = {
        "lr": optimizer.lr,
        "weight_decay": optimizer.weight_decay,
        "steps": optimizer.steps,
    }
    if isinstance(optimizer, Adam):
        facts.update(kind="adam", beta1=optimizer.beta1, beta2=optimizer.beta2, eps=optimizer.eps)
    else:
        facts.update(kind="sgd", momentum=optimizer.momentum, nesterov=optimizer.nesterov)
    return facts


class _Replica:
    """The network on replicas of its layers, in evaluation mode, able to backpropagate: the
    layers keep what their backward needs (their ``training`` flag), except BatchNorm and
    Dropout, whose flag also changes what they compute (as :mod:`engine.features` does)."""

    def __init__(self, model: Network) -> None:
        self.layers = {name: layer.replica() for name, layer in model.nodes.items()}
        self.plan = executor.make_plan(self.layers, model.inputs, model.output)

    def logits(self, x: np.ndarray, for_gradient: bool = False) -> np.ndarray:
        return executor.forward_eval(self.layers, self.plan, x, for_gradient)

    def gradients(self, dz: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagate ``dz`` after ``logits(x, for_gradient=True)``: copies by parameter name."""
        executor.backward(self.layers, self.plan, dz, False)
        return {
            f"{name}.{key}": g.copy()
            for name, layer in self.layers.items()
            for key, g in layer.grads.items()
        }


def look(z: np.ndarray, label: int) -> ImageLook:
    """One image's outputs and both errors from its logits ``z`` (1, K)."""
    z = np.asarray(z, dtype=np.float64)
    y = np.array([label])
    return ImageLook(
        probs=softmax(z.copy())[0],
        total_error=total_error(z, y)[0],
        cross_entropy=softmax_cross_entropy(z, y)[0],
    )


def _copies(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


@dataclass(frozen=True)
class StepNotExplained:
    """A single step ran but could not be explained (no pinned image, or it does not fit)."""

    reason: str


@dataclass
class _Image:
    """The pinned image seen by the network before the step."""

    image: np.ndarray
    label: int
    x: np.ndarray
    look: ImageLook
    grads: dict[str, np.ndarray]


@dataclass
class _Before:
    state: dict[str, np.ndarray]  # parameters and buffers (copies)
    weights: dict[str, np.ndarray]  # the parameters among them
    slots: dict[str, dict[str, np.ndarray]]
    optimizer: dict[str, Any]
    image: _Image | None


class StepRecorder:
    """Records the state before a step (:meth:`before`) and explains the step after it
    (:meth:`after`). Call both from the thread that trains, between batches."""

    def __init__(
        self,
        model: Network,
        optimizer: Any,
        loss: str = "cross_entropy",
        batch_size: int = 1,
        train_count: int = 1,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.batch_size = batch_size
        self.train_count = train_count  # the last batch of an epoch may be smaller
        self._loss_fn = get_loss(loss)
        self._before: _Before | None = None
        self._batches: list[BatchEnd] = []
        self._replica: _Replica | None = None
        self.problem = ""  # why the pinned image could not be followed

    def before(self, image: np.ndarray | None, label: int | None) -> None:
        """Record the weights, buffers and optimiser state, and the pinned image's outputs and
        own gradients (``problem`` says why when the image cannot be followed)."""
        model = self.model
        self._batches = []
        if self._replica is None:
            self._replica = _Replica(model)
        state = _copies(model.state_dict())
        self._before = _Before(
            state=state,
            weights={k: state[k] for k in model.parameters()},
            slots={name: _copies(arrays) for name, arrays in self.optimizer.slots().items()},
            optimizer=optimizer_facts(self.optimizer),
            image=self._see(self._replica, image, label),
        )

    def _see(self, net: _Replica, image: np.ndarray | None, label: int | None) -> _Image | None:
        """The image through ``net`` with its own gradients; None (and ``problem``) if it
        cannot be followed."""
        self.problem = ""
        if image is None:
            self.problem = "no image is pinned"
            return None
        if label is None:
            self.problem = (
                "the pinned image has no label, so there is no target to compare with: "
                "pin an image of the dataset preview"
            )
            return None
        classes = len(self.model.classes)
        if not 0 <= int(label) < classes:
            self.problem = f"the label {label} is not one of the model's {classes}"
            return None
        image = np.array(image)
        try:
            x = self.model.input_spec.to_tensor(image[None])
            z = net.logits(x, for_gradient=True)
        except EngineError as exc:
            self.problem = f"the pinned image does not fit the model ({exc})"
            return None
        _, dz = self._loss_fn(z, np.array([int(label)]))
        return _Image(image, int(label), x, look(z, int(label)), net.gradients(dz))

    def _pinned_now(self, b: _Before, pinned: tuple[np.ndarray, int | None] | None) -> None:
        """The user pinned another image while the run was paused: see it with the weights
        of before the step (a clone holding them)."""
        now = pinned or (None, None)
        seen = b.image
        if seen is not None and now[0] is not None and now[1] == seen.label:
            if np.array_equal(np.asarray(now[0]), seen.image):
                return
        clone = self.model.clone()
        clone.set_weights(b.state)
        b.image = self._see(_Replica(clone), *now)

    def batch_done(self, event: BatchEnd) -> None:
        self._batches.append(event)

    def after(
        self, pinned: tuple[np.ndarray, int | None] | None = None
    ) -> StepExplanation | StepNotExplained | None:
        """The explanation of the one batch since :meth:`before` (why there is none when the
        image cannot be followed); None when other than exactly one batch ran (a resumed run
        paused again). ``pinned``: the image pinned now, when it may have changed since
        :meth:`before` (it is then seen with the weights of before the step)."""
        b, batches = self._before, self._batches
        self._before, self._batches = None, []
        if len(batches) != 1 or b is None or self._replica is None:
            return None
        if pinned is not None:
            self._pinned_now(b, pinned)
        seen = b.image
        if seen is None:
            return StepNotExplained(self.problem or "no image is pinned")
        model, event = self.model, batches[0]
        grads = model.gradients()
        first = (event.batch - 1) * self.batch_size
        size = max(1, min(self.batch_size, self.train_count - first))
        return StepExplanation(
            image=seen.image,
            label=seen.label,
            classes=tuple(model.classes),
            loss=self.loss,
            before=seen.look,
            after=look(self._replica.logits(seen.x), seen.label),
            layers=layer_gradients(model, seen.grads, grads),
            batch_loss=float(event.loss),
            batch_size=size,
            epoch=event.epoch,
            batch=event.batch,
            untrained=b.optimizer["steps"] == 0 and "trained_at" not in model.meta,
            optimizer={**b.optimizer, "lr": float(self.optimizer.lr)},
            weights_before=b.weights,
            weights_after=_copies(model.parameters()),
            image_grads=seen.grads,
            batch_grads=_copies(grads),
            slots_before=b.slots,
        )


def layer_gradients(
    model: Network, image_grads: dict[str, np.ndarray], batch_grads: dict[str, np.ndarray]
) -> tuple[LayerGradient, ...]:
    """The gradient norm of every node with parameters, in the network's order."""
    out = []
    for name, layer in model.nodes.items():
        if not layer.params:
            continue
        keys = [f"{name}.{k}" for k in layer.params]

        def norm(grads: dict[str, np.ndarray], keys: list[str] = keys) -> float:
            return math.sqrt(
                sum(float(np.sum(np.square(grads[k], dtype=np.float64))) for k in keys)
            )

        count = sum(int(layer.params[k].size) for k in layer.params)
        out.append(LayerGradient(name, layer.kind, count, norm(image_grads), norm(batch_grads)))
    return tuple(out)


def explain_steps(events: Iterator[Any], recorder: StepRecorder, pinned: Pinned) -> Iterator[Any]:
    """The run's ``events``, plus a :class:`StepExplanation` (or :class:`StepNotExplained`)
    after each pause that ends a single step. ``pinned()`` gives the image to follow and its
    label (or None), read at each pause (an image pinned while the run was paused is followed
    from the weights of before the step). Call ``recorder.before`` first when the run starts
    paused (a Step on an idle tab)."""
    for event in events:
        if isinstance(event, BatchEnd):
            recorder.batch_done(event)
        yield event
        if isinstance(event, Paused):
            explanation = recorder.after(pinned())
            if explanation is not None:
                yield explanation
            recorder.before(*(pinned() or (None, None)))
