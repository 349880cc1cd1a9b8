"""The one threading pattern of the app: a plain engine generator driven by a QObject worker.

A :class:`GeneratorWorker` is moved to its own :class:`QThread` by :func:`start_worker`. It
loops over the iterable the job returns (an engine generator such as training or
full-resolution filtering) and emits each event it yields as plain data. Cancellation and pause
are cooperative: the engine generator checks its own control object between steps, so the
worker never kills a thread and the GUI thread never ``wait()``s on one (except at quit, for
jobs already cancelled). ``finished`` is always emitted, from a ``finally``.

Throttling happens here, at the source: at most one non-essential event per ``min_interval``
seconds reaches the GUI (about 20 a second), whatever the batch rate; events for which
``essential(event)`` is true (epoch summaries, the final result) always pass.

While a worker runs or a main window or a tab exists (:func:`hold_collection`), Python's
cyclic garbage is collected on the GUI thread only (:class:`_Collector`): a parentless widget
(a window, a tab a test made) caught in a reference cycle is destroyed when the cycle is
collected, in whatever thread the collector runs, and a widget destroyed off the GUI thread
crashes the process (seen: a Classify tab collected while a reading job built a model in its
worker, then a segmentation fault; and an old tab's network view deleted in the middle of its
layout while the engine's thread pool ran).
"""

from __future__ import annotations

import contextlib
import gc
import time
import traceback
from collections.abc import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from engine.errors import EngineError
from engine.progress import CancelFlag


def _always(_event: object) -> bool:
    return True


def _ignore(_event: object) -> None:
    pass


class GeneratorWorker(QObject):
    """Runs ``job()`` off the GUI thread and emits what it yields.

    Signals (past tense): ``yielded(event)``, ``errored(message)``, ``finished()``. The
    message of an :class:`~engine.errors.EngineError` is its own text (written for the user);
    any other exception's starts with its type.
    """

    yielded = Signal(object)
    errored = Signal(str)
    finished = Signal()

    def __init__(
        self,
        job: Callable[[], Iterable[object]],
        *,
        min_interval: float = 0.05,
        essential: Callable[[object], bool] = _always,
    ) -> None:
        super().__init__()
        self._job = job
        self._min_interval = min_interval
        self._essential = essential

    @Slot()
    def run(self) -> None:
        last = 0.0
        try:
            for event in self._job():
                now = time.perf_counter()
                if self._essential(event) or now - last >= self._min_interval:
                    last = now
                    self.yielded.emit(event)
        except EngineError as exc:  # a message for the user, in plain words already
            self.errored.emit(str(exc))
        except Exception as exc:  # reported to the GUI, never lost in a thread
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.errored.emit(detail)
        finally:
            self.finished.emit()


class _Collector(QObject):
    """Python's automatic garbage collection moved to the GUI thread while held.

    The first ``hold()`` (a worker starts, a main window opens) turns automatic collection off
    and a GUI-thread timer on that collects as Python would, by the allocation counts against
    the thresholds (a full collection at most every :data:`FULL_EVERY_S`, so a big heap does
    not stall the window often); the last ``release()`` gives it back to Python. Both run on
    the GUI thread."""

    TICK_MS = 50
    FULL_EVERY_S = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._holds = 0
        self._was_enabled = True
        self._last_full = time.monotonic()
        self._timer = QTimer(self, interval=self.TICK_MS)
        self._timer.timeout.connect(self.collect)

    @property
    def holds(self) -> int:
        return self._holds

    def hold(self) -> None:
        if self._holds == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()
        self._holds += 1

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0:
            # at interpreter exit Qt may delete the timer before a window or tab whose
            # destruction releases its hold: nothing is left to stop then
            with contextlib.suppress(RuntimeError):
                self._timer.stop()
            if self._was_enabled:
                gc.enable()

    @Slot()
    def collect(self) -> None:
        (t0, t1, t2), (c0, c1, c2) = gc.get_threshold(), gc.get_count()
        if t0 <= 0 or c0 <= t0:
            return
        full = c2 > t2 and time.monotonic() - self._last_full >= self.FULL_EVERY_S
        gc.collect(2 if full else 1 if c1 > t1 else 0)
        if full:
            self._last_full = time.monotonic()


class _Keeper(QObject):
    """Holds every started worker and its thread until the thread has finished.

    The Python wrappers of both are released here, on the GUI thread, once the thread is over;
    nothing is ``deleteLater``-ed (deferred deletes racing with the release of the Python
    wrappers crash PySide). At application quit, the few jobs still running (each cancelled by
    its tab, and cancellation is checked between steps) are waited for, so no QThread is ever
    destroyed while running.
    """

    def __init__(self) -> None:
        super().__init__()
        self.alive: list[tuple[GeneratorWorker, QThread]] = []
        self.collector = _Collector()

    def keep(self, worker: GeneratorWorker, thread: QThread) -> None:
        self.alive.append((worker, thread))
        self.collector.hold()

    @Slot()
    def release(self) -> None:
        thread = self.sender()
        kept = len(self.alive)
        self.alive = [(w, t) for (w, t) in self.alive if t is not thread]
        for _ in range(kept - len(self.alive)):
            self.collector.release()

    def wait_all(self) -> None:
        for _worker, thread in list(self.alive):
            thread.wait()
        for _ in self.alive:
            self.collector.release()
        self.alive.clear()


_keeper: _Keeper | None = None


def _the_keeper() -> _Keeper:
    global _keeper
    if _keeper is None:
        _keeper = _Keeper()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(_keeper.wait_all)
    return _keeper


def wait_for_all() -> None:
    """Block until every started worker's thread has finished (call after the event loop ends:
    a job started while the application was quitting must not outlive it)."""
    _the_keeper().wait_all()


def hold_collection() -> Callable[[], None]:
    """Python's cyclic garbage collected on the GUI thread only until the returned function is
    called (once is enough; more do nothing): the main window holds it until it is closed or
    destroyed, since the engine's own thread pools can run Python beside a GUI-thread call as
    well as in workers."""
    collector = _the_keeper().collector
    collector.hold()
    held = [True]

    def release() -> None:
        if held:
            held.clear()
            collector.release()

    return release


def hold_collection_while(widget: QObject) -> Callable[[], None]:
    """:func:`hold_collection` until ``widget`` is destroyed (or the returned function is
    called first). Each tab and the main window hold it, also made on their own (as tests
    make them): the engine's thread pools run Python beside their GUI-thread work, and a
    collection there would destroy their Qt objects off the GUI thread."""
    release = hold_collection()
    widget.destroyed.connect(release)
    return release


def collection_holds() -> int:
    """How many workers and windows keep collection on the GUI thread now (0: Python's own)."""
    return _the_keeper().collector.holds


def start_worker(worker: GeneratorWorker, on_finished: Callable[[], None] | None = None) -> QThread:
    """Run ``worker`` in a new QThread and return the thread.

    ``on_finished`` (a slot of a GUI-thread QObject) is connected to the thread's ``finished``
    before the thread starts, so a job that ends at once is never missed. The worker and the
    thread are kept alive by this module until the thread has finished; callers need not hold
    references, and a tab closed mid-job never takes a running thread with it.
    """
    keeper = _the_keeper()
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # direct: QThread.quit is thread-safe, and the GUI thread may be blocked in wait_all
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if on_finished is not None:
        thread.finished.connect(on_finished)
    thread.finished.connect(keeper.release)
    keeper.keep(worker, thread)
    thread.start()
    return thread


class OneAtATime(QObject):
    """Runs one job at a time through :func:`start_worker`; the newest request wins.

    A job submitted while one runs waits; a newer submission replaces a waiting one, so a fast
    stream of requests (a digit being drawn, a slider dragged) never piles up threads. A job
    submitted with a ``cancel`` flag (:class:`engine.progress.CancelFlag`) is told to stop
    (``cancel()``) as soon as a newer
    job is submitted, so a long computation never delays the newest one by more than a step.
    ``job()`` returns an iterable of events, each handed to ``on_event`` on the GUI thread;
    errors go to ``on_error(message)``. Both go through this object's slots: a plain callable
    (a lambda) connected to the worker's signals would run in the worker's thread.
    """

    def __init__(self, parent: QObject, on_error: Callable[[str], None]) -> None:
        super().__init__(parent)
        self._on_error = on_error
        self._waiting: tuple | None = None
        self._running = False
        self._running_cancel: CancelFlag | None = None
        self._on_event: Callable[[object], None] = _ignore

    def submit(
        self,
        job: Callable[[], Iterable[object]],
        on_event: Callable[[object], None],
        essential: Callable[[object], bool] | None = None,
        cancel: CancelFlag | None = None,
    ) -> None:
        self._waiting = (job, on_event, essential, cancel)
        if self._running_cancel is not None:
            self._running_cancel.cancel()
        if not self._running:
            self._start()

    def cancel(self) -> None:
        """Drop the waiting job and ask the running one to stop (if it has a cancel flag)."""
        self._waiting = None
        if self._running_cancel is not None:
            self._running_cancel.cancel()

    def busy(self) -> bool:
        """True while a job runs (until its thread has finished) or waits."""
        return self._running or self._waiting is not None

    def _start(self) -> None:
        (job, on_event, essential, cancel), self._waiting = self._waiting, None
        worker = GeneratorWorker(job, essential=essential or _always)
        # the previous worker's events were all delivered before its thread finished
        self._on_event = on_event
        worker.yielded.connect(self._on_worker_yielded)
        worker.errored.connect(self._on_worker_errored)
        self._running = True
        self._running_cancel = cancel
        start_worker(worker, self._on_thread_finished)

    @Slot(object)
    def _on_worker_yielded(self, event: object) -> None:
        self._on_event(event)

    @Slot(str)
    def _on_worker_errored(self, message: str) -> None:
        self._on_error(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._running = False
        self._running_cancel = None
        if self._waiting is not None:
            self._start()


class ModelCopy:
    """A worker's own copy of a model, for the jobs of one :class:`OneAtATime` (which run one
    at a time). ``of(model, state)`` clones ``model`` the first time (in the worker: a
    2,000-node network's copy takes 0.15-0.25 s), keeps the clone while the model is the same
    object, and sets it to ``state`` (a :meth:`state_dict` copied when the job was asked for):
    a consistent snapshot while another thread keeps changing the model's weights.
    """

    def __init__(self) -> None:
        self._source: object | None = None
        self._copy = None

    def of(self, model, state: dict):
        if self._source is not model:
            self._copy, self._source = model.clone(), model
        self._copy.set_weights(state)
        return self._copy
