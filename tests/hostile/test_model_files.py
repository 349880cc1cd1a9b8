"""Crafted model files: the engine raises ModelFileError (never TypeError, RecursionError,
MemoryError...), bombs are refused without inflating, and the CLI answers one line, exit 2.
Seeded mutations of a valid file keep it that way for cases nobody listed."""

from __future__ import annotations

import copy
import json
import re
import tracemalloc

import numpy as np
import pytest

from desktop.cli import main
from engine.errors import ModelFileError
from engine.modelfile import VERSION, load_meta, load_model, save_model
from engine.modelschema import MAX_HISTORY_POINTS
from hostile.models import crafted_models, good_meta_and_arrays, mutated_metas, write_model

CASES = [
    "arch_list", "arch_int", "arch_unknown", "classes_ten", "classes_null", "classes_many",
    "class_newline", "version_huge", "version_text", "version_newer", "in_channels_text",
    "input_scale_huge", "input_std_tiny", "input_mean_text", "input_shape_text", "history_list",
    "filters_text", "filters_million", "fc_billion", "input_huge", "layers_100000",
    "thousand_wide_convs", "deep_json", "nan_in_meta", "huge_int", "not_json",
    "three_million_values", "history_20M", "weight_bomb", "weight_header_1GB", "size_lie",
    "object_array", "duplicate_member", "many_entries",
]  # fmt: skip
BOMBS = ["history_20M", "weight_bomb", "weight_header_1GB", "size_lie", "deep_json"]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    return crafted_models(tmp_path_factory.mktemp("crafted"))


def test_every_case_is_generated(crafted):
    assert sorted(crafted) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_crafted_file_is_refused_with_a_clear_model_file_error(crafted, name):
    path, message = crafted[name]
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    text = str(err.value)
    assert re.search(message, text), text
    assert str(path) in text and "\n" not in text and len(text) < 400


@pytest.mark.parametrize("name", BOMBS)
def test_bombs_are_refused_without_inflating(crafted, name):
    path, _ = crafted[name]
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6, f"{name}: {peak / 1e6:.0f} MB allocated"


@pytest.mark.parametrize("name", ["deep_json", "arch_int", "history_20M", "version_newer"])
def test_load_meta_refuses_the_metadata_cases_too(crafted, name):
    path, message = crafted[name]
    with pytest.raises(ModelFileError, match=message):
        load_meta(path)


@pytest.mark.parametrize("name", CASES)
def test_cli_classify_says_one_line_and_exits_2(crafted, name, capsys, tmp_path):
    from PIL import Image

    image = tmp_path / "seven.png"
    Image.new("L", (28, 28), 255).save(image)
    assert main(["classify", str(crafted[name][0]), str(image)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("convscope classify: error: ")


@pytest.mark.parametrize(
    "command", [["read"], ["evaluate"], ["export"], ["describe"], ["train", "--continue"]]
)
@pytest.mark.parametrize("name", ["weight_bomb", "filters_million", "deep_json", "version_huge"])
def test_other_commands_say_one_line_and_exit_2(crafted, name, command, capsys, tmp_path):
    from PIL import Image

    args = [str(crafted[name][0])]
    if command == ["read"]:
        image = tmp_path / "digits.png"
        Image.new("L", (60, 28), 255).save(image)
        args.append(str(image))
    elif command == ["export"]:
        args += ["--pytorch", str(tmp_path / "net.py")]
    elif command[0] == "train":
        args += ["--out", str(tmp_path / "net.npz")]
    assert main([*command, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "error" in err
    assert not (tmp_path / "net.py").exists() and not (tmp_path / "net.npz").exists()


def test_seeded_metadata_mutations_load_or_raise_model_file_error(tmp_path):
    _, arrays = good_meta_and_arrays()
    outcomes = {"loaded": 0, "refused": 0}
    for i, meta in enumerate(mutated_metas(seed=11, count=120)):
        path = write_model(tmp_path / f"m{i % 4}.npz", meta, arrays)
        try:
            model = load_model(path)
        except ModelFileError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            x = np.zeros((1, *model.input_spec.shape), dtype=np.float32)
            assert np.isfinite(model.predict_proba(x)).all()
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 60  # most mutations break something that is checked


def test_seeded_byte_damage_loads_or_raises_model_file_error(tmp_path, rng):
    meta, arrays = good_meta_and_arrays()
    good = write_model(tmp_path / "good.npz", meta, arrays).read_bytes()
    damaged = tmp_path / "damaged.npz"
    for _ in range(60):
        data = bytearray(good)
        kind = rng.integers(3)
        if kind == 0:  # flip bytes anywhere (headers, directory, data)
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                data[at] ^= int(rng.integers(1, 256))
        elif kind == 1:  # truncate
            del data[int(rng.integers(1, len(data))) :]
        else:  # flip bytes in the central directory or the end record
            for at in rng.integers(len(data) - 2000, len(data), size=3):
                data[at] ^= int(rng.integers(1, 256))
        damaged.write_bytes(bytes(data))
        try:
            load_model(damaged)
        except ModelFileError as exc:
            assert "\n" not in str(exc)


def test_odd_but_valid_arrays_load_with_their_values(tmp_path):
    meta, arrays = good_meta_and_arrays()
    odd = {
        k: (np.asfortranarray(a) if i % 3 == 0 else a.astype(">f4") if i % 3 == 1 else a * 1.0)
        for i, (k, a) in enumerate(arrays.items())
    }
    odd = {k: (a.astype(np.float64) if i % 3 == 2 else a) for i, (k, a) in enumerate(odd.items())}
    model = load_model(write_model(tmp_path / "odd.npz", meta, odd))
    for k, a in arrays.items():
        assert np.array_equal(model.parameters()[k], a)


def test_long_histories_are_thinned_on_save_and_load(tmp_path):
    from engine.model import lenet5

    model = lenet5(np.random.default_rng(0))
    n = MAX_HISTORY_POINTS + 12_345
    model.meta = {"history": {"batch_loss": [float(i) for i in range(n)], "status": "finished"}}
    back = load_model(save_model(model, tmp_path / "long.npz"))
    loss = back.meta["history"]["batch_loss"]
    assert len(loss) == MAX_HISTORY_POINTS and loss[0] == 0.0 and loss[-1] == n - 1
    assert back.meta["history"]["status"] == "finished"
    # a file written by another program with a longer list is thinned when read
    meta, arrays = good_meta_and_arrays()
    meta = copy.deepcopy(meta)
    meta["history"] = {"batch_loss": list(range(n))}
    back = load_model(write_model(tmp_path / "other.npz", json.dumps(meta), arrays))
    assert len(back.meta["history"]["batch_loss"]) == MAX_HISTORY_POINTS


ARCH_FILES = {
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "huge_int.json": '{"name": "lenet5", "in_channels": 1' + "0" * 5000 + "}",
    "infinity.json": '{"name": "custom", "input_shape": [Infinity, 28, 28]}',
    "channels_list.json": '{"name": "lenet5", "in_channels": [1]}',
    "shape_text.json": '{"name": "custom", "input_shape": "1x28x28"}',
    "not_utf8.json": b"\xff\xfe{}",
    "many_values.json": "[" + "0," * 1_500_000 + "0]",
}


@pytest.mark.parametrize("name", [*ARCH_FILES, "fifo.json", "folder.json"])
def test_crafted_arch_files_are_one_line_exit_2(name, tmp_path, capsys):
    """``train --arch FILE.json`` takes a model file's metadata: the same hostility."""
    import os

    path = tmp_path / name
    if name == "fifo.json":
        os.mkfifo(path)
    elif name == "folder.json":
        path.mkdir()
    else:
        content = ARCH_FILES[name]
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["train", "--arch", str(path), "--dataset", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err, err


@pytest.mark.skipif(VERSION < 2, reason="model file version 2 (graph + buffers) has not landed")
@pytest.mark.parametrize(
    "case, message",
    [
        ("graph_list", "'graph' must be a JSON object"),
        ("graph_100000_nodes", "100,000 layers"),
        ("graph_of_another_net", "does not match"),
        ("buffer_as_float", "num_batches_tracked has dtype"),
        ("buffer_huge_shape", r"running_mean has shape \(1000000,\)"),
        ("buffer_missing", "missing .*running_var"),
    ],
)
def test_version_2_files_with_crafted_graphs_or_buffers(case, message, tmp_path):
    from engine.model import build_model, lenet5

    model = build_model({"name": "resnet8", "num_classes": 3, "input_shape": [3, 32, 32]})
    path = save_model(model, tmp_path / "resnet8.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][()]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    counter = next(k for k in arrays if k.endswith("num_batches_tracked"))
    bn = counter[: -len("num_batches_tracked")]
    if case == "graph_list":
        meta["graph"] = [1]
    elif case == "graph_100000_nodes":
        relus = [{"type": "relu", "name": f"r{i}", "inputs": ["input"]} for i in range(100_000)]
        meta["graph"] = {
            "name": "graph",
            "input_shape": [3, 32, 32],
            "nodes": relus,
            "output": "r0",
        }
    elif case == "graph_of_another_net":
        meta["graph"] = lenet5(num_classes=3, in_channels=3).graph_spec()
    elif case == "buffer_as_float":
        arrays[counter] = arrays[counter].astype(np.float64)
    elif case == "buffer_huge_shape":
        arrays[bn + "running_mean"] = np.zeros(1_000_000, dtype=np.float32)
    else:
        del arrays[bn + "running_var"]
    with pytest.raises(ModelFileError, match=message):
        load_model(write_model(tmp_path / f"{case}.npz", meta, arrays))
