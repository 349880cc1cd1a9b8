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
from engine.model import lenet5
from engine.modelfile import load_model, save_model
from resources import sample_images, shipped_model_path

torch = pytest.importorskip("torch", reason="PyTorch is not installed; export tests skipped")

HANDWRITING = Path(__file__).resolve().parents[1] / "handwriting" / "images"
SHARED_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
PHOTO_CLASSES = ["boat", "dog", "cat", "bird"]


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
    """A colour LeNet for the four photo classes (random weights with non-zero biases)."""
    rng = np.random.default_rng(7)
    model = lenet5(rng, num_classes=4, in_channels=3)
    model.classes = list(PHOTO_CLASSES)
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
    assert mod.PREPARATION == "photo"
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
    assert mod.main([*argv, "--epochs", "2", "--batch-size", "4", "--out", str(out)]) == 0
    assert "epoch 2: loss" in capsys.readouterr().out
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


def test_predict_script_runs_without_engine(capsys, tmp_path):
    """As a script, with the `engine` package made unimportable."""
    assert main(["export", "shipped", "--pytorch", str(tmp_path / "lenet.py")]) == 0
    image = HANDWRITING / "drawn-7-0.png"
    code = (
        "import sys, runpy; sys.modules['engine'] = None; "
        f"sys.argv = ['lenet.py', 'predict', {str(image)!r}]; "
        "runpy.run_path('lenet.py', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{image}: 7 (")


def test_torchrun_two_cpu_processes_write_one_model(capsys, tmp_path, photo_model_file):
    script = tmp_path / "photo.py"
    assert main(["export", str(photo_model_file), "--pytorch", str(script)]) == 0
    data = _class_folder(tmp_path / "data", PHOTO_CLASSES, per_class=4)
    out = tmp_path / "ddp.npz"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(script), "train", "--data", str(data), "--epochs", "1", "--batch-size", "4"]
    cmd += ["--out", str(out), "--device", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    back = load_model(out)
    assert back.classes == PHOTO_CLASSES
    record = back.meta["pytorch_training"]
    assert record["processes"] == 2 and len(record["epochs"]) == 1
    assert record["started_from"] == str(photo_model_file.resolve())
