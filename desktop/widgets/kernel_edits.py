"""The kernel editor's stack as typed and its undo steps.

:class:`TypedKernel` is one kernel as the user types it (cell texts may be invalid for a
while); :class:`KernelEdit` is one undo step of one kernel: before/after snapshots, with typing
in one cell or in one of the divisor and offset boxes merged into one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QUndoCommand

from engine import filters as F


@dataclass
class TypedKernel:
    """One kernel of the stack as the editor holds it (texts may be invalid while typing)."""

    size: int
    texts: list[str]
    divisor: float = 1.0
    normalize: bool = False
    offset: float = 0.0
    name: str = ""

    def snapshot(self) -> tuple:
        return (self.size, list(self.texts), self.divisor, self.normalize, self.offset, self.name)

    @classmethod
    def from_snapshot(cls, snap: tuple) -> TypedKernel:
        size, texts, divisor, normalize, offset, name = snap
        return cls(size, list(texts), divisor, normalize, offset, name)

    @classmethod
    def from_spec(cls, spec: F.KernelSpec) -> TypedKernel:
        return cls(
            spec.size,
            [F.cell_text(v) for v in spec.kernel.ravel()],  # unrounded: as convolve uses it
            spec.divisor,
            spec.normalize,
            spec.offset,
            spec.name,
        )

    def spec(self) -> F.KernelSpec:
        """The engine's kernel; raises :class:`EngineError` while a cell is not a number."""
        matrix = np.array([F.parse_number(t) for t in self.texts]).reshape(self.size, self.size)
        return F.KernelSpec(matrix, self.divisor, self.normalize, self.offset, self.name)


class KernelEdit(QUndoCommand):
    """An edit of kernel ``index``: ``apply(index, snapshot)`` shows ``before`` on undo and
    ``after`` on redo; typing in one cell (``cell``: its index) or in the divisor or offset
    box (``"divisor"``, ``"offset"``) merges into one step."""

    def __init__(
        self,
        apply: Callable[[int, tuple], None],
        index: int,
        before: tuple,
        after: tuple,
        label: str,
        cell: int | str | None = None,
    ) -> None:
        super().__init__(label)
        self._apply, self.index, self.before, self.after = apply, index, before, after
        self.cell = cell

    def id(self) -> int:
        return 1 if self.cell is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, KernelEdit) or (other.index, other.cell) != (
            self.index,
            self.cell,
        ):
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self._apply(self.index, self.after)

    def undo(self) -> None:
        self._apply(self.index, self.before)
