"""Checksum-verified downloads into the Keras cache, never half-written.

A file is streamed to a temporary name beside its final place (`fcn_keras._io.atomic_write`),
its size is checked against Content-Length and its digest against the published checksum,
and only then is it renamed into the cache (`$KERAS_HOME/models/`, the folder
keras.applications uses). A dropped connection, a wrong checksum or an interrupted process
leaves no file under the final name; the temporary file of a killed process is removed by
a later download of the same file once unlocked and idle (`fcn_keras._io.remove_stale_temps`:
safe with a cache shared between containers or machines). Offline, the error names the URL,
the expected file and where to put it.

A server cannot keep a download going for ever nor fill the disk: each download has an
overall `deadline` (besides the per-read `timeout`) and a size cap (the published `size` when
the zoo states one, else `max_bytes`), checked against Content-Length before anything is
written and while the body streams.
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

from fcn_keras._io import DownloadError, atomic_write, naming_arguments
from fcn_keras._progress import bar

CHUNK = 1 << 20
DEADLINE_S = 3600  # one download, start to end (500 MB at 140 kB/s)
MAX_BYTES = 2 << 30  # 2 GiB: the largest file accepted when no size is published
HASH_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


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
    """`$KERAS_HOME/models`: where downloaded files are cached (as keras.applications does)."""
    return os.path.join(keras_home(), "models")


def converted_dir():
    """`$KERAS_HOME/models/fcn_keras`: where converted weights are cached."""
    return os.path.join(models_dir(), "fcn_keras")


def parse_hash(file_hash, algorithm=None):
    """Splits a checksum into (algorithm, lowercase hex); (None, None) for None.

    Args:
        file_hash: "sha1:<hex>" (or md5 / sha256 / sha512), or bare hex whose algorithm follows
            from its length: 32 md5, 40 sha1, 64 sha256, 128 sha512.
        algorithm: the algorithm of bare hex, when known.

    Raises:
        ValueError: not hexadecimal, an unknown length or algorithm.
    """
    if file_hash is None:
        return None, None
    text = str(file_hash).strip().lower()
    if ":" in text:
        algorithm, text = text.split(":", 1)
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise ValueError(f"A checksum must be hexadecimal, optionally prefixed 'sha1:'. Received: file_hash={file_hash!r}")
    if algorithm is None:
        algorithm = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}.get(len(text))
        if algorithm is None:
            raise ValueError(
                f"Cannot tell the algorithm of a {len(text)}-digit checksum (md5 has 32, sha1 40, "
                f"sha256 64, sha512 128); prefix it, e.g. 'sha256:...'. Received: file_hash={file_hash!r}")
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"Unsupported checksum algorithm. Expected one of {HASH_ALGORITHMS}. "
                         f"Received: algorithm={algorithm!r}")
    return algorithm, text


def file_digest(path, algorithm):
    """The hex digest of the file at `path` with `algorithm` ("md5", "sha1", "sha256")."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Unreachable(DownloadError):
    """One URL that could not be reached (no network, DNS, refused, timed out)."""

    def __init__(self, url, reason):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, str(reason)


def _offline_error(failures, target):
    """One DownloadError for every URL of `target` failing: the URLs once, the file, where to put it.

    Args:
        failures: [(url, reason text)] in the order tried.
        target: the cache path the file belongs at.

    Returns:
        A `DownloadError` whose message speaks of `weights=PATH` (`naming_arguments`: the
        command line says `--weights PATH`).
    """
    reasons = {r for _, r in failures}
    if len(reasons) == 1:
        head = [f"Could not download {os.path.basename(target)}: {failures[0][1]}.", "Tried:"]
        head += [f"  {u}" for u, _ in failures]
    else:
        head = [f"Could not download {os.path.basename(target)}:"] + [f"  {u}: {r}" for u, r in failures]
    lines = head + [
        "Without network access, download it elsewhere from one of those URLs and put it at",
        f"  {target}",
        "(the cache folder is $KERAS_HOME/models), or pass the file's own path as "]
    text = "\n".join(lines)
    return naming_arguments(DownloadError(text + "weights=PATH."), "weights")


def download(urls, fname, file_hash=None, *, require_hash=True, cache_subdir=None,
             progress=None, timeout=60.0, deadline=DEADLINE_S, size=None, max_bytes=MAX_BYTES):
    """Returns the cached path of `fname`, downloading it from the first URL that works.

    Args:
        urls: one URL or a sequence tried in order (a checksum protects every mirror).
        fname: the file's name in the cache folder.
        file_hash: the published digest ("sha1:<hex>" or bare hex, see `parse_hash`). A
            file already in the cache is used when its digest matches (or when no digest is
            known: a file the user put there); a mismatching cached file is downloaded again.
        require_hash: refuse to download when `file_hash` is None (the download could not
            be verified); the error says where to put a file obtained otherwise.
        cache_subdir: the cache folder (default `$KERAS_HOME/models`).
        progress: draw a progress bar in bytes on stderr (None: when stderr is a terminal).
        timeout: seconds to wait for the server to connect or send.
        deadline: seconds one URL's download may take in all (a server trickling a byte now
            and then is cut off).
        size: the published size in bytes, when known: any other Content-Length is refused
            before writing, and a longer body is cut off.
        max_bytes: the size cap when `size` is None.

    Returns:
        The path of the verified file in the cache.

    Raises:
        DownloadError: every URL failed (the message names each and where to put the file).
        ChecksumError: the file downloaded is not the published one (nothing is kept).
    """
    if isinstance(urls, str):
        urls = (urls,)
    urls = tuple(urls)
    limits = _Limits(deadline, size, max_bytes)
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
        raise naming_arguments(DownloadError(
            f"No checksum is published for {fname}, so fcn_keras will not trust a download of it. "
            f"Download it yourself from {urls[0]}, check it, and put it at {target} (or pass its "
            "path as weights=PATH); or download it with an explicit hash: "
            f"fcn_keras.weights.fetch(name, file_hash='sha256:<hex>')."), "weights")
    errors = []
    for url in urls:
        try:
            return _download_one(url, target, algorithm, expected, progress, timeout, limits)
        except ChecksumError:
            raise
        except DownloadError as e:
            errors.append(e)
    if all(isinstance(e, _Unreachable) for e in errors):
        raise _offline_error([(e.url, e.reason) for e in errors], target)
    raise DownloadError("\n".join(str(e) for e in errors))


class _Limits:
    """What one URL's download may take: `deadline` seconds, and `size` bytes exactly (when
    published) or at most `max_bytes`."""

    def __init__(self, deadline, size, max_bytes):
        for name, value in (("deadline", deadline), ("size", size), ("max_bytes", max_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or value <= 0):
                raise ValueError(f"`{name}` must be a positive number or None. Received: {name}={value!r}")
        self.deadline, self.size, self.max_bytes = deadline, size, max_bytes

    @property
    def cap(self):
        return self.size if self.size is not None else self.max_bytes

    def check_length(self, url, total):
        """Refuses a Content-Length that is not the published size or exceeds the cap."""
        if total is None:
            return
        if self.size is not None and total != self.size:
            raise DownloadError(f"Download of {url} refused: the server announces {total} bytes, the "
                                f"published size is {self.size}; nothing was written.")
        if self.cap is not None and total > self.cap:
            raise DownloadError(f"Download of {url} refused: the server announces {total} bytes, more than "
                                f"the limit of {self.cap}; nothing was written.")


def _download_one(url, target, algorithm, expected, progress, timeout, limits):
    """Streams `url` into `target` through `atomic_write`: size and digest checked first."""
    request = urllib.request.Request(url, headers={"User-Agent": "fcn_keras"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"Download of {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, socket.timeout, OSError) as e:
        raise _Unreachable(url, getattr(e, "reason", e)) from e

    def write(tmp):
        with response, open(tmp, "wb") as out:
            _stream(response, out, url, target, algorithm, expected, progress, limits)

    try:
        return atomic_write(target, write)
    except DownloadError:
        raise
    except OSError as e:  # the rename failed: the temporary file was removed meanwhile, ...
        if os.path.isfile(target) and (expected is None or file_digest(target, algorithm) == expected):
            return target  # ... e.g. by a process that completed the same download
        raise DownloadError(f"Download of {url} could not be put in place at {target}: "
                            f"{e.strerror or e}; nothing was written there.") from e


def _stream(response, out, url, target, algorithm, expected, progress, limits):
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    limits.check_length(url, total)
    digest = hashlib.new(algorithm) if algorithm else None
    received = 0
    stop = time.monotonic() + limits.deadline if limits.deadline else None
    read = getattr(response, "read1", response.read)  # read1: what has arrived, not a full chunk
    with bar(total, f"Downloading {os.path.basename(target)}", unit="B", enabled=progress,
             unit_scale=True, unit_divisor=1024) as progress_bar:
        try:
            for chunk in iter(lambda: read(CHUNK), b""):
                if limits.cap is not None and received + len(chunk) > limits.cap:
                    raise DownloadError(
                        f"Download of {url} stopped: more than {limits.cap} bytes "
                        f"({'the published size' if limits.size else 'the limit'}); nothing was "
                        f"written to {target}.")
                if stop is not None and time.monotonic() > stop:
                    raise DownloadError(
                        f"Download of {url} stopped: not complete after the deadline of "
                        f"{limits.deadline:g} s ({received} bytes); nothing was written to {target}.")
                out.write(chunk)
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
                progress_bar.update(len(chunk))
        except DownloadError:
            raise
        except Exception as e:  # a reset, a timeout, http.client.IncompleteRead
            raise DownloadError(
                f"Download of {url} was cut off after {received} bytes ({e!r}); nothing was "
                f"written to {target}.") from e
    if total is not None and received != total:
        raise DownloadError(
            f"Download of {url} was cut off: received {received} of {total} bytes; nothing was "
            f"written to {target}.")
    if digest is not None and digest.hexdigest() != expected:
        raise ChecksumError(
            f"Checksum mismatch for {url}. Expected {algorithm} {expected}. Received: {digest.hexdigest()} "
            f"({received} bytes). The file was discarded; nothing was written to {target}.")
