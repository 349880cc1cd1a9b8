"""A per-user disk cache of the "What it learned" grids (:func:`engine.feature_layers.every_layer`).

One ``.npz`` file per grid in ``<cache>/features`` (``<cache>`` is the per-user cache folder of
:func:`engine.download.cache_root`: ``CONVSCOPE_CACHE``, ``$XDG_CACHE_HOME/convscope`` or
``~/.cache/convscope``), named by the SHA-1 of its key: the model's weights hash
(:func:`engine.feature_layers.weights_key`), the images' identity (:func:`images_key`; empty for a
synthesis, which reads no images), the method with its options, and the layer.

Files are written atomically (:func:`engine.atomic.atomic_write`) and read as untrusted:
``allow_pickle=False``, the members' unpacked sizes checked before anything is read, then the
format tag, the full key (a file of another key or format is foreign), and a uint8 image
``(H, W)`` or ``(H, W, 3)`` of bounded size. A file that fails any check is removed and the
grid counts as missing (it is computed again and written anew): a damaged cache never stops
the view. After each write the least recently used files beyond :attr:`FeatureCache.max_bytes`
are removed; :meth:`FeatureCache.clear` removes them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write
from engine.download import cache_root

FORMAT = "convscope-features-1"
MAX_BYTES = 64 * 2**20  # the whole cache: a few hundred grids
MAX_SIDE = 8192  # a grid's side; larger is not one of ours
_MEMBERS = {"format.npy", "key.npy", "image.npy"}
_NAME = re.compile(r"[0-9a-f]{40}\.npz")


def images_key(images: np.ndarray) -> str:
    """The identity of a set of images: a hash of their shape, type and bytes."""
    a = np.ascontiguousarray(images)
    h = hashlib.sha1(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


class FeatureCache:
    """The grids on disk in ``folder`` (default ``<cache>/features``, see the module doc)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, max_bytes: int = MAX_BYTES):
        self.folder = Path(folder) if folder is not None else cache_root() / "features"
        self.max_bytes = max_bytes

    @staticmethod
    def key(weights: str, images: str, method: str, node: str) -> str:
        """The full key of one grid (stored in its file, checked on reading)."""
        return "|".join((FORMAT, weights, images, method, node))

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"

    def load(self, key: str) -> np.ndarray | None:
        """The grid stored under ``key``, or None (missing; a bad or foreign file is removed)."""
        path = self.path(key)
        try:
            if not path.is_file():
                return None
            image = self._read(path, key)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to go when the cache is trimmed
        return image

    def _read(self, path: Path, key: str) -> np.ndarray:
        if path.stat().st_size > self.max_bytes:
            raise ValueError("larger than the whole cache")
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if {i.filename for i in infos} != _MEMBERS:
                raise ValueError("not a grid file")
            if sum(i.file_size for i in infos) > 4 * MAX_SIDE * MAX_SIDE:
                raise ValueError("unpacks too large")
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["format"][()]) != FORMAT or str(npz["key"][()]) != key:
                raise ValueError("a grid of another key or format")
            image = npz["image"]
        ok_shape = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
        if image.dtype != np.uint8 or not ok_shape or not 0 < min(image.shape[:2]):
            raise ValueError("not a uint8 picture")
        if max(image.shape[:2]) > MAX_SIDE:
            raise ValueError("too large a picture")
        return image

    def store(self, key: str, image: np.ndarray) -> bool:
        """Write ``image`` (uint8 (H, W) or (H, W, 3)) under ``key``, then trim the cache;
        False when the folder cannot take it (read-only, full disk): the cache is optional."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = atomic_write(
                self.path(key),
                lambda f: np.savez_compressed(
                    f, format=np.array(FORMAT), key=np.array(key), image=image
                ),
            )
        except OSError:
            return False
        self._trim(keep=path)
        return True

    def _files(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of the cache's files, oldest first."""
        found = []
        with contextlib.suppress(OSError):
            for path in self.folder.iterdir():
                if _NAME.fullmatch(path.name):
                    with contextlib.suppress(OSError):
                        st = path.stat()
                        found.append((st.st_mtime, st.st_size, path))
        return sorted(found)

    def _trim(self, keep: Path) -> None:
        files = self._files()
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            if path != keep:
                with contextlib.suppress(OSError):
                    path.unlink()
                total -= size

    def size(self) -> int:
        """Bytes the cache's files take."""
        return sum(size for _, size, _ in self._files())

    def clear(self) -> int:
        """Remove every grid file; returns how many were removed."""
        removed = 0
        for _, _, path in self._files():
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        return removed
