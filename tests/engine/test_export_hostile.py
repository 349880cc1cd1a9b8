"""The exported PyTorch file facing what users and the outside world give it: unreadable and
oversized images, damaged, foreign and mismatched model files, awkward data folders, bad
arguments and a diverging run. Each is one clear line (or a skipped file with a line saying
so), as in ``convscope``; nothing is written that ConvScope cannot open.

Skipped where PyTorch is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from engine import architectures
from engine.inputspec import InputSpec
from engine.model import build_model
from engine.modelfile import load_model, save_model

torch = pytest.importorskip("torch", reason="PyTorch is not installed; export tests skipped")

CLASSES = ["chat noir", "oiseau é", "狗", "bateau"]
TEXT = "conv 4 3, relu, batchnorm, conv 4 3 stride 2, relu, avgpool 2, globalavgpool, dense 4"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(classes=CLASSES, seed: int = 2):
    arch = architectures.choose(TEXT, 3).architecture(len(classes))
    return build_model(arch, np.random.default_rng(seed), classes=classes)


def _export(model, model_file: Path, script: Path, name: str):
    """Save ``model`` to ``model_file``, export it to ``script`` and import that as ``name``."""
    save_model(model, model_file)
    assert main(["export", str(model_file), "--pytorch", str(script)]) == 0
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(module, model file) of a small custom network with unicode class names."""
    folder = tmp_path_factory.mktemp("hostile")
    model_file = folder / "custom.npz"
    return _export(_model(), model_file, folder / "custom.py", "exported_hostile"), model_file


def _class_folder(root: Path, per_class: int = 3) -> Path:
    rng = np.random.default_rng(4)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            a[4:16, 4:16, k % 3] = 220
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_predict_reads_files_as_classify_does(capsys, tmp_path, exported):
    """Over the pixel limit, empty, a folder: the lines `convscope classify` gives."""
    mod, model_file = exported
    Image.new("1", (9000, 6000)).save(tmp_path / "huge.png")  # 54 megapixels, a small file
    (tmp_path / "empty.jpg").write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, colour in enumerate(("red", "navy")):
        Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    paths = [str(tmp_path / "huge.png"), str(tmp_path / "empty.jpg"), str(folder)]
    assert main(["classify", str(model_file), *paths]) == 1
    want = capsys.readouterr()
    assert mod.main(["predict", "--weights", str(model_file), *paths]) == 1
    got = capsys.readouterr()
    assert got.out == want.out and got.out.count("\n") == 2
    prefix = "convscope classify: "
    assert got.err.splitlines() == [line.removeprefix(prefix) for line in want.err.splitlines()]
    assert "megapixels" in got.err


def test_predict_says_2_when_no_image_could_be_read(capsys, tmp_path, exported):
    """As `convscope classify`: 0 all classified, 1 some failed, 2 none."""
    mod, model_file = exported
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert main(["classify", str(model_file), str(tmp_path / "empty.jpg")]) == 2
    assert mod.main(["predict", "--weights", str(model_file), str(tmp_path / "empty.jpg")]) == 2
    capsys.readouterr()


def test_load_refuses_damaged_foreign_and_mismatched_files(capsys, tmp_path, exported):
    mod, model_file = exported
    truncated = tmp_path / "truncated.npz"
    with zipfile.ZipFile(truncated, "w") as z:
        z.writestr("meta.npy", b"\x93NUMPY")
    objects = tmp_path / "objects.npz"
    np.savez(objects, meta=np.array([{"a": 1}], dtype=object))
    other_classes = tmp_path / "other.npz"
    save_model(_model(classes=CLASSES[::-1]), other_classes)
    other_input = _model()
    other_input.input_spec = InputSpec((3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    other_spec = tmp_path / "spec.npz"
    save_model(other_input, other_spec)
    diverged = tmp_path / "nan.npz"
    net = mod.load(model_file)
    with torch.no_grad():
        net.conv1.weight[0, 0, 0, 0] = float("nan")
    mod.save(net, diverged)
    negative = tmp_path / "negative.npz"
    net = mod.load(model_file)
    net.bn1.running_var.fill_(-1.0)  # finite, but every output NaN: refused as ConvScope does
    mod.save(net, negative)
    cases = {
        truncated: "truncated",
        objects: "object data",
        other_classes: "classes",
        other_spec: "prepares its input",
        diverged: "NaN",
        negative: "bn1.running_var holds negative values",
    }
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "white").save(image)
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=reason):
            mod.load(path)
        assert mod.main(["predict", "--weights", str(path), str(image)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert reason in line and "allow_pickle" not in line


def test_train_skips_bad_files_and_reads_a_folder_named_like_a_bundled_set(
    capsys, tmp_path, exported, monkeypatch
):
    """A folder called photos/ is the user's, not the app's bundled photos (which this file
    does not have); a corrupt image is skipped with a line, as `convscope train` does."""
    mod, model_file = exported
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "resources", None)  # no app package beside the file
    data = _class_folder(tmp_path / "photos")
    (data / "狗" / "broken.png").write_bytes(b"not an image")
    argv = ["train", "--weights", str(model_file), "--epochs", "1", "--batch-size", "4"]
    assert mod.main([*argv, "--data", "photos", "--out", "out.npz"]) == 0
    out = capsys.readouterr().out
    assert "skipped 狗/broken.png: not a readable image" in out
    assert load_model(tmp_path / "out.npz").classes == CLASSES
    assert mod.main([*argv, "--data", "mnist", "--out", "out2.npz"]) == 2
    assert "bundled with ConvScope" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--epochs", "-1", "at least 0"),
        ("--batch-size", "0", "at least 1"),
        ("--lr", "nan", "at least 0.0"),
        ("--threads", "0", "at least 1"),
        ("--threads", "100000", "at most 1024"),  # PyTorch crashed (segfault) creating them
        ("--seed", "-5", "at least 0"),  # numpy's "expected non-negative integer" had named none
        ("--seed", str(2**64), "at most"),
        ("--epochs", "1" + "0" * 400, "at most"),  # too large for a float: a traceback
    ],
)
def test_train_refuses_bad_numbers(capsys, tmp_path, exported, option, value, reason):
    mod, _ = exported
    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o.npz"), option, value]
    with pytest.raises(SystemExit) as stop:
        mod.main(argv)
    assert stop.value.code == 2
    assert f"argument {option}: must be {reason}" in capsys.readouterr().err


def test_train_refuses_a_bad_device_or_destination_before_training(capsys, tmp_path, exported):
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    base = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    cases = [
        (["--out", str(tmp_path / "missing" / "o.npz")], "does not exist"),
        (["--out", str(tmp_path / "o.txt")], "must end in .npz"),
        (["--out", ""], "--out is empty"),  # was "--out : is a folder"
        (["--out", str(tmp_path / "o.npz"), "--device", "toaster"], "not a device"),
        (["--out", str(tmp_path / "o.npz"), "--device", "meta"], "runs on cpu or cuda"),
        (["--out", str(tmp_path / "o.npz"), "--device", "mps"], "runs on cpu or cuda"),
    ]
    for extra, reason in cases:
        assert mod.main([*base, *extra]) == 2
        captured = capsys.readouterr()
        assert reason in _one_line(captured.err) and "epoch" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_each_process_scores_its_share_of_a_test_set_smaller_than_the_processes(exported):
    """Under torchrun, process 1 of 2 with no test image (a class folder of one image each)
    and process 2 of 3 with one: ``torch.arange(rank, len(x), world)`` stopped the run with
    "upper bound and lower bound inconsistent with step sign" and a traceback per process."""
    mod, model_file = exported
    net, cpu = mod.load(model_file), torch.device("cpu")
    x = torch.zeros((1, *mod.input_spec().shape))
    y = torch.zeros(1, dtype=torch.int64)
    assert mod._accuracy(net, x[:0], y[:0], cpu, 1, 2) == (0, 0, 0)
    assert mod._accuracy(net, x, y, cpu, 2, 3) == (0, 0, 0)
    assert mod._accuracy(net, x, y, cpu, 0, 3)[1:] == (1, 0)


def test_an_empty_data_argument_is_refused_not_the_current_folder(
    capsys, tmp_path, exported, monkeypatch
):
    """``--data ""`` (an unset shell variable): it trained on the current folder's subfolders,
    where ``convscope train --dataset ""`` says there is no such dataset."""
    mod, model_file = exported
    monkeypatch.chdir(_class_folder(tmp_path / "data"))
    out = tmp_path / "o.npz"
    argv = ["train", "--weights", str(model_file), "--data", "", "--out", str(out)]
    assert mod.main(argv) == 2
    captured = capsys.readouterr()
    assert "no such dataset or folder" in _one_line(captured.err) and "epoch" not in captured.out
    assert not out.exists()


@pytest.mark.parametrize(
    ("device", "env", "reason"),
    [
        ("cuda", {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}, "2 processes"),
        ("cuda", {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}, "2 processes"),
        ("cuda:1", {}, "sees 1 GPU(s) here, cuda:0 to cuda:0"),
        ("cuda:0", {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}, "local rank"),
    ],
)
def test_more_processes_than_gpus_is_said_before_joining(
    capsys, tmp_path, exported, monkeypatch, device, env, reason
):
    """torchrun starting 2 processes on a machine with 1 GPU: every process stops with the
    reason before joining the group (the one of local rank 0, which speaks, says it; a process
    on a missing GPU used to fail in CUDA with a traceback while the other waited to join)."""
    mod, model_file = exported
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: pytest.fail("set a missing GPU"))
    monkeypatch.setattr(
        torch.distributed, "init_process_group", lambda *a, **k: pytest.fail("joined")
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["train", "--weights", str(model_file), "--data", str(tmp_path), "--device", device]
    assert mod.main([*argv, "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    if env.get("LOCAL_RANK", "0") == "0":
        assert reason in _one_line(err) and "--device" in err
    else:
        assert err == ""  # the first process of the machine says it


@pytest.mark.parametrize(
    ("error", "said"),
    [("cuda", "out of GPU memory; try a smaller --batch-size"), ("host", "out of memory;")],
)
def test_running_out_of_memory_is_one_line(capsys, tmp_path, exported, monkeypatch, error, said):
    """A network too big for the GPU (or the machine) at this batch size: one line naming the
    remedy, exit 2, no file, said by the process it happened to (under torchrun, with its rank)."""
    torch = pytest.importorskip("torch")
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    oom = torch.cuda.OutOfMemoryError if error == "cuda" else MemoryError

    def epoch(*_args):
        raise oom("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(mod, "_epoch", epoch)
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    assert mod.main([*argv, "--out", str(tmp_path / "o.npz")]) == 2
    captured = capsys.readouterr()
    assert said in _one_line(captured.err) and "Traceback" not in captured.err
    assert not (tmp_path / "o.npz").exists()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")  # not the process that speaks for the machine
    monkeypatch.setattr(mod, "_start_processes", lambda name: (1, 0, torch.device("cpu")))
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert mod.main([*argv, "--out", str(tmp_path / "o.npz")]) == 2
    assert "(process 3)" in _one_line(capsys.readouterr().err)


def test_a_diverging_run_keeps_the_last_finite_weights(capsys, tmp_path, exported, monkeypatch):
    """The loss turns NaN in epoch 2: the file holds epoch 1's weights and opens in ConvScope;
    NaN in epoch 1: nothing is written."""
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    real_epoch, calls = mod._epoch, []

    def epoch_going_wrong_at(bad: int):
        def epoch(model, loader, opt, device):
            calls.append(1)
            stats = real_epoch(model, loader, opt, device)
            if len(calls) == bad:
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))
                stats[0] = float("nan")
            return stats

        return epoch

    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    monkeypatch.setattr(mod, "_epoch", epoch_going_wrong_at(2))
    assert mod.main([*argv, "--epochs", "3", "--out", str(tmp_path / "a.npz")]) == 0
    assert "epoch 2: the loss is not finite" in capsys.readouterr().out
    back = load_model(tmp_path / "a.npz")  # refuses NaN weights
    assert [e["epoch"] for e in back.meta["pytorch_training"]["epochs"]] == [1]
    before = load_model(model_file).state_dict()
    assert any(not np.array_equal(before[k], v) for k, v in back.state_dict().items())
    calls.clear()
    monkeypatch.setattr(mod, "_epoch", epoch_going_wrong_at(1))
    assert mod.main([*argv, "--epochs", "2", "--out", str(tmp_path / "b.npz")]) == 1
    assert "no file written" in capsys.readouterr().out
    assert not (tmp_path / "b.npz").exists()


def test_a_full_disk_at_the_end_saves_the_network_elsewhere(
    capsys, tmp_path, exported, monkeypatch, disk_full_at
):
    """The final save fails (a full disk): the trained network goes to a rescue file that
    the one error line names, exit 2; it opens in ConvScope with its PyTorch record."""
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    out, spare = tmp_path / "o.npz", tmp_path / "spare"
    spare.mkdir()
    atomic = mod.engine("atomic")
    disk_full_at(atomic, out, spare)
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    assert mod.main([*argv, "--out", str(out)]) == 2
    [rescued] = spare.iterdir()
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line and str(rescued) in line and not out.exists()
    assert load_model(rescued).meta["pytorch_training"]["epochs"][0]["epoch"] == 1
    monkeypatch.setattr(atomic, "rescue_folders", lambda: [tmp_path / "gone"])
    assert mod.main([*argv, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.endswith(f"cannot save {out}: No space left on device")


def _epoch_then(mod, monkeypatch, when: int, what):
    """Make the exported ``_epoch`` run ``what(model)`` after its ``when``-th call."""
    real, calls = mod._epoch, []

    def epoch(model, loader, opt, device):
        calls.append(1)
        stats = real(model, loader, opt, device)
        if len(calls) == when:
            what(model)
        return stats

    monkeypatch.setattr(mod, "_epoch", epoch)


def test_weights_or_outputs_no_longer_finite_stop_the_run(capsys, tmp_path, exported, monkeypatch):
    """A huge --lr can leave the loss finite and the BatchNorm statistics infinite (a file
    that opened nowhere was saved), or the weights finite and so large that every output
    overflows: either stops the run with the last finite epoch's weights."""
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]

    def infinite_statistics(model):
        model.bn1.running_var.fill_(float("inf"))

    _epoch_then(mod, monkeypatch, 2, infinite_statistics)
    assert mod.main([*argv, "--epochs", "3", "--out", str(tmp_path / "a.npz")]) == 0
    said = capsys.readouterr().out
    assert "epoch 2: the weights or BatchNorm statistics are no longer finite numbers" in said
    assert [
        e["epoch"] for e in load_model(tmp_path / "a.npz").meta["pytorch_training"]["epochs"]
    ] == [1]

    def overflowing(model):
        with torch.no_grad():
            model.conv1.weight.fill_(3e38)

    _epoch_then(mod, monkeypatch, 1, overflowing)
    assert mod.main([*argv, "--epochs", "2", "--out", str(tmp_path / "b.npz")]) == 1
    said = capsys.readouterr().out
    assert "epoch 1: the network's outputs are no longer finite numbers" in said
    assert "no file written" in said and not (tmp_path / "b.npz").exists()


def test_ctrl_c_saves_the_epochs_finished_in_one_line(capsys, tmp_path, exported, monkeypatch):
    """Ctrl+C in epoch 2: epoch 1's weights are saved, one line says so, exit 130 (it was a
    traceback and nothing saved); in epoch 1: nothing to save, said so."""
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    real, calls = mod._epoch, []

    def epoch(*args):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(mod, "_epoch", epoch)
    stop_at = 2
    assert mod.main([*argv, "--epochs", "5", "--out", str(tmp_path / "a.npz")]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line.endswith(
        f"interrupted in epoch 2; saved the weights of epoch 1 to {tmp_path / 'a.npz'}"
    )
    assert len(load_model(tmp_path / "a.npz").meta["pytorch_training"]["epochs"]) == 1
    calls.clear()
    stop_at = 1
    assert mod.main([*argv, "--epochs", "5", "--out", str(tmp_path / "b.npz")]) == 130
    assert "no epoch had finished, nothing saved" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "b.npz").exists()


def test_class_folders_named_in_other_case_train(capsys, tmp_path, exported):
    """A folder "CHAT NOIR" for the class "chat noir": matched as ConvScope matches it (it
    stopped on "'CHAT NOIR' is not in list")."""
    mod, model_file = exported
    data = _class_folder(tmp_path / "data")
    (data / CLASSES[0]).rename(data / CLASSES[0].upper())
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--batch-size", "4"]
    assert mod.main([*argv, "--out", str(tmp_path / "o.npz")]) == 0
    assert load_model(tmp_path / "o.npz").classes == CLASSES
    capsys.readouterr()


def test_a_class_name_with_a_new_line_is_said_in_one_line(capsys, tmp_path, exported):
    mod, _ = exported
    other = tmp_path / "other.npz"
    save_model(_model(classes=["a\nb", "c", "d", "e"]), other)
    assert mod.main(["predict", "--weights", str(other), str(tmp_path)]) == 2
    assert "'a\\nb'" in _one_line(capsys.readouterr().err)


def test_names_the_output_cannot_encode_are_escaped_not_an_error(capsys, tmp_path):
    """A class folder named in bytes that are not UTF-8 (``caf\\xe9``: the class
    ``"caf\\udce9"``) on a terminal writing UTF-8 strictly: predict said "error: 'utf-8' codec
    can't encode" instead of its line, and train stopped at the line naming a skipped file in
    that folder. Such characters are written as backslash escapes, as ``convscope`` does."""
    classes = ["caf\udce9", "dog", "猫", "bird"]
    model_file = tmp_path / "odd.npz"
    mod = _export(_model(classes=classes), model_file, tmp_path / "odd.py", "exported_unencodable")
    data = tmp_path / "data"
    for k, name in enumerate(classes):
        folder = data / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * k + i, np.uint8)).save(folder / f"{i}.png")
    (data / classes[0] / "broken.png").write_bytes(b"not an image")
    capsys.readouterr()
    image = str(data / "dog" / "0.png")
    assert mod.main(["predict", "--weights", str(model_file), image]) == 0
    assert "caf\\udce9" in capsys.readouterr().out
    out = tmp_path / "o.npz"
    argv = ["train", "--weights", str(model_file), "--data", str(data), "--out", str(out)]
    assert mod.main(argv) == 0, capsys.readouterr().err
    assert "skipped caf\\udce9/broken.png" in capsys.readouterr().out
    assert load_model(out).classes == classes


def test_help_names_odd_files_and_classes(capsys, tmp_path):
    """argparse formats help with %: a model file called ``100% cats.npz`` and a class called
    ``50%`` must not break ``--help``."""
    classes = ["50%", "back\\slash", 'say "hi"', "%(prog)s"]
    model_file = tmp_path / "100% cats.npz"
    mod = _export(_model(classes=classes), model_file, tmp_path / "odd.py", "exported_odd")
    capsys.readouterr()
    for argv in (["--help"], ["train", "--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as stop:
            mod.main(argv)
        assert stop.value.code == 0
    text = capsys.readouterr().out
    assert '50%, back\\slash, say "hi", %(prog)s' in text.replace("\n", " ")
    assert text.count("100% cats.npz") == 2


def test_train_help_names_every_device_it_takes(capsys, exported):
    # the README: "--device cuda:N picks GPU N for a single process"
    mod, _ = exported
    with pytest.raises(SystemExit):
        mod.main(["train", "--help"])
    assert "cuda:N (GPU N; one process)" in " ".join(capsys.readouterr().out.split())


def test_without_weights_to_start_from_it_says_so_in_one_line(
    capsys, tmp_path, exported, monkeypatch
):
    # the model file it was exported from is gone: exit 2 and one line (it was SystemExit's
    # status 1, printed by every torchrun process)
    mod, _ = exported
    monkeypatch.setattr(mod, "SOURCE_MODEL", str(tmp_path / "gone.npz"))
    data = _class_folder(tmp_path / "data")
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "o.npz")]
    assert mod.main(argv) == 2
    assert "no weights to start from: pass --weights" in _one_line(capsys.readouterr().err)
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "white").save(image)
    assert mod.main(["predict", str(image)]) == 2
    assert "no weights: pass --weights" in _one_line(capsys.readouterr().err)


def test_an_empty_weights_argument_is_refused_not_the_model_exported(capsys, tmp_path, exported):
    """``--weights ""`` (an unset shell variable) had silently started from, or classified with,
    the model exported instead of the file meant."""
    mod, _ = exported
    data = _class_folder(tmp_path / "data")
    out = tmp_path / "o.npz"
    argv = ["train", "--weights", "", "--data", str(data), "--out", str(out)]
    assert mod.main(argv) == 2
    captured = capsys.readouterr()
    assert "--weights" in _one_line(captured.err) and "epoch" not in captured.out
    assert not out.exists()
    image = str(data / CLASSES[0] / "0.png")
    assert mod.main(["predict", "--weights", "", image]) == 2
    captured = capsys.readouterr()
    assert "--weights" in _one_line(captured.err) and captured.out == ""
