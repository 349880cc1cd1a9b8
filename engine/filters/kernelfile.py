"""Kernel files: JSON ``{"format": "convscope-kernels", "version": 1, "kernels": [...]}``.

Written through :func:`engine.atomic.atomic_write` (the one writer); read as untrusted input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from engine.atomic import atomic_write
from engine.filters.kernels import MAX_KERNELS, KernelError, KernelSpec

__all__ = ["load_kernels", "save_kernels"]


def save_kernels(path: str | os.PathLike[str], specs: Sequence[KernelSpec]) -> Path:
    """Write kernels as JSON ``{"format": "convscope-kernels", "version": 1, "kernels": [...]}``."""
    doc = {"format": "convscope-kernels", "version": 1, "kernels": [s.to_json() for s in specs]}
    text = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    return atomic_write(path, lambda f: f.write(text))


def load_kernels(path: str | os.PathLike[str]) -> list[KernelSpec]:
    """Read kernels saved by :func:`save_kernels` (also a single kernel object or a bare
    matrix ``[[...], ...]``). Raises :class:`KernelError` naming the file."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KernelError(f"{p.name}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KernelError(
            f"{p.name}: not a JSON kernel file; save one from the Filters tab"
        ) from None
    items = doc.get("kernels") if isinstance(doc, dict) and "kernels" in doc else [doc]
    if (
        isinstance(doc, list)
        and doc
        and all(isinstance(r, list) for r in doc)
        and all(not isinstance(v, list) for r in doc for v in r)
    ):
        items = [doc]  # a bare matrix
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_KERNELS:
        raise KernelError(f"{p.name}: expected 1 to {MAX_KERNELS} kernels")
    return [KernelSpec.from_json(d, f"{p.name} kernel {i + 1}") for i, d in enumerate(items)]
