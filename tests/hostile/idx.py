"""The campaign's hostile IDX dataset files: header lies, gzip bombs, empty images, label files
with millions of classes. Small on disk (the bombs are about 2 MB)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["hostile_idx_files", "idx_bytes", "idx_folder"]

_TYPES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}  # fmt: skip


def idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return b"\0\0" + bytes([code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def idx_bytes(array: np.ndarray) -> bytes:
    a = np.asarray(array)
    dtype = a.dtype if a.dtype.itemsize == 1 else a.dtype.newbyteorder(">")
    return idx_header(_TYPES[np.dtype(dtype)], a.shape) + a.astype(dtype).tobytes()


def _gzip_stream(head: bytes, chunk: bytes, repeats: int) -> bytes:
    """gzip of ``head + chunk * repeats`` built from one compressed copy of ``chunk``."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    return first + again * repeats + comp.flush()  # the trailer's CRC covers one copy only


def idx_folder(folder: Path, train_images: bytes, train_labels: bytes, gz: bool = False) -> Path:
    """An MNIST-layout folder (train and t10k files) around the given training files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    test_x = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    test_y = idx_bytes(np.arange(4, dtype=np.uint8))
    suffix = ".gz" if gz else ""
    for name, data in (
        ("train-images-idx3-ubyte", train_images),
        ("train-labels-idx1-ubyte", train_labels),
        ("t10k-images-idx3-ubyte", test_x),
        ("t10k-labels-idx1-ubyte", test_y),
    ):
        if gz and not data[:2] == b"\x1f\x8b":
            data = gzip.compress(data, 1)
        (folder / (name + suffix)).write_bytes(data)
    return folder


def hostile_idx_files(folder: Path) -> dict[str, Path]:
    """Single IDX files that ``read_idx`` must refuse (DatasetError), or the folders built
    around them that ``load_dataset`` must refuse."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = idx_bytes(np.arange(8, dtype=np.uint8) % 4)
    cases = {
        "header_only": idx_header(0x08, (2, 32768, 32768)),
        "huge_header_gz": _gzip_stream(idx_header(0x08, (2, 32768, 32768)), b"\0" * (1 << 20), 64),
        "gzip_bomb": _gzip_stream(idx_header(0x08, (8, 28, 28)), b"\0" * (1 << 20), 2048),
        "zero_pixels": idx_header(0x08, (8, 0, 0)),
        "bad_type": idx_header(0x0A, (8, 28, 28)) + bytes(8 * 784),
        "bad_magic": b"\x12\x34" + idx_header(0x08, (8, 28, 28))[2:] + bytes(8 * 784),
        "too_many_dims": idx_header(0x08, (1,) * 255),
        "truncated": idx_header(0x08, (8, 28, 28)) + bytes(100),
        "empty": b"",
        "short": b"\0\0",
    }
    files = {}
    for name, data in cases.items():
        path = folder / f"{name}.idx"
        path.write_bytes(data)
        files[name] = path
    files["_labels"] = folder / "labels.idx"
    files["_labels"].write_bytes(labels)
    return files
