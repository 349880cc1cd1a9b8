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
