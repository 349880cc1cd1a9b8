"""``convscope train --arch NAME|TEXT|FILE.json``: the registry's names, the text form and
architecture files, with one clear line for every mistake."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from desktop.cli import main
from engine import architectures
from engine.archtext import GRAMMAR


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """An image folder of two classes (reddish and bluish squares), 10 PNGs each."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (folder / name).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 80, size=(36, 36, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, size=(36, 36), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def test_help_lists_every_registered_name_and_the_grammar():
    status, out, _ = run(["train", "--help"])
    assert status == 0
    flat = " ".join(out.split())
    for name in architectures.names():
        assert name in flat
    assert GRAMMAR.splitlines()[0] in out  # the grammar, verbatim


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("resnt8", "unknown architecture 'resnt8'; use one of lenet5, lenet-article, alexnet"),
        ("conv 16 x, relu", "item 1, column 9: 'x' in 'conv 16 x': the kernel size"),
        ("conv 8 3, relu, dense 10", "item 3, column 17: 'dense' in 'dense 10'"),
        ("missing.json", "missing.json: cannot read it"),
    ],
)
def test_a_bad_arch_is_one_clear_line_before_any_data_is_read(arch, message, tmp_path):
    status, out, err = run(["train", "--dataset", str(tmp_path / "none"), "--arch", arch])
    assert status == 2
    assert err.count("\n") == 1 and message in err, err
    assert out == ""


def test_a_json_file_that_is_not_an_architecture(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    status, _, err = run(["train", "--arch", str(bad)])
    assert status == 2 and "not an architecture" in err
    bad.write_text("{nope")
    status, _, err = run(["train", "--arch", str(bad)])
    assert status == 2 and "not a JSON file" in err
    bad.write_text('{"name": "graph", "input_shape": [1, 28, ' + "9" * 5000 + "]}")
    status, _, err = run(["train", "--arch", str(bad)])  # past Python's 4,300-digit limit
    assert status == 2 and err.count("\n") == 1 and "bad.json: a number of 5,000 digits" in err, err
    assert "set_int_max_str_digits" not in err
    colour = tmp_path / "colour.json"
    colour.write_text(json.dumps({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]}))
    status, _, err = run(["train", "--arch", str(colour), "--channels", "1"])
    assert status == 2 and "takes 3-channel input; add --channels 3" in err


def test_a_colour_arch_file_trains_in_colour_without_channels(tmp_path, colours):
    """The architecture of a colour model file fixes the images' colour: no --channels needed
    (it had been refused: "the network takes 3-channel input; add --channels 3")."""
    from engine.modelfile import load_model

    colour = tmp_path / "colour.json"
    colour.write_text(json.dumps({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]}))
    out = tmp_path / "c.npz"
    argv = ["train", "--arch", str(colour), "--dataset", str(colours), "--val-fraction", "0"]
    status, _, err = run([*argv, "--batch-size", "4", "--out", str(out)])
    assert status == 0, err
    model = load_model(out)
    assert model.input_spec.shape == (3, 32, 32) and model.classes == ["blue", "red"]


@pytest.mark.parametrize("wrap", [False, True])
def test_arch_file_takes_the_architecture_of_a_model_file(tmp_path, wrap, colours):
    from engine.modelfile import load_model

    arch = {"name": "lenet-article", "num_classes": 10, "in_channels": 1}
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"architecture": arch, "classes": []} if wrap else arch))
    out = tmp_path / "m.npz"
    argv = ["train", "--arch", str(path), "--dataset", str(colours), "--val-fraction", "0"]
    status, stdout, err = run([*argv, "--out", str(out), "--json"])
    assert status == 0, err
    model = load_model(out)
    assert model.architecture["name"] == "lenet-article"
    assert model.input_spec.shape == (1, 32, 32)
    assert model.parameters()["fc2.weight"].shape == (100, 120)
    assert model.classes == ["blue", "red"]  # the dataset's classes, not the file's 10
    assert json.loads(stdout)["arch"] == str(path)
    assert np.isfinite(json.loads(stdout)["train_loss"])


@pytest.mark.parametrize(
    ("arch", "label", "key"),
    [
        ("resnet8", "resnet8", "layer2.0.downsample.1.running_mean"),
        ("conv 8 3, batchnorm, relu, maxpool 2, flatten, dense 2", "custom", "bn1.running_var"),
    ],
)
def test_train_a_family_member_and_a_text_network(colours, tmp_path, arch, label, key, monkeypatch):
    from engine.modelfile import load_model

    monkeypatch.chdir(tmp_path)  # the default output name is LABEL-DATASET.npz here
    argv = ["train", "--dataset", str(colours), "--channels", "3", "--arch", arch]
    status, stdout, err = run([*argv, "--batch-size", "4", "--val-fraction", "0", "--json"])
    assert status == 0, err
    saved = json.loads(stdout)["model"]
    assert saved.endswith(".npz") and saved.split("/")[-1].startswith(f"{label}-")
    model = load_model(saved)
    assert model.input_spec.shape == (3, 32, 32)
    assert key in model.buffers()
    assert model.classes == ["blue", "red"]


def _graph_file(tmp_path, name="net.json", bom=False, edit=None):
    spec = architectures.choose("conv 4 3, relu, maxpool 2, flatten, dense 10", 1).architecture(10)
    if edit:
        edit(spec["nodes"])
    path = tmp_path / name
    path.write_text(("\ufeff" if bom else "") + json.dumps(spec), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda nodes: nodes[0].update(inputs=["relu1"]), "conv1: input 'relu1' is not an earlier"),
        (lambda nodes: nodes[1].update(inputs=["nope"]), "relu1: input 'nope' is not an earlier"),
        (lambda nodes: nodes[1].update(name="conv1"), "must be a new short text, got 'conv1'"),
        (lambda nodes: nodes[0].update(out_channels=10**12), "out_channels is 1000000000000"),
    ],
)
def test_an_arch_files_graph_is_checked_before_any_data_is_read(tmp_path, edit, message):
    """A cycle, a dangling input, a repeated name or a huge layer in FILE.json was found only
    once the dataset had been read (minutes for a large folder), in a line that did not name
    the file; the missing dataset here would have been reported instead."""
    path = _graph_file(tmp_path, edit=edit)
    status, out, err = run(["train", "--dataset", str(tmp_path / "none"), "--arch", str(path)])
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"{path}: " in err and message in err, err


def test_an_arch_file_saved_with_a_bom_reads_and_its_classes_must_match(tmp_path, colours):
    """Notepad writes UTF-8 with a byte-order mark: such a file was "not a JSON file
    (Unexpected UTF-8 BOM ...)". A graph keeps its own classifier: 10 outputs for the two
    classes of the folder had read "2 class names given for a model with 10 outputs"."""
    path = _graph_file(tmp_path, bom=True)
    argv = ["train", "--arch", str(path), "--dataset", str(colours), "--val-fraction", "0"]
    status, _, err = run([*argv, "--out", str(tmp_path / "m.npz")])
    assert status == 2 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        "net.json: the network gives 10 class scores but the dataset has 2 classes; set the "
        "out_features of its last dense layer to 2"
    ), err
    path = _graph_file(tmp_path, bom=True, edit=lambda nodes: nodes[-1].update(out_features=2))
    status, _, err = run([*argv, "--out", str(tmp_path / "m.npz")])
    assert status == 0, err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda nodes: nodes[0].update(extra=1), "conv2d layer 'conv1': unknown field 'extra'; "),
        (lambda nodes: nodes[-1].pop("in_features"), "dense layer 'fc1': the field 'in_features'"),
    ],
)
def test_a_layer_field_too_many_or_missing_is_named_in_the_files_words(tmp_path, edit, message):
    # It read "bad arguments for a conv2d layer 'conv1': Conv2D.__init__() got an unexpected
    # keyword argument 'extra'": Python's words, a class name the file does not have.
    path = _graph_file(tmp_path, edit=edit)
    argv = ["train", "--arch", str(path), "--limit", "20", "--out", str(tmp_path / "m.npz")]
    status, _, err = run(argv)
    assert status == 2 and "Traceback" not in err
    assert message in err.splitlines()[-1] and "__init__" not in err, err


def test_a_text_network_that_only_colour_input_fits_trains_on_colour_data(colours, tmp_path):
    """Five 2x2 poolings fit a colour 32x32 input, not a grey 28x28 one. Without --channels the
    text was checked for grey before the (colour) data was read, and refused: "pool5: a 2x2
    window does not fit its 1x1 input". The data decides; a grey dataset is still refused."""
    from engine.modelfile import load_model

    pools = ", ".join(["maxpool 2"] * 5)
    arch = f"conv 4 3, relu, {pools}, flatten, dense 2"
    out = tmp_path / "m.npz"
    argv = ["train", "--arch", arch, "--batch-size", "4", "--val-fraction", "0"]
    status, _, err = run([*argv, "--dataset", str(colours), "--out", str(out)])
    assert status == 0, err
    assert load_model(out).input_spec.shape == (3, 32, 32)
    grey = ["--dataset", str(colours), "--channels", "1", "--out", str(tmp_path / "g.npz")]
    status, _, err = run([*argv, *grey])
    assert status == 2 and err.count("\n") == 1
    assert "pool5: a 2x2 window does not fit its 1x1 input" in err
    assert not (tmp_path / "g.npz").exists()
