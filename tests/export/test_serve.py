"""`fcn-keras serve` against hostile requests, on a real server on 127.0.0.1: what a web page in
the same browser (DNS rebinding included) or a local program could ask it for."""

import base64
import hashlib
import http.client
import os
import socket
import threading

import pytest

from fcn_keras.export.serve import make_server

SCRIPT = b"document.body.dataset.ready = '1';"


@pytest.fixture
def site(tmp_path):
    """A served folder with an inline script, a sub-folder, dotfiles and links leading out;
    yields (folder, port)."""
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_bytes(b"<!doctype html><body><script type=\"module\">" + SCRIPT + b"</script>")
    (folder / "app.js").write_text("export const x = 1;")
    (folder / "sub" / "data.json").write_text("{}")
    (folder / ".env").write_text("TOKEN=secret")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]")
    (tmp_path / "secret.txt").write_text("outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "b.txt").write_text("outside too")
    os.symlink(tmp_path / "secret.txt", folder / "link.txt")
    os.symlink(tmp_path / "outside", folder / "linked")
    os.symlink(folder / "app.js", folder / "inside.js")  # a link within the folder is fine
    server = make_server(folder, port=0, quiet=True, timeout=1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port, path, host=None):
    """(status, headers, body) of GET `path` with Host `host` (default 127.0.0.1:port)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_host=True)
    c.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.headers, body


def test_the_page_and_its_files_are_served(site):
    _, port = site
    for path, host in [("/", None), ("/index.html", f"localhost:{port}"), ("/app.js", "localhost"),
                       ("/sub/data.json", "LOCALHOST"), ("/inside.js", None)]:
        assert get(port, path, host)[0] == 200, path


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "127.0.0.1:1", "", "[::1]:{port}"])
def test_foreign_host_headers_are_refused(site, host):
    """DNS rebinding: a page of evil.example, its name now resolving to 127.0.0.1."""
    _, port = site
    status, _, body = get(port, "/index.html", host.format(port=port))
    assert status == 403 and SCRIPT not in body


@pytest.mark.parametrize("path", ["/link.txt", "/linked/b.txt", "/.env", "/.git/config", "/sub/",
                                  "/linked/", "/../secret.txt", "/%2e%2e/secret.txt"])
def test_nothing_outside_the_page_is_served(site, path):
    status, _, body = get(site[1], path)
    assert status == 404 and b"outside" not in body and b"TOKEN" not in body and b"data.json" not in body


@pytest.mark.parametrize("path", [b"/index.html%00.js", b"/a\x00b"])
def test_a_nul_byte_is_a_bad_request(site, path):
    """Quoted or raw (http.client refuses to send the raw one: a socket does)."""
    with socket.create_connection(("127.0.0.1", site[1]), timeout=30) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.0 400 ")


def test_headers(site):
    _, port = site
    _, headers, _ = get(port, "/")
    policy = headers["Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(SCRIPT).digest()).decode()
    assert f"'sha256-{digest}'" in policy and "'wasm-unsafe-eval'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    for path in ("/", "/app.js"):
        _, headers, _ = get(port, path)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_half_sent_request_is_dropped(site):
    """The server closes a connection that stops mid-request (timeout=1 here); the client
    waits up to 60 s, so a server without a timeout fails the test instead of hanging it."""
    _, port = site
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: unfinished
        try:
            assert s.recv(1024) == b""  # closed by the server
        except socket.timeout:
            pytest.fail("the server kept a half-sent request open for 60 s")
    assert get(port, "/")[0] == 200
