"""The one progress shape and the one cancellation protocol of long engine work.

Long work (a training run, an evaluation, a dataset load) is a plain generator or function. It
reports how far it got with :class:`Progress` events (small, immutable) and checks a control
object between steps: anything with a ``cancelled`` attribute (:class:`Cancellable`), e.g. a
:class:`CancelFlag` or a ``training.TrainControl`` (which adds pause and step). When
``cancelled`` turns true the work ends at the next step; it never raises for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


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
