"""engine.datasets: IDX reading, bundled MNIST, IDX folders, image folders, splits."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets import (
    FASHION_MNIST_CLASSES,
    Dataset,
    fit_image,
    load_dataset,
    read_idx,
    split_validation,
)
from engine.errors import DatasetError

_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    a = np.asarray(array)
    header = bytes([0, 0, _CODES[a.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def make_idx_folder(
    folder: Path,
    rng,
    *,
    n_train=30,
    n_test=10,
    k=10,
    size=(6, 5),
    gz=True,
    names=(
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    x_tr = rng.integers(0, 256, (n_train, *size), dtype=np.uint8)
    y_tr = (np.arange(n_train) % k).astype(np.uint8)
    x_te = rng.integers(0, 256, (n_test, *size), dtype=np.uint8)
    y_te = (np.arange(n_test) % k).astype(np.uint8)
    for name, arr in zip(names, (x_tr, y_tr, x_te, y_te), strict=True):
        write_idx(folder / (name + suffix), arr)
    return x_tr, y_tr, x_te, y_te


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, rng, suffix, dtype):
    array = (rng.standard_normal((4, 3, 2)) * 100).astype(dtype)
    back = read_idx(write_idx(tmp_path / f"x-idx3-ubyte{suffix}", array))
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert not back.flags.writeable


def test_read_idx_labels_are_one_dimensional(tmp_path):
    back = read_idx(write_idx(tmp_path / "l.gz", np.array([5, 0, 4], np.uint8)))
    assert back.shape == (3,) and back.tolist() == [5, 0, 4]


def _broken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    gz = gzip.compress(good, mtime=0)
    damaged = bytearray(gz)
    damaged[len(gz) // 2] ^= 0xFF
    damaged[len(gz) // 2 + 1] ^= 0xFF
    cases = {
        "empty": (b"", "too short"),
        "png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "not an IDX file"),
        "type": (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "data type 0x07"),
        "ndim": (b"\x00\x00\x08\x00", "0 dimensions"),
        "short-header": (good[:9], "truncated IDX header"),
        "truncated": (good[:-5], "truncated"),
        "longer": (good + b"\x00\x00", "longer than its header"),
        "gz-truncated": (gz[: len(gz) - 12], "truncated"),
        "gz-damaged": (bytes(damaged), "damaged gzip"),
        "gz-cut-header": (gz[:12], ""),
        "huge": (b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**20, 2**20), "too large"),
    }
    out = {}
    for name, (data, reason) in cases.items():
        path = tmp_path / f"{name}-idx3-ubyte"
        path.write_bytes(data)
        out[name] = (path, reason)
    return out


def test_read_idx_refuses_broken_and_foreign_files(tmp_path):
    for name, (path, reason) in _broken_files(tmp_path).items():
        start = time.process_time()  # CPU seconds: a loaded machine does not change them
        with pytest.raises(DatasetError) as info:
            read_idx(path)
        assert time.process_time() - start < 0.5, name
        assert path.name in str(info.value), name
        assert reason in str(info.value), (name, str(info.value))


def test_read_idx_missing_and_folder(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DatasetError, match="folder"):
        read_idx(tmp_path)


# --- bundled MNIST ----------------------------------------------------------------------------


def test_bundled_mnist_is_complete_and_cached():
    ds = load_dataset("mnist")
    assert isinstance(ds, Dataset) and ds.name == "MNIST" and ds.source == "bundled"
    assert ds.train_images.shape == (60000, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (10000, 28, 28)
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.shape == (10000,)
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.classes == [str(i) for i in range(10)]
    assert np.bincount(ds.train_labels).tolist()[:2] == [5923, 6742]
    assert not ds.train_images.flags.writeable and not ds.train_labels.flags.writeable
    assert ds.input_shape == (1, 28, 28) and "60,000" in ds.summary()
    again = load_dataset("MNIST", limit=1000)
    assert again.train_images.shape == (1000, 28, 28)
    assert np.shares_memory(again.train_images, ds.train_images)  # cached: not decompressed again
    assert again.test_images.shape == (10000, 28, 28)  # limit touches training data only


def test_mnist_with_three_channels():
    ds = load_dataset("mnist", limit=5, channels=3)
    assert ds.train_images.shape == (5, 3, 28, 28)
    np.testing.assert_array_equal(ds.train_images[:, 2], load_dataset("mnist").train_images[:5])


# --- IDX folders ------------------------------------------------------------------------------


def test_idx_folder_gz(tmp_path, rng):
    x_tr, _y_tr, _x_te, y_te = make_idx_folder(tmp_path / "mine", rng)
    ds = load_dataset(tmp_path / "mine")
    np.testing.assert_array_equal(ds.train_images, x_tr)
    np.testing.assert_array_equal(ds.test_labels, y_te)
    assert ds.name == "mine" and ds.classes == [str(i) for i in range(10)]
    assert ds.train_labels.dtype == np.int64


def test_idx_folder_dotted_names_raw_subfolder_and_classes_txt(tmp_path, rng):
    folder = tmp_path / "Shapes"
    make_idx_folder(
        folder / "raw",
        rng,
        k=3,
        gz=False,
        names=(
            "train-images.idx3-ubyte",
            "train-labels.idx1-ubyte",
            "t10k-images.idx3-ubyte",
            "t10k-labels.idx1-ubyte",
        ),
    )
    (folder / "classes.txt").write_text("circle\nsquare\ntriangle\n", encoding="utf-8")
    ds = load_dataset(folder)
    assert ds.classes == ["circle", "square", "triangle"]
    (folder / "classes.txt").write_text("circle\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"classes\.txt"):
        load_dataset(folder)


def test_fashion_mnist_recognised_by_folder_name(tmp_path, rng):
    make_idx_folder(tmp_path / "fashion-mnist", rng)
    ds = load_dataset(str(tmp_path / "fashion-mnist"))
    assert ds.name == "Fashion-MNIST" and ds.classes == FASHION_MNIST_CLASSES
    assert ds.classes[9] == "Ankle boot"


def test_emnist_letters_are_transposed_and_named(tmp_path, rng):
    folder = tmp_path / "emnist"
    folder.mkdir()
    image = np.zeros((1, 4, 4), np.uint8)
    image[0, 0, 3] = 255  # stored transposed: the mark is really at row 3, column 0
    prefix = "emnist-letters-"
    for split in ("train", "test"):
        write_idx(folder / f"{prefix}{split}-images-idx3-ubyte.gz", np.repeat(image, 2, 0))
        write_idx(folder / f"{prefix}{split}-labels-idx1-ubyte.gz", np.array([1, 26], np.uint8))
    (folder / "emnist-letters-mapping.txt").write_text(
        "\n".join(f"{i} {64 + i} {96 + i}" for i in range(1, 27)), encoding="utf-8"
    )
    ds = load_dataset(folder)
    assert ds.train_images[0, 3, 0] == 255 and ds.train_images[0, 0, 3] == 0
    assert ds.classes[0] == "A" and ds.classes[-1] == "Z" and len(ds.classes) == 26
    assert ds.train_labels.tolist() == [0, 25]


def test_idx_folder_errors(tmp_path, rng):
    _x_tr, _y_tr, _x_te, _y_te = make_idx_folder(tmp_path / "partial", rng)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="expected the four files") as info:
        load_dataset(tmp_path / "partial")
    assert "t10k-labels-idx1-ubyte" in str(info.value)

    make_idx_folder(tmp_path / "mismatch", rng)
    write_idx(tmp_path / "mismatch" / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(DatasetError, match="30 images but"):
        load_dataset(tmp_path / "mismatch")

    make_idx_folder(tmp_path / "sizes", rng)
    write_idx(tmp_path / "sizes" / "t10k-images-idx3-ubyte.gz", np.zeros((10, 3, 3), np.uint8))
    with pytest.raises(DatasetError, match="same size"):
        load_dataset(tmp_path / "sizes")

    make_idx_folder(tmp_path / "two", rng)
    make_idx_folder(
        tmp_path / "two",
        rng,
        names=(
            "k-train-images-idx3-ubyte",
            "k-train-labels-idx1-ubyte",
            "k-t10k-images-idx3-ubyte",
            "k-t10k-labels-idx1-ubyte",
        ),
    )
    with pytest.raises(DatasetError, match="several IDX datasets"):
        load_dataset(tmp_path / "two")

    make_idx_folder(tmp_path / "broken", rng)
    path = tmp_path / "broken" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset(tmp_path / "broken")


def test_bad_specs(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="channels"):
        load_dataset("mnist", channels=2)
    with pytest.raises(DatasetError, match="limit"):
        load_dataset("mnist", limit=0)


def test_fashion_mnist_not_downloaded(tmp_path):
    with pytest.raises(DatasetError, match="not downloaded"):
        load_dataset("fashion-mnist", cache_dir=tmp_path)


# --- image folders ----------------------------------------------------------------------------


def _draw(path: Path, colour, size=(40, 30)):
    Image.new("RGB", size, colour).save(path)


def make_image_folder(root: Path, per_class=5) -> Path:
    colours = {"bird": (0, 0, 255), "boat": (0, 255, 0), "cat": (255, 0, 0), "dog": (90, 90, 90)}
    for cls, colour in colours.items():
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            suffix = ".png" if i % 2 else ".jpg"
            _draw(root / cls / f"{cls}{i}{suffix}", colour, size=(40 + 7 * i, 30))
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "dog" / "notes.txt").write_text("dogs are good")
    (root / "README.txt").write_text("a loose file")
    (root / "cat" / ".hidden.png").write_bytes(b"")
    return root


def test_image_folder_dataset(tmp_path):
    root = make_image_folder(tmp_path / "pets")
    calls = []
    ds = load_dataset(
        root, image_size=(12, 10), channels=1, progress=lambda d, t: calls.append((d, t))
    )
    assert ds.classes == ["bird", "boat", "cat", "dog"] and ds.name == "pets"
    assert ds.train_images.shape[1:] == (12, 10) and ds.train_images.dtype == np.uint8
    assert len(ds.train_labels) + len(ds.test_labels) == 20
    assert np.bincount(ds.test_labels).tolist() == [1, 1, 1, 1]  # round(0.2 * 5) per class
    skipped = {name: reason for name, reason in ds.skipped}
    assert set(skipped) == {"cat/broken.jpg", "dog/notes.txt", "README.txt"}
    assert "broken.jpg" in skipped["cat/broken.jpg"]
    # every image keeps its class's colour: labels and pixels travel together
    gray_of = {0: 29, 1: 150, 2: 76, 3: 90}  # luma of blue, green, red, gray
    for x, y in zip(ds.train_images, ds.train_labels, strict=True):
        assert abs(int(np.median(x)) - gray_of[int(y)]) <= 3
    assert calls[-1] == (22, 22) and len(calls) <= 23
    assert "skipped" in ds.summary()


def test_image_folder_rgb_seeded_and_limited(tmp_path):
    root = make_image_folder(tmp_path / "pets", per_class=10)
    a = load_dataset(root, image_size=(8, 8), channels=3, seed=1)
    b = load_dataset(root, image_size=(8, 8), channels=3, seed=1)
    c = load_dataset(root, image_size=(8, 8), channels=3, seed=2)
    assert a.train_images.shape[1:] == (3, 8, 8)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)
    assert not np.array_equal(a.train_labels, c.train_labels)
    red = a.train_images[a.train_labels == 2]
    assert (red[:, 0] > 240).all() and (red[:, 1] < 15).all()
    limited = load_dataset(root, image_size=(8, 8), channels=1, limit=6, seed=1)
    assert len(limited.train_labels) == 6 and len(set(limited.train_labels.tolist())) > 1


def test_image_folder_with_train_and_test_parts(tmp_path):
    make_image_folder(tmp_path / "set" / "train", per_class=3)
    make_image_folder(tmp_path / "set" / "val", per_class=2)
    ds = load_dataset(tmp_path / "set", image_size=(6, 6))
    assert ds.classes == ["bird", "boat", "cat", "dog"]
    assert len(ds.train_labels) == 12 and len(ds.test_labels) == 8


def test_image_folder_errors(tmp_path):
    (tmp_path / "one" / "cat").mkdir(parents=True)
    _draw(tmp_path / "one" / "cat" / "a.png", (1, 2, 3))
    with pytest.raises(DatasetError, match="at least two"):
        load_dataset(tmp_path / "one")
    (tmp_path / "one" / "dog").mkdir()
    with pytest.raises(DatasetError, match="dog holds no readable image"):
        load_dataset(tmp_path / "one")
    (tmp_path / "one" / "dog" / "bad.png").write_text("not an image")
    with pytest.raises(DatasetError, match="dog"):
        load_dataset(tmp_path / "one")


def test_fit_image_centre_crops():
    wide = np.zeros((10, 40), np.uint8)
    wide[:, 10:30] = 255  # the centre is white; the crop keeps columns 15..24
    np.testing.assert_array_equal(fit_image(wide, (5, 5)), np.full((5, 5), 255))
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 200
    out = fit_image(rgb, (2, 3), channels=3)
    assert out.shape == (3, 2, 3) and (out[1] == 200).all() and (out[0] == 0).all()


# --- split_validation -------------------------------------------------------------------------


def test_split_validation_stratified(rng):
    labels = np.repeat(np.arange(4), [100, 50, 20, 10])
    images = np.arange(len(labels), dtype=np.int64)  # images carry their own index
    tr_x, tr_y, va_x, va_y = split_validation(images, labels, 0.1, np.random.default_rng(3))
    assert np.bincount(va_y).tolist() == [10, 5, 2, 1]
    np.testing.assert_array_equal(labels[tr_x], tr_y)
    np.testing.assert_array_equal(labels[va_x], va_y)
    assert sorted(tr_x.tolist() + va_x.tolist()) == list(range(len(labels)))
    again = split_validation(images, labels, 0.1, np.random.default_rng(3))
    np.testing.assert_array_equal(again[2], va_x)
    other = split_validation(images, labels, 0.1, np.random.default_rng(4))
    assert not np.array_equal(other[2], va_x)
    assert (np.diff(tr_x) > 0).all()  # original order kept


def test_split_validation_plain_and_zero(rng):
    images = rng.integers(0, 256, (50, 2, 2), dtype=np.uint8)
    labels = np.zeros(50, np.int64)
    tr_x, tr_y, va_x, va_y = split_validation(images, labels, 0.2, rng, stratify=False)
    assert len(va_x) == 10 and len(tr_x) == 40 and va_x.shape[1:] == (2, 2)
    assert len(tr_y) == 40 and len(va_y) == 10
    tr_x, _tr_y, va_x, va_y = split_validation(images, labels, 0.0, rng)
    assert tr_x is images and va_x.shape == (0, 2, 2) and va_y.shape == (0,)
    with pytest.raises(ValueError, match="fraction"):
        split_validation(images, labels, 1.0, rng)


def test_split_validation_of_mnist_is_fast():
    ds = load_dataset("mnist")
    start = time.process_time()  # CPU seconds: a loaded machine does not change them
    tr_x, tr_y, _va_x, va_y = split_validation(
        ds.train_images, ds.train_labels, 1 / 12, np.random.default_rng(0)
    )
    assert time.process_time() - start < 1.0
    assert abs(len(va_y) - 5000) <= 5 and len(tr_y) + len(va_y) == 60000
    assert tr_x.flags.writeable  # a copy, independent of the cached read-only arrays
