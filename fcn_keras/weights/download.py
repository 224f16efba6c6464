"""Checksum-verified downloads into the Keras cache, never half-written.

A file is streamed to a temporary name beside its final place, its size is checked
against Content-Length and its digest against the published checksum, and only then is
it renamed into the cache (`$KERAS_HOME/models/`, the folder keras.applications uses).
A dropped connection, a wrong checksum or an interrupted process leaves no file under
the final name. Offline, the error names the URL, the expected file and where to put it.
"""

import hashlib
import os
import re
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHUNK = 1 << 20
HASH_ALGORITHMS = ("md5", "sha1", "sha256")


class DownloadError(OSError):
    """A download that failed or could not be verified; nothing was written to the cache."""


class ChecksumError(DownloadError):
    """The file's digest is not the published one."""


def keras_home():
    """The Keras cache root: `$KERAS_HOME` (read now, not at import), else ~/.keras (or
    /tmp/.keras when the home folder is not writable), as Keras itself does."""
    env = os.environ.get("KERAS_HOME")
    if env:
        return os.path.expanduser(env)
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = tempfile.gettempdir()
    return os.path.join(base, ".keras")


def models_dir():
    return os.path.join(keras_home(), "models")


def converted_dir():
    return os.path.join(models_dir(), "fcn_keras")


def parse_hash(file_hash, algorithm=None):
    """Returns (algorithm, lowercase hex). Accepts "sha1:<hex>" or bare hex (algorithm from
    its length: 32 md5, 40 sha1, 64 sha256)."""
    if file_hash is None:
        return None, None
    text = str(file_hash).strip().lower()
    if ":" in text:
        algorithm, text = text.split(":", 1)
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise ValueError(f"A checksum must be hexadecimal, optionally prefixed 'sha1:'. Received: {file_hash!r}")
    if algorithm is None:
        algorithm = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(text))
        if algorithm is None:
            raise ValueError(
                f"Cannot tell the algorithm of a {len(text)}-digit checksum (md5 has 32, sha1 40, "
                f"sha256 64); prefix it, e.g. 'sha256:...'. Received: {file_hash!r}")
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"Unsupported checksum algorithm {algorithm!r}; expected one of {HASH_ALGORITHMS}")
    return algorithm, text


def file_digest(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Progress:
    """A one-line byte counter on stderr (quiet when not a terminal unless forced)."""

    def __init__(self, label, total, enabled):
        self.label, self.total, self.enabled = label, total, enabled
        self.done, self.last = 0, 0.0

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.2 or (self.total and self.done >= self.total)):
            self.last = now
            mb = self.done / 1e6
            if self.total:
                frac = self.done / self.total
                bar = "#" * int(30 * frac)
                sys.stderr.write(f"\r{self.label} [{bar:<30}] {mb:,.1f}/{self.total / 1e6:,.1f} MB")
            else:
                sys.stderr.write(f"\r{self.label} {mb:,.1f} MB")
            sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _offline_message(url, target, reason):
    return (
        f"Could not download {os.path.basename(target)} from {url}: {reason}. "
        f"Without network access, fetch that URL elsewhere and put the file at {target} "
        f"(the cache folder is $KERAS_HOME/models, here {os.path.dirname(target)}), or pass the "
        "file's own path as weights=...")


def download(urls, fname, file_hash=None, *, require_hash=True, cache_subdir=None,
             progress=None, timeout=60.0):
    """Returns the cached path of `fname`, downloading it from the first URL that works.

    urls: one URL or a sequence tried in order (a checksum protects every mirror).
    file_hash: the published digest ("sha1:<hex>" or bare hex, see `parse_hash`). A file
    already in the cache is used when its digest matches (or when no digest is known: a
    file the user put there); a mismatching cached file is downloaded again.
    require_hash: refuse to download when `file_hash` is None (the download could not be
    verified); the error says where to put a file obtained otherwise.
    progress: show a byte counter on stderr (default: when stderr is a terminal).
    """
    if isinstance(urls, str):
        urls = (urls,)
    urls = tuple(urls)
    algorithm, expected = parse_hash(file_hash)
    folder = cache_subdir or models_dir()
    target = os.path.join(folder, fname)
    if os.path.exists(target):
        if expected is None:
            return target
        actual = file_digest(target, algorithm)
        if actual == expected:
            return target
        sys.stderr.write(
            f"fcn_keras: the cached {target} has {algorithm} {actual}, not the published {expected}; "
            "downloading it again.\n")
    if expected is None and require_hash:
        raise DownloadError(
            f"No checksum is published for {fname}, so fcn_keras will not trust a download of it. "
            f"Download it yourself from {urls[0]}, check it, and put it at {target} (or pass its "
            "path as weights=...); or download it with an explicit hash: "
            f"fcn_keras.weights.fetch(name, file_hash='sha256:<hex>').")
    os.makedirs(folder, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    errors = []
    for url in urls:
        try:
            return _download_one(url, target, algorithm, expected, progress, timeout)
        except ChecksumError:
            raise
        except DownloadError as e:
            errors.append(str(e))
    raise DownloadError(" | ".join(errors))


def _download_one(url, target, algorithm, expected, progress, timeout):
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(target) + ".", suffix=".part", dir=folder)
    digest = hashlib.new(algorithm) if algorithm else None
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fcn_keras"})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise DownloadError(f"Download of {url} failed: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, socket.timeout, OSError) as e:
            raise DownloadError(_offline_message(url, target, getattr(e, "reason", e))) from e
        with response, os.fdopen(fd, "wb") as out:
            fd = None
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _Progress(f"Downloading {os.path.basename(target)}", total, progress)
            try:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    bar.update(len(chunk))
            except Exception as e:  # a reset, a timeout, http.client.IncompleteRead
                raise DownloadError(
                    f"Download of {url} was cut off after {received} bytes ({e!r}); nothing was "
                    f"written to {target}.") from e
            finally:
                bar.close()
        if total is not None and received != total:
            raise DownloadError(
                f"Download of {url} was cut off: received {received} of {total} bytes; nothing was "
                f"written to {target}.")
        if digest is not None and digest.hexdigest() != expected:
            raise ChecksumError(
                f"Checksum mismatch for {url}: expected {algorithm} {expected}, got {digest.hexdigest()} "
                f"({received} bytes). The file was discarded; nothing was written to {target}.")
        os.replace(tmp, target)
        tmp = None
        return target
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
