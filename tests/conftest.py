"""Test setup: Qt runs offscreen, settings go to a temporary place, randomness is explicit."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

import desktop.qt_compat  # noqa: F401  (binding work-arounds, as the app applies them)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def settings(tmp_path):
    """A QSettings in an INI file under tmp_path, so tests never touch the user's settings."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "convscope.ini"), QSettings.Format.IniFormat)
