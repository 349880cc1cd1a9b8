"""Reusable widgets: image view, kernel grid, charts, network view, draw canvas, ..."""

from PySide6.QtWidgets import QScrollArea, QWidget


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` inside a frameless scroll area that resizes it (for panels taller than the
    window)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area
