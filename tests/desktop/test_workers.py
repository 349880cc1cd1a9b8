"""desktop.workers: garbage made while a worker runs is collected on the GUI thread."""

from __future__ import annotations

import gc
import threading
import time

from PySide6.QtCore import QObject

from desktop.workers import GeneratorWorker, start_worker


class _Cyclic(QObject):
    """A parentless Qt object in a reference cycle: only a cycle collection frees it; it notes
    the thread that did."""

    def __init__(self, freed_on: list[str]) -> None:
        super().__init__()
        self.me = self
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


def test_a_cycle_dropped_while_a_worker_allocates_is_freed_on_the_gui_thread(qtbot):
    """A Qt object (a tab a test made, a window) collected in a worker thread is destroyed
    there, which crashed the process: a worker's allocations no longer set off a collection
    in its thread, the GUI thread collects meanwhile, and automatic collection is back once
    the worker is over."""
    freed_on: list[str] = []

    def job():
        # fifty collections' worth of new containers, kept until the cycle is freed
        junk = [[i] for i in range(50 * max(gc.get_threshold()[0], 1))]
        end = time.monotonic() + 10
        while not freed_on and time.monotonic() < end:
            time.sleep(0.01)
        yield len(junk)

    gc.collect()
    _Cyclic(freed_on)  # garbage at once
    thread = start_worker(GeneratorWorker(job))
    assert not gc.isenabled()
    qtbot.waitUntil(thread.isFinished, timeout=20_000)
    assert freed_on == [threading.main_thread().name]
    qtbot.waitUntil(gc.isenabled, timeout=5_000)
