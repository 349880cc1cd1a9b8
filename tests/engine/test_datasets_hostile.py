"""Crafted dataset files (issue 11): each refused up front with one DatasetError line, in
bounded time and memory, before the body is inflated or a model is built."""

from __future__ import annotations

import gzip
import resource
import struct
import time
import zlib

import numpy as np
import pytest
from test_datasets import make_idx_folder, write_idx

from engine.datasets import load_dataset, read_idx
from engine.errors import DatasetError

IMAGES = "train-images-idx3-ubyte.gz"


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _gzip_stream(header: bytes, zeros: int) -> bytes:
    """gzip of ``header`` then ``zeros`` zero bytes, made without holding them in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(header)]
    block = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(comp.compress(block))
    parts.append(comp.compress(bytes(zeros & ((1 << 20) - 1))))
    parts.append(comp.flush())
    return b"".join(parts)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_gzip_bomb_is_refused_before_inflating(tmp_path):
    # 2 MB of gzip declaring and holding 2 GB of zero pixels (2048 images of 1024x1024)
    bomb = tmp_path / IMAGES
    bomb.write_bytes(_gzip_stream(_header(0x08, (2048, 1024, 1024)), 0) + b"")
    start, rss = time.process_time(), _max_rss_mb()
    with pytest.raises(DatasetError, match="too large"):
        read_idx(bomb)
    # an in-limit declared size that compresses absurdly well: a gzip bomb by ratio
    bomb.write_bytes(_gzip_stream(_header(0x08, (300, 512, 512)), 300 * 512 * 512))
    with pytest.raises(DatasetError, match="gzip bomb"):
        read_idx(bomb)
    assert time.process_time() - start < 2 and _max_rss_mb() - rss < 50


def test_a_body_longer_than_its_header_is_not_inflated(tmp_path):
    path = tmp_path / IMAGES
    path.write_bytes(_gzip_stream(_header(0x08, (10, 4, 4)), 30 << 20))  # 160 B declared, 30 MB
    rss = _max_rss_mb()
    with pytest.raises(DatasetError, match="longer than its header"):
        read_idx(path)
    assert _max_rss_mb() - rss < 20


def test_absurd_and_empty_image_sizes(tmp_path, rng):
    make_idx_folder(tmp_path / "z", rng)
    write_idx(tmp_path / "z" / IMAGES, np.zeros((30, 0, 0), np.uint8))
    with pytest.raises(DatasetError, match="0x0 pixels"):
        load_dataset(tmp_path / "z")
    make_idx_folder(tmp_path / "w", rng)
    (tmp_path / "w" / IMAGES).write_bytes(gzip.compress(_header(0x08, (1, 1, 5000)) + bytes(5000)))
    with pytest.raises(DatasetError, match="1x5000 pixels"):
        load_dataset(tmp_path / "w")
    make_idx_folder(tmp_path / "c", rng)
    write_idx(tmp_path / "c" / IMAGES, np.zeros((30, 2, 6, 5), np.uint8))
    with pytest.raises(DatasetError, match="1 or 3 channels"):
        load_dataset(tmp_path / "c")


@pytest.mark.parametrize("classes", [10**6, 10**8])
def test_int32_labels_with_millions_of_classes(tmp_path, rng, classes):
    make_idx_folder(tmp_path, rng)
    labels = np.arange(30, dtype=np.int32)
    labels[-1] = classes - 1
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    start, rss = time.process_time(), _max_rss_mb()
    with pytest.raises(DatasetError, match="at most 1,000 classes"):
        load_dataset(tmp_path)
    assert time.process_time() - start < 1 and _max_rss_mb() - rss < 50


def test_class_files_that_are_not_text(tmp_path, rng):
    make_idx_folder(tmp_path / "a", rng)
    (tmp_path / "a" / "classes.txt").write_bytes("zéro\n".encode("latin-1") * 10)
    with pytest.raises(DatasetError, match=r"classes\.txt: not UTF-8"):
        load_dataset(tmp_path / "a")
    (tmp_path / "a" / "classes.txt").write_text("a\x07b\n" * 10)
    with pytest.raises(DatasetError, match="control characters"):
        load_dataset(tmp_path / "a")
    names = [
        "emnist-x-train-images-idx3-ubyte",
        "emnist-x-train-labels-idx1-ubyte",
        "emnist-x-test-images-idx3-ubyte",
        "emnist-x-test-labels-idx1-ubyte",
    ]
    make_idx_folder(tmp_path / "e", rng, names=names)
    for code in ("1114112", "55296", "99999999999999999999"):
        (tmp_path / "e" / "emnist-x-mapping.txt").write_text(
            "\n".join(f"{i} {code if i == 3 else 48 + i}" for i in range(10))
        )
        with pytest.raises(DatasetError, match="impossible character code"):
            load_dataset(tmp_path / "e")


def test_headers_declaring_absurd_sizes_are_refused_at_once(tmp_path):
    for dims in ((2, 32768, 32768), (0xFFFFFFFF, 0xFFFFFFFF), (1 << 31, 28, 28)):
        path = tmp_path / "x-idx3-ubyte"
        path.write_bytes(_header(0x08, dims) + bytes(100))
        start = time.process_time()
        with pytest.raises(DatasetError, match="too large"):
            read_idx(path)
        assert time.process_time() - start < 0.1
