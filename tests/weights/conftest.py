"""Fixtures for the weights tests: a real HTTP server on 127.0.0.1 and test images."""

import http.server
import os
import threading

import numpy as np
import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    root = None
    drop_after = {}  # file name -> bytes sent before the connection is cut
    stall_after = {}  # file name -> bytes sent before the server stops sending (until stopped)
    stopping = None  # a threading.Event set when the server stops

    def do_GET(self):  # noqa: N802 (http.server API)
        name = self.path.lstrip("/")
        path = os.path.join(self.root, name)
        if not os.path.isfile(path):
            self.send_error(404, "not found")
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        stall = self.stall_after.get(name)
        if stall is not None:
            self.wfile.write(data[:stall])
            self.wfile.flush()
            self.stopping.wait(60)
            return
        cut = self.drop_after.get(name)
        if cut is not None:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class LocalServer:
    """Serves files from `root` on http://127.0.0.1:<port>/<name>, in a thread."""

    def __init__(self, root):
        self.stopping = threading.Event()
        handler = type("Handler", (_Handler,), {"root": str(root), "drop_after": {}, "stall_after": {},
                                                "stopping": self.stopping})
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.root = root
        self.requests = 0
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def drop(self, name, after_bytes):
        self.handler.drop_after[name] = after_bytes

    def stall(self, name, after_bytes):
        """Send `after_bytes` of `name`, then nothing more until the server stops."""
        self.handler.stall_after[name] = after_bytes

    def stop(self):
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    server = LocalServer(root)
    yield server
    server.stop()


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port with nothing listening (connections are refused)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def rgb():
    rng = np.random.default_rng(123)

    def make(h, w):
        return rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)

    return make
