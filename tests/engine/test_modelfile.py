"""Model files: round trip, torch-style names, atomic save, and clear errors for bad files."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from engine.errors import ModelFileError
from engine.model import InputSpec, custom, lenet5, lenet_article
from engine.modelfile import load_meta, load_model, save_model


@pytest.fixture
def trained(rng):
    m = lenet5(rng, num_classes=3)
    m.classes = ["cat", "dog", "owl"]
    m.input_spec = InputSpec((1, 28, 28), mean=0.2, std=0.5)
    m.meta = {"history": {"batch_loss": [2.3, float("nan"), 1.1]}, "evaluation": {"accuracy": 0.5}}
    return m


def test_round_trip_gives_identical_outputs(trained, tmp_path, rng):
    path = save_model(trained, tmp_path / "m.npz")
    back = load_model(path)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    assert np.array_equal(back.forward(x), trained.forward(x))
    assert back.classes == ["cat", "dog", "owl"]
    assert back.input_spec == trained.input_spec
    assert back.meta["evaluation"] == {"accuracy": 0.5}
    assert back.meta["history"]["batch_loss"] == [2.3, None, 1.1]  # NaN stored as null
    assert back.summary() == trained.summary()


def test_file_holds_torch_state_dict_names_and_json_meta(trained, tmp_path):
    path = save_model(trained, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {*trained.parameters(), "meta"}
        assert z["conv1.weight"].shape == (6, 1, 5, 5) and z["conv1.weight"].dtype == np.float32
        assert z["fc3.weight"].shape == (3, 84)
        meta = json.loads(str(z["meta"][()]))
    assert meta["format"] == "convscope-model" and meta["version"] == 2
    assert meta["graph"] == trained.graph_spec()
    assert meta["architecture"] == {"name": "lenet5", "num_classes": 3, "in_channels": 1}
    assert meta["input"] == {"shape": [1, 28, 28], "scale": 1 / 255, "mean": 0.2, "std": 0.5}
    assert load_meta(path)["classes"] == ["cat", "dog", "owl"]


@pytest.mark.parametrize("build", [lenet_article, lambda r: custom(r, activation="tanh")])
def test_other_architectures_round_trip(build, tmp_path, rng):
    m = build(rng)
    back = load_model(save_model(m, tmp_path / "m.npz"))
    x = rng.standard_normal((2, *m.input_spec.shape)).astype(np.float32)
    assert np.array_equal(back.forward(x), m.forward(x))


def test_failed_save_leaves_the_old_file_intact(trained, tmp_path, monkeypatch):
    path = save_model(trained, tmp_path / "m.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(ModelFileError, match="No space left"):
        save_model(lenet5(np.random.default_rng(9), num_classes=3), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind


def test_save_into_missing_folder(trained, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        save_model(trained, tmp_path / "nope" / "m.npz")


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_bad_files_get_clear_errors(trained, tmp_path):
    good = save_model(trained, tmp_path / "good.npz").read_bytes()
    cases = {
        "missing.npz": (None, "no such file"),
        "empty.npz": (b"", "empty"),
        "truncated.npz": (good[: len(good) // 2], "truncated or corrupt"),
        "photo.npz": (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "PNG image"),
        "text.npz": (b"hello, I am not a model\n" * 10, "not a ConvScope model file"),
        "foreign.npz": (_npz_bytes(a=np.zeros(3), b=np.ones(2)), "without ConvScope metadata"),
        "array.npz": (_npy_bytes(), "single NumPy array"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        if content is not None:
            p.write_bytes(content)
        with pytest.raises(ModelFileError, match=message) as e:
            load_model(p)
        assert name in str(e.value)


def _npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


def _rewrite(src, dst, change):
    """Copy the archive src to dst, letting change(name, array) alter/drop entries."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays = change(arrays)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _with_meta(arrays, **updates):
    meta = json.loads(str(arrays["meta"][()]))
    meta.update(updates)
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {k: v for k, v in a.items() if k != "fc2.bias"}, "missing fc2.bias"),
        (lambda a: {**a, "fc9.weight": np.zeros(2, np.float32)}, "unexpected fc9.weight"),
        (lambda a: {**a, "fc1.weight": np.zeros((120, 401), np.float32)}, r"shape \(120, 401\)"),
        (lambda a: {**a, "fc1.bias": np.zeros(120, np.int32)}, "dtype int32"),
        (lambda a: {**a, "fc1.bias": np.full(120, np.inf, np.float32)}, "NaN or infinite"),
        (lambda a: _with_meta(a, version=7), "newer ConvScope"),
        (lambda a: _with_meta(a, format="other"), "not a ConvScope model file"),
        (lambda a: _with_meta(a, architecture={"name": "alexnet"}), "architecture"),
        (lambda a: _with_meta(a, classes=["a", "b"]), "architecture"),
        (lambda a: _with_meta(a, input={"shape": [1, 32, 32]}), "input shape"),
        (lambda a: {**a, "meta": np.array("{not json")}, "not valid JSON"),
        (
            lambda a: {**a, "meta": np.array('{"version": ' + "9" * 5000 + "}")},
            r"cannot be read \(a number of 5,000 digits; no value needs so many\)$",
        ),
    ],
)
def test_mismatched_files_are_refused(change, message, trained, tmp_path):
    src = save_model(trained, tmp_path / "good.npz")
    dst = tmp_path / "bad.npz"
    _rewrite(src, dst, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(dst)


def test_a_batchnorm_running_var_below_zero_is_refused_and_zero_is_not(tmp_path):
    # a negative variance made sqrt(var + eps) NaN: "bird (nan%)" with exit 0
    from engine.archtext import to_spec
    from engine.model import build_model

    model = build_model(to_spec("conv 4 3, relu, batchnorm, flatten, dense 2", (1, 8, 8), 2))
    var = model.buffers()["bn1.running_var"]
    var[...] = 0.0  # a channel that never varied: a variance, and loads
    back = load_model(save_model(model, tmp_path / "zero.npz"))
    assert np.array_equal(back.buffers()["bn1.running_var"], var)
    var[1] = -1.0
    path = save_model(model, tmp_path / "negative.npz")
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: bn1.running_var holds negative values")
    assert "\n" not in message


def test_pickled_entries_are_never_loaded(trained, tmp_path):
    src = save_model(trained, tmp_path / "good.npz")
    dst = tmp_path / "pickled.npz"
    _rewrite(src, dst, lambda a: {**a, "fc1.bias": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(ModelFileError, match=r"fc1\.bias"):
        load_model(dst)


def test_corrupt_member_is_reported(trained, tmp_path):
    src = save_model(trained, tmp_path / "good.npz")
    dst = tmp_path / "flipped.npz"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item.filename), zipfile.ZIP_DEFLATED)
    raw = bytearray(dst.read_bytes())
    start = raw.find(b"fc1.weight.npy") + 200
    raw[start : start + 64] = b"\xff" * 64
    dst.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(dst)


V1_ARCHITECTURES = [  # every shape a version-1 file's architecture took (parameters only)
    {"name": "lenet5", "num_classes": 4, "in_channels": 3},
    {"name": "lenet-article", "num_classes": 3, "in_channels": 1},
    {
        "name": "custom",
        "input_shape": [3, 32, 32],
        "conv_filters": [4, 6],
        "kernel_size": 3,
        "padding": 1,
        "fc_widths": [12],
        "activation": "tanh",
        "pooling": "avg",
        "num_classes": 5,
    },
    {
        "name": "custom",
        "input_shape": [1, 28, 28],
        "conv_filters": [3],
        "kernel_size": 5,
        "padding": 0,
        "fc_widths": [],
        "activation": "sigmoid",
        "pooling": "none",
        "num_classes": 2,
    },
    {
        "name": "sequential",
        "input_shape": [1, 12, 12],
        "layers": [
            {"type": "conv2d", "name": "conv1", "in_channels": 1, "out_channels": 2,
             "kernel_size": [3, 3], "stride": 1, "padding": 1, "init": "he"},
            {"type": "relu", "name": "relu1"},
            {"type": "maxpool2d", "name": "pool1", "size": 2},
            {"type": "flatten", "name": "flatten"},
            {"type": "dense", "name": "fc", "in_features": 72, "out_features": 3},
        ],
    },
]  # fmt: skip


@pytest.mark.parametrize("arch", V1_ARCHITECTURES, ids=lambda a: a["name"])
def test_version_1_files_of_every_architecture_load_with_the_same_outputs(arch, tmp_path, rng):
    """A version-1 file (written before the graph engine: float32 parameters named like the
    state_dict, meta without graph or buffers) loads to the same network and outputs."""
    from engine.model import build_model

    model = build_model(arch, rng)
    for key, p in model.parameters().items():
        if key.endswith("bias"):
            p[...] = rng.normal(0, 0.2, p.shape)
    shape = list(model.input_spec.shape)
    meta = {
        "format": "convscope-model",
        "version": 1,
        "architecture": arch,
        "classes": [f"c{i}" for i in range(model.num_classes)],
        "input": {"shape": shape, "scale": 1 / 255, "mean": 0.2, "std": 0.4},
        "history": None,
        "evaluation": None,
        "engine_version": "0.1.0",
    }
    path = tmp_path / "v1.npz"
    arrays = {k: np.asarray(p, np.float32) for k, p in model.parameters().items()}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    back = load_model(path)
    assert back.architecture["name"] == arch["name"] and back.classes == meta["classes"]
    assert back.input_spec.mean == 0.2 and back.input_spec.std == 0.4
    images = rng.integers(0, 256, (4, *shape), dtype=np.uint8)
    if shape[0] == 1:
        images = images[:, 0]
    model.input_spec = back.input_spec
    np.testing.assert_array_equal(back.predict_proba(images), model.predict_proba(images))
    again = load_model(save_model(back, tmp_path / "v2.npz"))  # and saved again as version 2
    assert load_meta(tmp_path / "v2.npz")["version"] == 2
    np.testing.assert_array_equal(again.predict_proba(images), model.predict_proba(images))
