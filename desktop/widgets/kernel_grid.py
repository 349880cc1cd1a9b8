"""An editable grid of kernel weights (1x1, 3x3, 5x5 or 7x7).

Each cell takes a number or a fraction (``1/9``); characters that can never be part of one are
refused as they are typed (and ``input_refused`` is emitted so the owner can say why); text
that is not (yet) a number turns the cell red with the reason in its tooltip. Arrow keys move
between cells (left/right when the cursor is at the text's edge), Tab and Shift+Tab go in
reading order. Ctrl+Z / Ctrl+Shift+Z inside a cell emit ``undo_requested`` / ``redo_requested``:
the owner keeps the undo stack (several kernels may share one grid). Ctrl+V of more than one
number (rows copied from a text or a spreadsheet) emits ``kernel_pasted(text)`` for the owner
to fill the grid with.

Cells are tinted by their value: warm for positive weights, cool for negative ones.

Signals: ``texts_edited(before, after)`` (lists of cell texts, on every user keystroke),
``kernel_pasted(text)``,
``validity_changed(message)`` ("" when every cell holds a number), ``input_refused()``,
``undo_requested()``, ``redo_requested()``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QRegularExpressionValidator,
)
from PySide6.QtWidgets import QGridLayout, QLineEdit, QSizePolicy, QWidget

from engine.filters import KernelError, kernel_cells, parse_number

# what a cell may hold while typing: digits, sign, point, slash, exponent, spaces; and a
# comma, so a decimal comma (0,5) turns the cell red with the reason instead of leaving 05
_ALLOWED = QRegularExpression("^[0-9\\s.,+\\-\u2212/eE]*$")


class _Cell(QLineEdit):
    def __init__(self, grid: KernelGrid, index: int) -> None:
        super().__init__(grid)
        self._grid = grid
        self.index = index
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setValidator(QRegularExpressionValidator(_ALLOWED, self))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Paste):
            text = QGuiApplication.clipboard().text()
            if sum(map(len, kernel_cells(text))) > 1 and not _is_number(text):
                self._grid.kernel_pasted.emit(text)  # rows of numbers: a whole kernel
                return
        if event.matches(QKeySequence.StandardKey.Undo):
            self._grid.undo_requested.emit()
            return
        if event.matches(QKeySequence.StandardKey.Redo) or (
            event.key() == Qt.Key.Key_Z
            and event.modifiers()
            == (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        ):
            self._grid.redo_requested.emit()
            return
        key = event.key()
        n = self._grid.kernel_size()
        r, c = divmod(self.index, n)
        move = None
        if key == Qt.Key.Key_Up:
            move = (r - 1, c)
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            move = (r + 1, c)
        elif key == Qt.Key.Key_Left and self.cursorPosition() == 0 and not self.hasSelectedText():
            move = (r, c - 1)
        elif (
            key == Qt.Key.Key_Right
            and self.cursorPosition() == len(self.text())
            and not self.hasSelectedText()
        ):
            move = (r, c + 1)
        if move is not None:
            mr, mc = move
            if 0 <= mr < n and 0 <= mc < n:
                self._grid.focus_cell(mr, mc)
            return
        super().keyPressEvent(event)


class KernelGrid(QWidget):
    texts_edited = Signal(list, list)
    kernel_pasted = Signal(str)
    validity_changed = Signal(str)
    input_refused = Signal()
    undo_requested = Signal()
    redo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("kernelGrid")
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self._cells: list[_Cell] = []
        self._texts: list[str] = []
        self._message = ""
        self.set_texts(3, ["0", "0", "0", "0", "1", "0", "0", "0", "0"])

    # ----- content ------------------------------------------------------------------------
    def kernel_size(self) -> int:
        """The kernel's side: 3, 5 or 7."""
        return round(len(self._cells) ** 0.5)

    def cells(self) -> list[QLineEdit]:
        return list(self._cells)

    def cell(self, row: int, col: int) -> QLineEdit:
        return self._cells[row * self.kernel_size() + col]

    def texts(self) -> list[str]:
        return [c.text() for c in self._cells]

    def set_texts(self, size: int, texts: list[str]) -> None:
        """Show ``texts`` (row-major, ``size * size``) without emitting ``texts_edited``."""
        if size != self.kernel_size() or len(self._cells) != size * size:
            self._rebuild(size)
        for cell, text in zip(self._cells, texts, strict=True):
            if cell.text() != text:  # keep the cursor where the user is typing
                cell.setText(text)
                if not cell.hasFocus():  # a long exact weight shows its start: 0.0377190...
                    cell.setCursorPosition(0)
        self._texts = self.texts()
        self._revalidate()

    def kernel(self) -> np.ndarray | None:
        """The kernel as float64 ``(F, F)``, or None while a cell is not a number."""
        try:
            values = [parse_number(t) for t in self.texts()]
        except KernelError:
            return None
        n = self.kernel_size()
        return np.array(values, dtype=np.float64).reshape(n, n)

    def message(self) -> str:
        return self._message

    def focus_cell(self, row: int, col: int) -> None:
        cell = self.cell(row, col)
        cell.setFocus(Qt.FocusReason.TabFocusReason)
        cell.selectAll()

    # ----- internals ----------------------------------------------------------------------
    def _rebuild(self, size: int) -> None:
        for cell in self._cells:
            self._layout.removeWidget(cell)
            cell.deleteLater()
        self._cells = []
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * (1.1 if size <= 3 else 0.95 if size == 5 else 0.85))
        height = {1: 34, 3: 34, 5: 30, 7: 26}[size]
        for i in range(size * size):
            cell = _Cell(self, i)
            cell.setFont(font)
            cell.setFixedHeight(height)
            cell.setMinimumWidth(30)
            cell.setObjectName(f"kernelCell_{i // size}_{i % size}")
            cell.textEdited.connect(self._on_cell_text_edited)
            cell.inputRejected.connect(self.input_refused)
            self._layout.addWidget(cell, i // size, i % size)
            self._cells.append(cell)
        for a, b in zip(self._cells, self._cells[1:], strict=False):
            QWidget.setTabOrder(a, b)

    def _on_cell_text_edited(self, _text: str) -> None:
        before = self._texts
        self._texts = self.texts()
        self._revalidate()
        self.texts_edited.emit(before, list(self._texts))

    def _revalidate(self) -> None:
        message = ""
        values = []
        for cell in self._cells:
            try:
                values.append(parse_number(cell.text()))
                cell.setToolTip("")
                cell.setProperty("bad", False)
            except KernelError as exc:
                values.append(0.0)
                r, c = divmod(cell.index, self.kernel_size())
                text = f"row {r + 1}, column {c + 1}: {exc}"
                message = message or text
                cell.setToolTip(text)
                cell.setProperty("bad", True)
        peak = max((abs(v) for v in values), default=0.0) or 1.0
        for cell, v in zip(self._cells, values, strict=True):
            cell.setStyleSheet(_cell_style(v / peak, bool(cell.property("bad"))))
        if message != self._message:
            self._message = message
            self.validity_changed.emit(message)


def _is_number(text: str) -> bool:
    """One cell's number, spaces and all (``1 / 9``), not a kernel of several."""
    try:
        parse_number(text)
    except KernelError:
        return False
    return True


def _cell_style(t: float, bad: bool) -> str:
    """Background tint for a weight scaled to -1..1: warm positive, cool negative."""
    if bad:
        return (
            "QLineEdit { background: #ffe3e3; border: 2px solid #d93025; border-radius: 4px;"
            " color: #8b0000; }"
        )
    a = min(abs(t), 1.0)
    base = (255, 255, 255)
    tint = (255, 183, 120) if t > 0 else (130, 170, 255)
    rgb = tuple(round(b + (c - b) * a * 0.8) for b, c in zip(base, tint, strict=True))
    weight = "bold" if abs(t) > 1e-12 else "normal"
    color = "#202124" if abs(t) > 1e-12 else "#9aa0a6"
    return (
        f"QLineEdit {{ background: rgb{rgb}; border: 1px solid #c4c7cc; border-radius: 4px;"
        f" color: {color}; font-weight: {weight}; }}"
        " QLineEdit:focus { border: 2px solid #1a73e8; }"
    )
