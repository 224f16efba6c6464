"""Downloads from a hostile or slow server on 127.0.0.1: an overall deadline, a size cap, and a
download whose temporary file another process removes (a cache shared between containers)."""

import hashlib
import http.server
import os
import threading
import time

import pytest

from fcn_keras._io import DownloadError
from fcn_keras.weights import download as dl

BODY = os.urandom(4096)
SHA1 = hashlib.sha1(BODY).hexdigest()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """/trickle: a byte every 0.2 s; /endless: no Content-Length, never ends; /liar: announces
    more than it is; /raced: half the body, then another process removes our temporary file and
    finishes the same download; /vanished: the same without finishing it."""

    protocol_version = "HTTP/1.0"
    cache = None  # the cache folder of /raced

    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        if self.path == "/endless":
            self.end_headers()
            block = b"\0" * 65536
            try:
                while True:
                    self.wfile.write(block)
            except OSError:  # the client hung up
                return
        self.send_header("Content-Length", str(10 ** 10 if self.path == "/liar" else len(BODY)))
        self.end_headers()
        if self.path == "/trickle":
            try:
                for i in range(len(BODY)):
                    self.wfile.write(BODY[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                return
        elif self.path in ("/raced", "/vanished"):
            self.wfile.write(BODY[:2048])
            self.wfile.flush()
            time.sleep(0.3)
            for name in os.listdir(self.cache):  # the other process: removes our temp as stale
                if name.startswith(".tmp-"):
                    os.remove(os.path.join(self.cache, name))
            if self.path == "/raced":
                with open(os.path.join(self.cache, "net.caffemodel"), "wb") as f:  # and lands the file
                    f.write(BODY)
            self.wfile.write(BODY[2048:])

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile(tmp_path):
    handler = type("H", (_Hostile,), {"cache": str(tmp_path / "cache")})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "cache"
    server.shutdown()
    server.server_close()


def test_a_trickling_server_meets_the_deadline(hostile):
    """A byte every 0.2 s never trips the 3 s read timeout; the 2 s deadline stops it (the
    whole body would take 14 minutes)."""
    url, cache = hostile
    with pytest.raises(DownloadError, match=r"trickle.*not complete after the deadline of 2 s"):
        dl.download(url + "/trickle", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache),
                    timeout=3, deadline=2)
    assert not os.listdir(cache)


def test_an_endless_body_stops_at_the_cap(hostile):
    url, cache = hostile
    with pytest.raises(DownloadError, match=r"endless stopped: more than 1000000 bytes"):
        dl.download(url + "/endless", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache),
                    max_bytes=10 ** 6)
    assert not os.listdir(cache)


def test_a_published_size_is_enforced(hostile):
    url, cache = hostile
    with pytest.raises(DownloadError, match=r"liar refused: the server announces 10000000000 bytes, the "
                                            r"published size is 4096"):
        dl.download(url + "/liar", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache), size=len(BODY))
    with pytest.raises(DownloadError, match=r"endless stopped: more than 4096 bytes \(the published size\)"):
        dl.download(url + "/endless", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache), size=len(BODY))
    with pytest.raises(DownloadError, match=r"liar refused: .* more than the limit of 2147483648"):
        dl.download(url + "/liar", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache))
    assert not os.listdir(cache)


def test_a_removed_temp_and_a_finished_target_is_success(hostile):
    """Another process removed our temporary file and put the same, verified file in place:
    the rename fails, and the target is checked again (no raw FileNotFoundError)."""
    url, cache = hostile
    path = dl.download(url + "/raced", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache))
    assert open(path, "rb").read() == BODY and os.listdir(cache) == ["net.caffemodel"]


def test_a_removed_temp_without_a_target_is_a_download_error(hostile):
    url, cache = hostile
    with pytest.raises(DownloadError, match=r"vanished could not be put in place at .*net\.caffemodel: "
                                            r"No such file"):
        dl.download(url + "/vanished", "net.caffemodel", f"sha1:{SHA1}", cache_subdir=str(cache))
    assert not os.listdir(cache)
