"""``convscope train`` / ``evaluate`` with photos: colour kept, --classes, --augment by the
data, --schedule, whole-folder evaluation, and runs refused before any training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_cli_train_evaluate import _run_in_process

COLOURS = {"bird": (0, 0, 255), "cat": (255, 0, 0), "dog": (90, 90, 90), "ship": (0, 255, 0)}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets") / "pets"
    rng = np.random.default_rng(0)
    for cls, colour in COLOURS.items():
        (root / cls).mkdir(parents=True)
        for i in range(10):
            noise = rng.integers(-30, 30, (24, 24, 3))
            px = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(px).save(root / cls / f"{i}.png")
    return root


def test_train_photos_with_classes_augment_and_schedule(pets, tmp_path):
    out = tmp_path / "m.npz"
    status, stdout, stderr = _run_in_process([
        "train", "--dataset", str(pets), "--arch", "lenet-article", "--classes", "ship,cat,dog",
        "--augment", "--schedule", "cosine", "--weight-decay", "0.0005", "--epochs", "2",
        "--val-fraction", "0", "--out", str(out), "--json",
    ])  # fmt: skip
    assert status == 0, stderr
    assert "cosine" in stderr and "photos augmentation" in stderr and "weight decay" in stderr
    doc = json.loads(stdout)
    from engine.modelfile import load_model

    model = load_model(out)
    assert model.classes == ["ship", "cat", "dog"] and model.input_spec.shape[0] == 3
    assert model.meta["dataset"]["augment"] == "photos"
    assert model.meta["history"]["config"]["schedule"] == "cosine"
    assert doc["test_accuracy"] is not None
    # evaluate on the plain class-folder tree: every image of the three classes is scored
    status, stdout, _ = _run_in_process(
        ["evaluate", str(out), "--dataset", str(pets), "--classes", "ship,cat,dog", "--json"]
    )
    assert status == 0
    result = json.loads(stdout)
    assert result["count"] == 30 and result["split"] == "every image in the folder"


def test_a_run_scores_its_test_photos_as_evaluate_scores_the_saved_file(tmp_path):
    """A network whose grey form takes 28x28 (a custom text) trains on 32x32 colour photos at
    their own size: the run's test evaluation is exactly `convscope evaluate` on the file (the
    run once read the photos at 28x28 and padded them, and evaluate then saw other inputs)."""
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for cls, colour in COLOURS.items():
            (tmp_path / "set" / split / cls).mkdir(parents=True)
            for i in range(8):
                px = np.clip(np.array(colour) + rng.integers(-90, 90, (32, 32, 3)), 0, 255)
                px[rng.integers(0, 32), :] = 255  # a line that resizing would blur
                name = tmp_path / "set" / split / cls / f"{i}.png"
                Image.fromarray(px.astype(np.uint8)).save(name)
    out = tmp_path / "m.npz"
    arch = "conv 4 3, relu, maxpool 2, flatten, dense 4"
    status, stdout, stderr = _run_in_process([
        "train", "--dataset", str(tmp_path / "set"), "--arch", arch, "--epochs", "1",
        "--val-fraction", "0", "--out", str(out), "--json",
    ])  # fmt: skip
    assert status == 0, stderr
    from engine.modelfile import load_model

    model = load_model(out)
    assert model.input_spec.shape == (3, 32, 32)
    status, stdout, _ = _run_in_process(
        ["evaluate", str(out), "--dataset", str(tmp_path / "set"), "--json"]
    )
    assert status == 0
    result = json.loads(stdout)
    assert result["count"] == 32 == model.meta["evaluation"]["count"]
    assert result["loss"] == pytest.approx(model.meta["evaluation"]["loss"], rel=1e-6)


def test_runs_that_could_not_finish_are_refused_before_training(pets, tmp_path):
    status, _, stderr = _run_in_process(
        ["train", "--dataset", str(pets), "--out", "/proc/convscope-model.npz"]
    )
    assert status == 2 and "/proc/convscope-model.npz" in stderr and "Traceback" not in stderr
    one = tmp_path / "one"
    for cls in ("a", "b"):
        (one / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8), "red").save(one / cls / "x.png")
    status, _, stderr = _run_in_process(
        ["train", "--dataset", str(one), "--out", str(tmp_path / "m.npz")]
    )
    assert status == 2 and "test split" in stderr and "empty" in stderr
    assert "epoch" not in stderr and not (tmp_path / "m.npz").exists()
    status, _, stderr = _run_in_process(["train", "--dataset", str(pets), "--classes", "cat,cow"])
    assert status == 2 and "no class 'cow'" in stderr


def test_train_says_which_tiny_class_it_cannot_test(pets, tmp_path):
    """A class of one photo is trained on but never tested: `train` says so in one line."""
    import shutil

    root = tmp_path / "few"
    shutil.copytree(pets, root)
    for f in sorted((root / "ship").iterdir())[1:]:
        f.unlink()
    status, _stdout, stderr = _run_in_process([
        "train", "--dataset", str(root), "--arch", "lenet-article", "--epochs", "1",
        "--out", str(tmp_path / "m.npz"),
    ])  # fmt: skip
    assert status == 0, stderr
    assert (
        "\ntoo few images to measure every class: ship (1 image) is never tested or validated; "
        "add images to that class\n" in stderr
    )


def test_evaluate_names_the_photo_of_each_mistake(pets, tmp_path):
    """On a photo folder `evaluate` listed its mistakes as '#221: dog -> cat', an index into
    an order the user never sees; the Train tab names the files. Now both say the file."""
    out = tmp_path / "m.npz"
    status, _, stderr = _run_in_process([
        "train", "--dataset", str(pets), "--arch", "lenet-article", "--epochs", "1",
        "--lr", "0.00001", "--out", str(out),
    ])  # fmt: skip
    assert status == 0, stderr
    status, stdout, _ = _run_in_process(["evaluate", str(out), "--dataset", str(pets), "--json"])
    assert status == 0
    mistakes = json.loads(stdout)["most_confident_mistakes"]
    assert mistakes
    names = sorted(COLOURS)
    for m in mistakes:
        assert m["file"].split("/")[0] == names[m["true"]] and (pets / m["file"]).is_file()
    status, stdout, _ = _run_in_process(["evaluate", str(out), "--dataset", str(pets)])
    lines = stdout.split("most confident mistakes (file: true -> predicted, confidence):\n")[1]
    first = mistakes[0]
    assert lines.splitlines()[0] == (
        f"  {first['file']}: {names[first['true']]} -> {names[first['predicted']]}, "
        f"{first['confidence']:.1%}"
    )


def test_evaluate_on_the_folder_a_model_was_trained_on_says_so(pets, tmp_path):
    """`evaluate m.npz --dataset pets` scores every photo of pets, those the model trained on
    among them, so it read higher than the run's test (and the Train tab's) with no word why."""
    out = tmp_path / "m.npz"
    status, _, stderr = _run_in_process([
        "train", "--dataset", str(pets), "--arch", "lenet-article", "--epochs", "1",
        "--out", str(out),
    ])  # fmt: skip
    assert status == 0, stderr
    from engine.modelfile import load_model

    tested = load_model(out).meta["evaluation"]["accuracy"]
    status, _, stderr = _run_in_process(["evaluate", str(out), "--dataset", str(pets)])
    assert status == 0
    assert (
        f"\nm.npz was trained on 32 of these 40 images; its test on the 8 it held out scored "
        f"{tested:.2%}\n" in stderr
    )
    other = tmp_path / "other"
    import shutil

    shutil.copytree(pets, other)
    status, _, stderr = _run_in_process(["evaluate", str(out), "--dataset", str(other)])
    assert status == 0 and "trained on" not in stderr
