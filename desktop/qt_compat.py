"""Work-arounds for known bugs of the Qt binding, applied once before any widget is made.

PySide6 6.12.0 on CPython 3.11 drops one reference to ``None``/``True``/``False`` on every
``Signal.emit`` and void method call, so a busy GUI dies with "Fatal Python error:
bool_dealloc" after a few hundred emits. ``pyproject.toml`` therefore asks for PySide6 < 6.12;
this guard keeps an environment that has 6.12 anyway alive: those singletons are never freed,
so raising their reference counts far out of reach is harmless (CPython 3.12+ makes them
immortal, and there the guard does nothing).
"""

from __future__ import annotations

import sys


def guard_singleton_refcounts() -> None:
    """Raise the reference counts of None/True/False out of reach of the PySide6 6.12 leak."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import PySide6

    if not PySide6.__version__.startswith("6.12."):
        return
    import ctypes

    for obj in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))
        if count.value < 1 << 40:
            count.value += 1 << 40


guard_singleton_refcounts()


def preload_pillow_plugins() -> None:
    """Import all of Pillow's format plugins now, on the main thread.

    Pillow imports most plugins lazily, the first time a file is not one of the common formats
    (``Image.init()`` inside ``Image.open``). When that first happens in a worker thread (an
    image decoded off the GUI thread) while the GUI thread runs, the import can crash the
    process under PySide6 (a segmentation fault inside the plugin's module code, seen with
    Python 3.11). Importing them once up front leaves nothing to import later.
    """
    from PIL import Image

    Image.init()


preload_pillow_plugins()
