"""The table of a batch of classified files: file, prediction, confidence; sortable, to CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from engine.errors import EngineError
from engine.preprocess import classify_images, prepare_digit_file

COLUMNS = ("File", "Prediction", "Confidence")


@dataclass(frozen=True)
class BatchRow:
    file: str  # the file's path
    prediction: str  # class name, or "" when the file could not be read
    confidence: float  # probability of the prediction (0..1); NaN when unreadable
    error: str = ""  # why the file could not be classified


@dataclass(frozen=True)
class BatchProgress:
    done: int  # files prepared so far
    total: int


def classify_files_steps(
    model, paths: list[Path], *, auto_invert: bool = True, center: bool = True
) -> Iterator[BatchProgress | list[BatchRow]]:
    """Prepare each file (yielding :class:`BatchProgress` after each), then classify them all
    in one batch and yield the rows, one per file, in the order given.

    An unreadable file or one without ink gets a row with its ``error`` instead of failing.
    Meant to run in a :class:`desktop.workers.GeneratorWorker`, with its own copy of the model.
    """
    rows: list[BatchRow | None] = []
    digits, where = [], []
    for path in paths:
        try:
            digits.append(prepare_digit_file(path, auto_invert=auto_invert, center=center).image)
            where.append(len(rows))
            rows.append(None)
        except EngineError as exc:
            rows.append(BatchRow(str(path), "", float("nan"), str(exc)))
        yield BatchProgress(len(rows), len(paths))
    if digits:
        probs = classify_images(model, digits)
        for i, p in zip(where, probs, strict=True):
            k = int(np.argmax(p))
            rows[i] = BatchRow(str(paths[i]), str(model.classes[k]), float(p[k]))
    yield [r for r in rows if r is not None]


def classify_files(
    model, paths: list[Path], *, auto_invert: bool = True, center: bool = True
) -> list[BatchRow]:
    """:func:`classify_files_steps` run to the end: the rows."""
    *_progress, rows = classify_files_steps(model, paths, auto_invert=auto_invert, center=center)
    return rows


class _NumberItem(QTableWidgetItem):
    """Sorts by its numeric value, shows formatted text."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self._value = value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        other_value = getattr(other, "_value", None)
        if other_value is None:
            return super().__lt__(other)
        # unreadable files (NaN) sort below every confidence
        a = -1.0 if self._value != self._value else self._value
        b = -1.0 if other_value != other_value else other_value
        return a < b


class BatchTable(QTableWidget):
    """Rows of :class:`BatchRow`; click a header to sort."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("batchTable")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.setSortingEnabled(True)
        self._rows: list[BatchRow] = []

    def set_rows(self, rows: list[BatchRow]) -> None:
        self._rows = list(rows)
        self.setSortingEnabled(False)  # filling a sorting table scrambles rows
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            name = QTableWidgetItem(Path(row.file).name)
            name.setToolTip(row.error or row.file)
            name.setData(Qt.ItemDataRole.UserRole, row.file)
            prediction = QTableWidgetItem(row.prediction if not row.error else "unreadable")
            prediction.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            if row.error:
                prediction.setToolTip(row.error)
            text = "" if row.error else f"{row.confidence:.1%}"
            confidence = _NumberItem(text, row.confidence)
            confidence.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(r, 0, name)
            self.setItem(r, 1, prediction)
            self.setItem(r, 2, confidence)
        self.setSortingEnabled(True)

    def rows(self) -> list[BatchRow]:
        """The rows in the order they were given (not the display order)."""
        return list(self._rows)

    def displayed_files(self) -> list[str]:
        """File paths in the order shown (after sorting)."""
        return [str(self.item(r, 0).data(Qt.ItemDataRole.UserRole)) for r in range(self.rowCount())]

    def export_csv(self, path: Path) -> None:
        """Write the rows, in display order, as CSV: file, prediction, confidence, error."""
        by_file = {row.file: row for row in self._rows}
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "prediction", "confidence", "error"])
            for name in self.displayed_files():
                row = by_file[name]
                confidence = "" if row.error else f"{row.confidence:.4f}"
                writer.writerow([row.file, row.prediction, confidence, row.error])
