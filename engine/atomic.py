"""The one way the engine writes a file: atomically.

The bytes go to a temporary file in the destination folder, are flushed and fsynced, and only
then renamed over the destination (``os.replace``), so a crash or a full disk mid-save never
leaves a broken file where a good one was. The new file gets the usual permissions
(``0o666`` less the umask), not the ``0o600`` of a temporary file.

The temporary file is named ``.NAME.PID.XXXXXXXX.tmp``. A process killed mid-save (SIGKILL, a
power cut) cannot remove its own; the next successful save of NAME in that folder removes
those whose process no longer runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary binary file, then move it to ``path`` in one step.

    Raises ``OSError`` (folder missing, not writable, disk full); the previous file at
    ``path``, if any, is then untouched and no temporary file is left behind.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    _remove_orphans(folder, path.name)
    return path


def _remove_orphans(folder: Path, name: str) -> None:
    """Remove ``.NAME.PID.*.tmp`` files left by processes that no longer run."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[^.]+\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = pattern.fullmatch(entry.name)
            if match and not _running(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _running(pid: int) -> bool:
    if os.name == "nt" or pid == os.getpid():  # Windows: os.kill(pid, 0) would signal it
        return True  # and another thread of this process may be saving the same file
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid this system cannot have: leave it
    return True
