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


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Every test's per-user cache (downloads, What-it-learned grids) is a temporary folder, so
    no test reads or writes the user's real ``~/.cache/convscope``; a test may still set its own."""
    old = os.environ.get("CONVSCOPE_CACHE")
    os.environ["CONVSCOPE_CACHE"] = str(tmp_path_factory.mktemp("convscope-cache"))
    yield
    if old is None:
        os.environ.pop("CONVSCOPE_CACHE", None)
    else:
        os.environ["CONVSCOPE_CACHE"] = old


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def one_blas_thread():
    """BLAS on one thread: on a busy machine 2-thread OpenBLAS is up to 10x slower here."""
    from threadpoolctl import threadpool_limits  # a runtime dependency

    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread while a test compares against it: on a busy 2-core machine its
    2-thread kernels are up to 100x slower. For test files that import torch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def disk_full_at(monkeypatch):
    """``disk_full_at(atomic, out, spare)``: writes to ``out`` through the ``atomic`` module
    (the engine's, or the copy embedded in an exported file) fail as on a full disk, and its
    rescue files go to ``spare``."""
    import errno
    from pathlib import Path

    def arrange(atomic, out, spare) -> None:
        real = atomic.atomic_write

        def full_at_out(path, write):
            if Path(path) == Path(out):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, write)

        monkeypatch.setattr(atomic, "atomic_write", full_at_out)
        monkeypatch.setattr(atomic, "rescue_folders", lambda: [spare])

    return arrange
