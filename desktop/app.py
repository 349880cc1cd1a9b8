"""The QApplication and ``main()`` of the ConvScope window."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Open the ConvScope window and run the event loop; returns the exit status."""
    from PySide6.QtWidgets import QApplication

    import desktop.qt_compat  # noqa: F401  (binding work-arounds, before any widget)
    from desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("ConvScope")
    app.setOrganizationName("ConvScope")
    from desktop.workers import wait_for_all

    window = MainWindow()
    window.show()
    status = app.exec()
    wait_for_all()  # a job started while quitting (e.g. a last preview) must not outlive the app
    return status
