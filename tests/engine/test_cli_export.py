"""``convscope export``: bad input is one clear line and exit 2; the file's contents (no torch)."""

from __future__ import annotations

import ast
import errno
import os
import stat
import sys
from pathlib import Path

import pytest

from desktop.cli import main
from engine.export_torch import ExportError, engine_sources, render
from engine.model import lenet5

ALLOWED = {"numpy", "PIL", "torch"}


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_model_and_bad_targets_are_one_line(capsys, tmp_path):
    code, _, err = _run(capsys, tmp_path / "nope.npz", "--pytorch", tmp_path / "a.py")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no such model file" in err
    code, _, err = _run(capsys, "shipped", "--pytorch", tmp_path / "no" / "a.py")
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    code, _, err = _run(capsys, "shipped", "--pytorch", tmp_path)
    assert code == 2 and "is a folder" in err
    code, _, err = _run(capsys, "shipped", "--pytorch", "")  # was ": is a folder"
    assert code == 2 and "--pytorch is empty" in err and len(err.strip().splitlines()) == 1
    not_a_model = tmp_path / "x.npz"
    not_a_model.write_text("hello")
    code, _, err = _run(capsys, not_a_model, "--pytorch", tmp_path / "a.py")
    assert code == 2 and "not a ConvScope model file" in err
    assert not (tmp_path / "a.py").exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("model.npz", "give a name ending in .py"),  # it had replaced the model with source
        ("net.txt", "give a name ending in .py"),
        ("torch.py", "hides the 'torch' module it imports"),  # the file then imported itself
        ("numpy.py", "hides the 'numpy' module"),
        ("PIL.py", "hides the 'PIL' module"),
        ("json.py", "hides the 'json' module"),
    ],
)
def test_a_name_the_exported_file_cannot_have_is_refused(capsys, tmp_path, name, why):
    model = tmp_path / "model.npz"
    model.write_bytes(
        (Path(__file__).resolve().parents[2] / "resources/models/lenet5-mnist.npz").read_bytes()
    )
    before = model.read_bytes()
    code, _, err = _run(capsys, model, "--pytorch", tmp_path / name)
    assert code == 2 and why in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.npz"
    ]
    code, _, _ = _run(capsys, model, "--pytorch", tmp_path / "test.py")  # hides nothing it uses
    assert code == 0


@pytest.mark.parametrize("stem", ["csv", "glob", "uuid", "calendar", "sympy", "typing_extensions"])
def test_a_module_only_pytorch_imports_is_not_a_name_either(capsys, tmp_path, monkeypatch, stem):
    """Modules PyTorch imports (csv, glob, uuid: standard library; sympy: its own dependency),
    which ``convscope export`` itself has not imported: the file had been written and then
    failed at ``import torch`` with a circular-import traceback."""
    monkeypatch.delitem(sys.modules, stem, raising=False)
    code, _, err = _run(capsys, "shipped", "--pytorch", tmp_path / f"{stem}.py")
    assert code == 2 and f"hides the {stem!r} module" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_destination_that_cannot_take_the_file_is_one_line(capsys, tmp_path, monkeypatch):
    """A read-only file, a pipe (or a device: as root, /dev/null was replaced by a file) and a
    write failing midway: one line, exit 2, the destination as it was."""
    locked = tmp_path / "locked.py"
    locked.write_text("mine")
    locked.chmod(0o444)
    code, _, err = _run(capsys, "shipped", "--pytorch", locked)
    assert code == 2 and "read-only" in err and len(err.strip().splitlines()) == 1
    assert locked.read_text() == "mine"
    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    code, _, err = _run(capsys, "shipped", "--pytorch", pipe)
    assert code == 2 and "not a regular file" in err and stat.S_ISFIFO(os.stat(pipe).st_mode)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("engine.export_torch.atomic_write", disk_full)
    code, _, err = _run(capsys, "shipped", "--pytorch", tmp_path / "a.py")
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.py", "pipe.py"]


def test_generated_file_imports_only_torch_numpy_pillow_and_stdlib(capsys, tmp_path):
    out = tmp_path / "lenet.py"
    code, text, _ = _run(capsys, "shipped", "--pytorch", out, "--json")
    assert code == 0 and '"preparation": "digit"' in text
    tree = ast.parse(out.read_text())
    heads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            heads |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            heads.add(node.module.split(".")[0])
    assert heads - ALLOWED - set(sys.stdlib_module_names) == set()
    # the embedded engine modules, too (at module level: see engine.export_torch)
    for source in _embedded(out):
        top = ast.parse(source).body
        for node in top:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    head = name.split(".")[0]
                    assert (
                        head in ALLOWED
                        or head in sys.stdlib_module_names
                        or head.startswith("_convscope_engine_")
                    ), name


def _embedded(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Subscript)
            and getattr(node.targets[0].value, "id", "") == "ENGINE_SOURCES"
        ):
            out.append(ast.literal_eval(node.value))
    assert out, "no embedded engine sources found"
    return out


def test_engine_sources_refuse_a_module_importing_a_foreign_package():
    foreign = "import numpy\nimport requests\n"
    with pytest.raises(ExportError, match="requests"):
        engine_sources((), {"engine.fake": foreign})
    # inside a function it is left alone (only that function would fail)
    assert "engine.fake" in engine_sources((), {"engine.fake": "def f():\n    import requests\n"})


def test_unknown_operation_is_refused():
    model = lenet5()
    model.graph_spec = lambda: {  # type: ignore[attr-defined]
        "name": "graph",
        "input_shape": [1, 28, 28],
        "nodes": [{"type": "lstm", "name": "rnn", "inputs": ["input"]}],
        "output": "rnn",
    }
    with pytest.raises(ExportError, match="lstm"):
        render(model)


def test_class_names_with_backslashes_and_quotes_make_a_valid_file(capsys, tmp_path):
    """The title in the file's docstring names the classes: a folder called ``a\\b`` or
    ``say \"\"\"hi\"\"\"`` must not break the generated Python (it did: a SyntaxError)."""
    import warnings

    import numpy as np

    from engine.modelfile import save_model

    classes = ["back\\slash \\N{x}", 'say """hi"""', "it's 100%", 'ends in "']
    model = lenet5(np.random.default_rng(0), num_classes=4, in_channels=3)
    model.classes = classes
    save_model(model, tmp_path / "odd.npz")
    out = tmp_path / "odd.py"
    assert _run(capsys, tmp_path / "odd.npz", "--pytorch", out)[0] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invalid escape is a SyntaxWarning
        tree = ast.parse(out.read_text(encoding="utf-8"))
    title = ast.get_docstring(tree).splitlines()[0]
    assert ", ".join(classes) in title


def test_a_class_folder_named_in_bytes_that_are_not_utf8_exports(capsys, tmp_path):
    """A folder named ``caf\\xe9`` (Latin-1 bytes) is the class ``"caf\\udce9"``, which ConvScope
    trains, saves and classifies; export stopped with a UnicodeEncodeError traceback writing
    the name into the title. The title says it escaped; the class list keeps it exactly."""
    import numpy as np

    from engine.modelfile import save_model

    classes = ["caf\udce9", "dog"]
    model = lenet5(np.random.default_rng(0), num_classes=2, in_channels=3)
    model.classes = classes
    save_model(model, tmp_path / "odd.npz")
    out = tmp_path / "odd.py"
    assert _run(capsys, tmp_path / "odd.npz", "--pytorch", out)[0] == 0
    tree = ast.parse(out.read_text(encoding="utf-8"))
    assert "'caf\\udce9', dog" in ast.get_docstring(tree).splitlines()[0]
    assigned = [n for n in tree.body if isinstance(n, ast.AnnAssign)]
    found = [n.value for n in assigned if n.target.id == "CLASSES"]
    assert ast.literal_eval(found[0]) == classes


@pytest.mark.parametrize(
    ("record", "said"),
    [
        (
            {"epochs": [{"test_accuracy": 0.5}, {"test_accuracy": 0.62}], "device": "cuda"},
            "then 2 epochs in PyTorch on 1 GPU, test 62.00%",
        ),
        ({"epochs": [{}], "device": "cuda", "processes": 4}, "then 1 epoch in PyTorch on 4 GPUs"),
        ({"epochs": [{"test_accuracy": None}], "processes": 2}, "then 1 epoch in PyTorch on 2 CPU"),
        (
            {"epochs": [{"test_accuracy": 7}], "processes": "x"},
            "then 1 epoch in PyTorch on the CPU",
        ),
        ({"epochs": ["x", [1]], "device": ["cuda"], "processes": -3}, "then 2 epochs in PyTorch"),
        ({"epochs": [{}], "device": "cuda", "processes": True}, "then 1 epoch in PyTorch on 1 GPU"),
        ({"epochs": []}, ""),
        ({"epochs": {"1": 2}}, ""),
        ("a string", ""),
        (None, ""),
    ],
)
def test_the_record_of_a_pytorch_run_is_said_in_a_few_words(record, said):
    """A model file written back by an exported file's `train` says so in the Classify tab;
    the record is read from a file, so whatever is odd in it is left out, never raised."""
    from engine.export_torch import pytorch_training_summary

    text = pytorch_training_summary({"pytorch_training": record})
    assert text.startswith(said) and (said or not text)
    assert "test 700" not in text and "%" not in text.replace("62.00%", "")
