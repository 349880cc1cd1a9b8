"""Kernel files: JSON ``{"format": "convscope-kernels", "version": 1, "kernels": [...]}``.

Written through :func:`engine.atomic.atomic_write` (the one writer); read as untrusted input.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from engine.atomic import atomic_write
from engine.filters.kernels import MAX_KERNELS, KernelError, KernelSpec

__all__ = ["load_kernels", "save_kernels"]


#: a kernel file is small: 8 kernels of 7x7 with their names fit in a few KB
MAX_FILE_BYTES = 1 << 20


def save_kernels(path: str | os.PathLike[str], specs: Sequence[KernelSpec]) -> Path:
    """Write kernels as JSON ``{"format": "convscope-kernels", "version": 1, "kernels": [...]}``.

    Raises :class:`KernelError` naming ``path`` when it cannot be written (folder missing or
    read-only, disk full, name too long); an existing file there is then left as it was.
    """
    doc = {"format": "convscope-kernels", "version": 1, "kernels": [s.to_json() for s in specs]}
    text = (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode("utf-8")
    try:
        return atomic_write(path, lambda f: f.write(text))
    except OSError as exc:
        raise KernelError(f"{os.fspath(path)}: cannot be saved ({_reason(exc)})") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _read_text(p: Path) -> str:
    """The file's text; only a regular file of at most :data:`MAX_FILE_BYTES` is opened (a FIFO
    or a device would block or never end)."""
    try:
        info = p.stat()
    except OSError as exc:
        raise KernelError(f"{p}: cannot be read ({_reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise KernelError(f"{p}: is a folder, not a kernel file (.json)")
    if not stat.S_ISREG(info.st_mode):
        raise KernelError(f"{p}: is not a regular file (a pipe or a device); give a .json file")
    if info.st_size > MAX_FILE_BYTES:
        raise KernelError(
            f"{p}: {info.st_size} bytes is too large for a kernel file (at most 1 MB)"
        )
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KernelError(f"{p}: cannot be read ({_reason(exc)})") from None
    if len(data) > MAX_FILE_BYTES:
        raise KernelError(f"{p}: too large for a kernel file (at most 1 MB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KernelError(f"{p}: not a JSON kernel file; save one from the Filters tab") from None


def load_kernels(path: str | os.PathLike[str]) -> list[KernelSpec]:
    """Read kernels saved by :func:`save_kernels` (also a single kernel object or a bare
    matrix ``[[...], ...]``). The file is untrusted: a FIFO, a huge or deeply nested file, a
    kernel of a size the editor does not take (odd, 1 to 7) or values beyond
    float32 give one :class:`KernelError` naming the file."""
    p = Path(path)
    text = _read_text(p)
    try:
        doc = json.loads(text)
    except RecursionError:
        raise KernelError(f"{p}: the JSON is nested too deeply for a kernel file") from None
    except ValueError:  # JSONDecodeError, or an integer of thousands of digits
        raise KernelError(f"{p}: not a JSON kernel file; save one from the Filters tab") from None
    items = doc.get("kernels") if isinstance(doc, dict) and "kernels" in doc else [doc]
    if (
        isinstance(doc, list)
        and doc
        and all(isinstance(r, list) for r in doc)
        and all(not isinstance(v, list) for r in doc for v in r)
    ):
        items = [doc]  # a bare matrix
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_KERNELS:
        raise KernelError(f"{p}: expected 1 to {MAX_KERNELS} kernels")
    return [KernelSpec.from_json(d, f"{p} kernel {i + 1}") for i, d in enumerate(items)]
