"""One training run off the GUI thread: the worker, its thread, its control and its loss log.

The job (run in the worker thread) loops over the engine's ``train()`` generator and adds a few
events of its own, all plain data:

- ``WeightsSnapshot``: copies of the weights every ``snapshot_interval`` seconds, at each epoch
  end, on pause and at the end; the GUI rebuilds activations and filters from them, so it never
  touches the model being trained.
- ``ProbeLoss``: the loss on a small fixed set, measured whenever the run pauses (a step = one
  batch between two pauses, so the user sees the loss before and after that batch).
- ``EvaluationProgress`` / ``Evaluated``: the test set, after a finished run.

Every batch loss goes into a :class:`TrainingLog` (thread-safe), so the loss chart has every
point although the GUI gets at most ~20 events a second (``GeneratorWorker`` drops BatchEnds
between them; everything else is essential).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from desktop.workers import GeneratorWorker, start_worker
from engine.evaluation import EvaluationResult, evaluate_iter
from engine.training import (
    BatchEnd,
    Cancelled,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    Resumed,
    TrainConfig,
    TrainControl,
    train,
)
from engine.visualize import EmaSmoother, epoch_position, probe_loss

SNAPSHOT_INTERVAL = 0.4  # seconds between weight snapshots for the live views
MIN_INTERVAL = 0.05  # at most ~20 non-essential updates a second
# While training, BLAS keeps one core free for the GUI thread (see blas_threads()).
BLAS_THREADS = max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class WeightsSnapshot:
    weights: dict


@dataclass(frozen=True)
class ProbeLoss:
    loss: float
    batches: int  # batches trained when it was measured


@dataclass(frozen=True)
class EvaluationProgress:
    fraction: float


@dataclass(frozen=True)
class Evaluated:
    result: EvaluationResult


@dataclass
class RunRequest:
    """Everything one run needs; the arrays are not copied (the engine never changes them)."""

    model: object
    train_images: np.ndarray
    train_labels: np.ndarray
    config: TrainConfig
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    probe_images: np.ndarray | None = None
    probe_labels: np.ndarray | None = None
    label: str = ""


class TrainingLog:
    """Per-batch curves of one run, appended by the worker, read by the GUI (thread-safe)."""

    def __init__(self, smoothing: float = 0.95) -> None:
        self._lock = threading.Lock()
        self._smoother = EmaSmoother(smoothing)
        self._x: list[float] = []
        self._loss: list[float] = []
        self._smooth: list[float] = []
        self._acc: list[float] = []

    def append(self, event: BatchEnd) -> None:
        x = epoch_position(event.epoch - 1, event.batch, event.batches_per_epoch)
        smooth = self._smoother.update(event.loss)
        with self._lock:
            self._x.append(x)
            self._loss.append(event.loss)
            self._smooth.append(smooth)
            self._acc.append(100.0 * event.running_accuracy)

    def __len__(self) -> int:
        with self._lock:
            return len(self._x)

    def last_loss(self) -> float | None:
        with self._lock:
            return self._loss[-1] if self._loss else None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x in epochs, loss, smoothed loss, running accuracy in %) as float64 copies."""
        with self._lock:
            return (
                np.array(self._x),
                np.array(self._loss),
                np.array(self._smooth),
                np.array(self._acc),
            )


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager:
    """Limit BLAS to ``limit`` threads for the duration (no-op if None or without threadpoolctl).

    Why: training shares the machine with the GUI thread. On a 2-core machine with other work
    running, OpenBLAS threads that wait for each other made in-app training up to 10x slower;
    with one core left to the GUI (``BLAS_THREADS``) it stays within ~10% of the bare engine
    limited the same way (bench/gui_training.py).
    """
    if limit is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=limit, user_api="blas")


def run_job(
    request: RunRequest,
    control: TrainControl,
    log: TrainingLog,
    events: Iterator,
    snapshot_interval: float = SNAPSHOT_INTERVAL,
    threads: int | None = None,
) -> Iterator[object]:
    """The worker-thread loop: engine events plus snapshots, probe losses and the evaluation,
    with BLAS limited to ``threads`` threads (see :func:`blas_threads`)."""
    with blas_threads(threads):
        yield from _job(request, control, log, events, snapshot_interval)


def _job(
    request: RunRequest,
    control: TrainControl,
    log: TrainingLog,
    events: Iterator,
    snapshot_interval: float,
) -> Iterator[object]:
    model = request.model
    last_snapshot = time.perf_counter()
    ended = None

    def probe() -> ProbeLoss | None:
        if request.probe_images is None:
            return None
        loss = probe_loss(model, request.probe_images, request.probe_labels, request.config.loss)
        return ProbeLoss(loss, len(log))

    if control.paused:  # started with a step: measure the loss before it
        measured = probe()
        if measured is not None:
            yield measured
    for event in events:
        if isinstance(event, BatchEnd):
            log.append(event)
        yield event
        now = time.perf_counter()
        if isinstance(event, Paused):
            measured = probe()
            if measured is not None:
                yield measured
            yield WeightsSnapshot(model.get_weights())
            last_snapshot = now
        elif isinstance(event, EpochEnd) or now - last_snapshot >= snapshot_interval:
            yield WeightsSnapshot(model.get_weights())
            last_snapshot = now
        if isinstance(event, (Finished, Cancelled, Diverged)):
            ended = event
    yield WeightsSnapshot(model.get_weights())
    if isinstance(ended, Finished) and request.test_images is not None:
        for item in evaluate_iter(model, request.test_images, request.test_labels, control=control):
            if isinstance(item, EvaluationResult):
                yield Evaluated(item)
            else:
                yield EvaluationProgress(float(item))


class TrainingSession(QObject):
    """Starts a run and forwards its events as signals; ``stopped`` once its thread is done.

    Signals: ``event_received(event)`` for every event that reaches the GUI, ``errored(text)``
    when the job raised, ``stopped()`` after the thread finished (the run is over and the
    session can start another).
    """

    event_received = Signal(object)
    errored = Signal(str)
    stopped = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.control = TrainControl()
        self.log = TrainingLog()
        self.request: RunRequest | None = None
        self._worker: GeneratorWorker | None = None
        self._thread: QThread | None = None
        self.snapshot_interval = SNAPSHOT_INTERVAL
        self.blas_threads: int | None = BLAS_THREADS

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, request: RunRequest, *, step: bool = False) -> None:
        """Validate (errors raise here, in the GUI thread) and start the run in its thread.

        ``step``: run one batch, then pause (the Step button on an idle tab).
        """
        if self._thread is not None:
            raise RuntimeError("a run is already going; stop it first")
        control = TrainControl()
        if step:
            control.step()
        events = train(
            request.model,
            request.train_images,
            request.train_labels,
            request.config,
            val_images=request.val_images,
            val_labels=request.val_labels,
            control=control,
        )
        log = TrainingLog()
        interval = self.snapshot_interval

        def essential(event: object) -> bool:
            # Batch ends are throttled, except while stepping (the user waits for that one).
            return not isinstance(event, (BatchEnd, EvaluationProgress)) or control.paused

        self.control, self.log, self.request = control, log, request
        worker = GeneratorWorker(
            lambda: run_job(request, control, log, events, interval, self.blas_threads),
            min_interval=MIN_INTERVAL,
            essential=essential,
        )
        worker.yielded.connect(self.event_received)
        worker.errored.connect(self.errored)
        self._worker = worker
        self._thread = start_worker(worker, on_finished=self._on_thread_finished)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def step(self) -> None:
        self.control.step()

    def stop(self) -> None:
        """Cancel: the run ends within one batch (a paused run wakes up and ends)."""
        self.control.cancel()

    def _on_thread_finished(self) -> None:
        self._thread = None
        self._worker = None
        self.stopped.emit()


__all__ = [
    "Cancelled",
    "Diverged",
    "EpochEnd",
    "Evaluated",
    "EvaluationProgress",
    "Finished",
    "Paused",
    "ProbeLoss",
    "Resumed",
    "RunRequest",
    "TrainingLog",
    "TrainingSession",
    "WeightsSnapshot",
]
