"""CIFAR-10 in its official binary form (``cifar-10-binary.tar.gz``, never the pickled one).

A folder holding ``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin`` and
``batches.meta.txt`` (or holding the archive's ``cifar-10-batches-bin/`` folder) is a dataset.
Each ``.bin`` file is a sequence of 3,073-byte records: one label byte (0-9), then the 32x32
image as 1,024 red, 1,024 green and 1,024 blue bytes, each plane row-major. That is already the
engine's (C, H, W) layout, so a batch file becomes an array by a reshape. ``batches.meta.txt``
names the classes, one per line in label order (airplane, automobile, bird, cat, deer, dog,
frog, horse, ship, truck). A subset of the training batches is accepted (data_batch_1 alone).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from engine.dataset_types import Dataset
from engine.errors import DatasetError
from engine.idx import read_class_file

__all__ = ["CIFAR10_CLASSES", "RECORD", "find_cifar_folder", "load_cifar_dataset"]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
RECORD = 1 + 3 * 32 * 32
_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
_TEST = "test_batch.bin"
_META = "batches.meta.txt"
_MAX_FILE = 10_000 * RECORD * 10  # ten times an official batch


def find_cifar_folder(folder: Path) -> Path | None:
    """The folder holding the binary batches (``folder`` or its ``cifar-10-batches-bin/``), or
    None when neither holds any."""
    for base in (folder, folder / "cifar-10-batches-bin"):
        if (base / _TEST).is_file() or any((base / n).is_file() for n in _TRAIN):
            return base
    return None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        size = path.stat().st_size
        if size == 0 or size % RECORD or size > _MAX_FILE:
            raise DatasetError(
                f"{path.name}: {size:,} bytes is not a CIFAR-10 binary batch (a whole number of "
                f"{RECORD:,}-byte records, 10,000 in an official one); download it again"
            )
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)
    return images, labels


@functools.lru_cache(maxsize=2)
def _load_cached(key: tuple) -> tuple:
    base = Path(key[0])
    train_files = [base / n for n in _TRAIN if (base / n).is_file()]
    if not train_files:
        raise DatasetError(f"{base}: no data_batch_1.bin ... data_batch_5.bin; need at least one")
    if not (base / _TEST).is_file():
        raise DatasetError(f"{base}: test_batch.bin is missing; the archive holds it")
    classes = list(CIFAR10_CLASSES)
    if (base / _META).is_file():
        classes = read_class_file(base / _META)
        if len(classes) != 10:
            raise DatasetError(f"{base / _META}: names {len(classes)} classes; CIFAR-10 has 10")
    parts = [_read_batch(f) for f in train_files]
    x_te, y_te = _read_batch(base / _TEST)
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    for name, y in (("training", y_tr), ("test", y_te)):
        if int(y.max()) >= len(classes):
            raise DatasetError(
                f"{base}: a {name} record has label {int(y.max())}; CIFAR-10 labels are 0-9 "
                "(a damaged file, or CIFAR-100?)"
            )
    for a in (x_tr, y_tr, x_te, y_te):
        a.setflags(write=False)
    return classes, x_tr, y_tr, x_te, y_te, len(train_files)


def load_cifar_dataset(folder: Path, source: str) -> Dataset:
    """The CIFAR-10 dataset of ``folder`` (see :func:`find_cifar_folder`)."""
    base = find_cifar_folder(folder)
    if base is None:
        raise DatasetError(f"{folder}: no CIFAR-10 binary batches (data_batch_N.bin) found")
    stamps = tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in sorted(base.iterdir()))
    classes, x_tr, y_tr, x_te, y_te, n = _load_cached((str(base.resolve()), stamps))
    name = "CIFAR-10" if n == 5 else f"CIFAR-10 ({n} of 5 training batches)"
    return Dataset(name, list(classes), x_tr, y_tr, x_te, y_te, source, test_split="test_batch.bin")
