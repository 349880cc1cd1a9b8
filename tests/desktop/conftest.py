"""Qt setup of the GUI tests: the binding work-arounds and settings in a temporary place."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

import desktop.qt_compat  # noqa: F401  (binding work-arounds, as the app applies them)


@pytest.fixture(autouse=True)
def _no_unanswered_question(monkeypatch):
    """A question nobody answers would block the test forever (closing a window with a trained
    model asks whether to save it): it fails instead. A test that expects one patches
    ``QMessageBox.question`` itself."""

    def question(_parent, title, text, *_args, **_kwargs):
        raise AssertionError(f"unanswered question {title!r}: {text}")

    monkeypatch.setattr(QMessageBox, "question", question)


@pytest.fixture(autouse=True)
def _no_window_left_on_screen(qtbot):
    """Windows a test leaves open (a tab's own window, such as the step explainer's, lives as
    long as its tab) are hidden afterwards: on the offscreen screen they would lie over the
    next test's widgets and take its mouse moves. Hidden, not closed: closing may ask
    questions (an unsaved model) that only the test itself can answer."""
    yield
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible():
            widget.hide()


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """A QSettings in an INI file under tmp_path, so tests never touch the user's settings."""
    return QSettings(str(tmp_path / "convscope.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def filters_window(qtbot, settings):
    """A main window at 1280x820 on the Filters tab, its first result shown and no tab busy."""
    from desktop.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    win.tabs.setCurrentWidget(win.filters_tab)
    tab = win.filters_tab
    qtbot.waitUntil(lambda: tab.result() is not None and not tab.is_computing(), timeout=10000)
    tabs = [win.tabs.widget(i) for i in range(win.tabs.count())]
    busy = [t for t in tabs if hasattr(t, "is_busy")]
    qtbot.waitUntil(lambda: not any(t.is_busy() for t in busy), timeout=30000)
    return win
