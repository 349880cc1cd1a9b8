"""engine.download against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import signal
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import FASHION_MNIST_CLASSES, load_dataset
from engine.download import (
    REMOTE_DATASETS,
    DownloadCancelled,
    DownloadProgress,
    cache_root,
    dataset_cache_dir,
    download_dataset,
    is_downloaded,
)
from engine.errors import DatasetError

NAMES = [f.name for f in REMOTE_DATASETS["fashion-mnist"].files]


def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    x_tr = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)  # big enough for several chunks
    x_te = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    return {
        "train-images-idx3-ubyte.gz": _idx_gz(x_tr),
        "train-labels-idx1-ubyte.gz": _idx_gz(np.arange(300) % 10),
        "t10k-images-idx3-ubyte.gz": _idx_gz(x_te),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(np.arange(20) % 10),
    }


@pytest.fixture(scope="module")
def sums(payloads) -> dict[str, tuple[str, str, int]]:
    return {
        name: (hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))
        for name, data in payloads.items()
    }


class Server:
    """Serves ``files``; ``behaviour[name]`` may be "404", "drop", "hang", "longer" (the file
    then 1 MiB more, without a Content-Length), "lie" (a Content-Length of 1 TB), "html" (a
    web page, as a network's sign-in page sends for any address), "loop"
    (a redirect to itself) or "ctrl-c" (a third of the file, then a SIGINT to the main thread,
    as a Ctrl+C in a terminal, and no more until the server closes)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # http.server calls it by this name
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                how = server.behaviour.get(name)
                data = server.files.get(name)
                if how == "hang":
                    server.release.wait(5)
                    return
                if how == "loop":  # a redirect to itself: urllib gives up with a long reason
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if how == "html":
                    page = b"<html><body>Sign in to the hotel network</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if data is None or how == "404":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                if how == "longer":  # no length: the body ends when the connection closes
                    self.end_headers()
                    self.wfile.write(data + bytes(1 << 20))
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(10**12 if how == "lie" else len(data)))
                self.end_headers()
                if how == "ctrl-c":
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                    server.release.wait(5)
                    return
                if how == "drop":
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server(payloads):
    srv = Server(payloads)
    yield srv
    srv.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_then_cached(server, sums, tmp_path):
    events: list[DownloadProgress] = []
    folder = download_dataset(
        "fashion-mnist",
        base_url=server.url,
        cache_dir=tmp_path,
        checksums=sums,
        progress=events.append,
    )
    assert folder == tmp_path / "datasets" / "fashion-mnist"
    assert _leftovers(folder) == sorted(NAMES)  # and no temporary files
    assert is_downloaded("fashion-mnist", tmp_path)
    last = [e for e in events if e.file == "train-images-idx3-ubyte.gz"][-1]
    assert last.done == last.total == len(server.files["train-images-idx3-ubyte.gz"])
    assert {e.index for e in events} == {0, 1, 2, 3} and all(e.count == 4 for e in events)

    ds = load_dataset("fashion-mnist", cache_dir=tmp_path)
    assert ds.name == "Fashion-MNIST" and ds.classes == FASHION_MNIST_CLASSES
    assert ds.train_images.shape == (300, 28, 28) and ds.test_labels.shape == (20,)

    # a second call verifies what is there and downloads nothing
    n_requests = len(server.requests)
    events.clear()
    download_dataset(
        "fashion-mnist",
        base_url=server.url,
        cache_dir=tmp_path,
        checksums=sums,
        progress=events.append,
    )
    assert len(server.requests) == n_requests
    assert all(e.skipped for e in events) and len(events) == 4


def test_checksum_mismatch_leaves_nothing_behind(server, sums, tmp_path):
    wrong = dict(sums)
    size = sums["train-labels-idx1-ubyte.gz"][2]
    wrong["train-labels-idx1-ubyte.gz"] = ("0" * 32, "0" * 64, size)  # the right size
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        download_dataset("fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=wrong)
    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    # the server answered: the advice is another mirror, not the user's network connection
    assert str(info.value).endswith("Try again later, or from another mirror.")
    assert "network connection" not in str(info.value)
    folder = dataset_cache_dir("fashion-mnist", tmp_path)
    assert _leftovers(folder) == ["train-images-idx3-ubyte.gz"]  # verified before the failure
    assert not is_downloaded("fashion-mnist", tmp_path)


def test_pinned_checksums_refuse_foreign_files(server, tmp_path):
    # without injected values the real Fashion-MNIST sizes and digests apply; our files differ
    with pytest.raises(DatasetError, match="not the official file"):
        download_dataset("fashion-mnist", base_url=server.url, cache_dir=tmp_path)
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_a_replaced_cached_file_is_downloaded_again(server, sums, tmp_path):
    folder = download_dataset(
        "fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=sums
    )
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    server.requests.clear()
    download_dataset("fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=sums)
    assert server.requests == ["t10k-labels-idx1-ubyte.gz"]
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == server.files[
        "t10k-labels-idx1-ubyte.gz"
    ]


@pytest.mark.parametrize(
    ("how", "message", "advice"),
    [
        ("404", "HTTP 404", "Try again later, or from another mirror."),
        ("drop", "connection", "Check the network connection and try again."),
        ("loop", "HTTP 302", "Try again later, or from another mirror."),
        (
            "html",
            "sent a web page instead of train-images-idx3-ubyte.gz",
            "Try again later, or from another mirror.",
        ),
    ],
)
def test_server_errors_leave_nothing_behind(server, sums, tmp_path, how, message, advice):
    server.behaviour["train-images-idx3-ubyte.gz"] = how
    with pytest.raises(DatasetError, match=message) as info:
        download_dataset("fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=sums)
    text = str(info.value)
    assert "train-images-idx3-ubyte.gz" in text and text.endswith(advice)
    assert "\n" not in text  # one line (urllib's redirect-loop reason has three)
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def _refused(server, sums, tmp_path, how: str, match: str):
    """The first file served ``how``: the DatasetError matching ``match`` (its text) and the
    progress events sent before it."""
    server.behaviour["train-images-idx3-ubyte.gz"] = how
    events: list[DownloadProgress] = []
    with pytest.raises(DatasetError, match=match) as info:
        download_dataset(
            base_url=server.url, cache_dir=tmp_path, checksums=sums, progress=events.append
        )
    return str(info.value), events


def test_a_file_larger_than_its_pinned_size_is_cut_off(server, sums, tmp_path):
    # a wrong mirror or a hostile server streaming without end must not fill the disk
    name = "train-images-idx3-ubyte.gz"
    text, events = _refused(server, sums, tmp_path, "longer", rf"{name}: the server sent more than")
    assert f"{sums[name][2]:,} bytes" in text
    assert max(e.done for e in events) <= sums[name][2]  # stopped at the pinned size
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_a_content_length_other_than_the_pinned_size_is_refused_before_reading(
    server, sums, tmp_path
):
    text, events = _refused(server, sums, tmp_path, "lie", r"announces 1,000,000,000,000 bytes")
    assert "free space" not in text  # the server is at fault, not the disk
    assert events == []
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_timeout(server, sums, tmp_path):
    server.behaviour["train-images-idx3-ubyte.gz"] = "hang"
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz"):
        download_dataset(
            "fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=sums, timeout=0.3
        )
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_cancel_leaves_nothing_behind(server, sums, tmp_path):
    class Control:  # engine.progress's protocol: cancelled after two checks
        checks = 0

        @property
        def cancelled(self) -> bool:
            self.checks += 1
            return self.checks > 2  # stop during the first file's second chunk

    with pytest.raises(DownloadCancelled):
        download_dataset(
            "fashion-mnist", base_url=server.url, cache_dir=tmp_path, checksums=sums,
            control=Control(),
        )  # fmt: skip
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("CONVSCOPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "convscope"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "convscope"


def _no_home(kind: str):
    """Path.home where HOME is unset and the user id has no password entry (a container run
    under an arbitrary uid): Python 3.12+ raises, 3.11 answers a relative '~'."""

    def home(cls=None):
        if kind == "raises":
            raise RuntimeError("Could not determine home directory.")
        return Path("~")

    return classmethod(home)


@pytest.mark.parametrize("kind", ["raises", "relative"])
def test_with_no_home_folder_the_cache_and_rescue_files_go_to_the_temporary_folder(
    monkeypatch, tmp_path, kind
):
    # convscope train (any dataset: the error listing the choices asks the cache), download
    # and the rescue of a model whose disk was full ended in a RuntimeError traceback, or (3.11)
    # wrote into a folder named "~" in the current one
    import tempfile

    from desktop.cli import main
    from engine.atomic import rescue_folders

    for name in ("CONVSCOPE_CACHE", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", _no_home(kind))
    root = cache_root()
    assert root.is_absolute() and root.parent == Path(tempfile.gettempdir())
    assert rescue_folders() == [Path(tempfile.gettempdir())]
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "no-such-set"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_bad_names_and_urls(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        download_dataset("cifar-10", cache_dir=tmp_path)
    for mirror in ("file:///etc/", "ftp://example.org/", "example.org/data"):
        with pytest.raises(DatasetError, match="only http") as info:
            download_dataset("fashion-mnist", base_url=mirror, cache_dir=tmp_path)
        assert str(info.value).startswith(mirror) and "network" not in str(info.value)
    assert not (tmp_path / "datasets").exists()  # refused before anything is made


def test_pinned_checksums_are_well_formed():
    for f in REMOTE_DATASETS["fashion-mnist"].files:
        assert len(f.md5) == 32 and len(f.sha256) == 64
        int(f.md5, 16), int(f.sha256, 16)
    assert REMOTE_DATASETS["fashion-mnist"].files[0].md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    # the sizes the official servers send (bytes); the download stops past them
    assert [f.size for f in REMOTE_DATASETS["fashion-mnist"].files] == [
        26421880, 29515, 4422102, 5148,
    ]  # fmt: skip
    assert REMOTE_DATASETS["cifar10"].files[0].size == 170052171


# --- CIFAR-10: an archive, unpacked after the checksum ----------------------------------------


def _cifar_archive(extra: dict[str, bytes] | None = None, drop: str | None = None) -> bytes:
    import io
    import tarfile

    from engine.cifar import RECORD

    rng = np.random.default_rng(3)
    members = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = rng.integers(0, 256, (4, RECORD), dtype=np.uint8)
        rec[:, 0] = [2, 3, 5, 8]
        members[f"cifar-10-batches-bin/{name}"] = rec.tobytes()
    members["cifar-10-batches-bin/batches.meta.txt"] = (
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    )
    members.update(extra or {})
    members.pop(drop or "", None)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return buf.getvalue()


def _serve_cifar(archive: bytes):
    srv = Server({"cifar-10-binary.tar.gz": archive})
    md5 = hashlib.md5(archive).hexdigest()
    return srv, {"cifar-10-binary.tar.gz": (md5, None, len(archive))}


def test_cifar10_download_unpacks_the_binary_batches(tmp_path):
    srv, sums = _serve_cifar(_cifar_archive({"cifar-10-batches-bin/../../evil.txt": b"x"}))
    try:
        folder = download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
        assert is_downloaded("cifar10", tmp_path)
        assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-bin"]
        inner = sorted(p.name for p in (folder / "cifar-10-batches-bin").iterdir())
        assert inner == [
            "batches.meta.txt",
            *(f"data_batch_{i}.bin" for i in range(1, 6)),
            "test_batch.bin",
        ]  # no link, nothing outside, the archive deleted
        assert not list(tmp_path.rglob("evil.txt"))
        ds = load_dataset("cifar10", cache_dir=tmp_path, classes="bird,cat,dog,ship")
        assert ds.name == "CIFAR-10" and len(ds.train_labels) == 20 and len(ds.test_labels) == 4
        srv.requests.clear()
        download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
        assert srv.requests == []  # already unpacked: nothing fetched again
    finally:
        srv.close()


def test_cifar10_pinned_md5_and_an_archive_without_batches(tmp_path):
    srv, sums = _serve_cifar(_cifar_archive(drop="cifar-10-batches-bin/test_batch.bin"))
    try:
        with pytest.raises(DatasetError, match="not the official file"):  # the pinned size
            download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path)
        with pytest.raises(DatasetError, match=r"lacks cifar-10-batches-bin/test_batch\.bin"):
            download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
        assert not is_downloaded("cifar10", tmp_path)
        assert _leftovers(dataset_cache_dir("cifar10", tmp_path)) == ["cifar-10-binary.tar.gz"]
    finally:
        srv.close()
    assert REMOTE_DATASETS["cifar10"].files[0].md5 == "c32a1d4ab5d03f1284b67883e8d87530"


def test_a_verified_archive_left_by_an_interrupted_unpacking_is_unpacked_next_time(
    tmp_path, monkeypatch
):
    # Ctrl+C (or a full disk) while unpacking keeps the verified archive; the next run used to
    # skip it as "already in the cache" and report success with nothing unpacked
    import engine.download as download

    srv, sums = _serve_cifar(_cifar_archive())

    def interrupted(*args):
        raise KeyboardInterrupt

    try:
        monkeypatch.setattr(download, "_unpack", interrupted)
        with pytest.raises(KeyboardInterrupt):
            download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
        monkeypatch.undo()
        folder = dataset_cache_dir("cifar10", tmp_path)
        assert _leftovers(folder) == ["cifar-10-binary.tar.gz"] and srv.requests != []
        srv.requests.clear()
        download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
    finally:
        srv.close()
    assert srv.requests == []  # the verified archive was used, not fetched again
    assert is_downloaded("cifar10", tmp_path)
    assert _leftovers(folder) == ["cifar-10-batches-bin"]
    assert len(load_dataset("cifar10", cache_dir=tmp_path).test_labels) == 4


@pytest.mark.parametrize("moment", ["before its unpacking", "before its rename"])
def test_two_cifar10_downloads_at_once_both_succeed(tmp_path, monkeypatch, moment):
    # a second `convscope download cifar10` finishing first (at the moment named) used to make
    # this one fail: the archive it had verified gone, the folder taken, a raw OSError
    import os

    import engine.download as download

    srv, sums = _serve_cifar(_cifar_archive())
    other: list[Path] = []

    def the_other_download() -> None:
        if not other:
            other.append(tmp_path)  # once, not again from inside itself
            download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)

    if moment == "before its unpacking":
        unpack = download._unpack

        def hooked_unpack(*args):
            the_other_download()
            return unpack(*args)

        monkeypatch.setattr(download, "_unpack", hooked_unpack)
    else:
        replace = os.replace

        def hooked_replace(src, dst):
            if Path(dst).name == "cifar-10-batches-bin":
                the_other_download()
            return replace(src, dst)

        monkeypatch.setattr(download.os, "replace", hooked_replace)
    try:
        folder = download_dataset("cifar10", base_url=srv.url, cache_dir=tmp_path, checksums=sums)
    finally:
        srv.close()
    assert other and is_downloaded("cifar10", tmp_path)
    assert _leftovers(folder) == ["cifar-10-batches-bin"]  # no archive, no temporary folder
    ds = load_dataset("cifar10", cache_dir=tmp_path)
    assert len(ds.train_labels) == 20 and len(ds.test_labels) == 4


def test_a_full_disk_is_a_disk_problem_not_a_network_failure(server, sums, tmp_path, monkeypatch):
    import errno

    import engine.download as download
    from engine.download import DiskError

    def full(out, chunk):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "_write", full)
    with pytest.raises(DiskError) as info:
        download_dataset(base_url=server.url, cache_dir=tmp_path, checksums=sums)
    text = str(info.value)
    assert "the disk is full" in text and "network" not in text and "connection" not in text
    assert len(server.requests) == 1  # not retried, not blamed on the mirror
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    monkeypatch.undo()
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(DiskError, match="not enough free space"):
        download_dataset(base_url=server.url, cache_dir=tmp_path, checksums=sums)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_real_full_disk_through_dev_full(server, sums, tmp_path, monkeypatch):
    # the temporary file's writes go to /dev/full: the kernel's ENOSPC through Python's buffered
    # writer (its close flushes again), not a patched write
    import os

    import engine.download as download
    from engine.download import DiskError

    def on_dev_full(dir, prefix, suffix):
        path = Path(dir) / f"{prefix}full{suffix}"
        path.write_bytes(b"")
        return os.open("/dev/full", os.O_WRONLY), str(path)

    monkeypatch.setattr(download.tempfile, "mkstemp", on_dev_full)
    with pytest.raises(DiskError, match="the disk is full"):
        download_dataset(base_url=server.url, cache_dir=tmp_path, checksums=sums)
    assert _leftovers(dataset_cache_dir("fashion-mnist", tmp_path)) == []


def test_an_unwritable_cache_says_where_and_what_to_do(server, sums, tmp_path, monkeypatch):
    import errno

    import engine.download as download
    from engine.download import DiskError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DatasetError, match=r"cannot create the cache folder .*CONVSCOPE_CACHE"):
        download_dataset(base_url=server.url, cache_dir=tmp_path / "file", checksums=sums)

    def read_only(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(download.tempfile, "mkstemp", read_only)  # as for a user, not root
    with pytest.raises(DiskError, match="the folder is not writable") as info:
        download_dataset(base_url=server.url, cache_dir=tmp_path / "cache", checksums=sums)
    assert str(tmp_path / "cache") in str(info.value) and server.requests == []


def test_a_damaged_download_says_how_to_repair_it(server, sums, tmp_path):
    # a cached file damaged later (a disk error, an edit by hand): the loader's advice to
    # "choose the MNIST-style '-ubyte' files" did not fit a download the user never chose
    folder = download_dataset(base_url=server.url, cache_dir=tmp_path, checksums=sums)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>damaged</html>")
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", cache_dir=tmp_path)
    text = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in text and "\n" not in text
    assert "run 'convscope download fashion-mnist' again" in text
    download_dataset(base_url=server.url, cache_dir=tmp_path, checksums=sums)  # as advised
    assert load_dataset("fashion-mnist", cache_dir=tmp_path).test_labels.shape == (20,)
