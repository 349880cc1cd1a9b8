"""The one progress shape and the one cancellation protocol of long engine work.

Long work (a training run, an evaluation, a dataset load) is a plain generator or function. It
reports how far it got with :class:`Progress` events (small, immutable) and checks a control
object between steps: anything with a ``cancelled`` attribute (:class:`Cancellable`), e.g. a
:class:`CancelFlag` or a ``training.TrainControl`` (which adds pause and step). When
``cancelled`` turns true the work ends at the next step; it never raises for it.
:func:`run_through` drives such work to its end where nothing else is shown meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class Cancellable(Protocol):
    """What long work checks between its steps."""

    @property
    def cancelled(self) -> bool: ...


class CancelFlag:
    """Thread-safe: another thread calls ``cancel()``, the work reads ``cancelled``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (images, files, batches) of one ``stage`` ("evaluate", ...)."""

    stage: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total > 0 else 1.0


def run_through(
    events: Iterable[Progress | T], report: Callable[[Progress], None] | None = None
) -> T | None:
    """Drive long work to its end: each :class:`Progress` goes to ``report``; returns the last
    other item (the result), or None when none came (the work was cancelled)."""
    result = None
    for item in events:
        if isinstance(item, Progress):
            if report is not None:
                report(item)
        else:
            result = item
    return result
