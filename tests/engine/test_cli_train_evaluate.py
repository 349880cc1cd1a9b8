"""``convscope train`` and ``convscope evaluate``, headless (no Qt), on a small IDX folder."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import desktop.cli.train_cmd as train_cmd
from desktop.cli import main
from desktop.cli.progress import Progress, bar_text, format_duration

MNIST = Path(__file__).resolve().parents[2] / "resources" / "datasets" / "mnist"


def _read(name: str, header: int, count: int, item: int) -> bytes:
    with gzip.open(MNIST / name) as f:
        f.read(header)
        return f.read(count * item)


def _write_idx(path: Path, payload: bytes, dims: tuple[int, ...]) -> None:
    magic = bytes([0, 0, 0x08, len(dims)])
    head = b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(magic + head + payload)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """A folder of raw IDX files in MNIST layout: 640 training and 200 test digits."""
    folder = tmp_path_factory.mktemp("digits")
    n_train, n_test = 640, 200
    images = _read("train-images-idx3-ubyte.gz", 16, n_train + n_test, 784)
    labels = _read("train-labels-idx1-ubyte.gz", 8, n_train + n_test, 1)
    _write_idx(folder / "train-images-idx3-ubyte", images[: n_train * 784], (n_train, 28, 28))
    _write_idx(folder / "train-labels-idx1-ubyte", labels[:n_train], (n_train,))
    _write_idx(folder / "t10k-images-idx3-ubyte", images[n_train * 784 :], (n_test, 28, 28))
    _write_idx(folder / "t10k-labels-idx1-ubyte", labels[n_train:], (n_test,))
    return folder


@pytest.fixture(scope="module")
def trained(digits_folder, tmp_path_factory) -> tuple[Path, dict, str]:
    """One `convscope train --json` run: (model path, its JSON, its stderr)."""
    out = tmp_path_factory.mktemp("model") / "digits.npz"
    args = ["train", "--dataset", str(digits_folder), "--epochs", "4", "--seed", "3"]
    result = _run_in_process([*args, "--out", str(out), "--json"])
    assert result[0] == 0, result
    return out, json.loads(result[1]), result[2]


def _run_in_process(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr captured: (status, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def test_train_json_reports_metrics_and_saves_a_complete_model(trained, digits_folder):
    from engine.modelfile import load_model

    out, doc, _ = trained
    assert doc["status"] == "finished" and doc["model"] == str(out)
    assert doc["epochs"] == 4 and doc["arch"] == "lenet5"
    assert doc["dataset"] == digits_folder.name
    assert 0.6 < doc["test_accuracy"] <= 1 and 0.6 < doc["val_accuracy"] <= 1
    assert doc["train_accuracy"] > 0.5 and doc["train_loss"] > 0 and doc["seconds"] > 0
    assert set(doc["timings"]) == {"load", "train", "evaluate", "save", "total"}

    model = load_model(out)
    meta = model.meta
    assert meta["evaluation"]["accuracy"] == doc["test_accuracy"]
    assert meta["evaluation"]["count"] == 200 and meta["evaluation"]["split"] == "test"
    assert [e["epoch"] for e in meta["history"]["epochs"]] == [1, 2, 3, 4]
    assert meta["history"]["config"]["seed"] == 3
    # --val-fraction 0.1 of 640 (stratified per class)
    assert meta["dataset"]["train"] + meta["dataset"]["val"] == 640
    assert 55 <= meta["dataset"]["val"] <= 75
    assert meta["trained_at"].endswith("+00:00")


def test_train_progress_goes_to_stderr_as_plain_lines(trained):
    _, _, stderr = trained
    lines = stderr.splitlines()
    assert any(line.startswith("training lenet5 on") for line in lines)
    first_batch = next(line for line in lines if "img/s" in line)
    assert "epoch 1/4" in first_batch and "loss" in first_batch and "ETA" in first_batch
    assert sum(line.startswith("epoch ") and "val loss" in line for line in lines) == 4
    assert "\r" not in stderr  # not a terminal: no in-place redraws


def test_evaluate_json_matches_what_train_stored(trained, digits_folder):
    out, doc, _ = trained
    status, stdout, _ = _run_in_process(
        ["evaluate", str(out), "--dataset", str(digits_folder), "--json"]
    )
    assert status == 0
    result = json.loads(stdout)
    assert result["accuracy"] == doc["test_accuracy"]
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 200
    assert np.trace(confusion) / 200 == pytest.approx(result["accuracy"])
    per_class = np.diag(confusion) / confusion.sum(axis=1)
    assert result["per_class"] == pytest.approx(per_class.tolist())


def test_evaluate_text_report_is_a_readable_table(trained, digits_folder):
    out, _, _ = trained
    status, stdout, _ = _run_in_process(
        ["evaluate", str(out), "--dataset", str(digits_folder), "--limit", "50"]
    )
    assert status == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("digits.npz on digits0, the t10k files") and lines[0].endswith(
        ": 50 images"
    )
    assert lines[1].startswith("accuracy ")
    assert "confusion matrix (rows = true class, columns = predicted class):" in lines
    table = lines[lines.index("confusion matrix (rows = true class, columns = predicted class):") :]
    rows = [line.split() for line in table[2:12]]
    assert [r[0] for r in rows] == [str(k) for k in range(10)]
    assert sum(int(v) for r in rows for v in r[1:]) == 50


def test_divergence_exits_1_with_a_clear_message_and_writes_nothing(digits_folder, tmp_path):
    out = tmp_path / "exploded.npz"
    argv = ["train", "--dataset", str(digits_folder), "--optimizer", "sgd", "--lr", "10"]
    status, stdout, stderr = _run_in_process([*argv, "--out", str(out)])
    assert status == 1
    assert "learning rate 10 is probably too high" in stderr
    assert f"nothing was written to {out}" in stderr
    assert "Traceback" not in stderr and stdout.startswith("training diverged")
    assert not out.exists()


def test_a_full_disk_at_the_end_saves_the_run_elsewhere_and_says_where(
    digits_folder, tmp_path, disk_full_at
):
    """The disk fills up during a long run: the final save fails, and the trained model is
    written to a rescue file that the one error line names (exit 2), not lost."""
    from engine import atomic
    from engine.modelfile import load_model

    out, spare = tmp_path / "run.npz", tmp_path / "spare"
    spare.mkdir()
    disk_full_at(atomic, out, spare)
    argv = ["train", "--dataset", str(digits_folder), "--epochs", "1", "--out", str(out)]
    status, _, stderr = _run_in_process(argv)
    [rescued] = spare.iterdir()
    line = stderr.strip().splitlines()[-1]
    assert status == 2 and not out.exists() and "Traceback" not in stderr
    assert f"cannot save {out}: No space left on device" in line and str(rescued) in line
    model = load_model(rescued)
    assert model.meta["history"]["epochs"] and len(model.classes) == 10


def _interrupt_on_first_batch(monkeypatch) -> None:
    """Make the progress display send this process a SIGINT (a Ctrl+C) at the first batch."""

    class CtrlC(Progress):
        def update(self, fraction, text, *, force=False):
            if text.startswith("epoch 1/"):
                signal.raise_signal(signal.SIGINT)
            return super().update(fraction, text, force=force)

    monkeypatch.setattr(train_cmd, "Progress", CtrlC)


def test_ctrl_c_without_save_on_interrupt_saves_nothing(digits_folder, tmp_path, monkeypatch):
    _interrupt_on_first_batch(monkeypatch)
    out = tmp_path / "model.npz"
    # what the process had (a shell's background job starts with Ctrl+C ignored, not the default)
    before = signal.getsignal(signal.SIGINT)
    status, _, stderr = _run_in_process(
        ["train", "--dataset", str(digits_folder), "--epochs", "5", "--out", str(out)]
    )
    assert status == 130
    assert "interrupted at epoch 1 batch 1; nothing saved (add --save-on-interrupt" in stderr
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is before  # restored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_model_is_saved_lets_the_save_finish(
    digits_folder, tmp_path, monkeypatch, sig
):
    # Ctrl+C (or SIGTERM) in the moment the finished run was being written raised
    # KeyboardInterrupt there: the file was dropped, the run lost, and "interrupted" said no more
    from engine import modelfile
    from engine.modelfile import load_model

    real = modelfile.write_or_rescue

    def signalled(path, write):
        signal.raise_signal(sig)
        signal.raise_signal(sig)  # pressed twice
        return real(path, write)

    monkeypatch.setattr(modelfile, "write_or_rescue", signalled)
    out = tmp_path / "model.npz"
    before = signal.getsignal(sig)
    argv = ["train", "--dataset", str(digits_folder), "--epochs", "1", "--out", str(out)]
    status, stdout, stderr = _run_in_process([*argv, "--json"])
    assert status == 130 and "Traceback" not in stderr
    assert json.loads(stdout)["model"] == str(out)
    assert stderr.strip().splitlines()[-1] == (
        f"convscope train: interrupted while saving; the model was saved in full to {out} first"
    )
    assert load_model(out).meta["history"]["status"] == "finished"
    assert signal.getsignal(sig) is before  # restored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_with_save_on_interrupt_saves_what_was_trained(digits_folder, tmp_path, sig):
    """A real Ctrl+C (SIGINT) to a real `convscope train` process; SIGTERM (kill, timeout, a
    job scheduler) likewise: it killed the process at once, without a word or the weights."""
    from engine.modelfile import load_model

    out = tmp_path / "partial.npz"
    code = (
        "import sys; from desktop.cli import main; rc = main(sys.argv[1:]); "
        "assert 'PySide6' not in sys.modules, 'the CLI imported Qt'; sys.exit(rc)"
    )
    argv = ["train", "--dataset", str(digits_folder), "--epochs", "200", "--val-fraction", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--out", str(out), "--save-on-interrupt", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:  # wait for the first progress line: training has started
            if "img/s" in line:
                break
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    doc = json.loads(stdout)
    assert doc["status"] == "interrupted" and doc["model"] == str(out)
    model = load_model(out)
    assert model.meta["history"]["status"] == "cancelled"
    assert model.meta["interrupted_at"].startswith("epoch 1 batch ")
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--epochs", "0"], "epochs must be a whole number >= 1"),
        (["train", "--epochs", "1" + "0" * 400], "at most 1,000,000"),  # was an OverflowError
        (["train", "--lr", "-1"], "learning rate must be a finite number > 0"),
        (["train", "--val-fraction", "1.5"], "--val-fraction must be in [0, 1)"),
        (["train", "--limit", "0"], "--limit must be >= 1"),
        (["train", "--out", "model.txt"], "a model file name must end in .npz"),
        (["train", "--out", "/no/such/folder/m.npz"], "the folder /no/such/folder does not exist"),
        (["train", "--dataset", "/no/such/dataset"], "no such dataset or folder"),
        (["evaluate", "/no/such/model.npz"], "no such model file"),
    ],
)
def test_bad_arguments_give_one_clear_line(argv, message):
    status, stdout, stderr = _run_in_process(argv)
    assert status == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and message in stderr, stderr
    assert stderr.startswith(f"convscope {argv[0]}: error: ")


def test_evaluate_refuses_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a zip file at all")
    status, _, stderr = _run_in_process(["evaluate", str(bogus)])
    assert status == 2 and "bogus.npz" in stderr and "Traceback" not in stderr
    assert stderr.count("\n") == 1


def test_progress_helpers():
    assert format_duration(75.4) == "1:15" and format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "?"
    assert bar_text(0.5, 10) == "[#####-----]"

    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    tty = Tty()
    bar = Progress(tty, tty_interval=3600)
    assert bar.update(0.5, "half", force=True)
    assert not bar.update(0.6, "throttled")
    bar.message("done")
    assert tty.text.startswith("\r[") and "half" in tty.text and "throttled" not in tty.text
    assert tty.text.endswith("\ndone\n")


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory) -> Path:
    """An image folder of two classes (reddish and bluish squares), 12 PNGs each."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (folder / name).mkdir()
        for i in range(12):
            pixels = rng.integers(0, 80, size=(40, 40, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, size=(40, 40), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


def test_train_on_a_colour_image_folder_with_the_article_network(colour_folder, tmp_path):
    from engine.modelfile import load_model

    out = tmp_path / "colours.npz"
    argv = ["train", "--dataset", str(colour_folder), "--arch", "lenet-article"]
    argv += ["--channels", "3", "--epochs", "3", "--batch-size", "4", "--val-fraction", "0"]
    status, stdout, stderr = _run_in_process([*argv, "--out", str(out), "--json"])
    assert status == 0, stderr
    doc = json.loads(stdout)
    model = load_model(out)
    assert model.input_spec.shape == (3, 32, 32)
    assert model.classes == ["blue", "red"] or model.classes == ["red", "blue"]
    assert model.meta["evaluation"]["count"] == 4  # 20% of each class held out as the test set
    assert model.meta["dataset"]["train"] == 20
    assert doc["test_accuracy"] >= 0.75  # red against blue is easy
    assert len(model.meta["evaluation"]["confusion"]) == 2


def test_evaluate_refuses_a_dataset_with_other_classes(trained, colour_folder):
    out, _, _ = trained
    status, _, stderr = _run_in_process(["evaluate", str(out), "--dataset", str(colour_folder)])
    assert status == 2
    assert "has 10 classes but the dataset" in stderr and "has 2" in stderr


def test_an_unwritable_out_is_refused_before_the_dataset_loads(digits_folder):
    argv = ["train", "--dataset", str(digits_folder), "--out", "/proc/model.npz"]
    status, stdout, stderr = _run_in_process(argv)
    assert status == 2 and stdout == "" and "img/s" not in stderr
    assert "--out /proc/model.npz: cannot write in /proc" in stderr


def test_total_error_with_a_huge_lr_exits_1_and_keeps_the_old_model(digits_folder, tmp_path):
    out = tmp_path / "kept.npz"
    out.write_bytes(b"an earlier model")
    argv = ["train", "--dataset", str(digits_folder), "--loss", "total-error", "--lr", "1e6"]
    status, stdout, stderr = _run_in_process([*argv, "--out", str(out), "--json"])
    assert status == 1, stderr
    doc = json.loads(stdout)
    assert doc["status"] == "diverged" and "weights exploded" in doc["message"]
    assert out.read_bytes() == b"an earlier model"


def test_an_empty_test_split_is_refused_before_training(tmp_path):
    from PIL import Image

    for name in ("a", "b"):  # one image per class: nothing can be held out for the test
        (tmp_path / "tiny" / name).mkdir(parents=True)
        Image.new("L", (28, 28), 0 if name == "a" else 255).save(tmp_path / "tiny" / name / "0.png")
    argv = ["train", "--dataset", str(tmp_path / "tiny"), "--out", str(tmp_path / "m.npz")]
    status, _, stderr = _run_in_process(argv)
    assert status == 2 and "test split is empty" in stderr and "img/s" not in stderr
    assert not (tmp_path / "m.npz").exists()


def test_optimizer_and_loss_choices_are_the_engine_registries():
    import argparse

    from engine.losses import LOSSES
    from engine.optim import DEFAULT_LR, OPTIMIZERS

    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    choices = {a.dest: a.choices for a in parser._actions}
    assert list(choices["optimizer"]) == list(OPTIMIZERS)
    assert [c.replace("-", "_") for c in choices["loss"]] == list(LOSSES)
    assert set(DEFAULT_LR) == set(OPTIMIZERS)  # every optimiser has a default rate


def test_running_out_of_memory_mid_training_is_one_line_and_exit_2(
    digits_folder, tmp_path, monkeypatch
):
    """An allocation failing inside a training step (a big network on a small machine): one
    line naming it, status 2, no traceback, nothing half-saved."""
    from engine import pooling

    def fails(*_args, **_kwargs):
        raise MemoryError("Unable to allocate 784. MiB for an array with shape (57344, 2, 14)")

    monkeypatch.setattr(pooling, "maxpool2x2_backward", fails)
    out = tmp_path / "model.npz"
    status, _, stderr = _run_in_process(
        ["train", "--dataset", str(digits_folder), "--epochs", "1", "--out", str(out)]
    )
    assert status == 2
    assert stderr.strip().splitlines()[-1] == (
        "convscope train: error: out of memory (Unable to allocate 784. MiB for an array with "
        "shape (57344, 2, 14)); try a smaller batch size, network or input"
    )
    assert "Traceback" not in stderr
    assert not out.exists()


def test_evaluate_matches_labels_to_the_models_class_order(colour_folder, tmp_path):
    """A model whose classes are not in the folder's (alphabetical) order, e.g. trained with
    --classes red,blue or written back by the PyTorch export: each image is scored against
    the output of its class by name, not by position (it scored 0% for a perfect model)."""
    from engine import architectures
    from engine.model import build_model
    from engine.modelfile import save_model

    arch = architectures.choose("globalavgpool, dense 2", 3).architecture(2)
    model = build_model(arch, classes=["red", "blue"])  # output 0: red - blue, 1: blue - red
    model.load_state_dict({"fc1.weight": np.array([[1, 0, -1], [-1, 0, 1]], np.float32),
                           "fc1.bias": np.zeros(2, np.float32)})  # fmt: skip
    save_model(model, tmp_path / "red-blue.npz")
    argv = ["evaluate", str(tmp_path / "red-blue.npz"), "--dataset", str(colour_folder)]
    status, stdout, stderr = _run_in_process([*argv, "--json"])
    assert status == 0, stderr
    doc = json.loads(stdout)
    assert doc["accuracy"] == 1.0 and doc["confusion"] == [[12, 0], [0, 12]]


def test_the_report_of_many_classes_names_the_worst_confusions_not_a_huge_table():
    from desktop.cli.evaluate_cmd import report
    from engine.evaluation import summarize

    k = 300
    labels = np.arange(3 * k) % k
    predicted = np.where(labels == 7, 8, labels)  # class 7 always taken for class 8
    predicted[labels == 9] = [9, 9, 2]  # and one 9 for a 2
    names = [f"kind {i}" for i in range(k)]
    text = report(summarize(labels, predicted, np.ones(3 * k, np.float32), k, names), names, "t")
    lines = text.splitlines()
    assert "confusion matrix (rows = true class, columns = predicted class):" not in lines
    at = lines.index("most confused classes (the whole matrix: --json), true -> predicted:")
    assert lines[at + 1 : at + 3] == ["  kind 7 -> kind 8: 3 images", "  kind 9 -> kind 2: 1 image"]
    assert max(len(line) for line in lines) < 100


def test_continue_trains_a_saved_model_further_as_the_train_tab_does(
    trained, digits_folder, tmp_path, monkeypatch
):
    """``--continue MODEL.npz``: the CLI's way to what the Train tab's Continue model does
    (the same engine run, ``training_run(model=...)``); the input file is left as it was and
    the result goes to NAME-continued.npz unless --out says otherwise."""
    from engine.modelfile import load_model
    from engine.run import RunSettings, training_run
    from engine.training import TrainConfig

    path, _, _ = trained
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    args = ["train", "--continue", str(path), "--dataset", str(digits_folder)]
    status, out, err = _run_in_process([*args, "--epochs", "1", "--seed", "5", "--json"])
    assert status == 0, err
    assert json.loads(out)["model"] == "digits-continued.npz" and path.read_bytes() == before
    assert "training digits.npz on " in err
    continued = load_model(tmp_path / "digits-continued.npz")
    # the engine's continued run with the same settings gives the same weights
    from engine.datasets import load_dataset

    dataset = load_dataset(str(digits_folder))
    settings = RunSettings(
        architecture=load_model(path).architecture, config=TrainConfig(epochs=1, seed=5)
    )
    run = training_run(dataset, settings, model=load_model(path))
    for _ in run.events():
        pass
    original = load_model(path).parameters()
    for key, value in run.model.parameters().items():
        assert np.allclose(continued.parameters()[key], value, atol=1e-6), key
        assert not np.array_equal(value, original[key]), key  # trained further


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--channels", "3"], "takes 1-channel input; leave out --channels"),
        (["--classes", "1,2"], "the model knows the classes 0, 1, 2, 3, 4, 5, ... (10 in all)"),
    ],
)
def test_continue_refuses_what_the_model_cannot_take(trained, digits_folder, extra, message):
    path, _, _ = trained
    argv = ["train", "--continue", str(path), "--dataset", str(digits_folder), *extra]
    status, out, err = _run_in_process(argv)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.splitlines()[-1].startswith("convscope train: ") and message in err, err


def test_continue_and_arch_are_one_or_the_other(trained, capsys):
    path, _, _ = trained
    with pytest.raises(SystemExit) as refused:
        main(["train", "--continue", str(path), "--arch", "vgg"])
    assert refused.value.code == 2
    assert "argument --arch: not allowed with argument --continue" in capsys.readouterr().err


def test_continue_refuses_a_file_that_is_not_a_model(tmp_path):
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    status, out, err = _run_in_process(["train", "--continue", str(fake)])
    assert status == 2 and out == "" and err.count("\n") == 1 and "fake.npz" in err, err


def test_the_report_lines_up_class_names_written_in_wide_or_accented_letters():
    from desktop.cli.common import text_width
    from desktop.cli.evaluate_cmd import report
    from engine.evaluation import summarize

    names = ["猫", "犬", "cafe\u0301", "ship"]  # two wide letters, a combining accent
    labels = np.array([0, 1, 2, 3, 0])
    predicted = np.array([0, 1, 2, 3, 1])
    text = report(summarize(labels, predicted, np.ones(5, np.float32), 4, names), names, "t")
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("class "))
    table = lines[head : head + 5]
    assert len({text_width(line) for line in table}) == 1, table  # every row as wide on screen
    at = lines.index("confusion matrix (rows = true class, columns = predicted class):")
    matrix = lines[at + 1 : at + 6]
    assert len({text_width(line) for line in matrix}) == 1, matrix
    assert [text_width(n) for n in names] == [2, 2, 4, 4]
