"""A local web server for a web export (`fcn-keras serve DIR`), standard library only.

Browsers refuse the page from file:// (an ES module and a model read from disk are
cross-origin); this server sends each file with its MIME type and the cross-origin isolation
headers (COOP `same-origin`, COEP `require-corp`) that WebAssembly threads need. It listens on
127.0.0.1 only: the page and the photos stay on this machine.

    from fcn_keras.export.serve import make_server
    server = make_server("fcn8s_web", port=0)     # port 0: any free port
    print(server.url); server.serve_forever()
"""

import functools
import http.server
import os

DEFAULT_PORT = 8000
HOST = "127.0.0.1"
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


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder with `MIME_TYPES`, `ISOLATION_HEADERS` and no caching."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    quiet = False

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
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


def make_server(directory, port=DEFAULT_PORT, quiet=False):
    """A `Server` (a ThreadingHTTPServer) for `directory` on 127.0.0.1:`port`, not yet serving.

    Args:
        directory: the folder to serve (a web export: it must hold index.html).
        port: TCP port, 0..65535 (0: a free one; `server.url` tells which).
        quiet: no request log on stderr.

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
        raise ValueError(f"Expected a web export folder holding index.html (fcn-keras export MODEL --format "
                         f"web -o DIR). Received: {directory!r}, which has no index.html")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an int in 0..65535. Received: port={port!r}")
    handler = type("QuietHandler" if quiet else "Handler", (Handler,), {"quiet": quiet})
    try:
        return Server((HOST, port), functools.partial(handler, directory=os.path.abspath(directory)))
    except OSError as e:
        raise OSError(e.errno, f"cannot listen on {HOST}:{port} ({e.strerror}); choose another --port "
                               "(0: any free one)") from None


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
