"""The CLI as a script runs it with odd standard streams: stdout on a full disk (one clear line,
exit 2), stdout or stderr closed (``>&-``, ``2>&-``: the job still runs and saves). No Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = "import sys; from desktop.cli import main; sys.exit(main(sys.argv[1:]))"


def _convscope(args: list[str], redirect: str) -> subprocess.CompletedProcess:
    """``convscope ARGS REDIRECT`` through the shell (``>&-``, ``>/dev/full``...)."""
    return subprocess.run(
        ["sh", "-c", '"$0" "$@" ' + redirect, sys.executable, "-c", CODE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("json", [[], ["--json"]])
def test_stdout_on_a_full_disk_is_one_clear_line(json):
    # it said "error: [Errno 28] No space left on device" (which file?) with exit status 1
    done = _convscope(["describe", "lenet5", *json], ">/dev/full")
    assert done.returncode == 2
    assert done.stderr == (
        "convscope describe: error: cannot write to standard output (No space left on device)\n"
    )


def test_a_closed_stdout_gets_nothing_and_the_command_succeeds():
    # sys.stdout is None there: an AttributeError traceback, exit status 1
    done = _convscope(["describe", "lenet5", "--json"], ">&-")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_closed_stderr_neither_stops_training_nor_loses_the_model(tmp_path):
    # the first progress line raised: exit status 1 and no model; a bad argument exited 1, not 2
    out = tmp_path / "m.npz"
    args = ["train", "--limit", "100", "--epochs", "1", "--val-fraction", "0", "--out", str(out)]
    done = _convscope(args, "2>&-")
    assert done.returncode == 0 and out.is_file()
    assert done.stdout.splitlines()[-1] == f"saved {out}"
    assert _convscope(["describe", "no-such-network"], "2>&-").returncode == 2
