"""Photo datasets: the bundled four-class set, CIFAR-10 binary folders, class subsets, image
folders with colour and size from the data, progress and cancel, the checks before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hostile import EXIF_MARK, make_hostile_files, make_odd_files
from PIL import Image

from engine.cifar import RECORD
from engine.datasets import (
    Dataset,
    LoadCancelled,
    dataset_choices,
    load_dataset,
    load_dataset_iter,
    select_classes,
)
from engine.errors import DatasetError
from engine.progress import CancelFlag
from engine.progress import Progress as LoadProgress

COLOURS = {"bird": (0, 0, 255), "cat": (255, 0, 0), "dog": (90, 90, 90), "ship": (0, 255, 0)}


def photo_folder(root, per_class=3, size=(20, 16), gray=False, fmt="JPEG"):
    for cls, colour in COLOURS.items():
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", size, colour)
            (img.convert("L") if gray else img).save(root / cls / f"{i:03d}.jpg", fmt)
    return root


def test_bundled_photos_are_a_train_and_test_split_of_four_classes():
    ds = load_dataset("cifar4")
    assert ds.classes == ["bird", "cat", "dog", "ship"] and ds.name == "cifar4"
    assert ds.train_images.shape == (4000, 3, 32, 32) and ds.test_images.shape == (1000, 3, 32, 32)
    assert np.bincount(ds.train_labels).tolist() == [1000] * 4
    assert np.bincount(ds.test_labels).tolist() == [250] * 4
    assert "test/ folder" in ds.summary() and "1,000 test images" in ds.summary()
    assert ds.test_files[0] == "test/bird/4750.jpg"
    # real photos: colour, not gray copied into three channels
    assert np.abs(ds.train_images[:50, 0].astype(int) - ds.train_images[:50, 2]).mean() > 5


def test_dataset_choices_list_the_named_datasets(tmp_path):
    choices = {c.key: c for c in dataset_choices(tmp_path)}
    assert list(choices)[:2] == ["mnist", "cifar4"]
    assert choices["cifar4"].available and choices["cifar4"].bundled
    assert not choices["cifar10"].available and not choices["fashion-mnist"].bundled
    with pytest.raises(DatasetError, match="convscope download cifar10"):
        load_dataset("cifar10", cache_dir=tmp_path)


def test_select_classes_keeps_order_and_relabels():
    ds = load_dataset("mnist", classes="7, 1,3", limit=None)
    assert ds.classes == ["7", "1", "3"]
    full = load_dataset("mnist")
    assert len(ds.train_labels) == int(np.isin(full.train_labels, [7, 1, 3]).sum())
    first = full.train_labels[np.isin(full.train_labels, [7, 1, 3])][:20]
    np.testing.assert_array_equal(ds.train_labels[:20], [{7: 0, 1: 1, 3: 2}[v] for v in first])
    cifar4 = load_dataset("cifar4")
    photos = select_classes(cifar4, ["Ship", "bird"])
    assert photos.classes == ["ship", "bird"] and len(photos.test_files) == 500
    assert photos.test_files[0].startswith("test/bird/") and photos.test_labels[0] == 1
    for bad, match in (
        ("cat,horse", "no class 'horse'.*bird, cat, dog, ship"),
        ("cat", "at least two"),
        ("cat,,dog", "empty"),
        ("cat,cat", "twice"),
    ):
        with pytest.raises(DatasetError, match=match):
            select_classes(cifar4, bad)


def test_image_folder_colour_and_size_come_from_the_data(tmp_path):
    colour = load_dataset(photo_folder(tmp_path / "c"), seed=0)
    assert colour.train_images.shape[1:] == (3, 16, 20)
    red = colour.train_images[colour.train_labels == 1]
    assert (red[:, 0] > 240).all() and (red[:, 2] < 20).all()
    gray = load_dataset(photo_folder(tmp_path / "g", gray=True))
    assert gray.train_images.shape[1:] == (16, 20)
    forced = load_dataset(tmp_path / "c", channels=1, image_size=(8, 8))
    assert forced.train_images.shape[1:] == (8, 8)
    mixed = tmp_path / "m"
    photo_folder(mixed)
    Image.new("RGB", (300, 200), "white").save(mixed / "cat" / "big.jpg")
    assert load_dataset(mixed).train_images.shape[1:] == (3, 32, 32)  # sizes differ: 32x32


def test_train_and_test_subfolders_and_evaluating_a_whole_folder(tmp_path):
    photo_folder(tmp_path / "set" / "train", per_class=3)
    photo_folder(tmp_path / "set" / "test", per_class=2)
    ds = load_dataset(tmp_path / "set")
    assert (len(ds.train_labels), len(ds.test_labels)) == (12, 8)
    assert ds.test_split == "the test/ folder"
    plain = photo_folder(tmp_path / "plain", per_class=5)
    held = load_dataset(plain)
    assert len(held.test_labels) == 4 and "20% of each class held out" in held.summary()
    everything = load_dataset(plain, test_fraction=1.0)
    assert len(everything.test_labels) == 20 and len(everything.train_labels) == 0
    assert everything.test_split == "every image in the folder"
    assert sorted(everything.test_files)[0] == "bird/000.jpg"


def test_loading_reports_counts_and_can_be_cancelled(tmp_path):
    root = photo_folder(tmp_path / "p", per_class=150)  # 600 images: three chunks
    events = list(load_dataset_iter(root))
    progress = [e for e in events if isinstance(e, LoadProgress)]
    assert progress[0] == LoadProgress("load", 0, 600)
    assert progress[-1] == LoadProgress("load", 600, 600)
    assert isinstance(events[-1], Dataset)

    control = CancelFlag()
    seen = []
    for item in load_dataset_iter(root, control=control):
        seen.append(item)
        if isinstance(item, LoadProgress) and item.done > 0:
            control.cancel()
    assert not any(isinstance(e, Dataset) for e in seen)
    assert max(e.done for e in seen if isinstance(e, LoadProgress)) < 600
    with pytest.raises(LoadCancelled):
        load_dataset(root, control=control)


def test_many_files_are_read_by_two_processes_identically(tmp_path, monkeypatch):
    import engine.imagefolder as imagefolder

    root = photo_folder(tmp_path / "p", per_class=30)
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    one = load_dataset(root)
    monkeypatch.setattr(imagefolder, "_PARALLEL_MIN", 10)
    two = load_dataset(root)
    np.testing.assert_array_equal(one.train_images, two.train_images)
    np.testing.assert_array_equal(one.test_labels, two.test_labels)
    assert one.skipped == two.skipped and len(two.skipped) == 1


def test_hostile_and_odd_images_in_a_folder(tmp_path):
    root = photo_folder(tmp_path / "p", per_class=2, size=(40, 20))
    hostile = make_hostile_files(tmp_path / "h")
    for name, path in hostile.items():
        (root / "cat" / name).write_bytes(path.read_bytes())
    odd = make_odd_files(tmp_path / "o")
    (root / "dog" / "exif.jpg").write_bytes(odd["exif_rotated.jpg"].read_bytes())
    ds = load_dataset(root, image_size=(40, 20), channels=1, test_fraction=1.0)
    assert {s.split("/")[1] for s, _ in ds.skipped} == set(hostile)
    exif = ds.test_images[ds.test_files.index("dog/exif.jpg")]
    assert EXIF_MARK == "top-right" and exif[:3, -3:].mean() > 200 and exif[:3, :3].mean() < 50


def _cifar_batch(path, labels, rng):
    records = np.zeros((len(labels), RECORD), np.uint8)
    records[:, 0] = labels
    records[:, 1:] = rng.integers(0, 256, (len(labels), RECORD - 1), dtype=np.uint8)
    path.write_bytes(records.tobytes())
    return records


def make_cifar_folder(folder, rng, batches=5):
    inner = folder / "cifar-10-batches-bin"
    inner.mkdir(parents=True)
    recs = [
        _cifar_batch(inner / f"data_batch_{i}.bin", np.arange(10) % 10, rng)
        for i in range(1, batches + 1)
    ]
    test = _cifar_batch(inner / "test_batch.bin", np.arange(20) % 10, rng)
    names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    (inner / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return recs, test


def test_cifar10_binary_folder(tmp_path, rng):
    recs, test = make_cifar_folder(tmp_path / "c10", rng)
    (tmp_path / "c10" / "cifar-10-batches-py").mkdir()  # the pickled version is ignored
    ds = load_dataset(tmp_path / "c10")
    assert ds.name == "CIFAR-10" and ds.classes[8] == "ship"
    assert ds.train_images.shape == (50, 3, 32, 32) and ds.test_images.shape == (20, 3, 32, 32)
    # label byte, then the red, green and blue planes, each row-major
    first = recs[0][3]
    assert ds.train_labels[3] == first[0]
    np.testing.assert_array_equal(ds.train_images[3, 1, 0], first[1 + 1024 : 1 + 1024 + 32])
    np.testing.assert_array_equal(ds.test_images[19].ravel(), test[19, 1:])
    four = load_dataset(tmp_path / "c10" / "cifar-10-batches-bin", classes="bird,cat,dog,ship")
    assert four.classes == ["bird", "cat", "dog", "ship"] and len(four.test_labels) == 8
    gray = load_dataset(tmp_path / "c10", channels=1)
    assert gray.train_images.shape == (50, 32, 32)


def test_cifar10_damaged_files(tmp_path, rng):
    make_cifar_folder(tmp_path / "c", rng, batches=1)
    inner = tmp_path / "c" / "cifar-10-batches-bin"
    assert "1 of 5" in load_dataset(tmp_path / "c").name
    (inner / "test_batch.bin").write_bytes(b"\x00" * (RECORD + 5))
    with pytest.raises(DatasetError, match="not a CIFAR-10 binary batch"):
        load_dataset(tmp_path / "c")
    _cifar_batch(inner / "test_batch.bin", np.array([3, 42]), rng)
    with pytest.raises(DatasetError, match="label 42"):
        load_dataset(tmp_path / "c")
    _cifar_batch(inner / "test_batch.bin", np.array([3, 4]), rng)
    (inner / "batches.meta.txt").write_bytes(b"\xff\xfe bird\n")
    with pytest.raises(DatasetError, match="UTF-8"):
        load_dataset(tmp_path / "c")


def test_one_image_per_class_or_an_empty_test_folder_give_an_empty_test_split(tmp_path):
    ds = load_dataset(photo_folder(tmp_path / "one", per_class=1))
    assert len(ds.test_labels) == 0 and "0 test images" in ds.summary()
    photo_folder(tmp_path / "s" / "train", per_class=2)
    (tmp_path / "s" / "test").mkdir()
    assert len(load_dataset(tmp_path / "s").test_labels) == 0  # engine.run refuses to train it


def test_the_fast_jpeg_path_gives_what_the_full_way_gives(tmp_path):
    """Small plain JPEGs skip Pillow's header parser: same pixels as engine.imageio; anything
    unusual (EXIF, progressive with a profile, truncation, damage) goes the full way or fails."""
    import io

    from engine.imagefolder import _plain_jpeg
    from engine.imageio import image_from_bytes

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)

    def jpeg(mode="RGB", **options):
        buf = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buf, "JPEG", **options)
        return buf.getvalue()

    plain = [jpeg(), jpeg("L"), jpeg(progressive=True), jpeg(quality=30, comment=b"hi")]
    for data in plain:
        for mode in ("RGB", "L"):
            fast = _plain_jpeg(data, mode)
            assert fast is not None
            np.testing.assert_array_equal(fast, image_from_bytes(data, mode=mode))
    exif = Image.Exif()
    exif[0x0112] = 6
    assert _plain_jpeg(jpeg(exif=exif), "RGB") is None  # orientation: the full way
    assert _plain_jpeg(jpeg("CMYK"), "RGB") is None
    whole = jpeg()
    for cut in (len(whole) // 2, len(whole) - 3, 40):
        assert _plain_jpeg(whole[:cut], "RGB") is None
    damaged = bytearray(whole)
    damaged[len(damaged) // 2 :] = bytes(len(damaged) - len(damaged) // 2)
    assert _plain_jpeg(bytes(damaged), "RGB") is None
    root = photo_folder(tmp_path / "p", per_class=2)
    (root / "cat" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    ds = load_dataset(root, test_fraction=1.0)
    assert [name for name, _ in ds.skipped] == ["cat/cut.jpg"]
    reason = ds.skipped[0][1]
    assert reason.startswith("cut.jpg: damaged") and "truncated" in reason.lower()


def test_a_large_photo_in_a_folder_is_read_as_classify_prepares_it(tmp_path):
    """A photo much larger than the network's input (Pillow box-reduces it first when
    classifying) gives training exactly the pixels `convscope classify` gives the network."""
    from engine.imageio import load_image
    from engine.photo import prepare_photo

    root = photo_folder(tmp_path / "p", per_class=2, fmt="PNG")
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    big = Image.fromarray(noise).resize((400, 300), Image.Resampling.BICUBIC)  # detail at 10x
    big.save(root / "cat" / "big.png")
    for channels in (3, 1):
        ds = load_dataset(root, image_size=(32, 32), channels=channels, test_fraction=1.0)
        read = ds.test_images[ds.test_files.index("cat/big.png")]
        picture = load_image(root / "cat" / "big.png", mode="RGB" if channels == 3 else "L")
        expected = prepare_photo(picture, (channels, 32, 32))
        np.testing.assert_array_equal(read, expected if channels == 3 else expected[0])


def test_a_folder_that_cannot_be_listed_is_one_line_and_cli_exit_2(tmp_path, monkeypatch, capsys):
    """A dataset folder or a class folder without read permission (simulated: the tests may
    run as root, who reads anything) is a DatasetError naming it, not Python's PermissionError;
    `convscope train` and `evaluate` then exit 2 with one line."""
    import os

    from desktop.cli import main

    root = photo_folder(tmp_path / "p", per_class=2)
    real_scandir = os.scandir
    locked: set[str] = set()

    def scandir(path="."):
        if os.fspath(path) in locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    for where in (root / "cat", root):
        locked.clear()
        locked.add(str(where))
        with pytest.raises(DatasetError, match="cannot be listed") as info:
            load_dataset(root)
        assert str(where) in str(info.value) and "Errno" not in str(info.value)
    assert main(["train", "--dataset", str(root), "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be listed (Permission denied)" in err
    assert not (tmp_path / "m.npz").exists()
    locked.clear()
    locked.add(str(root / "dog"))  # a class that is not asked for is only counted
    assert load_dataset(root, classes="cat,bird").classes == ["cat", "bird"]


def test_skipped_files_are_listed_once_each_with_the_reason(tmp_path):
    """`convscope train` lists each unreadable file of a folder with its reason, the name once
    ("skipped cat/notes.png: notes.png: not a readable image" named it twice)."""
    root = photo_folder(tmp_path / "p", per_class=2)
    (root / "cat" / "notes.png").write_text("not a picture")
    (root / "dog" / "empty.jpg").write_bytes(b"")
    ds = load_dataset(root, test_fraction=1.0)
    assert ds.skipped_lines() == [
        "skipped cat/notes.png: not a readable image: the contents are not a known image "
        "format or the header is damaged",
        "skipped dog/empty.jpg: the file is empty (0 bytes); it is not an image",
    ]


def test_a_folder_of_digit_scans_is_read_as_classify_shows_a_digit_model_its_pictures(tmp_path):
    """Scans of dark digits on white paper in folders 0..9 trained a model on dark ink, which
    then read none of its own files: classify inverts and centres a digit model's pictures. A
    digit folder's images are now prepared as classify prepares them; MNIST saved as PNGs
    (28x28, light on black) stays as it is, and a blank scan is skipped with its reason."""
    from engine.datasets import load_dataset as load_mnist
    from engine.preprocess import prepare_digit

    mnist = load_mnist("mnist", limit=60)
    scans, kept = {}, {}
    for i, (image, label) in enumerate(zip(mnist.train_images, mnist.train_labels, strict=True)):
        folder = tmp_path / "digits" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2:  # a scan: dark ink on white paper, larger, off-centre
            paper = np.full((90, 70), 245, np.uint8)
            big = Image.fromarray(255 - image).resize((56, 56), Image.Resampling.BILINEAR)
            paper[20:76, 4:60] = np.asarray(big)
            Image.fromarray(paper).save(folder / f"scan{i:03d}.png")
            scans[f"scan{i:03d}"] = paper
        else:  # MNIST's own format
            Image.fromarray(image).save(folder / f"mnist{i:03d}.png")
            kept[f"mnist{i:03d}"] = image
    assert len(list((tmp_path / "digits").iterdir())) == 10  # all ten classes drawn
    blank = np.full((60, 60), 250, np.uint8)
    Image.fromarray(blank).save(tmp_path / "digits" / "3" / "blank.png")
    ds = load_dataset(tmp_path / "digits", test_fraction=1.0)  # every image, with its file
    assert ds.input_shape == (1, 28, 28) and ds.test_files is not None
    shown = dict(zip([Path(f).stem for f in ds.test_files], ds.test_images, strict=True))
    for name, paper in scans.items():
        np.testing.assert_array_equal(shown[name], prepare_digit(paper).image)
        assert shown[name][:3].mean() < 16  # light ink on black, as MNIST
    for name, image in kept.items():
        np.testing.assert_array_equal(shown[name], image)
    skipped = dict(ds.skipped)
    assert "no ink found" in skipped[str(Path("3") / "blank.png")]


def test_images_in_folders_inside_a_class_folder_belong_to_that_class(tmp_path):
    """A user keeps 'cat/2024 trip/*.jpg' beside 'cat/*.jpg': those photos are cats too. They
    were silently left out (11 of 200 cats gone, nothing said); a dot folder stays hidden."""
    root = photo_folder(tmp_path / "p", per_class=2)
    trip = root / "cat" / "2024 trip" / "day 2"
    trip.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (20, 16), COLOURS["cat"]).save(trip.parent / f"t{i}.jpg")
    Image.new("RGB", (20, 16), COLOURS["cat"]).save(trip / "deep.jpg")
    (root / "dog" / ".thumbnails").mkdir()
    Image.new("RGB", (20, 16), COLOURS["cat"]).save(root / "dog" / ".thumbnails" / "0.jpg")
    # Windows' own files in a class folder are no photos the user skipped: not listed at all
    (root / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 thumbnail cache")
    (trip / "desktop.ini").write_text("[.ShellClassInfo]\n")
    ds = load_dataset(root, test_fraction=1.0)
    assert not ds.skipped
    cat = ds.classes.index("cat")
    files = [f for f, y in zip(ds.test_files, ds.test_labels, strict=True) if y == cat]
    assert files == [
        "cat/000.jpg",
        "cat/001.jpg",
        "cat/2024 trip/t0.jpg",
        "cat/2024 trip/t1.jpg",
        "cat/2024 trip/t2.jpg",
        "cat/2024 trip/day 2/deep.jpg",
    ]
    assert np.bincount(ds.test_labels).tolist() == [2, 6, 2, 2]


def test_typed_class_names_match_folder_names_up_to_spacing_case_and_accents_form():
    """--classes 'dog friends' was refused for a folder 'dog  friends' ('pets has no class
    'dog friends'; its classes are ..., dog  friends', the two spaces hard to see), and a name
    typed with 'à' missed a macOS folder name stored as 'a' + combining grave."""
    from engine.datasets import class_indices

    names = ["Boats", "dog  friends", "Oiseaux a\u0300 la maison", "cat", "Cat"]
    assert class_indices(names, "dog friends, oiseaux \u00e0 la maison", "pets") == [1, 2]
    assert class_indices(names, " DOG\tFRIENDS ,boats", "pets") == [1, 0]
    assert class_indices(names, "Cat,cat", "pets") == [4, 3]  # exact names first
    with pytest.raises(DatasetError) as exc:  # two classes fit: neither is guessed
        class_indices(names, "CAT,boats", "pets")
    assert str(exc.value) == "pets: 'CAT' could be the class 'cat' or 'Cat'; type it exactly"
