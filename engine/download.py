"""Download a dataset (Fashion-MNIST, CIFAR-10) into the per-user cache, verified by checksum.

Nothing here runs unless a user asks for it: the app and the CLI work offline with the bundled
MNIST. Each file is streamed into a temporary file next to its destination while its MD5 and
SHA-256 are computed; only when both match the pinned values is it renamed into place
(``os.replace``). Each file's size is pinned too: a server announcing another size is refused
before its body is read, and one sending more is cut off there, so a wrong mirror cannot fill
the disk. On any failure (HTTP error, dropped connection, timeout, checksum mismatch,
cancel) the temporary file is deleted and :class:`~engine.errors.DatasetError` is raised, so a
half-downloaded or foreign file is never left where the loader would find it.

The cache folder is, in order of preference: the ``cache_dir`` argument, the environment
variable ``CONVSCOPE_CACHE``, ``$XDG_CACHE_HOME/convscope``, ``~/.cache/convscope`` (with no
home folder at all, ``convscope-cache-UID`` in the temporary folder). A dataset ``NAME`` lives
in ``<cache>/datasets/NAME/``.

An archive (CIFAR-10's ``cifar-10-binary.tar.gz``) is verified, then unpacked into a temporary
folder and renamed into place: only the expected members are taken, only as regular files, each
of bounded size (no links, no paths outside the folder, nothing executed or unpickled); the
archive is then deleted (an archive verified earlier whose unpacking was interrupted is
unpacked by the next call; two calls at once for the same dataset both succeed, the folder
unpacked first is kept). A full disk (while downloading or unpacking) is reported as a disk
problem, naming the folder, never as a network failure; a download larger than the free space
is refused before it starts.

Size: one piece, because fetching, verifying and unpacking share the same rules (a temporary
file renamed into place, the pinned size and digests, a disk error told from a network one),
and the pinned catalogue (about 90 lines of names, sizes and checksums) sits beside them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import home_folder
from engine.cifar import CIFAR10_CLASSES
from engine.errors import DatasetError
from engine.idx import FASHION_MNIST_CLASSES
from engine.progress import Cancellable

if TYPE_CHECKING:
    from email.message import Message  # the headers' type; the module is loaded with urllib

__all__ = [
    "REMOTE_DATASETS",
    "DownloadCancelled",
    "DownloadProgress",
    "RemoteDataset",
    "RemoteFile",
    "cache_root",
    "dataset_cache_dir",
    "download_dataset",
    "is_downloaded",
]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a remote dataset with its pinned checksums (lower-case hex) and size."""

    name: str
    md5: str
    sha256: str | None  # None: only the MD5 is published
    size: int  # bytes, as the official servers send it


@dataclass(frozen=True)
class RemoteDataset:
    key: str
    title: str
    base_urls: tuple[str, ...]  # tried in order; each ends with "/"
    files: tuple[RemoteFile, ...]
    classes: tuple[str, ...]
    licence: str
    approx_mb: int  # download size, for the user
    description: str = ""
    #: for an archive: the folder inside it and the members to unpack from that folder
    unpack: tuple[str, tuple[str, ...]] | None = None


# Checksums as published by the dataset's authors and the torchvision/TensorFlow loaders.
FASHION_MNIST = RemoteDataset(
    key="fashion-mnist",
    title="Fashion-MNIST",
    base_urls=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            26421880,
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            "25c81989df183df01b3e8a0aad5dffbe",
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            29515,
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            "bef4ecab320f06d8554ea6380940ec79",
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            4422102,
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            "bb300cfdad3c16e7a12a480ee83cd310",
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            5148,
        ),
    ),
    classes=tuple(FASHION_MNIST_CLASSES),
    licence="MIT, Zalando SE (https://github.com/zalandoresearch/fashion-mnist)",
    approx_mb=30,
    description="70,000 photos of clothes in 10 classes, 28x28 gray",
)

CIFAR10 = RemoteDataset(
    key="cifar10",
    title="CIFAR-10",
    base_urls=("https://www.cs.toronto.edu/~kriz/",),
    # the MD5 published by the authors on https://www.cs.toronto.edu/~kriz/cifar.html
    files=(
        RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", None, 170052171),
    ),
    classes=tuple(CIFAR10_CLASSES),
    licence="Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    approx_mb=162,  # the size the authors' page gives for the binary version
    description="60,000 photos in 10 classes, 32x32 colour (the binary version)",
    unpack=(
        "cifar-10-batches-bin",
        (
            "batches.meta.txt",
            *(f"data_batch_{i}.bin" for i in range(1, 6)),
            "test_batch.bin",
            "readme.html",
        ),
    ),
)

REMOTE_DATASETS: dict[str, RemoteDataset] = {FASHION_MNIST.key: FASHION_MNIST, CIFAR10.key: CIFAR10}
_MAX_MEMBER = 64 << 20  # bytes: an official CIFAR-10 batch is 30.7 MB


@dataclass(frozen=True)
class DownloadProgress:
    """Sent to the ``progress`` callback: ``done``/``total`` bytes of ``file`` (total 0 = unknown).

    ``index`` counts files from 0 up to ``count``; ``skipped`` is True for a file already in the
    cache and verified; ``verified`` for the last event of a file just downloaded, once its
    checksums matched and it is in place (an event with ``done == total`` comes before the check).
    """

    file: str
    index: int
    count: int
    done: int
    total: int
    skipped: bool = False
    verified: bool = False


class DownloadCancelled(DatasetError):
    """The ``control`` was cancelled; nothing partial is left behind."""


class _ServerAnswered(DatasetError):
    """The server answered, but not with the official file (an HTTP error, a web page, another
    size or checksum): the network works, so the advice is another mirror, not the connection."""


class DiskError(DatasetError):
    """The cache folder cannot take the file (disk full, quota, read-only): not the network."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The per-user cache folder (see the module docstring for the order of preference)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("CONVSCOPE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "convscope"
    home = home_folder()
    if home is None:  # not a folder named "~" in the current one, nor a traceback
        return Path(tempfile.gettempdir()) / f"convscope-cache-{getattr(os, 'getuid', int)()}"
    return home / ".cache" / "convscope"


def dataset_cache_dir(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache>/datasets/<name>``: where :func:`download_dataset` puts ``name``'s files."""
    return cache_root(cache_dir) / "datasets" / _remote(name).key


def is_downloaded(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when every file of ``name`` is in the cache (present; checksums not re-checked).
    For an archive: when its unpacked files are."""
    remote = _remote(name)
    folder = dataset_cache_dir(name, cache_dir)
    if remote.unpack is not None:
        return _unpacked(folder, remote.unpack)
    return all((folder / f.name).is_file() for f in remote.files)


def _unpacked(folder: Path, unpack: tuple[str, tuple[str, ...]]) -> bool:
    inner, members = unpack
    return all((folder / inner / m).is_file() for m in members if m.endswith((".bin", ".txt")))


def download_dataset(
    name: str = "fashion-mnist",
    *,
    base_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[DownloadProgress], None] | None = None,
    control: Cancellable | None = None,
    checksums: Mapping[str, tuple[str, str | None, int]] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``name`` into the cache and return its folder (ready for ``load_dataset``).

    Args:
        name: a key of :data:`REMOTE_DATASETS` (``"fashion-mnist"``, ``"cifar10"``).
        base_url: fetch the files from ``base_url + file name`` instead of the official mirrors
            (a local mirror; the tests use a server on 127.0.0.1).
        cache_dir: the cache folder instead of the default.
        progress: called with a :class:`DownloadProgress` at most every 64 KiB read.
        control: checked between chunks (:mod:`engine.progress`'s protocol); when
            ``control.cancelled`` turns true the download stops with :class:`DownloadCancelled`.
        checksums: ``{file name: (md5, sha256 or None, size in bytes)}`` replacing the pinned
            values (tests).
        timeout: seconds to wait for the server on each connect/read.

    Files already present with the right checksums (an archive: already unpacked) are not
    downloaded again. Raises :class:`DiskError` when the cache folder cannot take the files.
    """
    remote = _remote(name)
    _check_mirror(base_url)
    folder = dataset_cache_dir(name, cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the cache folder {folder}: {exc.strerror or exc}; "
            "set CONVSCOPE_CACHE to a writable folder"
        ) from exc
    urls = (base_url,) if base_url else remote.base_urls
    for index, rfile in enumerate(remote.files):
        md5, sha256, size = (checksums or {}).get(rfile.name, (rfile.md5, rfile.sha256, rfile.size))
        target = folder / rfile.name
        if remote.unpack is not None and is_downloaded(remote.key, cache_dir):
            if progress:
                progress(DownloadProgress(rfile.name, index, len(remote.files), 0, 0, True))
            continue
        if target.is_file() and _matches(_digests(target), md5, sha256):
            if progress:
                size = target.stat().st_size
                progress(DownloadProgress(rfile.name, index, len(remote.files), size, size, True))
            if remote.unpack is not None:  # verified earlier, its unpacking interrupted
                _unpack(target, folder, remote.unpack, control)
            continue
        failures: list[DatasetError] = []
        for base in urls:
            url = base if base.endswith("/") else base + "/"
            url = urllib.parse.urljoin(url, rfile.name)
            try:
                _fetch(
                    url,
                    target,
                    (md5, sha256, size),
                    timeout,
                    (index, len(remote.files)),
                    progress,
                    control,
                )
                break
            except (DownloadCancelled, DiskError):
                raise
            except DatasetError as exc:
                failures.append(exc)
        else:
            raise _every_mirror_failed(f"{remote.title} file {rfile.name}", failures)
        if remote.unpack is not None:
            _unpack(target, folder, remote.unpack, control)
    return folder


def _every_mirror_failed(what: str, failures: list[DatasetError]) -> DatasetError:
    """One line for the failures of every mirror, with advice that fits them: when each server
    answered (an HTTP error, a web page, another file) the network works."""
    reasons = "; ".join(" ".join(str(exc).split()) for exc in failures)  # urllib's can wrap
    if all(isinstance(exc, _ServerAnswered) for exc in failures):
        advice = "Try again later, or from another mirror."
    else:
        advice = "Check the network connection and try again."
    return DatasetError(f"could not download {what}: {reasons}. {advice}")


def _remote(name: str) -> RemoteDataset:
    key = name.strip().lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    try:
        return REMOTE_DATASETS[key]
    except KeyError:
        raise DatasetError(
            f"unknown dataset to download: {name!r}; available: {', '.join(REMOTE_DATASETS)}"
        ) from None


def _check_mirror(base_url: str | None) -> None:
    if base_url and urllib.parse.urlsplit(base_url).scheme.lower() not in ("http", "https"):
        raise DatasetError(
            f"{base_url}: only http and https downloads are supported; give the mirror as "
            "http(s)://HOST/FOLDER/"
        )


def _matches(got: tuple[str, str], md5: str, sha256: str | None) -> bool:
    return got[0] == md5.lower() and (sha256 is None or got[1] == sha256.lower())


def _disk_error(folder: Path, exc: OSError, what: str) -> DiskError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the disk is full"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "the folder is not writable"
    else:
        reason = exc.strerror or str(exc)
    return DiskError(
        f"cannot write {what} into {folder}: {reason}; free some space or set "
        "CONVSCOPE_CACHE (or --cache-dir) to another folder"
    )


def _write(out, chunk: bytes) -> None:
    out.write(chunk)


def _check_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise DiskError(
            f"not enough free space in {folder}: the download needs {needed / 1e6:,.0f} MB, "
            f"{free / 1e6:,.0f} MB are free; free some space or set CONVSCOPE_CACHE "
            "(or --cache-dir) to another folder"
        )


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _fetch(
    url: str,
    target: Path,
    pinned: tuple[str, str | None, int],
    timeout: float,
    place: tuple[int, int],
    progress: Callable[[DownloadProgress], None] | None,
    control: Cancellable | None,
) -> None:
    """Stream ``url`` into a temp file beside ``target``, never more than the pinned size;
    rename it only if both digests match. ``pinned`` is (md5, sha256 or None, size),
    ``place`` the file's (index, count) for the progress events."""
    import http.client  # here, not at start-up: the HTTP and e-mail modules cost ~70 ms
    import urllib.error
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DatasetError(f"{url}: only http and https downloads are supported")
    md5_hex, sha256_hex, size = pinned
    index, count = place
    _check_space(target.parent, size)
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}-", suffix=".part"
        )
    except OSError as exc:
        raise _disk_error(target.parent, exc, target.name) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    _refuse_foreign(url, response.headers, target.name, size)
                    done = 0
                    while True:
                        if control is not None and control.cancelled:
                            raise DownloadCancelled(f"download of {target.name} cancelled")
                        chunk = response.read(min(_CHUNK, size + 1 - done))
                        if not chunk:
                            break
                        if done + len(chunk) > size:
                            raise _ServerAnswered(
                                f"{url}: the server sent more than the {size:,} bytes of "
                                f"{target.name}; not the official file, stopped"
                            )
                        try:
                            _write(out, chunk)
                        except OSError as exc:
                            raise _disk_error(target.parent, exc, target.name) from exc
                        md5.update(chunk)
                        sha.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(DownloadProgress(target.name, index, count, done, size))
            except urllib.error.HTTPError as exc:
                raise _ServerAnswered(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except urllib.error.URLError as exc:
                raise DatasetError(f"{url}: {exc.reason}") from exc
            except (http.client.HTTPException, OSError) as exc:  # dropped, reset, timed out
                what = type(exc).__name__ if not str(exc) else str(exc)
                raise DatasetError(f"{url}: the connection failed ({what})") from exc
            if done != size:
                raise DatasetError(f"{url}: got {done:,} of {size:,} bytes (connection dropped)")
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise _disk_error(target.parent, exc, target.name) from exc
        _check_digests(url, (md5.hexdigest(), sha.hexdigest()), md5_hex, sha256_hex)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    if progress:
        progress(DownloadProgress(target.name, index, count, size, size, verified=True))


def _refuse_foreign(url: str, headers: Message, name: str, size: int) -> None:
    """Refuse an answer that cannot be the file ``name`` of ``size`` bytes, before its body."""
    if headers.get_content_type() == "text/html":
        raise _ServerAnswered(
            f"{url}: the server sent a web page instead of {name} "
            "(a network's sign-in page, or the file has moved)"
        )
    total = int(headers.get("Content-Length") or 0)
    if total and total != size:
        raise _ServerAnswered(
            f"{url}: the server announces {total:,} bytes but {name} is {size:,} bytes; "
            "not the official file"
        )


def _check_digests(url: str, got: tuple[str, str], md5_hex: str, sha256_hex: str | None) -> None:
    if not _matches(got, md5_hex, sha256_hex):
        raise _ServerAnswered(
            f"{url}: checksum mismatch (MD5 {got[0]}, expected {md5_hex}); the file was deleted"
        )


def _unpack(
    archive: Path,
    folder: Path,
    unpack: tuple[str, tuple[str, ...]],
    control: Cancellable | None,
) -> None:
    """Unpack the expected members of a verified ``.tar.gz`` into ``folder/inner``, atomically
    (a temporary folder renamed into place), then delete the archive.

    Another download of the same dataset may run at the same time (a second ``convscope
    download``): when it has unpacked first (and deleted the archive), its folder is kept."""
    import tarfile

    inner, wanted = unpack
    final = folder / inner
    try:
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{inner}-"))
    except OSError as exc:
        raise _disk_error(folder, exc, inner) from exc
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    if control is not None and control.cancelled:
                        raise DownloadCancelled(f"unpacking {archive.name} cancelled")
                    parent, _, base = member.name.rpartition("/")
                    if parent != inner or base not in wanted or not member.isreg():
                        continue  # links, folders, anything unexpected: never extracted
                    if member.size > _MAX_MEMBER:
                        raise DatasetError(f"{archive.name}: {member.name} is too large")
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    with source, open(tmp / base, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
        except OSError as exc:
            if isinstance(exc, (tarfile.TarError, EOFError)) or exc.errno is None:
                raise DatasetError(f"{archive.name}: damaged archive ({exc})") from exc
            if isinstance(exc, FileNotFoundError) and _unpacked(folder, unpack):
                return  # the other download unpacked it and deleted the archive
            raise _disk_error(folder, exc, inner) from exc
        except (tarfile.TarError, EOFError) as exc:
            raise DatasetError(f"{archive.name}: damaged archive ({exc})") from exc
        missing = [m for m in wanted if m.endswith((".bin", ".txt")) and not (tmp / m).is_file()]
        if missing:
            raise DatasetError(
                f"{archive.name}: the archive lacks {inner}/{', '.join(missing)}; "
                "it is not the official CIFAR-10 binary archive"
            )
        if not _unpacked(folder, unpack):  # else the other download's folder is kept
            if final.exists():  # an incomplete folder (a file deleted by hand)
                shutil.rmtree(final)
            try:
                os.replace(tmp, final)
            except OSError as exc:
                if not _unpacked(folder, unpack):
                    raise _disk_error(folder, exc, inner) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    archive.unlink(missing_ok=True)  # the other download may have deleted it
