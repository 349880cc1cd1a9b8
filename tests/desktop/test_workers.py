"""desktop.workers: garbage made while a worker runs is collected on the GUI thread."""

from __future__ import annotations

import gc
import threading
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject

from desktop.workers import GeneratorWorker, OneAtATime, collection_holds, start_worker


class _Cyclic(QObject):
    """A parentless Qt object in a reference cycle: only a cycle collection frees it; it notes
    the thread that did."""

    def __init__(self, freed_on: list[str]) -> None:
        super().__init__()
        self.me = self
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


def _settled_holds() -> int:
    """The holds once the garbage and deferred deletes of earlier tests are gone (a tab they
    made gives its hold back only when it is destroyed)."""
    for _ in range(2):
        gc.collect()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return collection_holds()


def test_a_cycle_dropped_while_a_worker_allocates_is_freed_on_the_gui_thread(qtbot):
    """A Qt object (a tab a test made, a window) collected in a worker thread is destroyed
    there, which crashed the process: a worker's allocations no longer set off a collection
    in its thread, the GUI thread collects meanwhile, and the worker's hold is given back once
    it is over."""
    freed_on: list[str] = []

    def job():
        # fifty collections' worth of new containers, kept until the cycle is freed
        junk = [[i] for i in range(50 * max(gc.get_threshold()[0], 1))]
        end = time.monotonic() + 10
        while not freed_on and time.monotonic() < end:
            time.sleep(0.01)
        yield len(junk)

    holds = _settled_holds()
    _Cyclic(freed_on)  # garbage at once
    thread = start_worker(GeneratorWorker(job))
    assert not gc.isenabled() and collection_holds() == holds + 1
    qtbot.waitUntil(thread.isFinished, timeout=20_000)
    assert freed_on == [threading.main_thread().name]
    qtbot.waitUntil(lambda: collection_holds() == holds, timeout=5_000)
    assert gc.isenabled() == (holds == 0)


def test_the_main_window_collects_on_the_gui_thread_until_closed_or_destroyed(qtbot, settings):
    """The engine's own thread pools (the Filters tab's bands, training shards) run Python
    beside GUI-thread calls too: while a window is open, no other thread collects."""
    from desktop.main_window import MainWindow

    holds = _settled_holds()
    closed = MainWindow(settings=settings)
    each = collection_holds() - holds  # the window's and its three tabs' (each tab holds too)
    assert each == 4 and not gc.isenabled()
    dropped = MainWindow(settings=settings)
    assert collection_holds() == holds + 2 * each
    closed.show()
    closed.close()  # the window gives its own back; its tabs keep theirs until destroyed
    assert collection_holds() == holds + 2 * each - 1
    dropped.deleteLater()  # never shown nor closed
    qtbot.waitUntil(lambda: collection_holds() == holds + each - 1, timeout=5_000)
    closed.deleteLater()
    qtbot.waitUntil(lambda: collection_holds() == holds, timeout=5_000)
    assert gc.isenabled() == (holds == 0)


def test_a_tab_without_a_window_collects_on_the_gui_thread_until_destroyed(qtbot):
    """A tab made on its own (as tests and embedders do) holds collection too: the engine's
    thread pools (a colour image's classification, the Filters tab's bands) run Python beside
    its GUI-thread layout, and a collection there could destroy an old tab's network view in
    the middle of its layout (the likely cause of a segmentation fault seen in two of eight
    runs of the desktop tests: the view was deleted between two lines of its resizeEvent)."""
    from desktop.app_state import AppState
    from desktop.classify_tab import ClassifyTab

    holds = _settled_holds()
    tab = ClassifyTab(AppState())
    assert collection_holds() == holds + 1 and not gc.isenabled()
    tab.deleteLater()
    qtbot.waitUntil(lambda: collection_holds() == holds, timeout=5_000)
    assert gc.isenabled() == (holds == 0)


def test_a_release_after_qt_deleted_the_timer_says_nothing(qtbot):
    """At interpreter exit Qt can delete the collector's timer before a window whose
    destruction then releases its hold: "Internal C++ object (QTimer) already deleted" was
    printed as the program ended. The release still gives collection back."""
    import shiboken6

    from desktop.workers import _Collector

    was = gc.isenabled()
    collector = _Collector()
    collector.hold()
    assert not gc.isenabled()
    shiboken6.delete(collector._timer)
    collector.release()
    assert gc.isenabled() == was and collector.holds == 0


def test_one_at_a_time_hands_events_and_errors_to_a_lambda_on_the_gui_thread(qtbot):
    """A batch of files dropped on the Classify tab: the table was filled in the worker's
    thread ('QBasicTimer::start: Timers cannot be started from another thread'), as a lambda
    given as on_event (or on_error) ran in the thread of the worker that emitted."""
    from engine.errors import EngineError

    owner = QObject()
    seen: list[tuple[str, bool]] = []
    gui = threading.current_thread()
    jobs = OneAtATime(owner, lambda text: seen.append((text, threading.current_thread() is gui)))

    def job():
        yield "one"
        raise EngineError("broken")

    jobs.submit(job, lambda event: seen.append((event, threading.current_thread() is gui)))
    qtbot.waitUntil(lambda: not jobs.busy() and len(seen) == 2)
    assert seen == [("one", True), ("broken", True)]
