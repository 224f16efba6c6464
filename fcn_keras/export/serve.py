"""A local web server for a web export (`fcn-keras serve DIR`), standard library only.

Browsers refuse the page from file:// (an ES module and a model read from disk are
cross-origin); this server sends each file with its MIME type and the cross-origin isolation
headers (COOP `same-origin`, COEP `require-corp`) that WebAssembly threads need. It listens on
127.0.0.1 only: the page and the photos stay on this machine.

What it refuses, since any web page open in the same browser can send it requests:

- a Host header other than 127.0.0.1 or localhost (with or without the port): 403, so a page
  using DNS rebinding (its own name resolved to 127.0.0.1) cannot read the folder;
- anything outside the folder: `..` (as the standard library does), symbolic links leading out,
  a NUL byte in the path (400), dotfiles and dot-folders, and folder listings (404);
- connections idle for `TIMEOUT_S` seconds (a half-sent request does not hold a thread).

Every response carries `X-Content-Type-Options: nosniff` and a Content-Security-Policy
(`csp`): scripts from the folder itself plus the page's own inline scripts by hash, WebAssembly
compilation (`'wasm-unsafe-eval'`, which ONNX Runtime Web needs), workers from the folder;
no plug-ins, frames, forms or <base>.

    from fcn_keras.export.serve import make_server
    server = make_server("fcn8s_web", port=0)     # port 0: any free port
    print(server.url); server.serve_forever()
"""

import base64
import functools
import hashlib
import http
import http.server
import os
import re
import urllib.parse

from fcn_keras import _io

DEFAULT_PORT = 8000
HOST = "127.0.0.1"
TIMEOUT_S = 20  # seconds a connection may stay idle (or half-sent) before it is closed
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".data": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)


def csp(html=None):
    """The Content-Security-Policy sent with every file.

    Args:
        html: the bytes of an HTML page: its inline scripts (those without `src`) are allowed
            by their SHA-256 hash, nothing else inline.

    Returns:
        the header's value.
    """
    hashes = []
    for attrs, body in _INLINE_SCRIPT.findall(html or b""):
        if b"src=" not in attrs.lower():
            hashes.append(f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'")
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self' 'wasm-unsafe-eval'"] + hashes),
        "worker-src 'self' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder with `MIME_TYPES`, `ISOLATION_HEADERS`, nosniff, `csp` and no caching;
    refuses foreign Host headers, paths leaving the folder, dotfiles and listings."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    quiet = False
    timeout = TIMEOUT_S  # socket timeout of each connection (StreamRequestHandler)
    _policy = None

    def do_GET(self):
        if self._allowed():
            super().do_GET()

    def do_HEAD(self):
        if self._allowed():
            super().do_HEAD()

    def _allowed(self):
        """Checks the Host header and the path; sends the error and returns False if refused."""
        host = (self.headers.get("Host") or "").strip().lower()
        name, _, port = host.rpartition(":") if not host.startswith("[") and ":" in host else (host, "", "")
        if name not in ALLOWED_HOSTS or (port and port != str(self.server.server_address[1])):
            self.send_error(http.HTTPStatus.FORBIDDEN, "Host must be 127.0.0.1 or localhost")
            return False
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if "\0" in path:
            self.send_error(http.HTTPStatus.BAD_REQUEST, "NUL byte in the path")
            return False
        if any(part.startswith(".") for part in path.split("/") if part):
            self.send_error(http.HTTPStatus.NOT_FOUND)  # dotfiles; ".." too
            return False
        real = os.path.realpath(self.translate_path(self.path))
        root = os.path.realpath(self.directory)
        if real != root and not real.startswith(root + os.sep):  # a symbolic link leading out
            self.send_error(http.HTTPStatus.NOT_FOUND)
            return False
        return True

    def list_directory(self, path):
        self.send_error(http.HTTPStatus.NOT_FOUND)  # no listings: only index.html is shown
        return None

    def send_head(self):
        path = self.translate_path(self.path)
        self._policy = None
        if path.endswith(".html") or os.path.isdir(path):
            page = os.path.join(path, "index.html") if os.path.isdir(path) else path
            try:
                with open(page, "rb") as f:
                    self._policy = csp(f.read())
            except OSError:
                pass
        return super().send_head()

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", self._policy or csp())
        super().end_headers()

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    @property
    def url(self):
        """http://127.0.0.1:PORT/ (the folder's index.html)."""
        return f"http://{HOST}:{self.server_address[1]}/"


def make_server(directory, port=DEFAULT_PORT, quiet=False, timeout=TIMEOUT_S):
    """A `Server` (a ThreadingHTTPServer) for `directory` on 127.0.0.1:`port`, not yet serving.

    Args:
        directory: the folder to serve (a web export: it must hold index.html).
        port: TCP port, 0..65535 (0: a free one; `server.url` tells which).
        quiet: no request log on stderr.
        timeout: seconds a connection may stay idle (or send half a request) before it is closed.

    Raises:
        FileNotFoundError: `directory` is not a folder.
        ValueError: it holds no index.html, or `port` is out of range.
        OSError: the port is taken (the message names it).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Expected a folder to serve (a web export). Received: {directory!r}, "
                                "which is not a folder")
    if not os.path.isfile(os.path.join(directory, "index.html")):
        raise ValueError(f"Expected a web export folder holding index.html (export(model, DIR, format='web')). "
                         f"Received: {directory!r}, which has no index.html")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an int in 0..65535. Received: port={port!r}")
    handler = type("QuietHandler" if quiet else "Handler", (Handler,), {"quiet": quiet, "timeout": timeout})
    try:
        return Server((HOST, port), functools.partial(handler, directory=os.path.abspath(directory)))
    except OSError as e:
        raise _io.naming_arguments(OSError(e.errno, f"cannot listen on {HOST}:{port} ({e.strerror}); choose "
                                                "another `port` (0: any free one)"), "port") from None


def serve(directory, port=DEFAULT_PORT, quiet=False):
    """Serves `directory` until interrupted (Ctrl-C), printing the URL first."""
    server = make_server(directory, port, quiet=quiet)
    print(f"serving {os.path.abspath(directory)} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
