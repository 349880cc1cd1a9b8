"""Seeded fuzzing of dataset files: damaged and crafted IDX folders, CIFAR-10 batches and class
files. Every case must end in a valid Dataset or one DatasetError, quickly, never another
exception (bounded: a few hundred small cases, about a second)."""

from __future__ import annotations

import gzip
import struct
import time

import numpy as np
import pytest

from engine.datasets import Dataset, load_dataset
from engine.errors import DatasetError

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip


def _idx(a: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _valid(rng) -> dict[str, bytes]:
    x = rng.integers(0, 256, (12, 5, 4), dtype=np.uint8)
    y = (np.arange(12) % 3).astype(np.uint8)
    return {NAMES[0]: _idx(x), NAMES[1]: _idx(y), NAMES[2]: _idx(x[:6]), NAMES[3]: _idx(y[:6])}


def _mutate(data: bytes, rng) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 6)
    if kind == 0 and b:  # flip bytes, often in the header
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(0, min(len(b), 24) if rng.random() < 0.7 else len(b))
            b[i] = rng.integers(0, 256)
    elif kind == 1:  # truncate
        b = b[: rng.integers(0, len(b) + 1)]
    elif kind == 2:  # append garbage
        b += rng.integers(0, 256, rng.integers(1, 50), dtype=np.uint8).tobytes()
    elif kind == 3 and len(b) >= 8:  # an absurd dimension
        dim = rng.choice([0, 1, 2**16, 2**31, 2**32 - 1])
        b[4:8] = struct.pack(">I", int(dim))
    elif kind == 4 and len(b) >= 4:  # another type or rank
        b[2] = int(rng.choice([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x42]))
        b[3] = int(rng.integers(0, 10))
    elif kind == 5:  # gzip it (sometimes truncated)
        z = gzip.compress(bytes(b), mtime=0)
        b = bytearray(z[: rng.integers(10, len(z) + 1)] if rng.random() < 0.5 else z)
    return bytes(b)


def test_fuzzed_idx_folders(tmp_path):
    rng = np.random.default_rng(2024)
    start = time.process_time()
    outcomes = {"ok": 0, "refused": 0}
    for case in range(150):
        folder = tmp_path / f"c{case}"
        folder.mkdir()
        files = _valid(rng)
        victim = NAMES[int(rng.integers(0, 4))]
        files[victim] = _mutate(files[victim], rng)
        for name, data in files.items():
            suffix = ".gz" if data[:2] == b"\x1f\x8b" else ""
            (folder / (name + suffix)).write_bytes(data)
        if rng.random() < 0.2:
            (folder / "classes.txt").write_bytes(rng.integers(0, 256, 30, dtype=np.uint8).tobytes())
        try:
            ds = load_dataset(folder)
        except DatasetError as exc:
            assert "\n" not in str(exc) and str(exc), case
            outcomes["refused"] += 1
            continue
        assert isinstance(ds, Dataset) and len(ds.train_labels) == len(ds.train_images)
        assert ds.train_labels.max() < len(ds.classes) and min(ds.train_images.shape[1:]) >= 1
        outcomes["ok"] += 1
    assert outcomes["refused"] > 50 and outcomes["ok"] > 5, outcomes
    assert time.process_time() - start < 30


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_cifar_batches(tmp_path, seed):
    from engine.cifar import RECORD

    rng = np.random.default_rng(seed)
    for case in range(20):
        folder = tmp_path / f"c{case}"
        folder.mkdir()
        for name in ("data_batch_1.bin", "test_batch.bin"):
            rec = rng.integers(0, 256, (3, RECORD), dtype=np.uint8)
            rec[:, 0] = rng.integers(0, 10, 3)
            data = _mutate(rec.tobytes(), rng) if rng.random() < 0.7 else rec.tobytes()
            (folder / name).write_bytes(data)
        if rng.random() < 0.5:
            (folder / "batches.meta.txt").write_bytes(
                _mutate(b"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", rng)
            )
        try:
            ds = load_dataset(folder)
        except DatasetError as exc:
            assert "\n" not in str(exc)
            continue
        assert ds.train_images.shape[1:] == (3, 32, 32) and ds.train_labels.max() < 10
