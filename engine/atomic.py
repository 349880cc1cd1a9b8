"""The one way the engine writes a file: atomically.

The bytes go to a temporary file in the destination folder, are flushed and fsynced, and only
then renamed over the destination (``os.replace``), so a crash or a full disk mid-save never
leaves a broken file where a good one was. The new file gets the usual permissions
(``0o666`` less the umask), not the ``0o600`` of a temporary file.

The temporary file is named ``.NAME.PID.XXXXXXXX.tmp``. A process killed mid-save (SIGKILL, a
power cut) cannot remove its own; the next successful save of NAME in that folder removes
those whose process no longer runs.

A destination that exists but is not a regular file (a device such as ``/dev/null``, a pipe,
a socket) is refused, never replaced: renaming over it (with the privileges to do so) would
put a file where the device was. :func:`writable_problem` says before a long job
whether a file can be written at a path at all (the training commands ask it up front), and
:func:`write_or_rescue` keeps a trained model when its destination fails at the end anyway.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
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
    if _not_regular(path):
        raise OSError(errno.EEXIST, f"{path} is not a regular file (a device or a pipe?)")
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


def home_folder() -> Path | None:
    """The user's home folder, or None when there is none to be found: HOME unset and the user
    missing from the password database (a container run under an arbitrary user id), where
    Python 3.12+ raises RuntimeError and 3.11 answers a relative ``~``."""
    try:
        home = Path.home()
    except (RuntimeError, KeyError, OSError):
        return None
    return home if home.is_absolute() else None


def rescue_folders() -> list[Path]:
    """Where :func:`write_or_rescue` puts what could not be written where asked, in order."""
    home = home_folder()
    return [Path(tempfile.gettempdir()), *([home] if home is not None else [])]


def write_or_rescue(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], object]
) -> tuple[Path, OSError | None]:
    """:func:`atomic_write`, and when that fails (a full disk, a folder removed or made
    read-only during a long run) the same bytes in ``NAME-unsaved-TIME-PID.SUFFIX`` in the
    first of :func:`rescue_folders` that takes them, so that hours of training are not lost
    at the last step. Returns ``(the file written, why path failed or None)``; raises the
    first ``OSError`` when no folder took them."""
    path = Path(path).expanduser()
    try:
        return atomic_write(path, write), None
    except OSError as exc:
        failure = exc
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in rescue_folders():
        spare = folder / f"{path.stem}-unsaved-{stamp}-{os.getpid()}{path.suffix}"
        with contextlib.suppress(OSError):
            return atomic_write(spare, write), failure
    raise failure


def not_saved(path: str | os.PathLike[str], failure: OSError, spare: Path | None = None) -> str:
    """The one line for a model that could not be saved at ``path`` (and went to ``spare``,
    the file :func:`write_or_rescue` wrote, when given)."""
    line = f"cannot save {path}: {failure.strerror or failure}"
    return f"{line}; the model was saved to {spare} instead" if spare else line


def writable_problem(path: str | os.PathLike[str]) -> str | None:
    """Why :func:`atomic_write` could not write ``path``, in words, or None: a folder of that
    name, a destination that is not a regular file, a missing folder, or a folder where no file
    can be created (tried with a temporary file, removed at once: a read-only folder, /proc)."""
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return "is a folder; give a file name"
    if _not_regular(path):
        return "is not a regular file (a device or a pipe); give a file name"
    if not folder.is_dir():
        return f"the folder {folder} does not exist; create it first"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".convscope-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"cannot write in {folder} ({reason}); choose another folder"
    return None


def _not_regular(path: Path) -> bool:
    """``path`` exists (through links) and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (or unreadable: the write itself will say why)
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


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
