"""Reusable widgets: image view, kernel grid, charts, network view, draw canvas, ..."""

from html import escape
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QPushButton, QScrollArea, QSizePolicy, QWidget


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` as written. Qt takes a tooltip with a tag before its first
    line break for markup, so a class or file named ``<b>cat`` would show bold and swallow the
    rest; text holding ``<`` or ``&`` is escaped into explicit rich text, line breaks kept."""
    if "<" not in text and "&" not in text:
        return text
    return "<p style='white-space:pre-wrap'>" + escape(text) + "</p>"


def compact(button: QPushButton) -> QPushButton:
    """``button`` may shrink to its text (the style's minimum of about 80 px is for roomy
    windows): a row of buttons in a small window narrows them before it cuts any text."""
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 24)
    button.setSizePolicy(QSizePolicy.Policy.Preferred, button.sizePolicy().verticalPolicy())
    return button


class FitContent(QWidget):
    """The content of a resizable scroll area that scrolls only when its layout's MINIMUM does
    not fit. QScrollArea makes a height-for-width content (one with word-wrapped labels) as tall
    as its preferred height, so a window that could show everything, slightly squeezed, showed
    a scroll bar and cut the bottom instead."""

    def heightForWidth(self, width: int) -> int:
        layout = self.layout()
        if layout is None:
            return super().heightForWidth(width)
        return layout.totalMinimumHeightForWidth(width)


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` inside a frameless scroll area that resizes it (for panels taller than the
    window)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def replace_allowed(parent: QWidget, typed: str, path: Path, what: str) -> bool:
    """True when ``path`` may be written. The save dialog asked about replacing the name the
    user ``typed``; when the chosen kind's suffix made it another file that exists, ask now
    (``what`` is being saved: "model", "result")."""
    if path == Path(typed) or not path.exists():
        return True
    button = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent,
        "Replace the file?",
        f"{path.name} already exists in {path.parent}. Replace it with this {what}?",
        button.Yes | button.No,
        button.No,
    )
    return answer == button.Yes
