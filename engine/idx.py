"""IDX files (MNIST's format) and folders of them, read as untrusted input.

An IDX file, raw or gzip-compressed, starts with a big-endian header: two zero bytes, a type
byte (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
float64), the number of dimensions, then one uint32 per dimension. Everything the header
declares is checked *before* the body is read or inflated: the total size (at most
:data:`~engine.dataset_types.MAX_ARRAY_BYTES`), and for a gzip file the ratio of declared to
compressed size (a gzip bomb of zeros inflates 1000:1; real images about 5:1). The body is then
inflated to at most the declared size plus one byte, so a stream longer than its header is
refused without being inflated. Image files must declare images of at least 1x1 and at most
:data:`~engine.dataset_types.MAX_IMAGE_SIDE` pixels a side, label files at most
:data:`~engine.dataset_types.MAX_CLASSES` classes; class files (``classes.txt``, an EMNIST
``*-mapping.txt``) must be UTF-8 text of sensible size with possible code points.
"""

from __future__ import annotations

import functools
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.dataset_types import (
    MAX_ARRAY_BYTES,
    MAX_CLASS_NAME,
    MAX_CLASSES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    Dataset,
)
from engine.errors import DatasetError

__all__ = ["FASHION_MNIST_CLASSES", "KMNIST_CLASSES", "find_idx_files", "load_idx_dataset"]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]

# IDX type byte -> big-endian dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: A gzip body declared larger than this must not compress better than _MAX_GZIP_RATIO.
_RATIO_CHECK_BYTES = 1 << 26
_MAX_GZIP_RATIO = 200
_MAX_CLASS_FILE = 1 << 20  # bytes


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed: detected by the bytes ``1f 8b``).

    The payload must hold exactly ``prod(dims) * itemsize`` bytes. A uint8 file is returned as a
    read-only view of the decompressed bytes (no copy); other types as native-endian copies.
    Raises :class:`DatasetError` naming the file for a missing, truncated, foreign, oversized
    or hostile file (see the module docstring), before reading more than the header needs.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise DatasetError(f"{p}: is a folder, expected an IDX file")
        if p.exists() and not p.is_file():
            raise DatasetError(f"{p}: is not a regular file")
        with open(p, "rb") as fh:
            start = fh.read(4 + 4 * 8)
            if start[:2] == b"\x1f\x8b":
                size = os.fstat(fh.fileno()).st_size
                return _read_gzip(fh, start, size, p)
            header = _parse_header(start, p)
            fh.seek(header.offset)
            payload = fh.read(header.nbytes + 1)
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot be read ({exc.strerror or exc})") from exc
    if len(payload) != header.nbytes:
        _size_error(p, header.nbytes, len(payload))
    return _to_array(payload, header)


@dataclass(frozen=True)
class _Header:
    dtype: np.dtype
    dims: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize  # exact: np.prod could overflow


def _parse_header(data: bytes, p: Path) -> _Header:
    if len(data) < 4:
        raise DatasetError(f"{p.name}: too short to be an IDX file ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{p.name}: not an IDX file (it starts with {data[:4].hex(' ')}, "
            "expected 00 00 08 0N); choose the MNIST-style '-ubyte' files"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise DatasetError(
            f"{p.name}: unknown IDX data type 0x{code:02x}; "
            "expected 0x08 (uint8) or another IDX type"
        )
    if not 1 <= ndim <= 8:
        raise DatasetError(f"{p.name}: IDX header says {ndim} dimensions; expected 1 to 8")
    end = 4 + 4 * ndim
    if len(data) < end:
        raise DatasetError(f"{p.name}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    header = _Header(np.dtype(_IDX_TYPES[code]), dims, end)
    if header.nbytes > MAX_ARRAY_BYTES:
        raise DatasetError(
            f"{p.name}: header claims {'x'.join(map(str, dims))} values "
            f"({header.nbytes / 2**30:,.1f} GiB): too large (the limit is "
            f"{MAX_ARRAY_BYTES / 2**30:.0f} GiB); damaged or hostile"
        )
    return header


def _read_gzip(fh, start: bytes, size: int, p: Path) -> np.ndarray:
    """Inflate the header first, check it, then the body up to the declared size + 1 byte."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    chunk = 1 << 20
    try:
        buf = start + fh.read(chunk)
        head = d.decompress(buf, 4)
        pending = d.unconsumed_tail
        if len(head) == 4 and head[:2] == b"\x00\x00":
            head += d.decompress(pending, 4 * head[3])
            pending = d.unconsumed_tail
        header = _parse_header(head, p)
        if header.nbytes > _RATIO_CHECK_BYTES and header.nbytes > _MAX_GZIP_RATIO * size:
            raise DatasetError(
                f"{p.name}: a {size:,}-byte gzip file declaring {header.nbytes:,} bytes of data "
                f"(more than {_MAX_GZIP_RATIO}:1); refused as a probable gzip bomb"
            )
        want = header.nbytes + 1
        parts = [d.decompress(pending, want)]
        got = len(parts[0])
        while got < want and not d.eof:
            if d.unconsumed_tail:
                part = d.decompress(d.unconsumed_tail, want - got)
            else:
                more = fh.read(chunk)
                if not more:
                    break
                part = d.decompress(more, want - got)
            parts.append(part)
            got += len(part)
        payload = b"".join(parts)
    except zlib.error as exc:
        raise DatasetError(f"{p.name}: damaged gzip data ({exc}); download the file again") from exc
    if len(payload) != header.nbytes:
        _size_error(p, header.nbytes, len(payload))
    if not d.eof:
        raise DatasetError(
            f"{p.name}: the gzip file is truncated (its end is missing); download the file again"
        )
    return _to_array(payload, header)


def _size_error(p: Path, expected: int, got: int) -> None:
    what = "truncated" if got < expected else "longer than its header says"
    raise DatasetError(
        f"{p.name}: {what}: the header announces {expected:,} bytes of data, "
        f"the file holds {'more' if got > expected else f'{got:,}'}; download it again"
    )


def _to_array(payload: bytes, header: _Header) -> np.ndarray:
    a = np.frombuffer(payload, dtype=header.dtype, count=math.prod(header.dims))
    a = a.reshape(header.dims)
    if header.dtype.itemsize > 1:
        a = a.astype(header.dtype.newbyteorder("="))
        a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------
# IDX folders

_IDX_NAME = re.compile(
    r"^(?P<prefix>.*?)(?P<split>train|t10k|test)[-_.](?P<kind>images|labels|imgs)"
    r"[-_.]idx\d[-_.]ubyte(?P<gz>\.gz)?$",
    re.IGNORECASE,
)
EXPECTED_IDX = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
)


def find_idx_files(folder: Path) -> tuple[str, dict[str, Path]] | None:
    """``(prefix, {"train-images": path, ...})`` for the four MNIST-layout files, or None when
    the folder holds none. ``prefix`` is what precedes ``train``/``t10k`` (``"emnist-digits-"``).

    Raises DatasetError when some but not all are present, or several datasets are mixed.
    """
    found: dict[str, dict[tuple[str, str], Path]] = {}
    for base in (folder, folder / "raw"):
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            m = _IDX_NAME.match(entry.name)
            if not m or not entry.is_file():
                continue
            split = "train" if m["split"].lower() == "train" else "test"
            kind = "labels" if m["kind"].lower() == "labels" else "images"
            slot = found.setdefault(m["prefix"].lower(), {})
            key = (split, kind)
            # prefer the uncompressed file when both are present: no decompression needed
            if key not in slot or (slot[key].suffix == ".gz" and not m["gz"]):
                slot[key] = entry
    if not found:
        return None
    complete = {k: v for k, v in found.items() if len(v) == 4}
    if len(complete) > 1:
        names = ", ".join(repr(k.rstrip("-_.") or "(no prefix)") for k in sorted(complete))
        raise DatasetError(
            f"{folder}: holds several IDX datasets ({names}); move each into its own folder"
        )
    if not complete:
        have = sorted(p.name for slot in found.values() for p in slot.values())
        raise DatasetError(
            f"{folder}: incomplete IDX dataset: found {', '.join(have)}; "
            f"expected the four files {EXPECTED_IDX}"
        )
    prefix, slot = next(iter(complete.items()))
    return prefix, {f"{s}-{k}": path for (s, k), path in slot.items()}


def _folder_key(folder: Path) -> tuple:
    """Cache key: the folder plus size and mtime of its files, so edits invalidate the cache."""
    stamps = []
    for base in (folder, folder / "raw"):
        if base.is_dir():
            for e in sorted(base.iterdir()):
                if e.is_file():
                    st = e.stat()
                    stamps.append((e.name, st.st_size, st.st_mtime_ns))
    return (str(folder.resolve()), tuple(stamps))


def _check_images(name: str, images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(
            f"{name}: expected uint8 images of shape (N, H, W) or (N, C, H, W), "
            f"got {images.dtype} {images.shape}"
        )
    if images.ndim == 4:
        if images.shape[1] == 1:
            images = images[:, 0]
        elif images.shape[1] != 3:
            raise DatasetError(
                f"{name}: images of shape {images.shape[1:]}: expected 1 or 3 channels "
                "first (N, C, H, W)"
            )
    h, w = images.shape[-2:]
    if not (1 <= h <= MAX_IMAGE_SIDE and 1 <= w <= MAX_IMAGE_SIDE) or h * w > MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"{name}: images of {h}x{w} pixels; each side must be 1 to {MAX_IMAGE_SIDE}"
        )
    return images


def _check_labels(name: str, labels: np.ndarray) -> None:
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(
            f"{name}: expected integer labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if len(labels):
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0:
            raise DatasetError(f"{name}: negative labels ({lo}); labels must be 0, 1, 2, ...")
        if hi >= MAX_CLASSES + 1:  # EMNIST letters count from 1
            raise DatasetError(
                f"{name}: labels go up to {hi:,}; at most {MAX_CLASSES:,} classes are supported "
                "(a damaged or foreign label file?)"
            )


@functools.lru_cache(maxsize=4)
def _load_idx_folder_cached(key: tuple) -> tuple:
    folder = Path(key[0])
    found = find_idx_files(folder)
    if found is None:
        raise DatasetError(f"{folder}: no IDX files found; expected {EXPECTED_IDX}")
    prefix, files = found
    # labels first: small, and a hostile label file is refused before the images are read
    y_tr, y_te = read_idx(files["train-labels"]), read_idx(files["test-labels"])
    for name, labels in (("train-labels", y_tr), ("test-labels", y_te)):
        _check_labels(files[name].name, labels)
    x_tr = _check_images(files["train-images"].name, read_idx(files["train-images"]))
    x_te = _check_images(files["test-images"].name, read_idx(files["test-images"]))
    for split, images, labels in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if len(images) != len(labels):
            raise DatasetError(
                f"{folder}: {files[split + '-images'].name} holds {len(images):,} images but "
                f"{files[split + '-labels'].name} {len(labels):,} labels; they must match"
            )
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(
            f"{folder}: training images are {x_tr.shape[1:]} but test images "
            f"{x_te.shape[1:]}; they must have the same size"
        )
    if "emnist" in prefix:  # EMNIST stores each image transposed
        x_tr, x_te = (np.ascontiguousarray(x.swapaxes(-1, -2)) for x in (x_tr, x_te))
    y_tr, y_te = (_readonly(y.astype(np.int64)) for y in (y_tr, y_te))
    return _readonly(x_tr), y_tr, _readonly(x_te), y_te, prefix


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def read_class_file(path: Path) -> list[str]:
    """Lines of a UTF-8 class file, stripped, blank lines dropped; DatasetError otherwise."""
    try:
        size = path.stat().st_size
        if size > _MAX_CLASS_FILE:
            raise DatasetError(f"{path}: {size:,} bytes is too large for a list of class names")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8, one class per line"
        ) from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    names = [s.strip() for s in text.splitlines()]
    names = [s for s in names if s]
    for s in names:
        if len(s) > MAX_CLASS_NAME or not s.isprintable():
            raise DatasetError(
                f"{path}: class name {s[:40]!r} is too long or holds control characters"
            )
    return names


def _emnist_table(path: Path) -> dict[int, str]:
    table = {}
    for line in read_class_file(path):
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            label, code = int(parts[0]), int(parts[1])
            if not (32 <= code <= 0x10FFFF) or 0xD800 <= code <= 0xDFFF or label > MAX_CLASSES:
                raise DatasetError(
                    f"{path}: line {line!r} maps a label to an impossible character code "
                    f"{code}; expected 'label unicode-code-point' lines"
                )
            table[label] = chr(code)
    return table


def _idx_classes(
    folder: Path, prefix: str, y_tr: np.ndarray, y_te: np.ndarray, name: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names for an IDX dataset, and the labels (shifted for EMNIST letters)."""
    if len(y_tr) == 0:
        raise DatasetError(f"{folder}: the training set holds no images")
    low = min(int(y_tr.min()), int(y_te.min()) if len(y_te) else int(y_tr.min()))
    k = max(int(y_tr.max(initial=0)), int(y_te.max(initial=0))) + 1
    classes_txt = folder / "classes.txt"
    if classes_txt.is_file():
        names = read_class_file(classes_txt)
        if len(names) < k:
            raise DatasetError(
                f"{classes_txt}: lists {len(names)} class names but the labels "
                f"go up to {k - 1}; give one name per line for all {k}"
            )
        return names[:k], y_tr, y_te
    mappings = sorted(folder.glob(f"{prefix}*mapping.txt")) if prefix else []
    if mappings:  # EMNIST: "label ascii-code" per line
        table = _emnist_table(mappings[0])
        if table and all(i in table for i in range(low, k)):
            if low == 1:  # EMNIST letters count from 1
                return ([table[i] for i in range(1, k)], _readonly(y_tr - 1), _readonly(y_te - 1))
            return [table[i] for i in range(k)], y_tr, y_te
    if k > MAX_CLASSES:
        raise DatasetError(f"{folder}: labels go up to {k - 1}; at most {MAX_CLASSES} classes")
    lowered = name.lower()
    if "fashion" in lowered and k == 10:
        return list(FASHION_MNIST_CLASSES), y_tr, y_te
    if "kmnist" in lowered and k == 10:
        return list(KMNIST_CLASSES), y_tr, y_te
    return [str(i) for i in range(k)], y_tr, y_te


def load_idx_dataset(folder: Path, name: str, source: str) -> Dataset:
    """The dataset of an IDX folder (see :func:`find_idx_files`), cached per folder state."""
    x_tr, y_tr, x_te, y_te, prefix = _load_idx_folder_cached(_folder_key(folder))
    classes, y_tr, y_te = _idx_classes(folder, prefix, y_tr, y_te, name + " " + prefix)
    names = {p.name for p in folder.iterdir()} | (
        {p.name for p in (folder / "raw").iterdir()} if (folder / "raw").is_dir() else set()
    )
    test_file = next((n for n in sorted(names) if "t10k" in n.lower()), None)
    split = "the t10k files" if test_file else "the test files"
    return Dataset(name, classes, x_tr, y_tr, x_te, y_te, source, test_split=split)
