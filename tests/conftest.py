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


@pytest.fixture
def one_blas_thread():
    """BLAS on one thread: on a busy machine 2-thread OpenBLAS is up to 10x slower here."""
    from threadpoolctl import threadpool_limits  # a runtime dependency

    with threadpool_limits(1, user_api="blas"):
        yield
