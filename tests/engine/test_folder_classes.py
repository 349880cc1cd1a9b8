"""An image folder loaded with a ``classes`` selection reads only the wanted class folders:
an unwanted folder that is empty or holds garbage neither fails the load nor is opened, and
the dataset is the one read-all-then-select gives (same order, labels, split, images)."""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import pytest
from PIL import Image

import engine.imagefolder as imagefolder
from engine.datasets import load_dataset, select_classes
from engine.errors import DatasetError

# class -> images in it; unequal counts, so that the split's draws depend on every class
COUNTS = {"ant": 5, "Bee": 7, "cat": 4, "dog": 6, "eel": 3}


def _folder(root, counts=COUNTS, seed=0):
    """Class folders of small PNGs of random pixels (every image differs)."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def _same(a, b):
    assert a.name == b.name and a.classes == b.classes and a.source == b.source
    assert a.test_split == b.test_split and a.test_files == b.test_files
    for got, want in (
        (a.train_images, b.train_images),
        (a.train_labels, b.train_labels),
        (a.test_images, b.test_images),
        (a.test_labels, b.test_labels),
    ):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def opened(monkeypatch):
    """The paths of every image file the folder reader opens (to read, or its header to sample
    colour and size); the bytes it decodes from memory are not counted again."""
    paths: list[str] = []
    read, pil_open = imagefolder._read, imagefolder.Image.open

    def counting_read(path, *args, **kwargs):
        paths.append(str(path))
        return read(path, *args, **kwargs)

    def counting_open(fp, *args, **kwargs):
        if isinstance(fp, (str, os.PathLike)):
            paths.append(str(fp))
        return pil_open(fp, *args, **kwargs)

    monkeypatch.setattr(imagefolder, "_read", counting_read)
    monkeypatch.setattr(imagefolder.Image, "open", counting_open)
    return paths


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("wanted", ["dog,cat", "bee,eel,cat", "cat,Bee", "ant,cat,dog,bee,eel"])
def test_selecting_while_reading_gives_the_read_all_then_select_dataset(tmp_path, seed, wanted):
    root = _folder(tmp_path / "bugs")
    (root / "cat" / "9.png").write_bytes(b"not a png")  # a wanted class may hold a bad file
    full = load_dataset(root, seed=seed)
    _same(load_dataset(root, seed=seed, classes=wanted), select_classes(full, wanted))
    limited = load_dataset(root, seed=seed, classes=wanted, limit=4)
    np.testing.assert_array_equal(
        limited.train_images, select_classes(full, wanted).train_images[:4]
    )
    whole = load_dataset(root, seed=seed, test_fraction=1.0)
    _same(
        load_dataset(root, seed=seed, test_fraction=1.0, classes=wanted),
        select_classes(whole, wanted),
    )


@pytest.mark.parametrize("with_test", [True, False])
def test_train_and_test_parts_select_as_read_all_then_select(tmp_path, with_test):
    _folder(tmp_path / "set" / "train", seed=1)
    if with_test:
        _folder(tmp_path / "set" / "test", {"ant": 2, "Bee": 3, "cat": 1, "dog": 2}, seed=2)
    for seed in (0, 5):
        full = load_dataset(tmp_path / "set", seed=seed)
        got = load_dataset(tmp_path / "set", seed=seed, classes=["cat", "bee", "ant"])
        _same(got, select_classes(full, "cat,bee,ant"))
    assert got.classes == ["cat", "Bee", "ant"]  # the order asked, the folders' names


def test_an_unreadable_file_of_an_unwanted_class_still_counts_in_the_split(tmp_path):
    # The limit of not reading them: an unwanted class's files count as images in the seeded
    # draws, unreadable or not; the split stays deterministic and stratified.
    root = _folder(tmp_path / "bugs")
    (root / "eel" / "9.png").write_bytes(b"not a png")
    first = load_dataset(root, seed=2, classes="dog,cat")
    _same(first, load_dataset(root, seed=2, classes="dog,cat"))
    assert np.bincount(first.test_labels).tolist() == [1, 1]
    assert np.bincount(first.train_labels).tolist() == [5, 3]
    assert first.skipped == []


def test_an_unwanted_empty_class_folder_no_longer_fails_the_load(tmp_path):
    root = _folder(tmp_path / "bugs")
    (root / "emptyclass").mkdir()
    with pytest.raises(DatasetError, match="emptyclass holds no readable image"):
        load_dataset(root)  # all of it: still an error, as before
    ds = load_dataset(root, classes="dog,ant")
    assert ds.classes == ["dog", "ant"]
    assert np.bincount(np.r_[ds.train_labels, ds.test_labels]).tolist() == [6, 5]
    (root / "emptyclass" / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    assert load_dataset(root, classes="dog,ant").classes == ["dog", "ant"]
    with pytest.raises(DatasetError, match="emptyclass holds no readable image"):
        load_dataset(root, classes="emptyclass,ant")  # wanted: checked as before
    # an unwanted class folder only in test/ is no reason to fail either
    _folder(tmp_path / "set" / "train", {"ant": 2, "cat": 2})
    _folder(tmp_path / "set" / "test", {"ant": 1, "cat": 1, "owl": 1})
    with pytest.raises(DatasetError, match=r"classes \['owl'\] are not in train/"):
        load_dataset(tmp_path / "set")
    assert len(load_dataset(tmp_path / "set", classes="cat,ant").test_labels) == 2
    with pytest.raises(DatasetError, match=r"classes \['owl'\] are not in train/"):
        load_dataset(tmp_path / "set", classes="OWL,ant")


def test_unwanted_class_folders_files_are_not_opened(tmp_path, opened):
    root = _folder(tmp_path / "bugs")
    (root / "eel" / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    (root / "dog" / "garbage.png").write_bytes(b"nothing")
    ds = load_dataset(root, classes="bee,cat")
    assert ds.skipped == []  # eel/garbage.jpg and dog/garbage.png are not looked at
    assert opened and all("/Bee/" in p or "/cat/" in p for p in opened), opened
    assert len({p for p in opened if p.endswith(".png")}) == COUNTS["Bee"] + COUNTS["cat"]
    everything = load_dataset(root)
    assert sorted(f for f, _ in everything.skipped) == ["dog/garbage.png", "eel/garbage.jpg"]


def test_a_missing_class_is_named_before_any_image_is_read(tmp_path, opened):
    root = _folder(tmp_path / "bugs")
    with pytest.raises(DatasetError) as caught:
        load_dataset(root, classes="cat,horse")
    assert str(caught.value) == "bugs has no class 'horse'; its classes are ant, Bee, cat, dog, eel"
    assert opened == []
    for bad, match in (("cat", "at least two"), ("cat,,dog", "empty"), ("cat,cat", "twice")):
        with pytest.raises(DatasetError, match=match):
            load_dataset(root, classes=bad)


def test_convscope_train_with_classes_skips_an_unwanted_empty_folder(tmp_path):
    from desktop.cli import main

    root = _folder(tmp_path / "bugs", {"ant": 6, "bee": 6, "cat": 6})
    (root / "emptyclass").mkdir()
    (root / "cat" / "garbage.jpg").write_bytes(b"\xff\xd8 garbage")
    out = tmp_path / "bugs.npz"
    argv = ["train", "--dataset", str(root), "--classes", "bee,ant", "--epochs", "1"]
    argv += ["--batch-size", "4", "--val-fraction", "0", "--out", str(out)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(argv)
    assert status == 0, stderr.getvalue()
    assert "garbage" not in stdout.getvalue() + stderr.getvalue()
    from engine.modelfile import load_model

    assert load_model(out).classes == ["bee", "ant"]


def test_class_folders_with_spaces_at_either_end_continue_training(tmp_path):
    """Folders " ant" and "bee ": ``convscope train`` names the classes so; continuing the model
    on the same folder (``--continue``, the exported file's ``train``) asks for exactly those
    names, which were stripped and then not found ("has no class 'ant'")."""
    from desktop.cli import main
    from engine.modelfile import load_model

    root = _folder(tmp_path / "bugs", {" ant": 4, "bee ": 4})
    assert load_dataset(root, classes=["bee ", " ant"]).classes == ["bee ", " ant"]
    first, again = tmp_path / "first.npz", tmp_path / "again.npz"
    argv = ["--dataset", str(root), "--epochs", "1", "--batch-size", "4", "--val-fraction", "0"]
    arch = ["--arch", "conv 2 3, globalavgpool"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        assert main(["train", *argv, *arch, "--out", str(first)]) == 0, stderr.getvalue()
        status = main(["train", *argv, "--continue", str(first), "--out", str(again)])
    assert status == 0, stderr.getvalue()
    assert load_model(again).classes == [" ant", "bee "]


def test_a_class_folder_whose_name_no_model_file_keeps_is_refused_before_training(tmp_path):
    """A folder "a<new line>b": ``convscope train`` trained and saved a model that nothing could
    open ("the class name 'a\\nb' ... holds control characters"). Refused in one line before
    any image is read; a folder left out by ``--classes`` is no concern."""
    from desktop.cli import main

    root = _folder(tmp_path / "bugs", {"a\nb": 3, "cat": 3, "dog": 3})
    with pytest.raises(DatasetError) as caught:
        load_dataset(root)
    message = str(caught.value)
    assert "'a\\nb'" in message and "\n" not in message and "rename" in message
    assert load_dataset(root, classes="cat,dog").classes == ["cat", "dog"]
    out = tmp_path / "bugs.npz"
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        status = main(["train", "--dataset", str(root), "--epochs", "1", "--out", str(out)])
    assert status == 2 and "'a\\nb'" in stderr.getvalue() and not out.exists()


def test_a_missing_class_lists_the_folders_in_one_line(tmp_path):
    """The list of the folder's classes in "has no class" quotes a name with a new line (it
    split the message over two lines)."""
    root = _folder(tmp_path / "bugs", {"a\nb": 2, "cat": 2, "dog": 2})
    with pytest.raises(DatasetError) as caught:
        load_dataset(root, classes="cat,horse")
    assert str(caught.value) == "bugs has no class 'horse'; its classes are 'a\\nb', cat, dog"


def test_a_symlink_loop_in_the_folder_is_passed_over_not_the_whole_folder(tmp_path):
    """A link to itself beside the class folders (or among the images) made the whole folder
    "cannot be listed (Too many levels of symbolic links); check its permissions"."""
    root = _folder(tmp_path / "bugs", {"ant": 3, "cat": 3})
    (root / "loop").symlink_to("loop")
    (root / "cat" / "loop.png").symlink_to("loop.png")
    ds = load_dataset(root)
    assert ds.classes == ["ant", "cat"] and len(ds.train_images) + len(ds.test_images) == 6
