"""``convscope download`` against a local HTTP server (never the internet)."""

from __future__ import annotations

import http.server
import signal
import threading

import pytest

from desktop.cli import main
from tests.engine.test_download import Server, payloads  # noqa: F401 (a fixture)


@pytest.fixture
def mirror():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's name
            body = b"not the real Fashion-MNIST"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_tampered_mirror_fails_with_one_line_and_leaves_nothing(mirror, tmp_path, capsys):
    rc = main(["download", "fashion-mnist", "--mirror", mirror, "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    assert "not the official file" in err  # its size is not the pinned one
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unknown_dataset_is_refused():
    with pytest.raises(SystemExit) as exc:
        main(["download", "imagenet"])
    assert exc.value.code != 0


@pytest.fixture
def small_fashion(monkeypatch, payloads):  # noqa: F811 (the imported fixture)
    """Fashion-MNIST pinned to small test files, served on 127.0.0.1: ``(server, pin)``;
    ``pin(name, md5)`` changes one file's pinned MD5."""
    import dataclasses
    import hashlib

    from engine import download

    def pin(name: str | None = None, md5: str | None = None) -> None:
        files = tuple(
            download.RemoteFile(
                n,
                md5 if n == name and md5 else hashlib.md5(data).hexdigest(),
                hashlib.sha256(data).hexdigest(),
                len(data),
            )
            for n, data in payloads.items()
        )
        remote = dataclasses.replace(download.FASHION_MNIST, files=files)
        monkeypatch.setitem(download.REMOTE_DATASETS, "fashion-mnist", remote)

    pin()
    srv = Server(payloads)
    yield srv, pin
    srv.close()


def test_a_file_is_called_verified_only_once_it_is(small_fashion, tmp_path, capsys):
    server, pin = small_fashion
    pin("train-labels-idx1-ubyte.gz", "0" * 32)
    rc = main(["download", "fashion-mnist", "--mirror", server.url, "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "checksum mismatch" in err and "Traceback" not in err
    assert "train-images-idx3-ubyte.gz: 0.2 MB, verified" in err
    assert "train-labels-idx1-ubyte.gz" in err
    assert "train-labels-idx1-ubyte.gz: 0.0 MB, verified" not in err  # it was not


def test_download_then_the_app_uses_it(small_fashion, tmp_path, monkeypatch, capsys):
    import json

    server, _pin = small_fashion
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path))  # the user's cache, as the app finds it
    assert main(["download", "fashion-mnist", "--mirror", server.url, "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc == {"dataset": "fashion-mnist", "folder": str(tmp_path / "datasets/fashion-mnist")}
    assert err.count("MB, verified") == 4 and "Traceback" not in err

    requests = len(server.requests)
    assert main(["download", "fashion-mnist", "--mirror", server.url]) == 0
    out, err = capsys.readouterr()
    assert len(server.requests) == requests  # nothing fetched again
    assert err.count("already in the cache") == 4
    assert "Fashion-MNIST is ready: convscope train --dataset fashion-mnist" in out

    assert main(["evaluate", "shipped", "--dataset", "fashion-mnist", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"] == "Fashion-MNIST"


def test_progress_is_shown_while_a_file_downloads(small_fashion, tmp_path, capsys):
    # a 162 MB archive on a slow line printed nothing for minutes: a bar now shows the transfer
    # (on a pipe: the first chunk of each file at once, then a line every few seconds)
    server, _pin = small_fashion
    rc = main(["download", "fashion-mnist", "--mirror", server.url, "--cache-dir", str(tmp_path)])
    lines = capsys.readouterr().err.splitlines()
    assert rc == 0
    started = [
        i for i, line in enumerate(lines) if "train-images-idx3-ubyte.gz: 0.1 of 0.2 MB" in line
    ]
    done = lines.index("[1/4] train-images-idx3-ubyte.gz: 0.2 MB, verified")
    assert started and started[0] < done
    assert lines[started[0]].startswith("[#") and "[1/4]" in lines[started[0]]


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl+C handler, as in a terminal: a test run that a shell started in the
    background inherits SIGINT ignored, and the server's signal would never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_download_says_so_and_leaves_no_half_file(
    small_fashion, tmp_path, capsys, python_ctrl_c
):
    server, _pin = small_fashion
    server.behaviour["train-images-idx3-ubyte.gz"] = "ctrl-c"
    rc = main(["download", "fashion-mnist", "--mirror", server.url, "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == "convscope download: interrupted"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no .part left
    server.behaviour.clear()
    server.requests.clear()
    rc = main(["download", "fashion-mnist", "--mirror", server.url, "--cache-dir", str(tmp_path)])
    assert rc == 0 and len(server.requests) == 4  # the next run starts each file afresh
