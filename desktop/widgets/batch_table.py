"""The table of a batch of classified files: file, prediction, confidence, problem; to CSV.

The rows are :class:`engine.inference.FileResult` (classified off the GUI thread by
:func:`engine.inference.classify_files_steps`). Files are shown by their path relative to the
folder they were dropped from; a file that could not be classified shows the reason.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets import plain_tip
from desktop.widgets.tone import readable
from desktop.workers import OneAtATime
from engine.atomic import atomic_write
from engine.inference import FileResult, classify_files_steps
from engine.progress import Progress

COLUMNS = ("File", "Prediction", "Confidence", "Problem")
FILE_WIDTH = 220  # the File column's width, narrower when the table is: see fit_file_column
MIN_FILE_WIDTH = 120
BatchRow = FileResult  # one row of the table


def relative_name(file: str, root: Path | None) -> str:
    """``file`` relative to ``root`` (the folder the batch was dropped from), else as given."""
    if root is None:
        return file
    try:
        return os.path.relpath(file, root)
    except ValueError:  # another drive (Windows)
        return file


def _problem_colour(table: QTableWidget) -> QColor:
    """The red of a file's problem, readable on the table's base (dark on a dark desktop)."""
    palette = QApplication.palette(table)
    return readable(QColor(192, 57, 43), palette, palette.color(QPalette.ColorRole.Base))


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
        self.setTabKeyNavigation(False)  # Tab leaves the table (the arrow keys move in it)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long path keeps its file name
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setColumnWidth(0, FILE_WIDTH)
        # Qt's first sort is descending: a dropped folder would be listed z to a
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self._rows: list[FileResult] = []

    def set_rows(self, rows: list[FileResult], root: Path | None = None) -> None:
        """Show ``rows``; file names relative to ``root`` (the dropped folder's parent)."""
        self._rows = list(rows)
        self.setSortingEnabled(False)  # filling a sorting table scrambles rows
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            name = QTableWidgetItem(relative_name(row.file, root))
            name.setToolTip(plain_tip(row.file))
            name.setData(Qt.ItemDataRole.UserRole, r)  # an index: Qt drops undecodable names
            prediction = QTableWidgetItem(row.prediction if not row.error else "–")
            prediction.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            text = "" if row.error else f"{row.confidence:.1%}"
            confidence = _NumberItem(text, row.confidence)
            confidence.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            problem = QTableWidgetItem(row.error)
            problem.setToolTip(plain_tip(row.error))
            problem.setForeground(_problem_colour(self))
            if row.error:  # the whole row tells why: a narrow table has Problem out of sight
                name.setToolTip(plain_tip(f"{row.file}: {row.error}"))
                for item in (prediction, confidence):
                    item.setToolTip(plain_tip(row.error))
            for column, item in enumerate((name, prediction, confidence, problem)):
                self.setItem(r, column, item)
        self.setSortingEnabled(True)
        self.fit_file_column()  # Prediction's width follows its contents

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_file_column()

    def fit_file_column(self) -> None:
        """A narrow table (a 1024-pixel window) narrows the File column (names are elided in
        the middle) so that Prediction and Confidence stay in sight."""
        others = self.columnWidth(1) + self.columnWidth(2)
        room = self.viewport().width() - others
        self.setColumnWidth(0, max(MIN_FILE_WIDTH, min(FILE_WIDTH, room)))

    def rows(self) -> list[FileResult]:
        """The rows in the order they were given (not the display order)."""
        return list(self._rows)

    def displayed_rows(self) -> list[FileResult]:
        """The rows in the order shown (after sorting)."""
        order = [
            int(self.item(r, 0).data(Qt.ItemDataRole.UserRole)) for r in range(self.rowCount())
        ]
        return [self._rows[i] for i in order]

    def displayed_files(self) -> list[str]:
        """File paths in the order shown (after sorting)."""
        return [row.file for row in self.displayed_rows()]

    def export_csv(self, path: Path) -> None:
        """Write the rows, in display order, as CSV: file, prediction, confidence, error.

        Atomic (:func:`engine.atomic.atomic_write`): a full disk never leaves a truncated file
        where a good one was. Raises OSError.
        """
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(["file", "prediction", "confidence", "error"])
        for row in self.displayed_rows():
            confidence = "" if row.error else f"{row.confidence:.4f}"
            writer.writerow([row.file, row.prediction, confidence, row.error])
        data = text.getvalue().encode("utf-8", "surrogateescape")
        atomic_write(path, lambda f: f.write(data))


class BatchPage(QWidget):
    """The "Batch results" page: the table, a status line and Export CSV….

    :meth:`classify` runs :func:`engine.inference.classify_files_steps` off the GUI thread
    (the newest batch wins). Signals: ``batch_classified(rows)``, ``file_opened(path)`` on a
    double-click, ``message(text, status)`` for the tab's message line and status bar.
    """

    batch_classified = Signal(object)
    file_opened = Signal(object)
    message = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = BatchTable()
        self.table.setToolTip("Double-click a file to look at it inside the network")
        self.table.cellActivated.connect(self._on_table_cell_activated)  # double-click, Enter
        self.export_button = QPushButton("Export CSV…", objectName="exportCsvButton")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.status = QLabel(
            "Drop several image files or a folder to classify them all.",
            objectName="batchStatus",
            wordWrap=True,
        )
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self._jobs = OneAtATime(self, lambda text: self.message.emit(text, ""))
        self._root: Path | None = None
        self._paths: list[Path] = []  # the last batch, classified again for a new model
        self._label = ""  # the model that classifies it
        self._request = 0  # the newest batch; an older one's results are dropped

    def classify(
        self, model, paths: list[Path], root: Path | None, label: str = "", **options
    ) -> None:
        """Classify ``paths`` with ``model`` (called ``label``) and fill the table. The worker
        classifies with its own copy (layers keep buffers between calls), made there: copying a
        2,000-node network takes a moment. A batch asked for earlier never fills the table."""
        self._paths, self._root, self._label = list(paths), root, label
        self._request += 1
        request = self._request
        self._jobs.submit(
            lambda: classify_files_steps(model.clone(), paths, **options),
            lambda event: self._on_job_yielded(request, event),
            essential=lambda event: isinstance(event, list),
        )
        self.message.emit("", f"Classifying {len(paths)} files…")

    def reclassify(self, model, label: str = "", **options) -> bool:
        """The last batch again, with ``model``: the table follows the model in use. False
        when there is no batch."""
        if not self._paths:
            return False
        self.classify(model, self._paths, self._root, label, **options)
        return True

    def busy(self) -> bool:
        return self._jobs.busy()

    def _on_job_yielded(self, request: int, event) -> None:
        if request != self._request:
            return  # stale: a newer batch (or model) was asked for meanwhile
        if isinstance(event, Progress):
            self.status.setText(f"Preparing file {event.done} of {event.total}…")
            return
        self.table.set_rows(event, self._root)
        bad = sum(1 for r in event if r.error)
        by = f" by {self._label}" if self._label else ""
        self.status.setText(
            f"{len(event)} files classified{by}"
            + (f"; {bad} could not be classified" if bad else "")
        )
        self.message.emit(
            f"{bad} of {len(event)} files could not be classified (see Problem)" if bad else "",
            f"Classified {len(event)} files",
        )
        self.batch_classified.emit(event)

    def _on_table_cell_activated(self, row: int, _column: int) -> None:
        self.file_opened.emit(Path(self.table.displayed_files()[row]))

    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export CSV", "predictions.csv", "CSV (*.csv)")
        if name:
            self.export_csv(Path(name))

    def export_csv(self, path: Path) -> bool:
        """The table as CSV, written atomically (a full disk keeps the old file)."""
        try:
            self.table.export_csv(path)
        except OSError as exc:
            self.message.emit(f"Could not write {path}: {exc.strerror or exc}", "")
            return False
        self.message.emit("", f"Saved {path}")
        return True
