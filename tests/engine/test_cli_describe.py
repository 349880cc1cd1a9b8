"""``convscope describe``: a network's anatomy from a terminal, the views' own description."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from desktop.cli import main
from engine import architectures
from engine.graph_layout import describe


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", architectures.names())
def test_every_member_is_described_as_the_diagram_draws_it(name):
    status, out, err = _run(["describe", name, "--channels", "3", "--classes", "4", "--json"])
    assert status == 0, err
    found = json.loads(out)
    shape = architectures.input_shape_for(name, 3)
    facts = describe(architectures.build_spec(name, shape, 4))
    assert [n["name"] for n in found["nodes"]] == [f.name for f in facts]
    assert [n["output_shape"] for n in found["nodes"]] == [list(f.shape) for f in facts]
    params, macs = architectures.stats(name, 3, 4)
    assert (found["parameters"], found["macs"]) == (params, macs)
    assert sum(n["parameters"] for n in found["nodes"]) == params


def test_a_model_file_and_the_text_form_read_as_tables():
    status, out, _ = _run(["describe", "shipped"])
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("lenet5-mnist.npz: 10 classes, input 1×28×28")
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    assert "5×5 pad 2" in conv1 and "6×28×28" in conv1 and "156" in conv1
    assert lines[-1] == "61,706 trainable parameters · 416,520 multiply-adds per image"
    status, out, _ = _run(["describe", "conv 8 3, relu, maxpool 2, flatten, dense 10"])
    assert status == 0 and "pool1" in out and "8×14×14" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv 8 3, relu, maxpol 2"], "item 3, column 17: 'maxpol'"),
        (["shipped", "--channels", "3"], "a model file fixes its own input"),
        (["vgg", "--classes", "1"], "--classes must be 2 to 100,000"),
        (["conv 4000 11, conv 4000 11, conv 4000 11"], "3.9 billion parameters"),
        (["nothere.npz"], "no such model file"),
    ],
)
def test_what_cannot_be_described_is_one_line_and_exit_2(argv, message):
    status, out, err = _run(["describe", *argv])
    assert status == 2 and out == "" and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("command", ["describe", "export"])
def test_an_ascii_terminal_gets_text_not_a_traceback(tmp_path, command):
    """print() of '3×32×32' or of an accented file name raised UnicodeEncodeError on a
    terminal without UTF-8 (describe's shapes; export's, evaluate's, train's and download's
    lines alike); every command writes through common.safe_print."""
    import os
    import subprocess
    import sys

    argv = ["describe", "shipped"]
    if command == "export":
        argv = ["export", "shipped", "--pytorch", str(tmp_path / "réseau.py")]
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    code = "import sys; from desktop.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert b"1x28x28" in done.stdout if command == "describe" else b"wrote " in done.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """``convscope describe densenet | head -1``: the table's later lines met a closed pipe
    and the command said 'error: [Errno 32] Broken pipe' (exit 1); like any Unix tool it now
    stops without a word, with the status a shell gives a command ended by SIGPIPE."""
    import subprocess
    import sys

    code = "import sys; from desktop.cli import main; sys.exit(main())"
    with subprocess.Popen(
        [sys.executable, "-c", code, "describe", "densenet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader gone before the first line: every write meets EPIPE
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 141
    assert err == b"", err
