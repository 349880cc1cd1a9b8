"""engine.atomic: a failed write keeps the old file and leaves no temporary file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.atomic import atomic_write


def test_write_replaces_the_file_with_normal_permissions(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_failing_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"good model")

    def crash(f):
        f.write(b"half")
        raise RuntimeError("disk died")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_bytes() == b"good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        atomic_write(tmp_path / "nope" / "x.bin", lambda f: f.write(b"x"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_save_killed_midway_leaves_the_old_file_and_the_next_save_removes_its_temporary(
    tmp_path,
):
    import signal
    import subprocess
    import sys

    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    script = (
        "import sys; from engine.atomic import atomic_write\n"
        "def write(f):\n"
        "    f.write(b'half of a new file'); f.flush(); print('ready', flush=True)\n"
        "    sys.stdin.read()  # blocks until killed\n"
        f"atomic_write({str(path)!r}, write)\n"
    )
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdin.close()
    child.stdout.close()
    orphans = [p.name for p in tmp_path.iterdir() if p.name != "model.npz"]
    assert path.read_bytes() == b"old" and len(orphans) == 1
    assert orphans[0].startswith(f".model.npz.{child.pid}.")
    mine = tmp_path / f".model.npz.{os.getpid()}.busy.tmp"  # a live process's save: kept
    mine.write_bytes(b"")
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.npz", mine.name])


def test_a_device_or_pipe_is_refused_not_replaced(tmp_path):
    """Renaming over /dev/null as root would put a file where the device was: a destination
    that is not a regular file is refused and stays what it was; writable_problem says so."""
    from engine.atomic import writable_problem

    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write(pipe, lambda f: f.write(b"new"))
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.py"]  # no temporary left
    assert "not a regular file" in writable_problem(pipe)
    assert "is a folder" in writable_problem(tmp_path)
    assert "does not exist" in writable_problem(tmp_path / "no" / "a.py")
    assert writable_problem(tmp_path / "a.py") is None


def test_write_or_rescue_writes_where_asked_or_in_the_first_rescue_folder_that_takes_it(
    tmp_path, monkeypatch
):
    """A destination that fails at the last step (its folder gone, a full disk) after a long
    run: the bytes go to NAME-unsaved-TIME-PID.SUFFIX in the first rescue folder that takes
    them, and the failure is returned; when none does, the first failure is raised."""
    from engine import atomic

    assert atomic.write_or_rescue(tmp_path / "a.npz", lambda f: f.write(b"run")) == (
        tmp_path / "a.npz",
        None,
    )
    spare = tmp_path / "spare"
    spare.mkdir()
    monkeypatch.setattr(atomic, "rescue_folders", lambda: [tmp_path / "gone", spare])
    written, failure = atomic.write_or_rescue(tmp_path / "nope" / "b.npz", lambda f: f.write(b"2"))
    assert isinstance(failure, FileNotFoundError) and written.parent == spare
    assert written.name.startswith("b-unsaved-") and written.suffix == ".npz"
    assert written.read_bytes() == b"2" and sorted(p.name for p in spare.iterdir()) == [
        written.name
    ]
    monkeypatch.setattr(atomic, "rescue_folders", lambda: [tmp_path / "gone"])
    with pytest.raises(FileNotFoundError) as caught:
        atomic.write_or_rescue(tmp_path / "nope" / "c.npz", lambda f: f.write(b"3"))
    assert "nope" in str(caught.value)
