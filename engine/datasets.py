"""Datasets: the entry point :func:`load_dataset`, the list of named datasets, class subsets,
splits.

Kinds of dataset (each loader lives in its own module):

* ``"mnist"``: the full MNIST bundled in ``resources/datasets/mnist`` (60,000 training and
  10,000 test digits, 28x28 gray). ``"cifar4"``: the bundled four-class photo set (bird, cat,
  dog, ship; 32x32 colour; 4,000 training and 1,000 test photos from CIFAR-10) in
  ``resources/datasets/cifar4``. ``"fashion-mnist"`` and ``"cifar10"``: from the per-user cache
  once :func:`engine.download.download_dataset` has fetched them.
* A folder of IDX files in MNIST layout (Fashion-MNIST, KMNIST, EMNIST ...): :mod:`engine.idx`.
* A folder of CIFAR-10 binary batches (``data_batch_1.bin`` ...): :mod:`engine.cifar`.
* A folder with one subfolder of images per class, or with ``train/`` and ``test/`` (or
  ``val/``) parts that each hold the class folders: :mod:`engine.imagefolder`. Without a test
  part a seeded, stratified ``test_fraction`` of each class is the test set (1.0: all of it).

Layouts: grayscale images are ``uint8 (N, H, W)``, colour ones ``uint8 (N, 3, H, W)`` (NCHW,
as the engine's tensors); labels are ``int64 (N,)``. Arrays of the bundled, IDX and CIFAR
datasets are read-only views shared through a cache: copy before modifying.

Progress and cancellation follow :mod:`engine.progress`: :func:`load_dataset_iter` is a
generator of ``Progress("load", done, total)`` events (``"resize"`` while IDX or CIFAR images
are brought to a network's size) and then the :class:`Dataset`; ``control``
is anything with a ``cancelled`` attribute (a ``CancelFlag``, a ``TrainControl``) and ends the
generator without a dataset.
:func:`load_dataset` runs it to the end (``progress(done, total)`` callback) and raises
:class:`LoadCancelled` when cancelled.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset_size import ImageSize, iter_fitted, size_for
from engine.dataset_types import Dataset
from engine.download import (
    REMOTE_DATASETS,
    DownloadProgress,
    dataset_cache_dir,
    download_dataset,
    is_downloaded,
)
from engine.errors import DatasetError
from engine.idx import (
    EXPECTED_IDX,
    FASHION_MNIST_CLASSES,
    KMNIST_CLASSES,
    find_idx_files,
    load_idx_dataset,
    read_idx,
)
from engine.imagefolder import check_listable, fit_image, iter_image_folder
from engine.imageops import to_gray_batch
from engine.progress import Progress, run_through

__all__ = [
    "DEFAULT_DATASET",
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "Dataset",
    "DatasetChoice",
    "DownloadProgress",
    "LoadCancelled",
    "class_indices",
    "dataset_choices",
    "download_dataset",
    "fit_image",
    "is_downloaded",
    "load_dataset",
    "load_dataset_iter",
    "parse_classes",
    "read_idx",
    "select_classes",
    "split_validation",
    "stratified_indices",
]


class LoadCancelled(DatasetError):
    """Loading was cancelled through its ``control``; nothing was kept."""


# ---------------------------------------------------------------------------------------------
# named datasets

DEFAULT_DATASET = "mnist"  # what the CLI and the Train tab load unless told otherwise


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset with a name, as offered by ``--dataset`` and the Train tab's dataset list.

    ``key`` is what :func:`load_dataset` takes; ``available`` is False for a download not made
    yet (``convscope download KEY`` fetches it).
    """

    key: str
    title: str
    description: str
    available: bool
    bundled: bool


def dataset_choices(cache_dir: str | os.PathLike[str] | None = None) -> list[DatasetChoice]:
    """The named datasets, bundled ones first: MNIST, the four-class photos, then downloads."""
    choices = [
        DatasetChoice(
            "mnist", "MNIST digits (bundled)", "70,000 handwritten digits, 28x28 gray", True, True
        ),
        DatasetChoice(
            "cifar4",
            "Photos: bird, cat, dog, ship",
            "5,000 CIFAR-10 photos of four classes, 32x32 colour, bundled with the app",
            True,
            True,
        ),
    ]
    for key, remote in REMOTE_DATASETS.items():
        choices.append(
            DatasetChoice(
                key,
                f"{remote.title} (download, {remote.approx_mb} MB)",
                remote.description,
                is_downloaded(key, cache_dir),
                False,
            )
        )
    return choices


def _named(key: str, cache_dir: str | os.PathLike[str] | None) -> Path | None:
    """The folder of a named dataset, None if ``key`` names none; DatasetError if missing."""
    if key in ("mnist", "cifar4", "photos"):
        # the package data (not Qt, just files); imported only here, so that reading a folder
        # needs nothing but this module (the PyTorch export embeds it without `resources`)
        import resources

        return resources.mnist_dir() if key == "mnist" else resources.cifar4_dir()
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key in REMOTE_DATASETS:
        remote = REMOTE_DATASETS[key]
        if not is_downloaded(key, cache_dir):
            raise DatasetError(
                f"{remote.title} is not downloaded yet (about {remote.approx_mb} MB, needs a "
                f"network): run 'convscope download {key}' first, or pass the folder that "
                "holds its files"
            )
        return dataset_cache_dir(key, cache_dir)
    return None


# ---------------------------------------------------------------------------------------------
# the entry point


def load_dataset_iter(
    spec: str | os.PathLike[str] = DEFAULT_DATASET,
    *,
    limit: int | None = None,
    image_size: ImageSize | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | None = None,
    control: Any = None,
) -> Iterator[Progress | Dataset]:
    """Load a dataset as a generator: :class:`Progress` events, then the :class:`Dataset`.

    Args:
        spec: a key of :func:`dataset_choices` (``"mnist"``, ``"cifar4"``, ...) or a folder.
        limit: keep only the first ``limit`` training images (a view, no copy).
        image_size: (H, W) the network takes (default: the images' own size). Image folders
            are read at it (:mod:`engine.imagefolder`), IDX and CIFAR images are resized to it
            as ``convscope classify`` prepares a photo, digits that fit are kept (the network
            pads them): :mod:`engine.dataset_size`; a resized dataset's ``resized_from`` says so.
            ``{1: (28, 28), 3: (32, 32)}``: the size for grey images and for colour ones, when
            the network's size follows the data's colour (known once it is read).
        channels: 1 (gray) or 3 (RGB); default: the data's own. Gray data asked for 3 repeats
            its channel, colour data asked for 1 is converted to luma.
        test_fraction: share of each class held out as the test set of an image folder without
            a ``test/`` part; 1.0 makes every image a test image (evaluation of a whole folder).
        seed: seeds that held-out split and the training order of image folders.
        cache_dir: cache folder for downloaded datasets (default: see :mod:`engine.download`).
        classes: keep only these classes, in this order (:func:`select_classes`). Of an image
            folder only their subfolders are read (the others may be empty or hold anything),
            with the split and order that reading all of it and then selecting gives.
        control: anything with a ``cancelled`` attribute; the generator then ends early.

    Bad arguments and damaged or hostile files raise :class:`DatasetError` at the call.
    """
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be a positive number of images, got {limit}")
    if image_size is not None:
        image_size = _check_sizes(image_size)
    if not 0.0 <= test_fraction <= 1.0:
        raise DatasetError(f"test fraction must be in [0, 1], got {test_fraction}")
    text = str(spec)
    key = text.strip().lower().replace("_", "-")
    folder = _named(key, cache_dir)
    if folder is None:
        folder = Path(text).expanduser()
        if not text.strip() or not folder.exists():
            raise DatasetError(
                f"{text!r}: no such dataset or folder; use "
                f"{', '.join(repr(c.key) for c in dataset_choices(cache_dir))} or a folder of "
                "IDX files, CIFAR-10 binary batches or class subfolders"
            )
        if not folder.is_dir():
            raise DatasetError(f"{folder}: is a file; pass the folder that holds the dataset")
        check_listable(folder)
    title = {"mnist": "MNIST", "cifar4": "cifar4", "photos": "cifar4"}.get(key)
    source = "bundled" if title else str(folder)
    found = _load_fixed_or_repair(folder, key, title, source)
    photo_size = size_for(image_size, channels or 3)  # the bundled photos are colour
    if found is None and title == "cifar4" and _BUNDLED_PHOTOS and photo_size in (None, (32, 32)):
        found = replace(_BUNDLED_PHOTOS[0], skipped=[])
    if found is None:
        if not any(folder.iterdir()):
            raise DatasetError(
                f"{folder}: the folder is empty; expected IDX files "
                f"({EXPECTED_IDX}), CIFAR-10 batches or one subfolder of images per class"
            )
        if title == "cifar4" and photo_size in (None, (32, 32)):  # read whole, once
            events = iter_image_folder(folder, image_size, channels, test_fraction, seed, control)
            events = _keep_bundled(events)
        else:  # the other classes' folders are not read (one may be empty or hold garbage)
            events = iter_image_folder(
                folder, image_size, channels, test_fraction, seed, control, classes or None
            )
            classes = None  # selected already
        return _finish_iter(events, channels, limit, classes, title, image_size, control)
    return _finish_iter(iter([found]), channels, limit, classes, title, image_size, control)


_BUNDLED_PHOTOS: list[Dataset] = []  # the bundled photos once read (read-only arrays)


def _keep_bundled(events: Iterator[Progress | Dataset]) -> Iterator[Progress | Dataset]:
    """Pass the events on; remember the bundled photo set, read only once per process."""
    for item in events:
        if isinstance(item, Dataset):
            for a in (item.train_images, item.train_labels, item.test_images, item.test_labels):
                a.setflags(write=False)
            _BUNDLED_PHOTOS[:] = [item]
            item = replace(item)
        yield item


def _load_fixed(folder: Path, key: str, title: str | None, source: str) -> Dataset | None:
    """The IDX or CIFAR dataset in ``folder``, or None if it holds neither."""
    from engine.cifar import find_cifar_folder, load_cifar_dataset

    if find_idx_files(folder) is not None:
        name = title or ("Fashion-MNIST" if "fashion" in f"{key} {folder.name}" else folder.name)
        return load_idx_dataset(folder, name, source)
    if find_cifar_folder(folder) is not None:
        return load_cifar_dataset(folder, source)
    return None


def _load_fixed_or_repair(folder: Path, key: str, title: str | None, source: str) -> Dataset | None:
    """:func:`_load_fixed`; a damaged download's error says how to repair it."""
    try:
        return _load_fixed(folder, key, title, source)
    except DatasetError as exc:
        remote = REMOTE_DATASETS.get("fashion-mnist" if key == "fashionmnist" else key)
        if remote is None:
            raise
        raise DatasetError(
            f"the downloaded {remote.title} is damaged ({exc}); run 'convscope download "
            f"{remote.key}' again: it checks every file and replaces the damaged ones"
        ) from exc


def _check_sizes(size: ImageSize) -> ImageSize:
    if isinstance(size, Mapping):
        if not size or any(c not in (1, 3) for c in size):
            raise DatasetError(f"image sizes must be given for 1 and/or 3 channels, got {size!r}")
        return {c: _check_size(s) for c, s in size.items()}
    return _check_size(size)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DatasetError(f"image size must be (height, width), got {size!r}") from None
    if not (1 <= h <= 1024 and 1 <= w <= 1024):
        raise DatasetError(f"image size must be 1 to 1024 pixels a side, got {h}x{w}")
    return h, w


def _finish_iter(
    events: Iterator[Progress | Dataset],
    channels: int | None,
    limit: int | None,
    classes: Sequence[str] | str | None,
    title: str | None,
    image_size: ImageSize | None,
    control: Any,
) -> Iterator[Progress | Dataset]:
    for item in events:
        if not isinstance(item, Dataset):
            yield item
            continue
        ds = item
        if title:
            ds.name = title
        ds = _with_channels(ds, channels)
        if classes:
            ds = select_classes(ds, classes)
        if limit is not None:
            ds.train_images = ds.train_images[:limit]
            ds.train_labels = ds.train_labels[:limit]
        size = size_for(image_size, ds.input_shape[0])
        yield from iter_fitted(ds, size, control)  # IDX, CIFAR: at the network's size


def _with_channels(ds: Dataset, channels: int | None) -> Dataset:
    if channels == 3 and ds.train_images.ndim == 3:
        ds.train_images = np.repeat(ds.train_images[:, None], 3, axis=1)
        ds.test_images = np.repeat(ds.test_images[:, None], 3, axis=1)
    elif channels == 1 and ds.train_images.ndim == 4:
        ds.train_images, ds.test_images = (
            to_gray_batch(x) for x in (ds.train_images, ds.test_images)
        )
    return ds


def load_dataset(
    spec: str | os.PathLike[str] = DEFAULT_DATASET,
    *,
    limit: int | None = None,
    image_size: ImageSize | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    control: Any = None,
) -> Dataset:
    """Load a dataset (arguments as :func:`load_dataset_iter`).

    ``progress(done, total)`` is called while an image folder is read (about 100 calls);
    :class:`LoadCancelled` is raised when ``control.cancelled`` turns true meanwhile.
    """
    events = load_dataset_iter(
        spec,
        limit=limit,
        image_size=image_size,
        channels=channels,
        test_fraction=test_fraction,
        seed=seed,
        cache_dir=cache_dir,
        classes=classes,
        control=control,
    )
    report = None if progress is None else lambda p: progress(p.done, p.total)
    dataset = run_through(events, report)
    if dataset is None:
        raise LoadCancelled(f"loading {spec} was cancelled")
    return dataset


# ---------------------------------------------------------------------------------------------
# classes


def parse_classes(text: str | Sequence[str]) -> list[str]:
    """``"bird,cat, dog"`` -> ``["bird", "cat", "dog"]``: typed text is split and stripped; a
    list holds names as they are (a model's or a folder's: " ant" is a class folder's name)."""
    if isinstance(text, str):
        names = [s.strip() for s in text.split(",")]
    else:
        names = [str(s) for s in text]
    if any(not s for s in names):
        raise DatasetError(f"class list {text!r} has an empty name; separate names by commas")
    if len(names) < 2:
        raise DatasetError(f"keep at least two classes, got {names}")
    if len(set(names)) != len(names):
        raise DatasetError(f"class list {text!r} names a class twice")
    return names


def class_indices(names: Sequence[str], wanted: Sequence[str] | str, dataset: str) -> list[int]:
    """Where each of ``wanted`` (names, or ``"a,b,c"``) is in ``names`` (of ``dataset``), in
    order: exactly, else ignoring case, runs of spaces and the form of accents (macOS keeps
    'à' as 'a' + a combining grave); DatasetError for a name no class or two classes fit."""
    shown = ", ".join(c if c.isprintable() else repr(c) for c in names)  # one line
    keys, found = [_loose_name(c) for c in names], []
    for name in parse_classes(wanted):
        fits = [names.index(name)] if name in names else []
        fits = fits or [i for i, k in enumerate(keys) if k == _loose_name(name)]
        if not fits:
            raise DatasetError(f"{dataset} has no class {name!r}; its classes are {shown}")
        if len(fits) > 1:
            two = " or ".join(repr(names[i]) for i in fits)
            raise DatasetError(f"{dataset}: {name!r} could be the class {two}; type it exactly")
        found.append(fits[0])
    return found


def _loose_name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def select_classes(dataset: Dataset, classes: Sequence[str] | str) -> Dataset:
    """A new Dataset with only ``classes`` (names, or ``"a,b,c"``, as :func:`class_indices`
    finds them), labelled 0, 1, ... in the order given."""
    old = class_indices(dataset.classes, classes, dataset.name)
    table = np.full(max(len(dataset.classes), 1), -1, np.int64)
    table[old] = np.arange(len(old))

    def pick(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        new = table[labels]
        keep = np.flatnonzero(new >= 0)
        return images[keep], new[keep], keep

    tr_x, tr_y, _ = pick(dataset.train_images, dataset.train_labels)
    te_x, te_y, te_keep = pick(dataset.test_images, dataset.test_labels)
    files = dataset.test_files
    return replace(
        dataset,
        classes=[dataset.classes[i] for i in old],
        train_images=tr_x,
        train_labels=tr_y,
        test_images=te_x,
        test_labels=te_y,
        test_files=None if files is None else [files[i] for i in te_keep],
    )


# ---------------------------------------------------------------------------------------------
# splits


def stratified_indices(
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
        keep, held = stratified_indices(np.asarray(labels), fraction, rng)
    else:
        n = len(labels)
        order = rng.permutation(n)
        k = round(fraction * n)
        held, keep = np.sort(order[:k]), np.sort(order[k:])
    return images[keep], labels[keep], images[held], labels[held]
