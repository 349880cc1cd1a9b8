"""Qt setup of the GUI tests: the binding work-arounds and settings in a temporary place."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

import desktop.qt_compat  # noqa: F401  (binding work-arounds, as the app applies them)


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """A QSettings in an INI file under tmp_path, so tests never touch the user's settings."""
    return QSettings(str(tmp_path / "convscope.ini"), QSettings.Format.IniFormat)
