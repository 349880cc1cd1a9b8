"""``convscope download`` against a local HTTP server (never the internet)."""

from __future__ import annotations

import http.server
import threading

import pytest

from desktop.cli import main


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
