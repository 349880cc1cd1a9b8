"""Image-folder datasets: one subfolder of images per class, optionally under train/ and test/.
A folder inside a class folder ('cat/2024 trip/') holds more images of that class.

Colour and size come from the data unless given: ``channels=None`` gives RGB when the sampled
images are colour and gray otherwise; ``image_size=None`` gives the images' own size when the
sampled images all share one (at most :data:`AUTO_MAX_SIDE` a side), else :data:`AUTO_SIZE`.
An image of another size is centre-cropped to the target aspect ratio and resized (the subject
stays large; nothing is letterboxed); one already at the target size is taken as it is, which
is what makes a folder of 20,000 CIFAR JPEGs load in about 1 s on two idle cores (2.1 s of CPU:
each file's bytes are read once; a plain JPEG's frame is read from its markers and Pillow's
decoder runs on the bytes; anything else goes through :func:`engine.imageio.image_from_bytes`
with every check of :mod:`engine.imageio`: pixel limit before decoding, truncation,
decompression bombs).

Each file's own size is kept while it is read (a file over 64 KiB, decoded in draft mode, has
its header read once more for it): a folder read at another size says so in
``Dataset.resized_from`` (its most common size) and ``other_sizes``.

Loading is a generator (:func:`iter_image_folder`) of ``Progress("load", done, total)`` events
and then the :class:`~engine.dataset_types.Dataset`, with the protocol of :mod:`engine.progress`:
``control`` is anything with a ``cancelled`` attribute, polled between chunks of images; when it
turns true the generator ends without a dataset.

A folder of the ten digit classes "0".."9" read in grey is read as ``classify`` shows a digit
model its pictures (:func:`engine.preprocess.training_digit`): dark ink on paper becomes
MNIST's light ink on black, the digit cropped and centred; an image with no ink is skipped.

Size: one pipeline over one table of files (list, detect, decode in two processes, assemble
the seeded split); its steps share the table's private helpers.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import re
import sys
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.dataset_size import is_digit_data
from engine.dataset_types import MAX_CLASSES, MAX_MODEL_CLASS_NAME, Dataset, unsavable_class_name
from engine.errors import DatasetError, EngineError, ImageLoadError, short_repr
from engine.imageio import MAX_PIXELS, image_from_bytes, load_image
from engine.photo import prepare_photo
from engine.preprocess import training_digit
from engine.progress import Progress

__all__ = ["AUTO_MAX_SIDE", "AUTO_SIZE", "check_listable", "fit_image", "iter_image_folder"]

AUTO_SIZE = (32, 32)
AUTO_MAX_SIDE = 128
_SMALL_FILE = 1 << 16  # decoded from memory; larger files are decoded in draft mode
_CHUNK = 256  # images between two progress events / cancellation checks
_PARALLEL_MIN = 2000  # images: below this a second process is not worth its start
_FORK_OK = sys.platform.startswith("linux")
_SYSTEM_FILES = {"thumbs.db", "ehthumbs.db", "desktop.ini"}  # kept by Windows in any folder
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}

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


def _entries(folder: Path, want_dirs: bool) -> list[Path]:
    """The subfolders (or files) of ``folder``, dot names and the system's own files (Windows'
    Thumbs.db, desktop.ini) skipped, in natural order; DatasetError when the folder cannot be
    listed (permissions)."""
    try:
        with os.scandir(folder) as it:  # DirEntry.is_dir/is_file need no stat on most systems
            names = [e.name for e in it if _listed(e.name) and _is(e, want_dirs)]
    except OSError as exc:
        raise _unlistable(folder, exc) from exc
    return [folder / n for n in sorted(names, key=_natural_key)]


def _listed(name: str) -> bool:
    return not name.startswith(".") and name.lower() not in _SYSTEM_FILES


def _is(entry: os.DirEntry, want_dirs: bool) -> bool:
    """``entry`` is a folder (``want_dirs``) or a file; an entry that cannot be followed (a link
    to itself: "Too many levels of symbolic links") is neither, and passed over, not the whole
    folder."""
    try:
        return entry.is_dir() if want_dirs else entry.is_file()
    except OSError:
        return False


def check_listable(folder: Path) -> None:
    """DatasetError saying why, when ``folder`` (a folder) cannot be listed."""
    try:
        os.scandir(folder).close()
    except OSError as exc:
        raise _unlistable(folder, exc) from exc


def _unlistable(folder: Path, exc: OSError) -> DatasetError:
    reason = exc.strerror or str(exc)
    return DatasetError(f"{folder}: the folder cannot be listed ({reason}); check its permissions")


def _subfolders(folder: Path) -> list[Path]:
    return _entries(folder, True)


def _files(folder: Path) -> list[Path]:
    return _entries(folder, False)


_MAX_DEPTH = 32  # folders inside a class folder, nested this deep at most


def _tree_files(folder: Path, depth: int = 0, seen: set | None = None) -> list[Path]:
    """The files of a class folder: those directly inside, then those of each folder in it
    (natural order, dot names skipped; a folder reached twice by a link is read once)."""
    seen = set() if seen is None else seen
    st = folder.stat()
    if (st.st_dev, st.st_ino) in seen or depth > _MAX_DEPTH:
        return []
    seen.add((st.st_dev, st.st_ino))
    return _files(folder) + [
        f for d in _subfolders(folder) for f in _tree_files(d, depth + 1, seen)
    ]


def fit_image(image: np.ndarray, size: tuple[int, int], channels: int = 1) -> np.ndarray:
    """Centre-crop ``image`` (uint8 (H,W) or (H,W,3)) to the aspect of ``size`` = (H', W') and
    resize it: :func:`engine.photo.prepare_photo`, so that a folder's images are the pixels
    ``convscope classify`` gives the network. Returns ``(H', W')`` for 1 channel,
    ``(3, H', W')`` for 3.
    """
    out = prepare_photo(image, (channels, *size))
    return out[0] if channels == 1 else out


def _plan(folder: Path) -> tuple[list[str], list[tuple[Path, str]], list[str]]:
    """Class names, the (root, part) pairs to read (part "train"/"test" or "all") and the
    class folders of test/ that train/ lacks (sorted)."""
    subs = _subfolders(folder)
    splits = {_SPLIT_NAMES.get(s.name.lower()) for s in subs}
    if subs and "train" in splits and splits <= {"train", "test"}:
        parts = {_SPLIT_NAMES[s.name.lower()]: s for s in subs}
        classes = [d.name for d in _subfolders(parts["train"])]
        if "test" in parts:
            test_classes = [d.name for d in _subfolders(parts["test"])]
            extra = sorted(set(test_classes) - set(classes))
            return classes, [(parts["train"], "train"), (parts["test"], "test")], extra
        return classes, [(parts["train"], "train")], []
    return [d.name for d in subs], [(folder, "all")], []


def _detect(work: list[tuple[Path, str, int]]) -> tuple[int, tuple[int, int] | None]:
    """(channels, common size or None) from the headers of up to 32 files spread over the set."""
    picks = work[:: max(1, len(work) // 32)][:32]
    colour = False
    sizes = set()
    for path, _, _ in picks:
        try:
            with Image.open(path) as im:
                colour = colour or im.mode not in _GRAY_MODES
                sizes.add((im.size[1], im.size[0]))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # an unreadable file is reported when it is read
    size = next(iter(sizes)) if len(sizes) == 1 else None
    if size is not None and max(size) > AUTO_MAX_SIDE:
        size = None
    return (3 if colour else 1), size


# Markers a plain JPEG may hold before its scan: SOF0-2 (baseline, extended, progressive), DHT,
# DQT, DRI, APP0 (JFIF), COM and SOS. EXIF (APP1), ICC (APP2), Adobe (APP14) and the rest go the
# full way.
_PLAIN_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xE0, 0xFE, 0xDA})


def _jpeg_frame(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, "L" or "RGB") of a plain 8-bit JPEG, read from its markers (a few
    microseconds; Pillow's header parser costs as much as the decoding of a 32x32 image), or
    None for anything else."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, end, frame = 2, len(data), None
    while pos + 4 <= end and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker not in _PLAIN_MARKERS:
            return None
        if marker == 0xDA:
            return frame
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker <= 0xC2:
            if length < 8 or pos + 10 > end or data[pos + 4] != 8 or data[pos + 9] not in (1, 3):
                return None
            height = (data[pos + 5] << 8) | data[pos + 6]
            width = (data[pos + 7] << 8) | data[pos + 8]
            frame = (width, height, "L" if data[pos + 9] == 1 else "RGB")
        pos += 2 + length
    return None


def _plain_jpeg(data: bytes, mode: str) -> np.ndarray | None:
    """The common case, fast: a small plain JPEG (no EXIF, no colour profile, L or RGB) decoded
    by Pillow's JPEG decoder straight from the bytes, without Pillow's Python header parsing.
    None for anything else (or any doubt), which then goes the full way through
    :func:`engine.imageio.image_from_bytes` (orientation, alpha, messages)."""
    frame = _jpeg_frame(data)
    if frame is None:
        return None
    width, height, file_mode = frame
    if not 0 < width * height <= MAX_PIXELS:
        return None
    try:
        # raises ValueError for a truncated or corrupt file (LOAD_TRUNCATED_IMAGES is not used)
        im = Image.frombytes(file_mode, (width, height), data, "jpeg", file_mode, "")
        return np.asarray(im if file_mode == mode else im.convert(mode))
    except Exception:
        return None


def _read(
    path: Path, mode: str, size: tuple[int, int], channels: int, digits: bool = False
) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as uint8 (H, W) or (3, H, W) at ``size``, and the (H, W) of the file as shown
    upright (``digits``: prepared as a digit model's ``classify`` does, then sized);
    ImageLoadError if unreadable or, for digits, without ink."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_SMALL_FILE + 1)
        small = len(data) <= _SMALL_FILE
    except OSError as exc:
        raise ImageLoadError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    if small and data:  # (an empty file goes the full way: load_image says it is empty)
        img = _plain_jpeg(data, mode)
        if img is None:
            img = image_from_bytes(data, name=path.name, mode=mode)
        own = img.shape[:2]
    else:
        img = load_image(path, mode=mode, draft_size=(size[1], size[0]))
        own = _file_size(path, img.shape[:2])
    if digits:
        try:
            img = training_digit(img)
        except EngineError as exc:
            raise ImageLoadError(f"{path.name}: {exc}") from None
    if img.shape[:2] != size:
        return fit_image(img, size, channels), own
    return (img if channels == 1 else img.transpose(2, 0, 1)), own


def _file_size(path: Path, decoded: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of a large file as shown upright, from its header alone (its pixels may have
    been decoded at a reduced scale: a JPEG's draft); ``decoded`` if the header does not read."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # a quarter turn: sides swap
    except Exception:  # read once already: a header that fails now is no reason to stop
        return decoded
    return (width, height) if turned else (height, width)


def _sizes_read(sizes: np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int] | None, int]:
    """What reading files of ``sizes`` ((N, 2) of (H, W)) at ``size`` did to them: the most
    common of their sizes (the smallest of a tie) and how many other sizes there are, or
    ``(None, 0)`` when every file had that size already (nothing was resized)."""
    sizes = np.asarray(sizes).reshape(-1, 2)
    if not len(sizes) or bool((sizes == np.asarray(size)).all()):
        return None, 0
    found, counts = np.unique(sizes, axis=0, return_counts=True)
    h, w = found[int(np.argmax(counts))]
    return (int(h), int(w)), len(found) - 1


def iter_image_folder(
    folder: Path,
    image_size: tuple[int, int] | Mapping[int, tuple[int, int]] | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    control: Any = None,
    classes: Sequence[str] | str | None = None,
) -> Iterator[Progress | Dataset]:
    """Read an image folder: :class:`Progress` events, then the Dataset (see module doc).

    ``image_size``: (H, W), or one per channel count (``{1: (28, 28), 3: (32, 32)}``), chosen
    once the images' colour is known. ``test_fraction``: share of each class held out as the
    test set when the folder has no ``test/`` part; 1.0 puts every image into the test set (to
    evaluate a model on all of it).

    ``classes``: read only these class folders (names or ``"a,b,c"``, matched as
    :func:`engine.datasets.select_classes` matches them), labelled 0, 1, ... in the order
    given. The other class folders are only listed, never opened or checked (one may be empty
    or hold garbage): their file counts replay the seeded split, so that the dataset is the
    one reading every class and then selecting gives, image for image. That holds when their
    files would all read; an unreadable one among them shifts the split's draws (the split
    stays deterministic). Colour and size found from the data are those of the wanted classes.
    """
    names, plan, wanted = _classes(folder, classes)
    chosen = set(wanted)
    skipped: list[tuple[str, str]] = []
    work: list[tuple[Path, str, int]] = []  # (file, part, label among all classes)
    for root, part in plan:
        for f in _files(root):
            skipped.append((str(f.relative_to(folder)), "not inside a class folder; ignored"))
        for label, cls in enumerate(names):
            work += [(f, part, label) for f in _class_files(root / cls, label in chosen)]
    read = np.asarray([i for i, w in enumerate(work) if w[2] in chosen], np.int64)
    rows = np.full(len(work), -1, np.int64)  # the row of each wanted file in x, -1: not read
    rows[read] = np.arange(len(read))
    work_read = [work[i] for i in read]
    found_channels, found_size = _detect(work_read)
    channels = channels or found_channels
    if isinstance(image_size, Mapping):
        image_size = image_size.get(channels)
    digits = is_digit_data([names[i] for i in wanted], channels)  # read as classify shows them
    if image_size is None and digits:
        image_size = (28, 28)  # what training_digit makes of any picture
    size = tuple(image_size) if image_size is not None else (found_size or AUTO_SIZE)
    mode = "L" if channels == 1 else "RGB"
    shape = size if channels == 1 else (3, *size)
    files = [w[0] for w in work_read]
    n = len(files)
    x = _shared((n, *shape)) if _parallel(n) else np.empty((n, *shape), np.uint8)
    status = _shared((n,))  # 0 not read yet, 1 read, 2 unreadable
    own = _shared((n, 2), np.uint32)  # each file's own (H, W)
    ok = yield from _decode_all(files, x, own, status, mode, size, channels, digits, control)  # type: ignore[arg-type]
    if not ok:
        return
    keep = status == 1
    for i in np.flatnonzero(~keep):
        try:
            x[i], own[i] = _read(files[i], mode, size, channels, digits)  # type: ignore[arg-type]
            keep[i] = True  # read by the other process only on a second try: keep it
        except ImageLoadError as exc:
            skipped.append((str(files[i].relative_to(folder)), str(exc)))
    counted = np.ones(len(work), bool)  # unwanted files count as read: see the docstring
    counted[read] = keep
    dataset = _assemble(
        folder, names, wanted, plan, work, rows, x, counted, skipped, test_fraction, seed
    )
    dataset.resized_from, dataset.other_sizes = _sizes_read(own[keep], size)  # type: ignore[arg-type]
    yield dataset


def _classes(
    folder: Path, classes: Sequence[str] | str | None
) -> tuple[list[str], list[tuple[Path, str]], list[int]]:
    """The folder's class names, its (root, part) pairs and the indices of the ``classes``
    wanted (all of them for None), after the checks of its layout; DatasetError if wrong."""
    from engine.datasets import class_indices, parse_classes

    names, plan, extra = _plan(folder)
    if extra and classes:  # a test/ folder of an unwanted class is no concern of this load
        asked = {c.lower() for c in parse_classes(classes)}
        extra = [c for c in extra if c.lower() in asked]
    if extra:
        raise DatasetError(
            f"{plan[-1][0]}: classes {extra} are not in {plan[0][0].name}/; both need the same "
            "class folders"
        )
    if len(names) < 2:
        raise DatasetError(
            f"{folder}: an image dataset needs one subfolder per class (at least two), e.g. "
            f"{folder.name}/cat/*.jpg and {folder.name}/dog/*.jpg; found "
            f"{len(names)} class folder{'s' if len(names) != 1 else ''}"
        )
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"{folder}: {len(names):,} class folders; at most {MAX_CLASSES:,}")
    wanted = class_indices(names, classes, folder.name) if classes else list(range(len(names)))
    for name in (names[i] for i in wanted):
        if unsavable_class_name(name):
            raise DatasetError(
                f"{folder}: the class folder {short_repr(name)} has a name no model file keeps "
                f"(a control character, or more than {MAX_MODEL_CLASS_NAME} characters); "
                "rename it"
            )
    return names, plan, wanted


def _class_files(cdir: Path, wanted: bool) -> list[Path]:
    """The files of a class folder; one of an unwanted class is only listed, and a folder that
    cannot be listed then counts as empty."""
    if wanted:
        return _tree_files(cdir) if cdir.is_dir() else []
    try:
        return _tree_files(cdir)
    except (DatasetError, OSError):  # missing (a test/ without it), not a folder, not readable
        return []


def _shared(shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
    """A zeroed array in anonymous shared memory (seen by a process forked afterwards)."""
    n, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(n * item, 1)), dtype, count=n).reshape(shape)


def _parallel(n: int) -> bool:
    return _FORK_OK and n >= _PARALLEL_MIN and (os.cpu_count() or 1) >= 2


def _decode_range(files, x, own, status, lo, hi, mode, size, channels, digits) -> None:
    for i in range(lo, hi):
        try:
            x[i], own[i] = _read(files[i], mode, size, channels, digits)
            status[i] = 1
        except ImageLoadError:
            status[i] = 2
        except BaseException:
            status[i] = 2


def _decode_all(
    files: list[Path],
    x: np.ndarray,
    own: np.ndarray,
    status: np.ndarray,
    mode: str,
    size: tuple[int, int],
    channels: int,
    digits: bool,
    control: Any,
) -> Generator[Progress, None, bool]:
    """Decode every file into ``x``, its own size into ``own`` (``status`` 1 = read,
    2 = unreadable), yielding progress;
    returns False if cancelled. With many files a forked process decodes the second half
    (Pillow's header parsing holds the GIL, so threads would not help)."""
    n = len(files)
    mid = n // 2 if _parallel(n) else n
    child = None
    if mid < n:
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(
            target=_decode_range,
            args=(files, x, own, status, mid, n, mode, size, channels, digits),
            daemon=True,
            name="convscope-load",
        )
        child.start()
    try:
        yield Progress("load", 0, n)
        for start in range(0, mid, _CHUNK):
            if control is not None and control.cancelled:
                return False
            stop = min(start + _CHUNK, mid)
            _decode_range(files, x, own, status, start, stop, mode, size, channels, digits)
            yield Progress("load", int(np.count_nonzero(status)), n)
        while child is not None and child.is_alive():
            if control is not None and control.cancelled:
                return False
            child.join(0.05)
            yield Progress("load", int(np.count_nonzero(status)), n)
        yield Progress("load", n, n)
        return True
    finally:
        if child is not None:
            if child.is_alive():
                child.terminate()
            child.join()
            child.close()


def _assemble(
    folder: Path,
    classes: list[str],
    wanted: list[int],
    plan: list[tuple[Path, str]],
    work: list[tuple[Path, str, int]],
    rows: np.ndarray,
    x: np.ndarray,
    keep: np.ndarray,
    skipped: list[tuple[str, str]],
    test_fraction: float,
    seed: int,
) -> Dataset:
    """The Dataset of the ``wanted`` classes (indices into ``classes``, in the order returned).

    ``work`` lists the files of every class and ``keep`` those that read (or, of an unwanted
    class, were counted without reading): the split and the training order are drawn over all of
    them, exactly as when every class is read, and then narrowed to the wanted ones, whose
    images are the rows ``rows`` of ``x``."""
    from engine.datasets import stratified_indices

    kept = [w for w, k in zip(work, keep, strict=True) if k]
    row = rows[keep]
    y = np.asarray([w[2] for w in kept], dtype=np.int64)
    part_arr = np.asarray([w[1] for w in kept])
    table = np.full(len(classes), -1, np.int64)
    table[wanted] = np.arange(len(wanted))
    for root, part in plan:
        if part == "test":
            continue
        counts = np.bincount(y[part_arr == part], minlength=len(classes))
        empty = [classes[k] for k in np.flatnonzero((counts == 0) & (table >= 0))]
        if empty:
            raise DatasetError(
                f"{root}: class folder{'s' if len(empty) > 1 else ''} "
                f"{', '.join(empty)} hold{'s' if len(empty) == 1 else ''} no "
                "readable image; add images or remove the folder"
            )
    rng = np.random.default_rng(seed)
    if plan[-1][1] == "test":
        train_idx = np.flatnonzero(part_arr == "train")
        test_idx = np.flatnonzero(part_arr == "test")
        split = f"the {plan[-1][0].name}/ folder"
    elif test_fraction >= 1.0:
        train_idx, test_idx = np.zeros(0, np.int64), np.arange(len(y))
        split = "every image in the folder"
    else:
        train_idx, test_idx = stratified_indices(y, test_fraction, rng)
        split = f"{test_fraction:.0%} of each class held out, seed {seed}"
        if plan[0][1] == "train":
            split = f"{test_fraction:.0%} of {plan[0][0].name}/ held out, seed {seed}"
    train_idx = rng.permutation(train_idx)  # so that `limit` keeps a mix of classes
    train_idx, test_idx = (i[table[y[i]] >= 0] for i in (train_idx, test_idx))  # order kept
    return Dataset(
        folder.name,
        [classes[i] for i in wanted],
        x[row[train_idx]],
        table[y[train_idx]],
        x[row[test_idx]],
        table[y[test_idx]],
        str(folder),
        skipped,
        test_split=split,
        test_files=[str(kept[i][0].relative_to(folder)) for i in test_idx],
    )
