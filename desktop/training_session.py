"""One training run off the GUI thread: the worker, its thread, its control and its loss log.

The run is the engine's (:func:`engine.run.training_run`, the same as ``convscope train``:
split, build, train, evaluate on the test split, record the metadata). The job (run in the
worker thread) loops over its events (training events, ``Progress`` of the evaluation,
``RunEnded`` last) and adds a few of its own, all plain data:

- ``WeightsSnapshot``: copies of the weights and buffers every ``snapshot_interval`` seconds,
  at each epoch end, on pause and when the training ends; the GUI rebuilds activations and
  filters from them, so it never touches the model being trained.
- ``ProbeLoss``: the loss on a small fixed set, measured whenever the run pauses (a step = one
  batch between two pauses, so the user sees the loss before and after that batch).
- ``StepExplanation`` (or ``StepNotExplained``): after a single step, the article's Figure 15
  in numbers for the pinned image (:mod:`engine.step_explain`; ``TrainingSession.pin`` sets the
  image and its label, read at each pause).

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
from engine.progress import Progress
from engine.run import RunEnded, RunSettings, TrainingRun, training_run
from engine.step_explain import (
    Pinned,
    StepExplanation,
    StepNotExplained,
    StepRecorder,
    explain_steps,
)
from engine.training import (
    BatchEnd,
    Cancelled,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    Resumed,
    TrainControl,
)
from engine.visualize import EmaSmoother, epoch_position, probe_count, probe_loss

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
    images: int  # how many fixed images it was measured on
    held_out: bool  # validation images (else training images: the run has no validation part)


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
    """Limit BLAS to ``limit`` threads for the duration (no-op if None).

    Why: training shares the machine with the GUI thread. On a 2-core machine with other work
    running, OpenBLAS threads that wait for each other made in-app training up to 10x slower;
    with one core left to the GUI (``BLAS_THREADS``) it stays within ~10% of the bare engine
    limited the same way (bench/gui_training.py).
    """
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


def run_job(
    run: TrainingRun,
    log: TrainingLog,
    snapshot_interval: float = SNAPSHOT_INTERVAL,
    threads: int | None = None,
    pinned: Pinned = lambda: None,
) -> Iterator[object]:
    """The worker-thread loop: the run's events plus snapshots, probe losses and step
    explanations of the ``pinned()`` image, with BLAS limited to ``threads`` threads (see
    :func:`blas_threads`)."""
    with blas_threads(threads):
        yield from _job(run, log, snapshot_interval, pinned)


def _probe_set(run: TrainingRun) -> tuple[np.ndarray, np.ndarray, bool]:
    """The first few validation images (training images without a validation part), as many
    as :func:`engine.visualize.probe_count` affords, and whether they are held out."""
    held_out = len(run.val_labels) > 0
    x, y = (run.val_images, run.val_labels) if held_out else (run.train_images, run.train_labels)
    n = probe_count(run.model, run.settings.config.batch_size, len(y))
    return x[:n], y[:n], held_out


def _state_copy(model) -> dict:
    """Copies of the weights and the buffers (BatchNorm's running statistics, which the live
    view's evaluation-mode pass uses: a copy of the weights alone left them as they were when
    the run began)."""
    return {k: v.copy() for k, v in model.state_dict().items()}


def _job(
    run: TrainingRun, log: TrainingLog, snapshot_interval: float, pinned: Pinned
) -> Iterator[object]:
    model, control = run.model, run.control
    config = run.settings.config
    recorder = StepRecorder(
        model, run.optimizer, config.loss, config.batch_size, len(run.train_labels)
    )
    probe_x, probe_y, held_out = _probe_set(run)
    loss_name = run.settings.config.loss
    last_snapshot = time.perf_counter()

    def probe() -> ProbeLoss:
        loss = probe_loss(model, probe_x, probe_y, loss_name)
        return ProbeLoss(loss, len(log), len(probe_y), held_out)

    if control.paused:  # started with a step: measure the loss before it
        yield probe()
        recorder.before(*(pinned() or (None, None)))
    for event in explain_steps(run.events(), recorder, pinned):
        if isinstance(event, BatchEnd):
            log.append(event)
        yield event
        now = time.perf_counter()
        if isinstance(event, Paused):
            yield probe()
            yield WeightsSnapshot(_state_copy(model))
            last_snapshot = now
        elif isinstance(event, (EpochEnd, Finished, Cancelled, Diverged)) or (
            isinstance(event, BatchEnd) and now - last_snapshot >= snapshot_interval
        ):
            yield WeightsSnapshot(_state_copy(model))
            last_snapshot = now


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
        self.run: TrainingRun | None = None
        self._worker: GeneratorWorker | None = None
        self._thread: QThread | None = None
        self.snapshot_interval = SNAPSHOT_INTERVAL
        self.blas_threads: int | None = BLAS_THREADS
        self._pinned: tuple[np.ndarray, int | None] | None = None

    def pin(self, image: np.ndarray | None, label: int | None) -> None:
        """The image (uint8, as in the dataset) and label whose numbers each step explains
        (label None: an image without one, which a step cannot explain). Read by the worker
        at each pause: set it any time."""
        pinned = None if image is None else (np.array(image), None if label is None else int(label))
        self._pinned = pinned  # one reference swap: the worker sees the old or the new pair

    def is_running(self) -> bool:
        return self._thread is not None

    def start(
        self, dataset: object, settings: RunSettings, *, model: object = None, step: bool = False
    ) -> TrainingRun:
        """Check and prepare the run (errors raise here, in the GUI thread: an EngineError or
        ValueError naming what to fix) and start it in its thread; returns the run (its model
        is being trained: read it only through the snapshots until the session stops).

        model: continue this model instead of building one. step: run one batch, then pause
        (the Step button on an idle tab).
        """
        if self._thread is not None:
            raise RuntimeError("a run is already going; stop it first")
        control = TrainControl()
        run = training_run(dataset, settings, model=model, control=control)  # type: ignore[arg-type]
        if step:
            control.step()
        log = TrainingLog()
        interval = self.snapshot_interval

        def essential(event: object) -> bool:
            # Batch ends are throttled, except while stepping (the user waits for that one).
            return not isinstance(event, (BatchEnd, Progress)) or control.paused

        self.control, self.log, self.run = control, log, run
        worker = GeneratorWorker(
            lambda: run_job(run, log, interval, self.blas_threads, lambda: self._pinned),
            min_interval=MIN_INTERVAL,
            essential=essential,
        )
        worker.yielded.connect(self.event_received)
        worker.errored.connect(self.errored)
        self._worker = worker
        self._thread = start_worker(worker, on_finished=self._on_thread_finished)
        return run

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
    "Finished",
    "Paused",
    "ProbeLoss",
    "Progress",
    "Resumed",
    "RunEnded",
    "StepExplanation",
    "StepNotExplained",
    "TrainingLog",
    "TrainingSession",
    "WeightsSnapshot",
]
