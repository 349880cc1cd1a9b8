"""``convscope train`` and ``evaluate`` with a network whose input differs from a fixed-size
dataset's images: CIFAR-10 binary batches (32x32) for LeNet-5 (28x28), in colour and in grey."""

from __future__ import annotations

import json

import numpy as np

from engine.modelfile import load_model
from tests.engine.test_cli_train_evaluate import _run_in_process
from tests.engine.test_datasets_photos import make_cifar_folder


def test_lenet5_trains_and_evaluates_on_cifar_batches_resized_to_28x28(tmp_path):
    make_cifar_folder(tmp_path / "c10", np.random.default_rng(0), batches=2)
    out = tmp_path / "lenet5.npz"
    argv = ["train", "--dataset", str(tmp_path / "c10"), "--arch", "lenet5", "--epochs", "1"]
    status, stdout, stderr = _run_in_process([*argv, "--out", str(out), "--json"])
    assert status == 0, stderr  # was: "images are 32x32 but the model takes 28x28"
    line = "CIFAR-10 (2 of 5 training batches) 32x32 images resized to 28x28 for lenet5"
    assert line in stderr
    model = load_model(out)
    assert model.input_spec.shape == (3, 28, 28)
    trained = json.loads(stdout)["test_accuracy"]

    status, stdout, stderr = _run_in_process(
        ["evaluate", str(out), "--dataset", str(tmp_path / "c10"), "--json"]
    )
    assert status == 0, stderr
    assert "32x32 images resized to 28x28 for lenet5.npz" in stderr
    doc = json.loads(stdout)
    assert doc["accuracy"] == trained and len(doc["per_class"]) == 10  # the pixels it trained on

    grey_out = tmp_path / "grey.npz"
    status, _, stderr = _run_in_process([*argv, "--channels", "1", "--out", str(grey_out)])
    assert status == 0, stderr
    assert line in stderr and load_model(grey_out).input_spec.shape == (1, 28, 28)
    status, stdout, _ = _run_in_process(
        ["evaluate", str(grey_out), "--dataset", str(out.parent / "c10")]
    )
    assert status == 0 and "accuracy" in stdout


def test_a_member_of_any_size_reads_cifar_batches_at_their_own_32x32(tmp_path):
    make_cifar_folder(tmp_path / "c10", np.random.default_rng(0), batches=1)
    out = tmp_path / "resnet8.npz"
    argv = ["train", "--dataset", str(tmp_path / "c10"), "--arch", "resnet8", "--epochs", "1"]
    status, _, stderr = _run_in_process([*argv, "--out", str(out)])
    assert status == 0, stderr
    assert "resized" not in stderr and load_model(out).input_spec.shape == (3, 32, 32)
    status, _, stderr = _run_in_process([*argv, "--channels", "1", "--out", str(out)])  # grey
    assert status == 0, stderr
    assert "32x32 images resized to 28x28 for resnet8" in stderr
    assert load_model(out).input_spec.shape == (1, 28, 28)


def test_an_image_folder_read_at_the_networks_size_says_so_in_the_train_log(tmp_path):
    # IDX and CIFAR data said "resized"; a folder of photos read at another size said nothing.
    from PIL import Image

    for cls, sizes in {"cat": [(48, 48)] * 3 + [(40, 30)], "dog": [(48, 48), (64, 64)]}.items():
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i, wh in enumerate(sizes):
            Image.new("RGB", wh, (60 * i, 90, 200)).save(tmp_path / "pets" / cls / f"{i}.png")
    argv = ["train", "--dataset", str(tmp_path / "pets"), "--arch", "lenet5", "--epochs", "1"]
    status, _, stderr = _run_in_process([*argv, "--out", str(tmp_path / "pets.npz")])
    assert status == 0, stderr
    assert "pets images of 48x48 and 2 other sizes, read at 28x28 for lenet5" in stderr
