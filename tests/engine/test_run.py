"""The training run (engine.run): split, build, train, evaluate, record, and its up-front checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.architectures import choose
from engine.datasets import Dataset
from engine.errors import DatasetError
from engine.model import build_model, lenet5
from engine.modelsize import TooLargeError
from engine.progress import CancelFlag, Progress
from engine.run import (
    RunEnded,
    RunError,
    RunSettings,
    check_writable,
    model_file_name,
    model_file_path,
    trained_model_file_name,
    training_run,
)
from engine.training import BatchEnd, EpochEnd, Finished, TrainConfig, TrainControl

sys.path.insert(0, str(Path(__file__).parent))
from test_training import mnist_slice


@pytest.fixture(scope="module")
def digits() -> Dataset:
    x, y = mnist_slice(700)
    classes = [str(k) for k in range(10)]
    return Dataset("digits", classes, x[:500], y[:500], x[500:], y[500:], "test slice")


def _settings(**changes) -> RunSettings:
    config = TrainConfig(epochs=changes.pop("epochs", 2), batch_size=50, seed=4)
    return RunSettings("lenet5", config, **changes)


def test_a_run_splits_trains_evaluates_and_records_its_metadata(digits):
    run = training_run(digits, _settings(val_fraction=0.2))
    counts = run.counts()  # stratified: round(0.2 * n) of each class
    assert counts["train"] + counts["val"] == 500 and 95 <= counts["val"] <= 105
    assert counts["test"] == 200
    events = list(run.events())
    kinds = [type(e) for e in events]
    assert kinds.count(EpochEnd) == 2 and kinds.index(Finished) < kinds.index(Progress)
    ended = events[-1]
    assert isinstance(ended, RunEnded) and ended.status == "finished"
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1] == Progress("evaluate", 200, 200) and progress[-1].fraction == 1.0
    assert ended.evaluation.count == 200 and ended.evaluation.accuracy > 0.5
    assert ended.epochs == tuple(e for e in events if isinstance(e, EpochEnd))
    assert (
        ended.samples_per_second
        == [e for e in events if isinstance(e, BatchEnd)][-1].samples_per_second
    )

    meta = run.model.meta
    assert meta["evaluation"]["accuracy"] == ended.evaluation.accuracy
    assert meta["evaluation"]["split"] == "test" and meta["evaluation"]["dataset"] == "digits"
    assert meta["dataset"] == {
        "name": "digits", "source": "test slice", **counts,
        "limit": None, "augment": False,
    }  # fmt: skip
    assert meta["config"]["seed"] == 4 and meta["config"]["val_fraction"] == 0.2
    assert meta["history"]["status"] == "finished" and meta["trained_at"].endswith("+00:00")
    assert meta["training_seconds"] > 0
    assert trained_model_file_name(run.model) == "lenet5-digits.npz"  # what Save offers


def test_a_typed_model_file_name_gets_npz_added_never_replaced():
    assert model_file_path("/m/lenet.v2") == Path("/m/lenet.v2.npz")  # not /m/lenet.npz
    assert model_file_path("/m/mine") == Path("/m/mine.npz")
    assert model_file_path("/m/mine.NPZ") == Path("/m/mine.NPZ")


def test_the_offered_file_name_says_network_and_data():
    assert model_file_name("resnet8", "cifar4") == "resnet8-cifar4.npz"
    assert (
        model_file_name("lenet-article", "My Photos / 2026") == "lenet-article-my-photos-2026.npz"
    )
    assert model_file_name("custom", None) == "custom.npz"
    assert model_file_name("custom", "???") == "custom.npz"  # nothing of it fits a file name
    text = build_model(choose("conv 4 3, relu, flatten, dense 3").architecture(3))
    assert trained_model_file_name(text) == "custom.npz"  # no run: no dataset in its metadata


def test_same_settings_same_model(digits):
    weights = []
    for _ in range(2):
        run = training_run(digits, _settings(epochs=1))
        list(run.events())
        weights.append(run.model.get_weights())
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_cancel_during_training_records_where_and_drops_a_stale_evaluation(digits):
    model = lenet5(np.random.default_rng(0))
    model.meta["evaluation"] = {"accuracy": 0.99}  # from an earlier run: no longer true
    control = TrainControl()
    run = training_run(digits, _settings(epochs=3), model=model, control=control)
    assert run.model is model
    events = []
    for event in run.events():
        events.append(event)
        if isinstance(event, BatchEnd) and event.batch == 2:
            control.cancel()
    ended = events[-1]
    assert ended.status == "cancelled" and ended.where == "epoch 1 batch 2"
    assert ended.evaluation is None and not any(isinstance(e, Progress) for e in events)
    assert "evaluation" not in model.meta and model.meta["interrupted_at"] == "epoch 1 batch 2"


def test_cancel_during_the_evaluation_makes_the_run_cancelled(digits):
    control = TrainControl()
    run = training_run(digits, _settings(epochs=1), control=control)
    for event in run.events():
        if isinstance(event, Finished):
            control.cancel()
        last = event
    assert last.status == "cancelled" and last.evaluation is None
    # it said "epoch 1 batch 0" (the CLI: "interrupted at epoch 1 batch 0"), as if nothing had
    # been trained, when every epoch had been
    assert last.where == "the test evaluation (1 of 1 epochs trained)"
    assert last.message == f"stopped at {last.where}"


def test_a_diverging_run_ends_diverged_without_evaluation(digits):
    config = TrainConfig(epochs=3, lr=1e6, loss="total_error", batch_size=50)
    run = training_run(digits, RunSettings("lenet5", config))
    ended = list(run.events())[-1]
    assert ended.status == "diverged" and "weights exploded" in ended.message
    assert ended.evaluation is None and run.model.meta["history"]["status"] == "diverged"


def test_an_empty_test_split_is_refused_before_training(digits):
    empty = Dataset("one each", digits.classes, digits.train_images, digits.train_labels,
                    digits.test_images[:0], digits.test_labels[:0], "x")  # fmt: skip
    with pytest.raises(DatasetError, match="test split is empty"):
        training_run(empty, _settings())
    run = training_run(empty, _settings(evaluate=False, epochs=1))  # fine without evaluation
    assert list(run.events())[-1].status == "finished"


def test_images_of_two_channels_are_refused(digits):
    two = np.repeat(digits.train_images[:, None], 2, axis=1)
    ds = Dataset(
        "two", digits.classes, two, digits.train_labels, two[:10], digits.test_labels[:10], "x"
    )
    with pytest.raises(DatasetError, match="2 channels"):
        training_run(ds, _settings())


def test_continuing_a_model_on_other_classes_is_refused(digits):
    model = lenet5(np.random.default_rng(0), num_classes=2)
    model.classes = ["cat", "dog"]
    with pytest.raises(RunError, match="start a new model"):
        training_run(digits, _settings(), model=model)


def test_colour_images_build_a_colour_network(digits):
    colour = np.repeat(digits.train_images[:, None], 3, axis=1)
    ds = Dataset("rgb", digits.classes, colour, digits.train_labels, colour[:20],
                 digits.train_labels[:20], "x")  # fmt: skip
    run = training_run(ds, _settings(epochs=1))
    assert run.model.input_spec.shape[0] == 3


def test_an_output_that_cannot_be_written_is_refused_before_training(digits, tmp_path):
    with pytest.raises(RunError, match=r"must end in \.npz"):
        check_writable(tmp_path / "model.txt")
    with pytest.raises(RunError, match="does not exist"):
        check_writable(tmp_path / "missing" / "m.npz")
    with pytest.raises(RunError, match="is a folder"):
        (tmp_path / "dir.npz").mkdir()
        check_writable(tmp_path / "dir.npz")
    with pytest.raises(RunError, match="cannot write in /proc"):
        training_run(digits, _settings(out=Path("/proc/model.npz")))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(RunError, match="cannot write in"):
                check_writable(locked / "m.npz")
        finally:
            locked.chmod(0o700)
            locked.rmdir()
    assert check_writable(tmp_path / "ok.npz") == tmp_path / "ok.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npz"]  # the probe file is gone


def test_a_cancel_flag_is_the_shared_protocol():
    flag = CancelFlag()
    assert not flag.cancelled
    flag.cancel()
    assert flag.cancelled


def test_a_huge_custom_network_is_refused_before_it_is_built(digits, monkeypatch):
    import engine.model

    def never(*args, **kwargs):
        raise AssertionError("built")

    monkeypatch.setattr(engine.model, "build_model", never)
    arch = {"name": "custom", "conv_filters": [6, 16], "kernel_size": 5, "fc_widths": [1_200_000]}
    with pytest.raises(TooLargeError, match="parameters"):
        training_run(digits, RunSettings(arch, TrainConfig()))


def test_a_colour_model_records_its_training_photos_per_channel_mean_and_std(tmp_path):
    rng = np.random.default_rng(3)
    x = np.empty((60, 3, 32, 32), dtype=np.uint8)  # red bright, green mid, blue dark and flat
    x[:, 0] = rng.integers(150, 256, size=(60, 32, 32))
    x[:, 1] = rng.integers(0, 256, size=(60, 32, 32))
    x[:, 2] = 20
    y = np.arange(60) % 4
    data = Dataset("photos", ["bird", "cat", "dog", "ship"], x[:40], y[:40], x[40:], y[40:], "t")
    config = TrainConfig(epochs=1, batch_size=20, seed=1)
    run = training_run(data, RunSettings("lenet-article", config, val_fraction=0.0))
    spec = run.model.input_spec
    train = x[:40].astype(np.float64) / 255
    assert spec.shape == (3, 32, 32) and spec.per_channel
    np.testing.assert_allclose(spec.mean, train.mean(axis=(0, 2, 3)), atol=1e-4)
    np.testing.assert_allclose(spec.std[:2], train.std(axis=(0, 2, 3))[:2], atol=1e-4)
    assert spec.std[2] == 1.0  # a flat channel is shifted, not blown up
    list(run.events())
    from engine.modelfile import load_model, save_model

    save_model(run.model, tmp_path / "m.npz")
    assert load_model(tmp_path / "m.npz").input_spec == spec  # the file keeps it


def test_a_grey_model_keeps_the_mnist_normalisation(digits):
    run = training_run(digits, _settings(epochs=1))
    assert run.model.input_spec.mean == 0.1307 and run.model.input_spec.std == 0.3081


def _thousand_classes_run() -> tuple:
    k = 1000
    x = np.zeros((2 * k, 28, 28), np.uint8)
    y = np.arange(2 * k) % k
    many = Dataset("many", [f"c{i}" for i in range(k)], x[:k], y[:k], x[k:], y[k:], "zeros")
    config = TrainConfig(epochs=1, batch_size=500, seed=0)
    run = training_run(many, RunSettings("lenet5", config, val_fraction=0.0))
    ended = list(run.events())[-1]
    assert ended.evaluation.confusion.shape == (k, k)
    return run, ended


def test_a_model_of_a_thousand_classes_saves_a_file_that_opens_again(tmp_path):
    # its 1,000 x 1,000 test confusion matrix in the metadata was a million numbers, over the
    # limit of a model file: 'the metadata holds about 1,004,282 values, more than the limit'
    from engine.modelfile import load_model, save_model

    run, ended = _thousand_classes_run()
    save_model(run.model, tmp_path / "many.npz")
    again = load_model(tmp_path / "many.npz")
    assert len(again.classes) == 1000 and again.meta["evaluation"]["confusion"] is None
    assert again.meta["evaluation"]["accuracy"] == ended.evaluation.accuracy
    assert len(again.meta["evaluation"]["per_class"]) == 1000


def test_a_thousand_class_file_saved_with_its_whole_confusion_matrix_still_opens(
    tmp_path, monkeypatch
):
    # files saved before the matrix was left out (the engine then recorded it at any size)
    # hold about 1,004,282 metadata values: old files keep loading
    import engine.run
    from engine.modelfile import load_model, save_model

    monkeypatch.setattr(engine.run, "META_CONFUSION_CLASSES", 10**6)
    run, ended = _thousand_classes_run()
    save_model(run.model, tmp_path / "old.npz")
    again = load_model(tmp_path / "old.npz")
    confusion = np.array(again.meta["evaluation"]["confusion"])
    assert confusion.shape == (1000, 1000) and confusion.sum() == 1000
    np.testing.assert_array_equal(confusion, ended.evaluation.confusion)


def test_continuing_keeps_batchnorm_statistics_and_starts_a_fresh_optimiser(digits, tmp_path):
    """The README's promise for *Continue model*: the weights and BatchNorm's running
    statistics and counts go on; the optimiser starts afresh (a model file holds no optimiser
    state), so a model continued from its file trains exactly as the one kept in memory."""
    from engine.modelfile import load_model, save_model

    text = "conv 4 3, bn, relu, maxpool 2, flatten"
    settings = RunSettings(text, TrainConfig(epochs=1, batch_size=100, seed=4), test_limit=20)
    first = training_run(digits, settings)
    list(first.events())
    assert int(first.model.buffers()["bn1.num_batches_tracked"]) == 5
    save_model(first.model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    kept, again = (
        training_run(digits, settings, model=first.model),
        training_run(digits, settings, model=loaded),
    )
    assert kept.optimizer.steps == 0  # momentum from zero: the first step sets the velocity
    for run in (kept, again):
        list(run.events())
    state, other = kept.model.state_dict(), again.model.state_dict()
    assert int(state["bn1.num_batches_tracked"]) == 10
    assert all(np.array_equal(state[k], other[k]) for k in state)


def test_a_class_too_small_to_be_tested_or_validated_is_said_in_one_line(tmp_path):
    """A user's folder with 1 ship and 2 birds: the ship was in no test or validation part and
    the bird in no validation part, and nothing said so (its accuracy just never showed)."""
    from PIL import Image

    from engine.datasets import load_dataset

    rng = np.random.default_rng(0)
    for cls, n in (("cat", 30), ("dog", 30), ("bird", 2), ("ship", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(tmp_path)
    config = TrainConfig(epochs=1, batch_size=20, seed=1)
    run = training_run(data, RunSettings("lenet-article", config, val_fraction=0.1))
    assert np.bincount(run.test_labels, minlength=4).tolist() == [1, 6, 6, 0]
    assert np.bincount(run.val_labels, minlength=4).tolist() == [0, 2, 2, 0]
    assert run.split_note() == (
        "too few images to measure every class: ship (1 image) is never tested or validated, "
        "bird (2 images) is never validated; add images to those classes"
    )
    quiet = training_run(data, RunSettings("lenet-article", config, val_fraction=0.0))
    assert quiet.split_note() == (
        "too few images to measure every class: ship (1 image) is never tested; add images to "
        "that class"
    )
    from engine.datasets import select_classes

    big = select_classes(data, "cat,dog")
    assert training_run(big, RunSettings("lenet-article", config)).split_note() == ""
