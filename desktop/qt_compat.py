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
