"""Test setup for every test: randomness is explicit, BLAS can be held to one thread.

No Qt import here: engine tests must run without Qt (``tests/test_boundaries.py`` checks). The Qt
setup of the GUI tests is in ``tests/desktop/conftest.py``; only the platform is chosen here, as an
environment variable, so a GUI test anywhere gets an offscreen Qt.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # read by Qt when the app is made

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def one_blas_thread():
    """BLAS on one thread: on a busy machine 2-thread OpenBLAS is up to 10x slower here."""
    from threadpoolctl import threadpool_limits  # a runtime dependency

    with threadpool_limits(1, user_api="blas"):
        yield
