"""Downloads against a real HTTP server on 127.0.0.1 (never the internet), into a private KERAS_HOME."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from fcn_keras._io import STALE_AFTER_S, lock_name, remove_stale_temps
import fcn_keras.cli
from fcn_keras.weights import download as dl


def _serve(server, name, data):
    (server.root / name).write_bytes(data)
    return server.url(name)


def _cache_listing(keras_home):
    folder = keras_home / "models"
    return sorted(os.listdir(folder)) if folder.exists() else []


PAYLOAD = os.urandom(3 * dl.CHUNK + 12345)  # several chunks, not a multiple of the chunk size
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()


def test_good_file_lands_in_cache(http_server, keras_home):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    path = dl.download(url, "net.caffemodel", f"sha1:{SHA1}", progress=True)
    assert path == str(keras_home / "models" / "net.caffemodel")
    assert open(path, "rb").read() == PAYLOAD
    assert _cache_listing(keras_home) == ["net.caffemodel"]  # no temporary file left


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_other_published_algorithms(http_server, keras_home, algorithm):
    url = _serve(http_server, "f.bin", PAYLOAD)
    digest = hashlib.new(algorithm, PAYLOAD).hexdigest()
    assert open(dl.download(url, "f.bin", digest), "rb").read() == PAYLOAD  # algorithm from the length


def test_wrong_checksum_leaves_nothing(http_server, keras_home):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    with pytest.raises(dl.ChecksumError, match=r"Expected sha1 0{40}\. Received: " + SHA1):
        dl.download(url, "net.caffemodel", "sha1:" + "0" * 40)
    assert _cache_listing(keras_home) == []


def test_dropped_connection_leaves_nothing(http_server, keras_home):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    http_server.drop("net.caffemodel", after_bytes=len(PAYLOAD) // 2)
    with pytest.raises(dl.DownloadError, match="cut off"):
        dl.download(url, "net.caffemodel", f"sha1:{SHA1}")
    assert _cache_listing(keras_home) == []


def test_second_call_uses_cache_without_server(http_server, keras_home):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    first = dl.download(url, "net.caffemodel", f"sha1:{SHA1}")
    http_server.stop()
    assert dl.download(url, "net.caffemodel", f"sha1:{SHA1}") == first


def test_offline_error_names_url_file_and_place(keras_home, closed_port):
    url = f"http://127.0.0.1:{closed_port}/fcn8s-heavy-pascal.caffemodel"
    with pytest.raises(dl.DownloadError) as info:
        dl.download(url, "fcn8s-heavy-pascal.caffemodel", f"sha1:{SHA1}", timeout=5)
    message = str(info.value)
    assert url in message
    assert os.path.join(str(keras_home), "models", "fcn8s-heavy-pascal.caffemodel") in message
    assert "weights=" in message
    assert _cache_listing(keras_home) == []


def test_offline_message_is_a_few_short_lines_naming_each_url_once(keras_home, closed_port, http_server):
    """Two mirrors (https and http) unreachable: each URL once, the file, where it goes; the
    Python message says weights=, the command line's --weights."""
    name = "fcn8s-heavy-pascal.caffemodel"
    urls = (f"https://127.0.0.1:{closed_port}/{name}", f"http://127.0.0.1:{closed_port}/{name}")
    with pytest.raises(dl.DownloadError) as info:
        dl.download(urls, name, f"sha1:{SHA1}", timeout=5)
    message, cli = str(info.value), fcn_keras.cli.in_flags(info.value)
    target = os.path.join(str(keras_home), "models", name)
    for text in (message, cli):
        lines = text.splitlines()
        assert 4 <= len(lines) <= 8 and max(len(t) for t in lines if target not in t) < 120, text
        assert all(text.count(u) == 1 for u in urls), text
        assert text.count(target) == 1 and name in lines[0]
    assert "weights=" in message and "--weights" not in message
    assert "--weights" in cli and "weights=" not in cli
    # a mirror that answers 404 and one that is unreachable: one line each, with its reason
    mixed = (http_server.url(name), urls[1])
    with pytest.raises(dl.DownloadError) as info:
        dl.download(mixed, name, f"sha1:{SHA1}", timeout=5)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and "HTTP 404" in lines[0] and urls[1] in lines[1], lines
    assert _cache_listing(keras_home) == []


def test_no_published_checksum_is_refused_unless_a_hash_is_given(http_server, keras_home):
    url = _serve(http_server, "fcn16s.caffemodel", PAYLOAD)
    with pytest.raises(dl.DownloadError, match="No checksum is published") as info:
        dl.download(url, "fcn16s.caffemodel", None)
    assert str(keras_home / "models" / "fcn16s.caffemodel") in str(info.value)
    assert _cache_listing(keras_home) == []
    # With a hash the user trusts, it downloads; a file put in the cache by hand is used as is.
    assert open(dl.download(url, "fcn16s.caffemodel", SHA1), "rb").read() == PAYLOAD
    http_server.stop()
    assert dl.download(url, "fcn16s.caffemodel", None).endswith("fcn16s.caffemodel")


def test_corrupt_cached_file_is_downloaded_again(http_server, keras_home):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    (keras_home / "models").mkdir()
    (keras_home / "models" / "net.caffemodel").write_bytes(PAYLOAD[:100])
    path = dl.download(url, "net.caffemodel", f"sha1:{SHA1}")
    assert open(path, "rb").read() == PAYLOAD


def test_mirrors_are_tried_in_order(http_server, keras_home, closed_port):
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    dead = f"http://127.0.0.1:{closed_port}/net.caffemodel"
    assert open(dl.download((dead, url), "net.caffemodel", SHA1, timeout=5), "rb").read() == PAYLOAD


def test_bad_hash_arguments():
    with pytest.raises(ValueError, match="hexadecimal"):
        dl.parse_hash("sha1:xyz")
    with pytest.raises(ValueError, match="algorithm"):
        dl.parse_hash("abcd")
    assert dl.parse_hash("SHA1:" + "A" * 40) == ("sha1", "a" * 40)


def _temps(keras_home):
    return [p for p in _cache_listing(keras_home) if p.startswith(".tmp-")]


def test_killed_download_leaves_a_temp_that_the_next_download_removes(http_server, keras_home, tmp_path):
    """A real process killed (SIGKILL) mid-download leaves its temporary file; the next
    download of the same file removes it (its process is gone) and lands the file."""
    url = _serve(http_server, "net.caffemodel", PAYLOAD)
    http_server.stall("net.caffemodel", after_bytes=dl.CHUNK + 100)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = f"from fcn_keras.weights import download as dl; dl.download({url!r}, 'net.caffemodel', {SHA1!r})"
    env = dict(os.environ, KERAS_HOME=str(keras_home), PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    log = tmp_path / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not any(os.path.getsize(keras_home / "models" / t) >= dl.CHUNK for t in _temps(keras_home)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    left = _temps(keras_home)
    assert len(left) == 1 and left[0].startswith(f".tmp-{proc.pid}-") and left[0].endswith("-net.caffemodel")
    assert "net.caffemodel" not in _cache_listing(keras_home)
    idle = time.time() - STALE_AFTER_S - 60  # unlocked and idle long enough: stale
    os.utime(keras_home / "models" / left[0], (idle, idle))

    http_server.handler.stall_after.clear()
    path = dl.download(url, "net.caffemodel", f"sha1:{SHA1}")
    assert open(path, "rb").read() == PAYLOAD
    assert _cache_listing(keras_home) == ["net.caffemodel"]


_HOLD = """
import fcntl, os, sys, time
fds = [os.open(p, os.O_RDWR | os.O_CREAT) for p in sys.argv[1:]]
for fd in fds:
    fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def hold_locks(*temps):
    """Another process (as in another container sharing the folder) holding the locks of
    temporary files or folders `temps`, as `fcn_keras._io.held` does; returns the process,
    to be killed."""
    locks = [lock_name(t) for t in temps]
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, *locks], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_stale_temp_rules(tmp_path):
    """A temp is stale when unlocked and idle for STALE_AFTER_S, whatever pid its name gives:
    a live download of another container (its pid unknown here) stays, even when idle long; a
    fresh unlocked one stays (a writer whose lock this machine may not see); other files'
    temps are never touched."""
    target = tmp_path / "net.caffemodel"
    live_elsewhere = tmp_path / ".tmp-4194000-0123abcd-net.caffemodel"  # no such pid here
    live_idle = tmp_path / f".tmp-{os.getpid()}-0123abce-net.caffemodel"
    fresh = tmp_path / ".tmp-4194001-0123abcf-net.caffemodel"
    dead = tmp_path / f".tmp-{os.getpid()}-89abcdef-net.caffemodel"
    other_file = tmp_path / ".tmp-999999999-0123abcd-other.caffemodel"
    for p in (live_elsewhere, live_idle, fresh, dead, other_file):
        p.write_bytes(b"x")
    idle = time.time() - STALE_AFTER_S - 60
    for p in (live_idle, dead, other_file):
        os.utime(p, (idle, idle))
    holder = hold_locks(live_elsewhere, live_idle)
    try:
        assert remove_stale_temps(target) == [str(dead)]
        assert live_elsewhere.exists() and live_idle.exists() and fresh.exists() and other_file.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale_temps(target) == [str(live_idle)]  # its process is gone now
