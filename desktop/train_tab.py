"""The Train tab (placeholder until its issue lands)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.app_state import AppState


class TrainTab(QWidget):
    title = "Train"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        label = QLabel("The Train tab is coming soon.", alignment=Qt.AlignmentFlag.AlignCenter)
        QVBoxLayout(self).addWidget(label)
