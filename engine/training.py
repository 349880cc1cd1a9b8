"""Training as a generator of small progress events, driven by a CLI loop or a GUI worker thread.

``train(model, images, labels, config)`` returns a generator. Each ``next()`` runs at most one
mini-batch (forward, loss, backward, optimiser step) and yields what happened:

    BatchEnd  after every batch          EpochEnd  after every epoch (with validation, if given)
    Paused    before blocking on pause    Resumed   after a resume
    Diverged  the loss exploded or became NaN/inf, or the weights did: the last good weights
              are back (see below), the run ends
    Cancelled the run ends, the weights are those trained so far
    Finished  the run is complete

The generator never prints, sleeps or writes files; one run is driven from one thread. The model
may split each batch over shards (``model.threads``; threads, or forked processes with
``model.processes``, see :mod:`engine.shards`) inside ``train_step``. Its only waiting is the pause:
after yielding ``Paused`` it blocks until another thread calls ``resume``, ``step`` or ``cancel``
on its :class:`TrainControl` (or those were called before the next ``next()``).

Numbering: ``epoch`` is 1-based. In ``BatchEnd`` and ``Diverged`` ``batch`` is the 1-based number
of the batch just run; in ``Paused``, ``Resumed`` and ``Cancelled`` it is the number of batches of
that epoch already done (0 = none yet).

Data: ``images`` stay uint8. Each epoch draws one permutation from
``numpy.random.default_rng(config.seed)``; each batch is gathered by index (``images[idx]``,
``batch_size`` images), optionally augmented, and converted with ``model.input_spec.to_tensor``.
No float copy of the dataset is ever made, so memory is flat across epochs. Same model weights,
same data, same config (seed included) -> bit-identical weights after training.

Speed: ``samples_per_second`` counts batch time only (pauses and validation excluded);
``eta_seconds`` adds the validation passes still to come. Validation runs in batches of
``VALIDATION_BATCH`` with the training loss function.

Divergence is detected three ways, because a bounded loss hides it: the article's total error
never exceeds 1, so with a huge learning rate its weights grow to 1e6 while the network sits at
chance and the loss looks fine.

- the loss, after every forward pass: NaN, inf or above ``LOSS_LIMIT`` ends the run before that
  batch's update;
- the weights, every ``config.snapshot_every`` batches and at every epoch end: all finite, and
  none larger in magnitude than ``WEIGHT_LIMIT`` (or 100 times the largest at the start, for a
  model loaded with large weights);
- the accuracy, at every epoch end: an epoch no better than chance (``CHANCE_MARGIN``) while the
  largest weight grew ``GROWTH_LIMIT`` times since the start is a blown-up network, not a slow one.

Known-good weights are kept in one preallocated copy, refreshed at those checks when they pass
(one ``min`` and ``max`` per array). On divergence the model gets that copy back. Cost for LeNet-5:
one 250 KB copy every 25 batches, well under 1% of the time. When weight decay is what blew up
(``lr * weight_decay`` above ``DECAY_LIMIT`` with SGD: each step then shrinks a weight by more
than the weight itself), the message says so instead of blaming the learning rate.

Time comes from ``clock`` (``time.perf_counter`` unless a test injects another).

Size: the config, the control, the event types and the loop that yields them are one
protocol, read together; the loop uses all of them and the good-weights guard beside it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.blocks import BatchNorm2D
from engine.errors import DatasetError, EngineError, short_repr
from engine.losses import LOSSES, get_loss
from engine.optim import DEFAULT_LR, OPTIMIZERS
from engine.schedule import learning_rate

if TYPE_CHECKING:
    from engine.graph import Network

VALIDATION_BATCH = 500
# A batch loss above this means the run has exploded. Cross-entropy starts near ln(K) (2.3 for 10
# classes) and falls; 1000 means logits a thousand apart, i.e. weights blowing up (with ReLUs the
# network then usually dies and sits at chance level without ever producing a NaN). The article's
# total error never exceeds 1, so for it only NaN/inf count.
LOSS_LIMIT = 1000.0
# Weights larger than this (in magnitude) mean the run has blown up: inputs are normalised and
# trained weights of these networks stay within a few units.
WEIGHT_LIMIT = 1e4
# An epoch whose accuracy is at most CHANCE_MARGIN times chance (1/K) after the largest weight
# grew GROWTH_LIMIT times since the start: the weights exploded and the network is dead.
CHANCE_MARGIN = 1.5
GROWTH_LIMIT = 30.0
# SGD with L2 decay multiplies a weight by (1 - lr*wd) each step: past 1 it overshoots zero.
DECAY_LIMIT = 1.0


class TrainConfigError(EngineError, ValueError):
    """A training setting is out of range (a negative learning rate, zero epochs, ...)."""


MAX_EPOCHS = 1_000_000  # beyond any use; a 400-digit count overflowed the ETA's arithmetic


@dataclass
class TrainConfig:
    """How to train. ``snapshot_every``: batches between copies of the known-good weights.

    The field defaults are THE defaults of a run: the CLI's options and the Train tab's fields
    start from them (the learning rate from ``engine.optim.DEFAULT_LR`` of the optimiser).
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = DEFAULT_LR["momentum"]
    optimizer: str = "momentum"  # "sgd" | "momentum" | "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    loss: str = "cross_entropy"  # | "total_error"
    seed: int = 0
    snapshot_every: int = 25
    schedule: str = "constant"  # | "cosine" | "onecycle": see engine/schedule.py

    def validate(self) -> None:
        """Raise :class:`TrainConfigError` naming the first bad setting and its allowed range."""
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise TrainConfigError(
                f"epochs must be a whole number >= 1 (at most {MAX_EPOCHS:,}), got "
                f"{short_repr(self.epochs)}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise TrainConfigError(
                f"batch size must be a whole number >= 1, got {self.batch_size!r}"
            )
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise TrainConfigError(
                f"learning rate must be a finite number > 0, got {self.lr!r} (try 0.01)"
            )
        if self.optimizer not in OPTIMIZERS:
            raise TrainConfigError(
                f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if not (0.0 <= self.momentum < 1.0):
            raise TrainConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TrainConfigError(f"weight decay must be >= 0, got {self.weight_decay!r}")
        if self.loss not in LOSSES:
            raise TrainConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise TrainConfigError(f"seed must be a whole number >= 0, got {self.seed!r}")
        from engine.schedule import SCHEDULES

        if self.schedule not in SCHEDULES:
            raise TrainConfigError(
                f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if not isinstance(self.snapshot_every, int) or self.snapshot_every < 1:
            raise TrainConfigError(
                f"snapshot_every must be a whole number >= 1, got {self.snapshot_every!r}"
            )


class TrainControl:
    """Cancel, pause, resume and single-step a running :func:`train` generator; thread-safe.

    Another thread (GUI, CLI signal handler) calls the methods; the generator checks before every
    batch. ``step()`` pauses (if running) and lets exactly one more batch run per call; the run
    then pauses again. ``cancel()`` also wakes a paused run, which then ends with ``Cancelled``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._cancelled = False
        self._paused = False
        self._credits = 0  # batches allowed to run while paused (one per step())

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def paused(self) -> bool:
        return self._paused

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._credits = 0

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._credits = 0
            self._cond.notify_all()

    def step(self) -> None:
        with self._cond:
            self._paused = True
            self._credits += 1
            self._cond.notify_all()

    # -- used by the generator ------------------------------------------------------------
    def _admit(self) -> str:
        """Non-blocking: "run", "cancel" or "wait" (paused with no step left)."""
        if not self._paused and not self._cancelled:  # fast path: no lock while running
            return "run"
        with self._cond:
            return self._decide(waiting=False)

    def _wait(self) -> str:
        """Block until resumed, stepped or cancelled: "resume", "step" or "cancel"."""
        with self._cond:
            self._cond.wait_for(lambda: self._cancelled or not self._paused or self._credits > 0)
            return self._decide(waiting=True)

    def _decide(self, *, waiting: bool) -> str:
        if self._cancelled:
            return "cancel"
        if not self._paused:
            return "resume" if waiting else "run"
        if self._credits > 0:
            self._credits -= 1
            return "step" if waiting else "run"
        return "wait"


# -- events: small, immutable, plain data -------------------------------------------------------
@dataclass(frozen=True)
class BatchEnd:
    epoch: int
    batch: int
    batches_per_epoch: int
    loss: float  # this batch's mean loss
    running_accuracy: float  # fraction correct over this epoch's batches so far
    samples_per_second: float  # over the whole run, pauses and validation excluded
    samples_seen: int
    samples_total: int  # epochs * training images
    eta_seconds: float
    running_loss: float = math.nan  # mean loss over this epoch's batches so far


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float  # training + validation time of this epoch, pauses excluded


@dataclass(frozen=True)
class Paused:
    epoch: int
    batch: int


AT_START = "at the start of training"  # where a diverged run's weights went back to, at worst


@dataclass(frozen=True)
class Resumed:
    epoch: int
    batch: int


@dataclass(frozen=True)
class Diverged:
    epoch: int
    batch: int
    message: str
    history: dict = field(default_factory=dict, compare=False)
    at_start: bool = False  # the weights went back to the run's start: it changed nothing


@dataclass(frozen=True)
class Cancelled:
    epoch: int
    batch: int
    history: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Finished:
    history: dict


TrainEvent = BatchEnd | EpochEnd | Paused | Resumed | Diverged | Cancelled | Finished
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


# -- input checks -------------------------------------------------------------------------------
def check_images_labels(
    images: Any, labels: Any, num_classes: int, what: str = "training"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate uint8 images (N,H,W) or (N,C,H,W) and integer labels (N,) in [0, num_classes).

    Returns the images unchanged (never copied) and the labels as int64. Raises
    :class:`DatasetError` naming what is wrong.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(
            f"{what} images must be a uint8 array (N,H,W) or (N,C,H,W), got {images.dtype} "
            f"with shape {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{what} labels must be a 1-D integer array, got {labels.dtype} with shape "
            f"{labels.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{what} set has {len(images)} images but {len(labels)} labels; they must match"
        )
    if len(images) == 0:
        raise DatasetError(f"the {what} set is empty; it needs at least one image")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise DatasetError(
            f"{what} labels run from {lo} to {hi} but the model has {num_classes} classes "
            f"(labels 0..{num_classes - 1}); build the model with the dataset's classes"
        )
    return images, labels.astype(np.int64, copy=False)


def make_optimizer(config: TrainConfig, params: dict[str, np.ndarray]) -> Any:
    """The optimiser ``config`` asks for over ``params`` (``model.parameters()``)."""
    from engine import optim

    return optim.make_optimizer(
        config.optimizer,
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


# -- the generator --------------------------------------------------------------------------
def train(
    model: Network,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    *,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    control: TrainControl | None = None,
    augment: Augment | None = None,
    clock: Callable[[], float] = time.perf_counter,
    optimizer: Any = None,
) -> Iterator[TrainEvent]:
    """Train ``model`` in place; returns a generator of events (see the module docstring).

    images: uint8 (N,H,W) or (N,C,H,W); labels: integers (N,) in [0, K), K = len(model.classes).
    augment(batch_uint8, rng) -> batch_uint8 of the same shape, applied per batch.
    loss: "cross_entropy" L = -mean(log softmax(z)[y]); "total_error" the article's
    L = mean over samples of 1/2 * sum_k (onehot(y)_k - softmax(z)_k)^2.

    Bad settings or data raise at once (:class:`TrainConfigError`, :class:`DatasetError`,
    :class:`ShapeError` for images the model cannot take), not at the first ``next()``.
    optimizer: the one to step (:func:`make_optimizer` of the config when None); a caller that
    reads its state between batches (the step explainer) makes it and passes it here.
    At the end (finished, cancelled or diverged) ``model.meta["history"]`` holds
    ``{"batch_loss": [...], "epochs": [EpochEnd dicts], "config": {...}, "status": ...}``.
    """
    config.validate()
    num_classes = len(model.classes)
    images, labels = check_images_labels(images, labels, num_classes)
    if (val_images is None) != (val_labels is None):
        raise DatasetError("give both val_images and val_labels, or neither")
    if val_images is not None:
        val_images, val_labels = check_images_labels(
            val_images, val_labels, num_classes, "validation"
        )
        if val_images.shape[1:] != images.shape[1:]:
            raise DatasetError(
                f"validation images are {val_images.shape[1:]} but training images are "
                f"{images.shape[1:]}; they must have the same size"
            )
    model.input_spec.to_tensor(images[:1])  # a ShapeError now if the images do not fit
    _check_batchnorm_batches(model, config, len(images))
    loss_fn = get_loss(config.loss)
    if optimizer is None:
        optimizer = make_optimizer(config, model.parameters())
    return _run(
        model, images, labels, config, loss_fn, optimizer, val_images, val_labels, control, augment,
        clock,
    )  # fmt: skip


class _GoodWeights:
    """One preallocated copy of the last weights known to be sound (finite, not exploded):
    parameters and buffers (BatchNorm's running statistics), i.e. ``model.state_dict()``."""

    def __init__(self, params: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
        self.params = params  # checked for soundness
        self.state = state  # copied and restored: the parameters and the buffers
        # BatchNorm's running statistics: checked to be finite (a variance can overflow
        # float32 while every weight is still finite, and the file would not load again)
        floats = {k: v for k, v in state.items() if np.issubdtype(v.dtype, np.floating)}
        self.stats = {k: v for k, v in floats.items() if k not in params}
        self.copy = {k: np.empty_like(v) for k, v in state.items()}
        self.where = AT_START
        self.initial = self.largest()
        self.limit = max(WEIGHT_LIMIT, 100.0 * self.initial)
        self.problem = ""  # why the last take() refused, for the message

    def largest(self) -> float:
        """The largest weight magnitude (NaN if any weight is NaN; one min and max per array)."""
        top = 0.0
        for v in self.params.values():
            if v.size:
                top = max(top, abs(float(v.max())), abs(float(v.min())))
                if not math.isfinite(top):
                    return math.nan if math.isnan(top) else math.inf
        return top

    def check(self) -> str:
        """ "" if the live weights are sound, else what is wrong with them."""
        top = self.largest()
        if not math.isfinite(top):
            return "the weights became NaN or infinite"
        if top > self.limit:
            return f"the weights exploded (the largest grew from {self.initial:.3g} to {top:.3g})"
        for k, v in self.stats.items():
            if not np.isfinite(v).all():
                return f"the BatchNorm statistics became NaN or infinite ({k})"
        return ""

    def take(self, where: str) -> bool:
        """Copy the live weights if sound; else False (nothing copied, ``problem`` says why)."""
        self.problem = self.check()
        if self.problem:
            return False
        for k, v in self.state.items():
            np.copyto(self.copy[k], v)
        self.where = where
        return True

    def dead(self, accuracy: float, num_classes: int) -> str:
        """A problem text if the network is at chance after its weights blew up, else ""."""
        top = self.largest()
        if accuracy <= CHANCE_MARGIN / num_classes and top > GROWTH_LIMIT * max(self.initial, 1e-3):
            return (
                f"the accuracy stays at chance ({accuracy:.0%}) while the weights grew from "
                f"{self.initial:.3g} to {top:.3g}"
            )
        return ""

    def restore(self) -> None:
        for k, v in self.state.items():
            np.copyto(v, self.copy[k])


def _advice(config: TrainConfig) -> str:
    """What most likely made the run diverge, and what to try."""
    decay_step = config.lr * config.weight_decay
    if config.optimizer != "adam" and decay_step > DECAY_LIMIT:
        return (
            f"the weight decay {config.weight_decay:g} is too strong for learning rate "
            f"{config.lr:g}: each step takes {decay_step:g} times a weight off it, more than the "
            f"weight itself (try weight decay {0.1 / config.lr:g} or less)"
        )
    return f"the learning rate {config.lr:g} is probably too high (try {config.lr / 10:g})"


class _Loop:
    """The state one run carries from event to event: the batch order and counters, the timers,
    the known-good weights and the history; one method per step of :func:`_run`."""

    def __init__(
        self,
        model: Network,
        images: np.ndarray,
        labels: np.ndarray,
        config: TrainConfig,
        loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
        optimizer: Any,
        n_val: int,
        augment: Augment | None,
        clock: Callable[[], float],
    ) -> None:
        self.model, self.images, self.labels, self.config = model, images, labels, config
        self.loss_fn, self.optimizer, self.augment, self.clock = loss_fn, optimizer, augment, clock
        model.rng = np.random.default_rng([config.seed, 2])  # dropout masks: the run's generator
        self.n = len(images)
        self.batches = -(-self.n // config.batch_size)
        if self.batches > 1 and self.n - (self.batches - 1) * config.batch_size < _fewest(model):
            self.batches -= 1  # the last batch joins the one before (see _fewest)
        self.total = self.n * config.epochs
        self.n_val = n_val
        self.shuffle_rng = np.random.default_rng(config.seed)
        self.augment_rng = np.random.default_rng([config.seed, 1])
        self.batch_loss: list[float] = []
        self.history: dict[str, Any] = {
            "batch_loss": self.batch_loss,
            "epochs": [],
            "config": asdict(config),
            "train_samples": self.n,
            "val_samples": n_val,
            "augment": augment is not None,
            "status": "running",
        }
        self.good = _GoodWeights(model.parameters(), model.state_dict())
        self.active = 0.0  # seconds spent in batches (pauses and validation excluded)
        self.val_seconds: float | None = None  # one validation pass, once measured
        self.seen = 0
        # this epoch's
        self.order = np.arange(0)
        self.epoch_active = 0.0
        self.loss_sum = 0.0
        self.correct = 0
        self.done = 0  # samples

    def finish(self, status: str) -> dict:
        self.history["status"] = status
        self.model.meta["history"] = self.history
        return self.history

    def diverged(self, epoch: int, batch: int, what: str) -> Diverged:
        """The good weights back, and the event that says what went wrong and what to try."""
        self.good.restore()
        restored = "weights and BatchNorm statistics" if self.good.stats else "weights"
        message = (
            f"{what} at epoch {epoch} batch {batch}; {_advice(self.config)}; {restored} "
            f"restored to those {self.good.where}"
        )
        at_start = self.good.where == AT_START
        return Diverged(epoch, batch, message, self.finish("diverged"), at_start=at_start)

    def start_epoch(self) -> None:
        self.order = self.shuffle_rng.permutation(self.n)
        self.epoch_active = 0.0
        self.loss_sum = 0.0
        self.correct = 0
        self.done = 0

    def batch(self, epoch: int, b: int) -> BatchEnd | Diverged:
        """Run batch ``b`` (0-based) of this epoch: forward, loss check, update, weights check.
        NumPy's overflow warnings are silenced: the loss and the weights are checked instead, and
        a diverging run says so in one line (its shards, threads or forked processes, keep this
        policy)."""
        with np.errstate(all="ignore"):
            return self._batch(epoch, b)

    def _batch(self, epoch: int, b: int) -> BatchEnd | Diverged:
        config = self.config
        t0 = self.clock()
        end = (b + 1) * config.batch_size if b + 1 < self.batches else self.n
        idx = self.order[b * config.batch_size : end]
        batch = self.images[idx]
        if self.augment is not None:
            batch = self.augment(batch, self.augment_rng)
        y = self.labels[idx]
        # forward, loss and backward in one call: with model.threads > 1 each shard (a thread,
        # or a forked process with model.processes) runs all three (see Network.train_step);
        # the update waits for the loss check below
        loss, logits = self.model.train_step(
            self.model.input_spec.to_tensor(batch), y, self.loss_fn
        )
        if not loss <= LOSS_LIMIT:  # also true for NaN
            return self.diverged(epoch, b + 1, _loss_problem(loss))
        step = (epoch - 1) * self.batches + b
        self.optimizer.lr = learning_rate(
            config.schedule, config.lr, step, self.batches * config.epochs
        )
        self.optimizer.step(self.model.gradients())
        m = len(idx)
        self.correct += int(np.count_nonzero(logits.argmax(axis=1) == y))
        self.loss_sum += loss * m
        self.done += m
        self.seen += m
        self.batch_loss.append(float(f"{loss:.5g}"))  # 5 digits keep model files small
        if (b + 1) % config.snapshot_every == 0 and not self.good.take(
            f"after epoch {epoch} batch {b + 1}"
        ):
            return self.diverged(epoch, b + 1, self.good.problem)
        dt = self.clock() - t0
        self.active += dt
        self.epoch_active += dt
        rate = self.seen / self.active if self.active > 0 else 0.0
        eta = _eta(
            self.total - self.seen, rate, config.epochs - epoch + 1, self.n_val, self.val_seconds
        )
        return BatchEnd(
            epoch=epoch,
            batch=b + 1,
            batches_per_epoch=self.batches,
            loss=loss,
            running_accuracy=self.correct / self.done,
            samples_per_second=rate,
            samples_seen=self.seen,
            samples_total=self.total,
            eta_seconds=eta,
            running_loss=self.loss_sum / self.done,
        )

    def epoch_problem(self, epoch: int) -> str:
        """At an epoch's end: "" if the weights are sound (and now the good copy), else why not."""
        num_classes = len(self.model.classes)
        problem = self.good.check() or self.good.dead(self.correct / self.done, num_classes)
        if problem or not self.good.take(f"after epoch {epoch}"):
            return problem or self.good.problem
        return ""

    def end_epoch(
        self, epoch: int, validation: tuple[float, float] | None, validation_time: float
    ) -> EpochEnd:
        """The epoch's summary, recorded in the history."""
        if validation is not None:
            self.val_seconds = validation_time
        val_loss, val_accuracy = validation if validation is not None else (None, None)
        summary = EpochEnd(
            epoch=epoch,
            train_loss=self.loss_sum / self.done,
            train_accuracy=self.correct / self.done,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=self.epoch_active + validation_time,
        )
        self.history["epochs"].append(asdict(summary))
        return summary


def _loss_problem(loss: float) -> str:
    if math.isnan(loss):
        return "loss became NaN"
    if math.isinf(loss):
        return "loss became infinite"
    return f"loss exploded to {loss:.3g}"


def _fewest(model: Network) -> int:
    """The fewest samples a training batch of ``model`` may have: 2 where a BatchNorm sees
    1x1 maps (one value per channel in a batch of one has no variance; PyTorch refuses it
    too), else 1. A shorter last batch joins the one before it."""
    return 2 if _single_value_batchnorm(model) else 1


def _single_value_batchnorm(model: Network) -> str:
    """The name of the first BatchNorm layer of ``model`` that sees 1x1 maps, else ""."""
    for name, layer in model.nodes.items():
        if isinstance(layer, BatchNorm2D) and math.prod(model.output_shape(name)[1:]) == 1:
            return name
    return ""


def _check_batchnorm_batches(model: Network, config: TrainConfig, n: int) -> None:
    """Refuse, before training, what a BatchNorm on 1x1 maps cannot train on: batches of one
    image (a batch size of 1, or a single training image)."""
    name = _single_value_batchnorm(model)
    if not name:
        return
    why = f"{name} normalises 1x1 maps, which needs at least 2 images in every training batch"
    if config.batch_size < 2:
        raise TrainConfigError(f"batch size 1 cannot train this network: {why}; use 2 or more")
    if n < 2:
        raise DatasetError(
            f"only {n} training image: {why}; train on more images (or on larger maps: "
            "fewer poolings or strides before it)"
        )


def _run(
    model: Network,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    optimizer: Any,
    val_images: np.ndarray | None,
    val_labels: np.ndarray | None,
    control: TrainControl | None,
    augment: Augment | None,
    clock: Callable[[], float],
) -> Iterator[TrainEvent]:
    """The loop: epochs of batches, each batch gated by ``control``, each epoch checked for
    divergence and validated; the steps themselves are :class:`_Loop`'s."""
    n_val = 0 if val_images is None else len(val_images)
    loop = _Loop(model, images, labels, config, loss_fn, optimizer, n_val, augment, clock)
    if not loop.good.take(AT_START):
        yield Diverged(
            1,
            0,
            "the model's weights are not finite (NaN or inf) before training; "
            "rebuild or reload the model",
            loop.finish("diverged"),
        )
        return
    for epoch in range(1, config.epochs + 1):
        loop.start_epoch()
        for b in range(loop.batches):
            if control is not None:
                admitted = yield from _gate(control, epoch, b)
                if not admitted:
                    yield Cancelled(epoch, b, loop.finish("cancelled"))
                    return
            event = loop.batch(epoch, b)
            yield event
            if isinstance(event, Diverged):
                return
        problem = loop.epoch_problem(epoch)
        if problem:
            yield loop.diverged(epoch, loop.batches, problem)
            return
        validation, validation_time = None, 0.0
        if val_images is not None:
            t0 = clock()
            assert val_labels is not None  # checked at the start: both or neither
            validation = _validate(model, val_images, val_labels, loss_fn, control)
            if validation is None:
                yield Cancelled(epoch, loop.batches, loop.finish("cancelled"))
                return
            validation_time = clock() - t0
        yield loop.end_epoch(epoch, validation, validation_time)
    yield Finished(loop.finish("finished"))


def _eta(
    samples_left: int, rate: float, validations_left: int, n_val: int, val_seconds: float | None
) -> float:
    """Seconds to the end: the batches left at ``rate``, plus the validation passes left (a
    forward pass costs about a third of a training step until one has been timed)."""
    if rate <= 0:
        return math.inf
    if n_val == 0:
        return samples_left / rate
    per_validation = val_seconds if val_seconds is not None else n_val / (3 * rate)
    return samples_left / rate + validations_left * per_validation


def _gate(control: TrainControl, epoch: int, done: int) -> Generator[TrainEvent, None, bool]:
    """Before a batch: True to run it, False if cancelled. Yields Paused/Resumed and blocks
    (after yielding Paused) while paused; a step() lets exactly one batch through."""
    while True:
        gate = control._admit()
        if gate != "wait":
            return gate == "run"
        yield Paused(epoch, done)
        gate = control._wait()
        if gate == "resume":
            yield Resumed(epoch, done)
            continue  # a pause or cancel may have come while Resumed was handled
        return gate == "step"


def _validate(
    model: Network,
    images: np.ndarray,
    labels: np.ndarray,
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    control: TrainControl | None,
) -> tuple[float, float] | None:
    """Mean loss and accuracy over (images, labels) in batches; None if cancelled meanwhile."""
    spec = model.input_spec
    loss_sum = 0.0
    correct = 0
    for start in range(0, len(images), VALIDATION_BATCH):
        if control is not None and control.cancelled:
            return None
        x = spec.to_tensor(images[start : start + VALIDATION_BATCH])
        y = labels[start : start + VALIDATION_BATCH]
        logits = model.forward(x, training=False)
        loss, _ = loss_fn(logits, y)
        loss_sum += float(loss) * len(y)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == y))
    return loss_sum / len(images), correct / len(images)
