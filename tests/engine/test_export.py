"""``convscope export --pytorch``: the generated file's network, preparation and training.

Skipped where PyTorch is not installed. The generated file is imported like a user would
(``importlib`` from its path) and also run as a script (``predict``, and ``train`` under a
2-process ``torchrun`` on the CPU with gloo).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from engine.model import build_model, lenet5
from engine.modelfile import load_model, save_model
from resources import sample_images, shipped_model_path

torch = pytest.importorskip("torch", reason="PyTorch is not installed; export tests skipped")

HANDWRITING = Path(__file__).resolve().parents[1] / "handwriting" / "images"
SHARED_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
PHOTO_CLASSES = ["boat", "dog", "cat", "bird"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _export(model_arg: Path | str, out: Path, capsys) -> object:
    """``convscope export MODEL --pytorch OUT`` then import OUT as a module."""
    assert main(["export", str(model_arg), "--pytorch", str(out)]) == 0
    capsys.readouterr()
    spec = importlib.util.spec_from_file_location(f"exported_{out.stem}", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _classify_json(capsys, model_arg, images) -> list[dict]:
    code = main(["classify", "--json", str(model_arg), *map(str, images)])
    out, _ = capsys.readouterr()
    assert code == 0
    return json.loads(out)


def _exported_probs(mod, net, images) -> np.ndarray:
    rows = []
    for path in images:
        with Image.open(path) as image:
            x = mod.preprocess(image)
        with torch.no_grad():
            rows.append(net(x).softmax(1)[0].numpy())
    return np.array(rows)


def _check_equal_to_convscope(capsys, mod, model_file: Path, images: list[Path]) -> None:
    net = mod.load(model_file)
    engine_model = load_model(model_file)
    # the network alone: same input tensor, same softmax
    x = torch.cat([mod.preprocess(Image.open(p)) for p in images[:8]])
    with torch.no_grad():
        ours = net(x).softmax(1).numpy()
    np.testing.assert_allclose(ours, engine_model.predict_proba(x.numpy()), atol=1e-5)
    # end to end: an image file in, what `convscope classify` says out
    expected = _classify_json(capsys, model_file, images)
    assert [r["file"] for r in expected] == [str(p) for p in images]
    want = np.array([r["probabilities"] for r in expected])
    np.testing.assert_allclose(_exported_probs(mod, net, images), want, atol=1e-4)


@pytest.fixture(scope="module")
def photo_model_file(tmp_path_factory) -> Path:
    """A colour LeNet for the four photo classes (random weights with non-zero biases), with a
    per-channel normalisation."""
    from engine.inputspec import InputSpec

    rng = np.random.default_rng(7)
    model = lenet5(rng, num_classes=4, in_channels=3)
    model.classes = list(PHOTO_CLASSES)
    model.input_spec = InputSpec((3, 28, 28), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    for key, p in model.parameters().items():
        if key.endswith("bias"):
            p[...] = rng.normal(0, 0.2, p.shape)
    path = tmp_path_factory.mktemp("photo") / "photo.npz"
    save_model(model, path)
    return path


def test_shipped_lenet_state_dict_and_softmax_equal_convscope(capsys, tmp_path):
    mod = _export("shipped", tmp_path / "lenet.py", capsys)
    source = Path(tmp_path / "lenet.py").read_text()
    assert "import engine" not in source and "from engine" not in source
    net = mod.load(shipped_model_path())
    assert not net.training
    with np.load(shipped_model_path(), allow_pickle=False) as z:
        arrays = {k: z[k].shape for k in z.files if k != "meta"}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == arrays
    images = sorted(HANDWRITING.glob("*.png"))[::4]  # 75 of the 300, every digit and writer
    _check_equal_to_convscope(capsys, mod, shipped_model_path(), images)


def test_photo_model_softmax_equals_convscope_on_photos(capsys, tmp_path, photo_model_file):
    mod = _export(photo_model_file, tmp_path / "photo.py", capsys)
    assert mod.PREPARATION == "photo" and mod.INPUT["mean"] == [0.49, 0.48, 0.45]
    images = sample_images() + sorted(HANDWRITING.glob("*.png"))[:2]
    if SHARED_PHOTOS.is_dir():
        images += sorted(p for p in SHARED_PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    assert mod.preprocess(Image.open(images[0])).shape == (1, 3, 28, 28)
    _check_equal_to_convscope(capsys, mod, photo_model_file, images)


def _class_folder(root: Path, classes: list[str], per_class: int = 6) -> Path:
    """Tiny colour images, one subfolder per class: class k is mostly channel k % 3."""
    rng = np.random.default_rng(3)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            a[4:16, 4:16, k % 3] = 200 + 10 * (k // 3)
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


def test_train_round_trip_loads_back_in_convscope(capsys, tmp_path, photo_model_file):
    mod = _export(photo_model_file, tmp_path / "photo.py", capsys)
    data = _class_folder(tmp_path / "data", ["cat", "dog", "bird", "boat"])  # not model order
    out = tmp_path / "trained.npz"
    argv = ["train", "--weights", str(photo_model_file), "--data", str(data)]
    with pytest.MonkeyPatch.context() as patch:  # nothing outside the file: no app package
        patch.setitem(sys.modules, "resources", None)
        assert mod.main([*argv, "--epochs", "2", "--batch-size", "4", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "epoch 2: loss" in said
    assert "20x20 images resized to 28x28 for the network" in said  # as convscope train says
    back = load_model(out)
    assert back.classes == PHOTO_CLASSES
    assert back.architecture == load_model(photo_model_file).architecture
    before = load_model(photo_model_file).get_weights()
    assert any(not np.array_equal(before[k], w) for k, w in back.get_weights().items())
    record = back.meta["pytorch_training"]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["processes"] == 1
    # what PyTorch wrote is what ConvScope computes
    net = mod.load(out)
    x = torch.cat([mod.preprocess(Image.open(p)) for p in sample_images()[:3]])
    with torch.no_grad():
        np.testing.assert_allclose(
            net(x).softmax(1).numpy(), back.predict_proba(x.numpy()), atol=1e-5
        )


def test_train_reads_only_the_networks_classes(capsys, tmp_path, photo_model_file):
    """A folder of more classes than the network's (a CIFAR-10 folder for a four-class
    network): the others are not read, so an empty or broken one is no reason to stop."""
    mod = _export(photo_model_file, tmp_path / "photo.py", capsys)
    data = _class_folder(tmp_path / "data", ["cat", "dog", "bird", "boat", "frog"], per_class=3)
    (data / "emptyclass").mkdir()
    (data / "frog" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "trained.npz"
    argv = ["train", "--weights", str(photo_model_file), "--data", str(data), "--epochs", "1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "resources", None)
        assert mod.main([*argv, "--batch-size", "4", "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "8 training and 4 test images" in said.out  # 3 of each of the 4: 1 held out
    assert "broken" not in said.out + said.err and "emptyclass" not in said.out + said.err
    assert load_model(out).classes == PHOTO_CLASSES


def _write_idx(path: Path, array: np.ndarray) -> None:
    kind = 3 if array.ndim == 3 else 1
    head = np.array([0x800 + kind, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(head + array.astype(np.uint8).tobytes())


def test_train_on_an_idx_folder_and_refuse_missing_classes(capsys, tmp_path, photo_model_file):
    """MNIST-style IDX files train the digit model; a folder without the model's classes is one
    line and exit 2."""
    mod = _export("shipped", tmp_path / "lenet.py", capsys)
    rng = np.random.default_rng(5)
    idx = tmp_path / "idx"
    idx.mkdir()
    for prefix, n in (("train", 24), ("t10k", 8)):
        _write_idx(idx / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(idx / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    out = tmp_path / "idx.npz"
    argv = ["train", "--data", str(idx), "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "resources", None)
        assert mod.main(argv) == 0
    back = load_model(out)
    assert back.classes == [str(k) for k in range(10)]
    assert back.meta["pytorch_training"]["started_from"] == str(shipped_model_path().resolve())
    capsys.readouterr()

    photo = _export(photo_model_file, tmp_path / "photo.py", capsys)
    two = _class_folder(tmp_path / "two", ["cat", "dog"], per_class=2)
    argv = ["train", "--data", str(two), "--out", str(tmp_path / "x.npz")]
    assert photo.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "boat" in err and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_predict_script_runs_without_engine(capsys, tmp_path):
    """As a script, with the `engine` package made unimportable."""
    assert main(["export", "shipped", "--pytorch", str(tmp_path / "lenet.py")]) == 0
    image = HANDWRITING / "drawn-7-0.png"
    code = (
        "import sys, runpy; sys.modules['engine'] = None; "
        f"sys.argv = ['lenet.py', 'predict', {str(image)!r}]; "
        "runpy.run_path('lenet.py', run_name='__main__')"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{image}: 7 (")


def test_torchrun_two_cpu_processes_write_one_model(capsys, tmp_path, graph_model_file):
    """DDP on the CPU (gloo) with BatchNorm: one line says statistics are per process."""
    script = tmp_path / "graph.py"
    assert main(["export", str(graph_model_file), "--pytorch", str(script)]) == 0
    data = _class_folder(tmp_path / "data", PHOTO_CLASSES, per_class=4)
    out = tmp_path / "ddp.npz"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(script), "train", "--data", str(data), "--epochs", "1", "--batch-size", "4"]
    cmd += ["--out", str(out), "--device", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("each CPU process normalises with the statistics of its own") == 1
    back = load_model(out)
    assert back.classes == PHOTO_CLASSES
    assert set(back.state_dict()) == set(load_model(graph_model_file).state_dict())
    record = back.meta["pytorch_training"]
    assert record["processes"] == 2 and len(record["epochs"]) == 1
    assert record["started_from"] == str(graph_model_file.resolve())


def test_under_torchrun_a_bad_folder_or_argument_is_said_once(tmp_path, graph_model_file):
    # each process fails alike: the first one of the machine (LOCAL_RANK 0) says why, once
    script = tmp_path / "graph.py"
    assert main(["export", str(graph_model_file), "--pytorch", str(script)]) == 0
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    missing = tmp_path / "no such folder"
    cases = {
        "data": (["--data", str(missing), "--out", "x.npz"], str(missing)),
        "argument": (["--data", str(tmp_path), "--out", "x.npz", "--epochs", "-1"], "--epochs"),
    }
    for args, said in cases.values():
        cmd = [*run, str(script), "train", *args, "--device", "cpu"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        assert result.returncode != 0
        ours = [line for line in result.stderr.splitlines() if "error:" in line and said in line]
        assert len(ours) == 1, result.stderr
        assert f'{script.name}", line' not in result.stderr  # torchrun's own traceback only


# -- graph models: BatchNorm, residual add, concat, padded pools, global average pooling --------


def _node(kind: str, name: str, inputs: list[str], **config) -> dict:
    return {"type": kind, "name": name, "inputs": inputs, **config}


def _graph_spec() -> dict:
    """conv-bn-relu, a residual block (layer1.0), a padded 3x3/2 max pool, an Inception-like
    pair of branches concatenated, global average pooling, dropout, a classifier; 3x32x32."""
    conv = {"kernel_size": 3, "padding": 1, "bias": False}
    nodes = [
        _node("conv2d", "conv1", ["input"], in_channels=3, out_channels=8, **conv),
        _node("batchnorm2d", "bn1", ["conv1"], num_features=8),
        _node("relu", "relu1", ["bn1"]),
        _node("conv2d", "layer1.0.conv1", ["relu1"], in_channels=8, out_channels=8, **conv),
        _node("batchnorm2d", "layer1.0.bn1", ["layer1.0.conv1"], num_features=8),
        _node("add", "layer1.0.add", ["layer1.0.bn1", "relu1"]),
        _node("relu", "layer1.0.relu", ["layer1.0.add"]),
        _node("maxpool2d", "pool1", ["layer1.0.relu"], size=3, stride=2, padding=1),
        _node("conv2d", "mix.a", ["pool1"], in_channels=8, out_channels=4, kernel_size=1),
        _node("avgpool2d", "mix.pool", ["pool1"], size=3, stride=1, padding=1),
        _node("conv2d", "mix.b", ["mix.pool"], in_channels=8, out_channels=4, kernel_size=1),
        _node("concat", "mix.cat", ["mix.a", "mix.b", "pool1"]),
        _node("tanh", "mix.tanh", ["mix.cat"]),
        _node("globalavgpool", "gap", ["mix.tanh"]),
        _node("dropout", "drop", ["gap"], p=0.5),
        _node("dense", "fc", ["drop"], in_features=16, out_features=4),
    ]
    return {"name": "graph", "input_shape": [3, 32, 32], "nodes": nodes, "output": "fc"}


def _graph_model(architecture: dict, seed: int = 11):
    """A graph model with random weights, biases and BatchNorm statistics (so that evaluation
    mode differs from training mode); skipped where the engine builds no graph models."""
    from engine.errors import EngineError
    from engine.model import build_model

    rng = np.random.default_rng(seed)
    try:
        model = build_model(architecture, rng, classes=PHOTO_CLASSES)
    except EngineError as exc:
        pytest.skip(f"this engine does not build {architecture.get('name')}: {exc}")
    state = model.state_dict()
    for key, a in state.items():
        if key.endswith("running_var"):
            a[...] = rng.uniform(0.5, 2.0, a.shape)
        elif key.endswith(("running_mean", "bias")) or (key.endswith("weight") and a.ndim == 1):
            a[...] = rng.normal(0, 0.3, a.shape)
        elif key.endswith("num_batches_tracked"):
            a[...] = 7
    model.load_state_dict(state)
    return model


@pytest.fixture(scope="module")
def graph_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "graph.npz"
    save_model(_graph_model(_graph_spec()), path)
    return path


def test_graph_model_state_dict_and_softmax_equal_convscope(capsys, tmp_path, graph_model_file):
    mod = _export(graph_model_file, tmp_path / "graph.py", capsys)
    net = mod.load(graph_model_file)
    with np.load(graph_model_file, allow_pickle=False) as z:
        arrays = {k: (z[k].shape, z[k].dtype) for k in z.files if k != "meta"}
    ours = {k: (tuple(v.shape), v.numpy().dtype) for k, v in net.state_dict().items()}
    assert ours == arrays
    assert ours["layer1.0.bn1.num_batches_tracked"] == ((), np.int64)
    assert "mix.cat.weight" not in ours and "conv1.bias" not in ours
    images = sample_images() + sorted(HANDWRITING.glob("*.png"))[:2]
    _check_equal_to_convscope(capsys, mod, graph_model_file, images)


def test_graph_model_trains_in_pytorch_and_loads_back(capsys, tmp_path, graph_model_file):
    mod = _export(graph_model_file, tmp_path / "graph.py", capsys)
    data = _class_folder(tmp_path / "data", PHOTO_CLASSES, per_class=4)
    out = tmp_path / "trained.npz"
    argv = ["train", "--data", str(data), "--epochs", "1", "--batch-size", "4", "--out", str(out)]
    assert mod.main(argv) == 0  # the weights are found by the model file's recorded path
    back = load_model(out)
    assert back.classes == PHOTO_CLASSES
    before, after = load_model(graph_model_file).state_dict(), back.state_dict()
    assert after["bn1.num_batches_tracked"] > before["bn1.num_batches_tracked"]
    assert not np.allclose(after["bn1.running_mean"], before["bn1.running_mean"])
    net = mod.load(out)
    x = torch.cat([mod.preprocess(Image.open(p)) for p in sample_images()[:3]])
    with torch.no_grad():
        np.testing.assert_allclose(
            net(x).softmax(1).numpy(), back.predict_proba(x.numpy()), atol=1e-5
        )


def test_train_finishes_when_the_last_batch_holds_one_sample(capsys, tmp_path):
    """BatchNorm over 1x1 maps cannot train on one sample (PyTorch raises 'Expected more than
    1 value per channel'): 9 images in batches of 4 leave a last batch of one, which sits out."""
    from engine.architectures import choose

    text = ", ".join(["conv 4 3 stride 2"] * 5) + ", bn, relu"  # 32 px to 1x1 maps
    model = build_model(choose(text, 3).architecture(3), classes=PHOTO_CLASSES[:3])
    path = tmp_path / "tiny.npz"
    save_model(model, path)
    mod = _export(path, tmp_path / "tiny.py", capsys)
    data = tmp_path / "data"
    _class_folder(data / "train", PHOTO_CLASSES[:3], per_class=3)
    _class_folder(data / "test", PHOTO_CLASSES[:3], per_class=1)
    out = tmp_path / "trained.npz"
    argv = ["train", "--data", str(data), "--epochs", "2", "--batch-size", "4", "--out", str(out)]
    argv += ["--weights", str(path)]
    assert mod.main(argv) == 0
    assert int(load_model(out).buffers()["bn1.num_batches_tracked"]) > 0


@pytest.mark.parametrize("name", ["resnet8", "googlenet"])  # projection shortcuts, Inception
def test_family_member_softmax_equals_convscope(capsys, tmp_path, name):
    architectures = pytest.importorskip("engine.architectures")
    model = _graph_model(architectures.build_spec(name, (3, 32, 32), 4))
    path = tmp_path / f"{name}.npz"
    save_model(model, path)
    mod = _export(path, tmp_path / f"{name}.py", capsys)
    net, back = mod.load(path), load_model(path)
    assert set(net.state_dict()) == set(back.state_dict())
    x = torch.cat([mod.preprocess(Image.open(p)) for p in sample_images()[:3]])
    with torch.no_grad():
        ours = net(x).softmax(1).numpy()
    np.testing.assert_allclose(ours, back.predict_proba(x.numpy()), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_on_a_gpu_the_softmax_equals_convscope_and_training_keeps_tf32(capsys, tmp_path):
    """TF32 convolutions, PyTorch's default, moved LeNet-5's probabilities on a GPU by 3e-4
    (an H200): in eval mode the exported network runs them in float32; the setting is left as
    it was, for training's speed."""
    mod = _export("shipped", tmp_path / "lenet.py", capsys)
    digits = sorted(HANDWRITING.glob("*.png"))[:16]
    x = torch.cat([mod.preprocess(Image.open(p)) for p in digits])
    want = load_model(shipped_model_path()).predict_proba(x.numpy())
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default
    net = mod.load(shipped_model_path(), "cuda")
    with torch.no_grad():
        got = net(x.cuda()).softmax(1).cpu().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert torch.backends.cudnn.allow_tf32


def test_sync_batchnorm_on_gpus_and_plain_batchnorm_in_the_file(capsys, tmp_path, graph_model_file):
    """Under torchrun on GPUs BatchNorm becomes SyncBatchNorm (the global batch's statistics);
    the model file is written from plain BatchNorm with the same keys and values; on CPUs one
    line says each process uses its own statistics. (The conversion needs no GPU.)"""
    mod = _export(graph_model_file, tmp_path / "graph.py", capsys)
    net = mod.load(graph_model_file)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    plain = [n for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    said: list[str] = []
    assert mod._batchnorm_across(net, torch.device("cuda", 0), 1, said.append) is net
    assert mod._batchnorm_across(net, torch.device("cpu"), 2, said.append) is net and not said[1:]
    assert len(said) == 1 and "own share of the batch" in said[0]
    synced = mod._batchnorm_across(net, torch.device("cuda", 0), 2, said.append)
    assert "global batch of 2 processes (SyncBatchNorm)" in said[1]
    syncs = [n for n, m in synced.named_modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert syncs == plain and len(plain) >= 2
    written = tmp_path / "written.npz"
    mod.save(synced, written)
    with np.load(graph_model_file) as a, np.load(written) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key != "meta":
                assert a[key].dtype == b[key].dtype
                np.testing.assert_array_equal(a[key], b[key])
    back = mod.plain_batchnorm(synced)
    assert back is synced and not any(isinstance(m, torch.nn.SyncBatchNorm) for m in back.modules())
    assert [n for n, m in back.named_modules() if type(m) is torch.nn.BatchNorm2d] == plain
    after = back.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert torch.equal(after[key], value)
    x = torch.cat([mod.preprocess(Image.open(p)) for p in sample_images()[:2]])
    with torch.no_grad():
        probs = back.eval()(x).softmax(1).numpy()
    expected = load_model(graph_model_file).predict_proba(x.numpy())
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    one = mod.plain_batchnorm(torch.nn.SyncBatchNorm(4, momentum=0.3).eval())
    assert type(one) is torch.nn.BatchNorm2d and one.momentum == 0.3 and not one.training


def test_node_names_pytorch_modules_use_themselves_are_refused_and_others_export(capsys, tmp_path):
    """A graph with a convolution named 'forward', 'training' or '__class__' (a hand-written
    FILE.json) trained and exported, and the exported file failed on import with PyTorch's
    "KeyError: attribute 'forward' already exists". Such names are refused when the network
    is built; 'output', 'graph' and 'nodes', the exported module's own attribute names until
    now, export like any other."""
    from engine.errors import ShapeError
    from engine.graph import TORCH_ATTRIBUTES

    public = {a for a in dir(torch.nn.Module()) if not a.startswith("_")}
    assert public <= TORCH_ATTRIBUTES  # the installed torch has no attribute the list lacks

    def spec(first: str, second: str) -> dict:
        shape = [1, 8, 8]
        return {
            "name": "graph",
            "input_shape": shape,
            "nodes": [
                {"type": "conv2d", "name": first, "inputs": ["input"], "in_channels": 1,
                 "out_channels": 2, "kernel_size": [3, 3], "stride": 1, "padding": 1},
                {"type": "batchnorm2d", "name": second, "inputs": [first], "num_features": 2},
                {"type": "flatten", "name": "nodes", "inputs": [second]},
                {"type": "dense", "name": "output", "inputs": ["nodes"], "in_features": 128,
                 "out_features": 3},
            ],
            "output": "output",
        }  # fmt: skip

    rng = np.random.default_rng(0)
    for bad in ("forward", "a.training", "__class__", "x._modules", "classes", "to"):
        with pytest.raises(ShapeError, match=f"bad node name '{bad}': .* rename the node"):
            build_model(spec(bad, "bn"), rng)
    model = build_model(spec("graph", "1x.layer"), rng)
    path = tmp_path / "odd.npz"
    save_model(model, path)
    mod = _export(path, tmp_path / "odd.py", capsys)
    net = mod.load(path)
    theirs = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert theirs == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert "output.weight" in theirs and "graph.weight" in theirs
    x = np.random.default_rng(1).random((2, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, model.forward(x), rtol=1e-4, atol=1e-5)
