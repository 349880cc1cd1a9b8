"""The box of the Train tab where a custom network is written in the text form.

A few wrapped lines rather than one line that scrolls sideways: a network of a dozen layers is
read whole. Enter starts a new line, which the text form reads as a new item (like a comma);
Tab moves on. ``mark(column, length)`` underlines the token an error names
(:class:`engine.archtext.ArchTextError` carries its place), so the user sees where the text
goes wrong as well as the message saying why.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QTextEdit, QWidget

from desktop.widgets.tone import surface

LINES = 4  # shown at once; a longer network scrolls


class ArchTextEdit(QPlainTextEdit):
    """``text()`` / ``setText()`` as a line edit; ``textChanged()`` on every edit."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="archText")
        self.setPlainText(text)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        margins = self.contentsMargins().top() + self.contentsMargins().bottom()
        spacing = self.fontMetrics().lineSpacing()
        margins += 2 * int(self.document().documentMargin()) + 4  # +4: the last line whole
        self.setFixedHeight(LINES * spacing + margins)

    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:  # QLineEdit's name: the box replaced one
        self.setPlainText(text)

    def mark(self, column: int, length: int) -> None:
        """Underline ``length`` characters from 1-based ``column`` (0: no mark); both count
        Python's characters (code points), as the engine's errors do."""
        text = self.toPlainText()
        end = column - 1 + length
        if column < 1 or length < 1 or end > len(text):
            column, length = 0, 0
        if not length:
            self.setExtraSelections([])
            return
        # the document counts UTF-16 units: an emoji or a 𝐜 (U+1D41C) before or in the token
        # is two of them (the mark had fallen short or covered half a character)
        start, end = _utf16_len(text[: column - 1]), _utf16_len(text[:end])
        cursor = QTextCursor(self.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        look = QTextCharFormat()
        look.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        look.setUnderlineColor(QColor("#b00020"))
        look.setBackground(surface("#fdecea", QApplication.palette(self)))
        selection = QTextEdit.ExtraSelection()
        selection.cursor = cursor
        selection.format = look
        self.setExtraSelections([selection])
        if not self.hasFocus():  # a text set or loaded, not typed: bring the mark into view
            place = QTextCursor(self.document())
            place.setPosition(end)
            self.setTextCursor(place)
            self.ensureCursorVisible()

    def marked(self) -> str:
        """The text under the mark as the box shows it ("" when nothing is marked)."""
        marks = self.extraSelections()
        return marks[0].cursor.selectedText() if marks else ""


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
