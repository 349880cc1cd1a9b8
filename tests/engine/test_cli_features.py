"""``convscope features``: the grid image, its JSON and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main


def test_patches_grid_and_json_of_the_first_convolution(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["features", "shipped", "--limit", "200", "--k", "4", "--out", str(out),
                 "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["layer"] == "conv1" and doc["images"] == 200 and doc["field"]["size"] == 5
    assert [f["channel"] for f in doc["filters"]] == list(range(6))
    for f in doc["filters"]:
        assert len(f["patches"]) == 4
        for p in f["patches"]:
            assert 0 <= p["index"] < 200 and p["top"] == p["row"] - 2 and p["left"] == p["col"] - 2
    grid = np.asarray(Image.open(out))
    assert grid.shape == (6 * 37 - 2, 4 * 37 - 2)  # crops of 5 px enlarged x7 = 35, 2 px apart
    assert grid.std() > 10  # patches, not a blank picture


def test_synthesis_of_the_classes(tmp_path, capsys):
    out = tmp_path / "classes.png"
    assert main(["features", "shipped", "--layer", "fc3", "--method", "synthesis", "--steps",
                 "10", "--out", str(out), "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["filters"]) == 10
    assert all(f["activation"] > f["start_activation"] for f in doc["filters"])
    assert Image.open(out).size == (8 * 86 - 2, 2 * 86 - 2)  # 28 px enlarged x3 = 84


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "nope"], "no layer 'nope'; choose one of conv1,"),
        (["--layer", "cnv2"], "no layer 'cnv2' (did you mean conv2?); choose one of conv1,"),
        (["--layer", "fc1"], "outputs a vector"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--k", "100000"], "--k: at most 100 patches per filter, got 100,000"),
        # a ValueError traceback from NumPy's generator
        (["--method", "synthesis", "--seed", "-1"], "--seed must be >= 0, got -1"),
        # ran for days after asking 16 GB for the jitter of each step
        (["--method", "synthesis", "--steps", "1000000000"], "--steps: at most 10,000, got"),
        (["--out", "grid.txt"], "give an image name ending in .png"),
        (["--out", "missing/grid.png"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    argv = ["features", "shipped", "--out", "grid.png", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("convscope features: error:")
    assert not (tmp_path / "grid.png").exists()


def test_help_says_what_each_method_draws(capsys):
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "'patches': the dataset patches" in out and "'synthesis': inputs synthesised" in out
    assert "(default patches)" in out


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_an_ascii_terminal_and_an_odd_out_name_print_no_traceback(tmp_path, extra):
    """The summary line named the written file with print(): an accented name on an ASCII
    terminal (or a non-UTF-8 one anywhere) raised UnicodeEncodeError after the work was done."""
    import os
    import subprocess
    import sys

    out = os.fsdecode(os.fsencode(tmp_path) + b"/grille-\xe9-\xc3\xa9.png")
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    code = "import sys; from desktop.cli import main; sys.exit(main())"
    argv = ["features", "shipped", "--limit", "20", "--k", "2", "--out", out, *extra]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, env=env,
                          timeout=120)  # fmt: skip
    assert b"Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and os.path.exists(out)
    if extra:
        assert json.loads(done.stdout)["out"] == out
    else:
        assert b"conv1 (patches, 6 filters) -> " in done.stdout and b"grille-" in done.stdout


def test_a_network_without_convolutions_says_what_works(tmp_path, capsys):
    """'give --layer' sent a dense-only network's user to a layer that has no patches."""
    from engine.archtext import to_spec
    from engine.model import build_model
    from engine.modelfile import save_model

    path = save_model(build_model(to_spec("flatten, dense 10", (1, 28, 28), 10)),
                      tmp_path / "dense.npz")  # fmt: skip
    out = tmp_path / "grid.png"
    assert main(["features", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'--method synthesis --layer fc1'" in err
    assert main(["features", str(path), "--method", "synthesis", "--steps", "2", "--out",
                 str(out)]) == 2  # fmt: skip
    assert "give --layer: one of flatten1, fc1" in capsys.readouterr().err
    argv = ["features", str(path), "--method", "synthesis", "--layer", "fc1", "--steps", "2"]
    assert main([*argv, "--out", str(out)]) == 0 and out.exists()


def test_synthesis_of_a_node_of_thousands_of_units_is_refused_before_any_work(tmp_path, capsys):
    """--layer flatten1 of 'conv 8 3, flatten, dense 4' grew 6,272 images into a grid
    200,000 pixels tall."""
    from engine.archtext import to_spec
    from engine.model import build_model
    from engine.modelfile import save_model

    spec = to_spec("conv 8 3, flatten, dense 4", (1, 28, 28), 4)
    path = save_model(build_model(spec), tmp_path / "wide.npz")
    out = tmp_path / "grid.png"
    argv = ["features", str(path), "--method", "synthesis", "--steps", "1", "--out", str(out)]
    assert main([*argv, "--layer", "flatten1"]) == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert "flatten1 has 6,272 units" in err and "at most 1,024" in err and "(fc1)" in err
    assert main([*argv, "--layer", "conv1"]) == 0 and out.exists()


def test_an_out_where_nothing_can_be_written_is_refused_before_the_work(capsys, monkeypatch):
    """/proc (or a read-only folder) was found when the grid was saved, after the work."""
    from engine import features

    def no_work(*_args, **_kwargs):
        raise AssertionError("the work began")

    monkeypatch.setattr(features, "top_patches", no_work)
    assert main(["features", "shipped", "--out", "/proc/grid.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write in /proc" in err and "\n" not in err
