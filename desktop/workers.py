"""The one threading pattern of the app: a plain engine generator driven by a QObject worker.

A :class:`GeneratorWorker` is moved to its own :class:`QThread`. It loops over the iterable the
job returns (an engine generator such as training or full-resolution filtering) and emits each
event it yields as plain data. Cancellation and pause are cooperative: the engine generator checks
its own control object between steps, so the worker never kills a thread and the GUI thread
never ``wait()``s on one. ``finished`` is always emitted, from a ``finally``.

Throttling happens here, at the source: at most one non-essential event per ``min_interval``
seconds reaches the GUI (about 20 a second), whatever the batch rate; events for which
``essential(event)`` is true (epoch summaries, the final result) always pass.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QThread, Signal, Slot


def _always(_event: object) -> bool:
    return True


class GeneratorWorker(QObject):
    """Runs ``job()`` off the GUI thread and emits what it yields.

    Signals (past tense): ``yielded(event)``, ``errored(message)``, ``finished()``.
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
        except Exception as exc:  # reported to the GUI, never lost in a thread
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.errored.emit(detail)
        finally:
            self.finished.emit()


def start_worker(worker: GeneratorWorker, parent: QObject) -> QThread:
    """Move ``worker`` to a new thread owned by ``parent`` and start it.

    The thread quits when the worker finishes; both are deleted later by Qt. Keep a reference to
    the returned thread (and the worker) for as long as the job runs.
    """
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.finished.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
