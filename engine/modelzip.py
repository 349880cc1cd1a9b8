"""Reading a model file's ``.npz`` archive without trusting it.

An ``.npz`` is a zip of ``.npy`` members. A hostile one may hold millions of members, a member
whose few kilobytes inflate to gigabytes (a zip bomb), or an array header declaring far more
data than the network needs. :class:`ModelArchive` reads sizes from the zip's directory first,
reads each ``.npy`` header (a few hundred bytes) before its data, and lets the caller compare
the declared shape and dtype with the ones it expects; only then is the data inflated, never
more bytes than that shape needs. Nothing is unpickled: object arrays are refused.
:func:`open_archive` checks the path first (a regular, non-empty file of a sane size that does
not start like an image or a PDF). Used by :mod:`engine.modelfile` and by the PyTorch export's
generated file, which embeds this module (so it imports only NumPy and the standard library).
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.errors import ModelFileError

#: Members of one archive (a ResNet-20 file has about 130).
MAX_MEMBERS = 10_000
#: Bytes of one ``.npy`` header (NumPy writes 128).
MAX_NPY_HEADER = 4096

# A LeNet is well under 1 MB; anything this large is not one of ours (and is not read).
MAX_MODEL_BYTES = 512 * 1024 * 1024

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip file",
    b"\x93NUMPY": "a single NumPy array (.npy), not a model archive",
}

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


class ModelArchive:
    """An open ``.npz`` whose members are read only within the limits the caller sets.

    ``with ModelArchive(path) as z: z.names; z.read_array("conv1.weight", (6, 1, 5, 5))``.
    Every problem raises :class:`ModelFileError` naming ``path``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")  # closed by close()
        except OSError as exc:
            raise ModelFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            _check_directory(self._file, self.path)
            self._zip = zipfile.ZipFile(self._file)
            self._members = _members(self._zip.infolist(), self.path)
        except ModelFileError:
            self._file.close()
            raise
        except (*_READ_ERRORS, ValueError, RuntimeError) as exc:
            self._file.close()
            raise ModelFileError(
                f"{self.path} is truncated or corrupt ({exc}); save or download it again"
            ) from None

    def __enter__(self) -> ModelArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    @property
    def names(self) -> list[str]:
        """Array names (member names without ``.npy``), in archive order."""
        return list(self._members)

    def declared_size(self, name: str) -> int:
        """Uncompressed size the zip directory declares for ``name`` (nothing is read)."""
        return self._members[name].file_size

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) from the member's ``.npy`` header; only the header is inflated."""
        with self._open(name) as f:
            shape, _, dtype, _ = self._header(f, name)
        return shape, dtype

    def read_array(
        self,
        name: str,
        shape: tuple[int, ...] | None = None,
        dtypes: Iterable[np.dtype | type | str] | None = None,
        max_bytes: int | None = None,
    ) -> np.ndarray:
        """The array ``name`` after checking its header: ``shape`` (exact), ``dtypes`` (one
        of), ``max_bytes`` (data size). The member's declared size must equal its header plus
        its data; exactly that many bytes are inflated."""
        with self._open(name) as f:
            got, fortran, dtype, head = self._header(f, name)
            if shape is not None and got != tuple(shape):
                raise ModelFileError(
                    f"{self.path}: {name} has shape {got}, the architecture needs {tuple(shape)}"
                )
            allowed = [np.dtype(d) for d in dtypes] if dtypes is not None else None
            if allowed is not None and dtype.newbyteorder("=") not in allowed:
                need = " or ".join(str(d) for d in allowed)
                raise ModelFileError(f"{self.path}: {name} has dtype {dtype}, expected {need}")
            nbytes = math.prod(got) * dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                raise ModelFileError(
                    f"{self.path}: {name} declares {nbytes / 1e6:.1f} MB of data, more than "
                    f"the {max_bytes / 1e6:.1f} MB allowed"
                )
            if self.declared_size(name) != head + nbytes:
                raise ModelFileError(
                    f"{self.path}: {name} declares {self.declared_size(name):,} bytes but its "
                    f"array needs {head + nbytes:,}; the file is corrupt or crafted"
                )
            data = self._read(f, nbytes, name)
        array = np.frombuffer(data, dtype=dtype)
        array = array.reshape(got[::-1]).T if fortran else array.reshape(got)
        return np.array(array, dtype=dtype.newbyteorder("="), order="C")

    def read_text(self, name: str, max_chars: int) -> str:
        """A 0-d unicode array (how ``meta`` is stored) as ``str``, at most ``max_chars``."""
        with self._open(name) as f:
            got, _, dtype, head = self._header(f, name)
            if got != () or dtype.kind != "U":
                raise ModelFileError(f"{self.path}: the {name!r} entry is not a JSON text")
            chars = dtype.itemsize // 4
            if chars > max_chars:
                raise ModelFileError(
                    f"{self.path}: the {name!r} entry is {chars / 1e6:.1f} million characters, "
                    f"more than the limit of {max_chars / 1e6:.0f} million"
                )
            if self.declared_size(name) != head + dtype.itemsize:
                raise ModelFileError(f"{self.path}: the {name!r} entry is corrupt or crafted")
            data = self._read(f, dtype.itemsize, name)
        try:
            text = data.decode("utf-32-be" if dtype.byteorder == ">" else "utf-32-le")
        except UnicodeDecodeError:
            raise ModelFileError(f"{self.path}: the {name!r} entry is not valid text") from None
        return text.rstrip("\x00")

    # -- internals ---------------------------------------------------------------------------

    def _open(self, name: str):
        if name not in self._members:
            raise ModelFileError(f"{self.path}: no entry {name!r}")
        try:
            return self._zip.open(self._members[name])
        except (*_READ_ERRORS, RuntimeError, ValueError) as exc:
            raise ModelFileError(f"{self.path}: entry {name!r} cannot be read ({exc})") from None

    def _read(self, f, n: int, name: str, *, to_end: bool = True) -> bytes:
        """``n`` bytes of entry ``name``; ``to_end``: they are the last (reading on to the end
        makes zipfile check the CRC)."""
        try:
            data = f.read(n)
            if to_end:
                f.read(1)
        except (*_READ_ERRORS, RuntimeError) as exc:
            raise ModelFileError(
                f"{self.path}: entry {name!r} is truncated or corrupt ({exc})"
            ) from None
        if len(data) != n:
            raise ModelFileError(f"{self.path}: entry {name!r} is truncated")
        return data

    def _header(self, f, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        """(shape, fortran_order, dtype, header length in bytes) of an .npy stream."""
        magic = self._read(f, 8, name, to_end=False)
        if magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2):
            raise ModelFileError(f"{self.path}: entry {name!r} is not a NumPy array")
        size_len = 2 if magic[6] == 1 else 4
        raw_len = self._read(f, size_len, name, to_end=False)
        hlen = struct.unpack("<H" if size_len == 2 else "<I", raw_len)[0]
        if hlen > MAX_NPY_HEADER:
            raise ModelFileError(
                f"{self.path}: entry {name!r} has a {hlen:,}-byte header; not a ConvScope array"
            )
        header = self._read(f, hlen, name, to_end=False)
        reader = (
            np.lib.format.read_array_header_1_0
            if magic[6] == 1
            else np.lib.format.read_array_header_2_0
        )
        try:
            shape, fortran, dtype = reader(io.BytesIO(raw_len + header))
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ModelFileError(f"{self.path}: entry {name!r} has a bad header ({exc})") from None
        if dtype.hasobject or dtype.kind not in "biufU" or dtype.subdtype is not None:
            raise ModelFileError(
                f"{self.path}: entry {name!r} holds {dtype} data; model files hold numbers only"
            )
        return tuple(int(v) for v in shape), bool(fortran), dtype, 8 + size_len + hlen


def check_values(path: str | os.PathLike, key: str, array: np.ndarray) -> None:
    """Refuse values no training makes (ModelFileError naming the file and the array): NaN
    or infinite numbers, and a BatchNorm ``running_var`` below 0 (``sqrt(var + eps)`` would
    make every output NaN). One check for ConvScope's reader and the exported file's."""
    if not np.isfinite(array).all():
        raise ModelFileError(
            f"{path}: {key} contains NaN or infinite values (did training diverge?)"
        )
    if key.endswith(".running_var") and (array < 0).any():
        raise ModelFileError(
            f"{path}: {key} holds negative values, which no variance has; the file is "
            "damaged or was not written by ConvScope"
        )


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    return None


def open_archive(path: str | os.PathLike) -> ModelArchive:
    """:class:`ModelArchive` of the model file ``path`` after the checks a path needs first: it
    exists, is a regular non-empty file (a pipe would block) of at most :data:`MAX_MODEL_BYTES`,
    and does not start like another kind of file (an image, a PDF, a lone ``.npy``).
    Raises :class:`ModelFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file (a pipe or a device?)")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes); save the model again")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path} is {path.stat().st_size / 1e6:.0f} MB, far larger than any ConvScope model; "
            "it is not a model file"
        )
    what = _sniff(path)
    if what:
        raise ModelFileError(f"{path} is not a ConvScope model file (it looks like {what})")
    return ModelArchive(path)


def _check_directory(f, path: Path) -> None:
    """Refuse an archive whose end record announces more than MAX_MEMBERS members, before
    ``zipfile`` builds an object for each of them."""
    size = f.seek(0, os.SEEK_END)
    tail_len = min(size, 65_557)  # end record (22) + the longest comment (65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        f.seek(0)
        if f.read(4) == b"PK\x03\x04":  # a zip's first member, but no directory at the end
            raise ModelFileError(f"{path} is truncated or corrupt; save or download it again")
        raise ModelFileError(f"{path} is not a ConvScope model file (not a NumPy .npz archive)")
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        offset = struct.unpack("<Q", tail[at - 12 : at - 4])[0]
        f.seek(offset)
        record = f.read(56)
        count = struct.unpack("<Q", record[32:40])[0] if len(record) == 56 else count
    if count > MAX_MEMBERS:
        raise ModelFileError(
            f"{path} holds {count:,} entries, more than the limit of {MAX_MEMBERS:,}; "
            "it is not a ConvScope model file"
        )
    f.seek(0)


def _members(infos: list[zipfile.ZipInfo], path: Path) -> dict[str, zipfile.ZipInfo]:
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{path} holds {len(infos):,} entries; it is not a model file")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(
                f"{path} is not a ConvScope model file (it holds {info.filename[:80]!r}, "
                "not a NumPy array)"
            )
        name = info.filename[: -len(".npy")]
        if name in members:
            raise ModelFileError(f"{path} holds the entry {name[:80]!r} twice; it is crafted")
        members[name] = info
    return members
