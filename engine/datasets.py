"""Datasets: the IDX reader, the bundled MNIST, IDX folders, image folders, the validation split.

Three kinds of dataset load through :func:`load_dataset`:

* ``"mnist"``: the full MNIST bundled in ``resources/datasets/mnist`` (60,000 training and
  10,000 test images, 28x28). Read once per process and cached as read-only arrays, so the GUI
  and the CLI never decompress it twice. ``"fashion-mnist"``: the same layout, from the per-user
  cache once :func:`engine.download.download_dataset` has fetched it.
* A folder of IDX files in MNIST layout (Fashion-MNIST, KMNIST, EMNIST ...): the files are
  found by their usual names (``train-images-idx3-ubyte[.gz]``, ``train-images.idx3-ubyte``,
  ``t10k-labels-idx1-ubyte.gz``, ``emnist-digits-train-images-idx3-ubyte`` ...), also in a
  ``raw/`` subfolder (torchvision's layout). EMNIST images are stored transposed and are turned
  upright. Class names come from a ``classes.txt`` (one per line) when present, an EMNIST
  ``*-mapping.txt``, the dataset's name (Fashion-MNIST, KMNIST), or else ``"0"``, ``"1"``, ...
  IDX images keep their own size (the model's ``InputSpec`` pads smaller images).
* A folder with one subfolder per class (the article's dog/cat/boat/bird case), or with
  ``train/`` and ``test/`` (or ``val/``) subfolders that each hold the class folders. Every
  file Pillow reads is converted to ``image_size`` and ``channels``: centre-cropped to the
  target aspect ratio, then resized (so the subject stays large; nothing is letterboxed).
  Unreadable files are skipped and listed in :attr:`Dataset.skipped`. Without a ``test/``
  folder a seeded, stratified ``test_fraction`` of each class is held out as the test set.

Layouts: grayscale images are ``uint8 (N, H, W)``, colour ones ``uint8 (N, 3, H, W)`` (NCHW,
as the engine's tensors); labels are ``int64 (N,)``. Arrays of the bundled and IDX datasets are
read-only views shared through the cache: copy before modifying.
"""

from __future__ import annotations

import functools
import math
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageOps

from engine.download import (
    REMOTE_DATASETS,
    DownloadProgress,
    dataset_cache_dir,
    download_dataset,
    is_downloaded,
)
from engine.errors import DatasetError, ImageLoadError
from engine.imageio import load_image

__all__ = [
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "Dataset",
    "DownloadProgress",
    "download_dataset",
    "fit_image",
    "is_downloaded",
    "load_dataset",
    "read_idx",
    "split_validation",
]

FASHION_MNIST_CLASSES = list(REMOTE_DATASETS["fashion-mnist"].classes)
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]

# IDX type byte -> big-endian dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_IDX_BYTES = 1 << 33  # 8 GiB: larger headers are refused before reading the payload


@dataclass
class Dataset:
    """A labelled image dataset, split into training and test parts.

    ``train_images``/``test_images``: ``uint8 (N, H, W)`` or ``(N, C, H, W)``;
    ``train_labels``/``test_labels``: ``int64 (N,)`` with values in ``0..len(classes)-1``.
    """

    name: str
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as an ``InputSpec.shape``."""
        shape = self.train_images.shape[1:]
        return (1, *shape) if len(shape) == 2 else tuple(shape)  # type: ignore[return-value]

    def summary(self) -> str:
        c, h, w = self.input_shape
        colour = "gray" if c == 1 else f"{c} channels"
        text = (
            f"{self.name}: {len(self.train_labels):,} training and {len(self.test_labels):,} "
            f"test images, {h}x{w} {colour}, {self.num_classes} classes"
        )
        if self.skipped:
            text += f" ({len(self.skipped)} unreadable files skipped)"
        return text


# ---------------------------------------------------------------------------------------------
# IDX


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed: detected by the bytes ``1f 8b``).

    The header is big-endian: two zero bytes, a type byte (``0x08`` uint8, ``0x09`` int8,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of
    dimensions, then one uint32 per dimension. The payload must hold exactly
    ``prod(dims) * itemsize`` bytes. A uint8 file is returned as a read-only view of the
    decompressed bytes (no copy); other types as native-endian copies.

    Raises :class:`DatasetError` naming the file for a missing, truncated or foreign file.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{p}: is a folder, expected an IDX file") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot be read ({exc.strerror or exc})") from exc
    payload: bytes | memoryview
    if raw[:2] == b"\x1f\x8b":
        header, payload = _gunzip_idx(raw, p)
    else:
        header = _parse_header(raw, p)
        payload = memoryview(raw)[header.offset :]
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
    if header.nbytes > _MAX_IDX_BYTES:
        raise DatasetError(
            f"{p.name}: header claims {'x'.join(map(str, dims))} values "
            f"({header.nbytes / 2**30:.0f} GiB); too large, probably damaged"
        )
    return header


def _gunzip_idx(raw: bytes, p: Path) -> tuple[_Header, bytes]:
    """Decompress once, header first, so a hostile header is refused before the payload."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        head = d.decompress(raw, 4)
        if len(head) == 4 and head[:2] == b"\x00\x00":
            head += d.decompress(d.unconsumed_tail, 4 * head[3])
        header = _parse_header(head, p)
        payload = d.decompress(d.unconsumed_tail, header.nbytes + 1)
    except zlib.error as exc:
        raise DatasetError(f"{p.name}: damaged gzip data ({exc}); download the file again") from exc
    if len(payload) != header.nbytes:
        _size_error(p, header.nbytes, len(payload))
    if not d.eof:
        raise DatasetError(
            f"{p.name}: the gzip file is truncated (its end is missing); download the file again"
        )
    return header, payload


def _size_error(p: Path, expected: int, got: int) -> None:
    what = "truncated" if got < expected else "longer than its header says"
    raise DatasetError(
        f"{p.name}: {what}: the header announces {expected:,} bytes of data, "
        f"the file holds {got:,}; download it again"
    )


def _to_array(payload, header: _Header) -> np.ndarray:
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
_EXPECTED = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
)


def _find_idx_files(folder: Path) -> tuple[str, dict[str, Path]] | None:
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
            f"expected the four files {_EXPECTED}"
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


@functools.lru_cache(maxsize=4)
def _load_idx_folder_cached(key: tuple) -> tuple:
    folder = Path(key[0])
    found = _find_idx_files(folder)
    if found is None:
        raise DatasetError(f"{folder}: no IDX files found; expected {_EXPECTED}")
    prefix, files = found
    arrays = {name: read_idx(path) for name, path in files.items()}
    x_tr, y_tr, x_te, y_te = (
        arrays["train-images"],
        arrays["train-labels"],
        arrays["test-images"],
        arrays["test-labels"],
    )
    for name, images in (("train-images", x_tr), ("test-images", x_te)):
        if images.ndim not in (3, 4) or images.dtype != np.uint8:
            raise DatasetError(
                f"{files[name].name}: expected uint8 images of shape (N, H, W), "
                f"got {images.dtype} {images.shape}"
            )
    for name, labels in (("train-labels", y_tr), ("test-labels", y_te)):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DatasetError(
                f"{files[name].name}: expected integer labels of shape (N,), "
                f"got {labels.dtype} {labels.shape}"
            )
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


def _idx_classes(
    folder: Path, prefix: str, y_tr: np.ndarray, y_te: np.ndarray, name: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names for an IDX dataset, and the labels (shifted for EMNIST letters)."""
    if len(y_tr) == 0:
        raise DatasetError(f"{folder}: the training set holds no images")
    low = min(int(y_tr.min()), int(y_te.min()) if len(y_te) else int(y_tr.min()))
    if low < 0:
        raise DatasetError(f"{folder}: negative labels ({low}); labels must be 0, 1, 2, ...")
    k = max(int(y_tr.max(initial=0)), int(y_te.max(initial=0))) + 1
    classes_txt = folder / "classes.txt"
    if classes_txt.is_file():
        names = [s.strip() for s in classes_txt.read_text(encoding="utf-8").splitlines()]
        names = [s for s in names if s]
        if len(names) < k:
            raise DatasetError(
                f"{classes_txt}: lists {len(names)} class names but the labels "
                f"go up to {k - 1}; give one name per line for all {k}"
            )
        return names[:k], y_tr, y_te
    mappings = sorted(folder.glob(f"{prefix}*mapping.txt")) if prefix else []
    if mappings:  # EMNIST: "label ascii-code" per line
        table = {}
        for line in mappings[0].read_text(encoding="utf-8").split("\n"):
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                table[int(parts[0])] = chr(int(parts[1]))
        if table and all(i in table for i in range(low, k)):
            if low == 1:  # EMNIST letters count from 1
                return ([table[i] for i in range(1, k)], _readonly(y_tr - 1), _readonly(y_te - 1))
            return [table[i] for i in range(k)], y_tr, y_te
    lowered = name.lower()
    if "fashion" in lowered and k == 10:
        return list(FASHION_MNIST_CLASSES), y_tr, y_te
    if "kmnist" in lowered and k == 10:
        return list(KMNIST_CLASSES), y_tr, y_te
    return [str(i) for i in range(k)], y_tr, y_te


def _load_idx_dataset(folder: Path, name: str, source: str) -> Dataset:
    x_tr, y_tr, x_te, y_te, prefix = _load_idx_folder_cached(_folder_key(folder))
    classes, y_tr, y_te = _idx_classes(folder, prefix, y_tr, y_te, name + " " + prefix)
    return Dataset(name, classes, x_tr, y_tr, x_te, y_te, source)


# ---------------------------------------------------------------------------------------------
# image folders

_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "val": "test",
    "valid": "test",
    "validation": "test",
}


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        (e for e in folder.iterdir() if e.is_dir() and not e.name.startswith(".")),
        key=lambda e: _natural_key(e.name),
    )


def _files(folder: Path) -> list[Path]:
    return sorted(
        (e for e in folder.iterdir() if e.is_file() and not e.name.startswith(".")),
        key=lambda e: _natural_key(e.name),
    )


def fit_image(image: np.ndarray, size: tuple[int, int], channels: int = 1) -> np.ndarray:
    """Centre-crop ``image`` (uint8 (H,W) or (H,W,3)) to the aspect of ``size`` = (H', W') and
    resize it (bicubic, antialiased). Returns ``(H', W')`` for 1 channel, ``(3, H', W')`` for 3.
    """
    height, width = size
    pil = Image.fromarray(image)
    pil = pil.convert("L" if channels == 1 else "RGB")
    fitted = ImageOps.fit(pil, (width, height), method=Image.Resampling.BICUBIC)
    out = np.asarray(fitted, dtype=np.uint8)
    return out if channels == 1 else out.transpose(2, 0, 1)


def _load_image_folder(
    folder: Path,
    image_size: tuple[int, int],
    channels: int,
    test_fraction: float,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> Dataset:
    subs = _subfolders(folder)
    splits = {_SPLIT_NAMES.get(s.name.lower()) for s in subs}
    skipped: list[tuple[str, str]] = []
    if subs and "train" in splits and splits <= {"train", "test"}:
        parts = {_SPLIT_NAMES[s.name.lower()]: s for s in subs}
        train_dirs = _subfolders(parts["train"])
        classes = [d.name for d in train_dirs]
        if "test" in parts:
            test_classes = [d.name for d in _subfolders(parts["test"])]
            extra = sorted(set(test_classes) - set(classes))
            if extra:
                raise DatasetError(
                    f"{parts['test']}: classes {extra} are not in "
                    f"{parts['train'].name}/; both need the same class folders"
                )
        plan = [(parts["train"], "train")] + ([(parts["test"], "test")] if "test" in parts else [])
    else:
        classes = [d.name for d in subs]
        plan = [(folder, "all")]
    if len(classes) < 2:
        raise DatasetError(
            f"{folder}: an image dataset needs one subfolder per class (at least two), e.g. "
            f"{folder.name}/cat/*.jpg and {folder.name}/dog/*.jpg; found "
            f"{len(classes)} class folder{'s' if len(classes) != 1 else ''}"
        )
    work: list[tuple[Path, str, int]] = []  # (file, part, label)
    for root, part in plan:
        for f in _files(root):
            skipped.append((str(f.relative_to(folder)), "not inside a class folder; ignored"))
        for label, cls in enumerate(classes):
            cdir = root / cls
            if not cdir.is_dir():
                continue
            work += [(f, part, label) for f in _files(cdir)]
    images: list[np.ndarray] = []
    labels: list[int] = []
    parts_of: list[str] = []
    mode = "L" if channels == 1 else "RGB"
    step = max(1, len(work) // 100)
    for i, (path, part, label) in enumerate(work):
        try:
            img = load_image(path, mode=mode, draft_size=(image_size[1], image_size[0]))
            images.append(fit_image(img, image_size, channels))
            labels.append(label)
            parts_of.append(part)
        except ImageLoadError as exc:
            skipped.append((str(path.relative_to(folder)), str(exc)))
        if progress is not None and ((i + 1) % step == 0 or i + 1 == len(work)):
            progress(i + 1, len(work))
    y = np.asarray(labels, dtype=np.int64)
    part_arr = np.asarray(parts_of)
    for root, part in plan:
        if part == "test":
            continue
        counts = np.bincount(y[part_arr == part], minlength=len(classes))
        empty = [classes[k] for k in np.flatnonzero(counts == 0)]
        if empty:
            raise DatasetError(
                f"{root}: class folder{'s' if len(empty) > 1 else ''} "
                f"{', '.join(empty)} hold{'s' if len(empty) == 1 else ''} no "
                "readable image; add images or remove the folder"
            )
    shape = (0, *image_size) if channels == 1 else (0, channels, *image_size)
    x = np.stack(images) if images else np.zeros(shape, np.uint8)
    rng = np.random.default_rng(seed)
    if plan[-1][1] == "test":
        train_idx = np.flatnonzero(part_arr == "train")
        test_idx = np.flatnonzero(part_arr == "test")
    else:
        train_idx, test_idx = _stratified_indices(y, test_fraction, rng)
    train_idx = rng.permutation(train_idx)  # so that `limit` keeps a mix of classes
    return Dataset(
        folder.name,
        classes,
        x[train_idx],
        y[train_idx],
        x[test_idx],
        y[test_idx],
        str(folder),
        skipped,
    )


# ---------------------------------------------------------------------------------------------
# splits


def _stratified_indices(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held_out) indices, both sorted: round(fraction*n_c) of each class held out, but at
    least one when fraction > 0 and the class has two or more samples, and never all of them."""
    keep, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        k = round(fraction * n)
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        k = min(k, n)
        chosen = rng.permutation(n)
        held.append(idx[chosen[:k]])
        keep.append(idx[chosen[k:]])
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.sort(np.concatenate(keep)) if keep else empty,
        np.sort(np.concatenate(held)) if held else empty,
    )


def split_validation(
    images: np.ndarray,
    labels: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    *,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of the training data for validation (seeded by ``rng``).

    Returns ``(train_x, train_y, val_x, val_y)``. With ``stratify`` each class gives the same
    fraction (``round(fraction * n_class)``); otherwise a plain random subset of
    ``round(fraction * N)``. Both parts keep the original order (sequential memory access).
    ``fraction == 0`` returns the inputs themselves and empty validation arrays.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if fraction == 0.0 or len(labels) == 0:
        return images, labels, images[:0], labels[:0]
    if stratify:
        keep, held = _stratified_indices(np.asarray(labels), fraction, rng)
    else:
        n = len(labels)
        order = rng.permutation(n)
        k = round(fraction * n)
        held, keep = np.sort(order[:k]), np.sort(order[k:])
    return images[keep], labels[keep], images[held], labels[held]


# ---------------------------------------------------------------------------------------------
# the entry point


def load_dataset(
    spec: str | os.PathLike[str] = "mnist",
    *,
    limit: int | None = None,
    image_size: tuple[int, int] = (28, 28),
    channels: int = 1,
    test_fraction: float = 0.2,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Load a dataset (see the module docstring for the kinds and layouts).

    Args:
        spec: ``"mnist"`` (bundled), ``"fashion-mnist"`` (downloaded into the cache), or a folder.
        limit: keep only the first ``limit`` training images (a view, no copy).
        image_size: (H, W) image-folder images are converted to; IDX images keep their size.
        channels: 1 (grayscale) or 3 (RGB). IDX datasets are gray; 3 repeats the gray channel.
        test_fraction: share of each class held out as the test set of an image folder without
            a ``test/`` part.
        seed: seeds that held-out split and the training order of image folders.
        cache_dir: cache folder for downloaded datasets (default: see :mod:`engine.download`).
        progress: ``progress(done, total)`` while an image folder is read (about 100 calls).
    """
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be a positive number of images, got {limit}")
    text = str(spec)
    key = text.strip().lower().replace("_", "-")
    if key == "mnist":
        import resources  # the package data; not Qt, just files

        ds = _load_idx_dataset(resources.mnist_dir(), "MNIST", "bundled")
    elif key in REMOTE_DATASETS or key == "fashionmnist":
        folder = dataset_cache_dir(key, cache_dir)
        remote = REMOTE_DATASETS["fashion-mnist"]
        if not is_downloaded(key, cache_dir):
            raise DatasetError(
                f"{remote.title} is not downloaded yet (about {remote.approx_mb} MB, needs a "
                f"network): download it first, or pass the folder holding its IDX files"
            )
        ds = _load_idx_dataset(folder, remote.title, str(folder))
    else:
        folder = Path(text).expanduser()
        if not folder.exists():
            raise DatasetError(
                f"{text}: no such dataset or folder; use 'mnist', "
                "'fashion-mnist' or a folder of IDX files or class subfolders"
            )
        if not folder.is_dir():
            raise DatasetError(f"{folder}: is a file; pass the folder that holds the dataset")
        if _find_idx_files(folder) is not None:
            name = "Fashion-MNIST" if "fashion" in folder.name.lower() else folder.name
            ds = _load_idx_dataset(folder, name, str(folder))
        else:
            if not any(folder.iterdir()):
                raise DatasetError(
                    f"{folder}: the folder is empty; expected IDX files "
                    f"({_EXPECTED}) or one subfolder of images per class"
                )
            size = cast(tuple[int, int], tuple(image_size))
            ds = _load_image_folder(folder, size, channels, test_fraction, seed, progress)
    if channels == 3 and ds.train_images.ndim == 3:
        ds.train_images = np.repeat(ds.train_images[:, None], 3, axis=1)
        ds.test_images = np.repeat(ds.test_images[:, None], 3, axis=1)
    if limit is not None:
        ds.train_images = ds.train_images[:limit]
        ds.train_labels = ds.train_labels[:limit]
    return ds
