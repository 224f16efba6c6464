"""Writing files so that nothing half-written is ever left under the final name, the errors
about files that every part words the same (an existing output, a download that cannot be made),
and the protobuf varint that hand-streamed protobuf files are written with."""

import contextlib
import errno
import json
import os
import re
import shutil
import time
import uuid

import numpy as np

STALE_AFTER_S = 600  # an unlocked temporary file or folder idle this long (seconds) is stale
# ".tmp-<pid>-<random>-<base>": atomic_write's files and staging folders; ".old-...": a folder
# move_into_place set aside; ".<base>.tmp-<random>": staging folders of earlier versions
_TEMP = re.compile(r"\.(?:tmp|old)-(\d+)-[0-9a-f]{8}-(.+)")
_LEGACY_STAGING = re.compile(r"\.(.+)\.tmp-[a-z0-9_]{8}")
_LOCK = re.compile(r"\.lock-(\d+)-[0-9a-f]{8}-(.+)")  # the lock file of a ".tmp-" one (`held`)


def naming_arguments(err, *names):
    """`err`, marked as naming the keyword arguments `names` in its message as `name=VALUE`.

    The library speaks Python (`pass overwrite=True`, `pass weights=PATH`); a command line
    that has these arguments as flags puts its flags' names in their place
    (`fcn_keras.cli.in_flags`: `--overwrite`, `--weights PATH`).

    Args:
        err: the exception; its message says `name=True` or `name=VALUE`.
        names: the keyword arguments it names.

    Returns:
        `err`, with the attribute `arguments` = `names`.
    """
    err.arguments = tuple(names)
    return err


def exists_error(path, error=FileExistsError, note=""):
    """The error for an output `path` that exists and is replaced only with overwrite=True.

    Every writer words it the same: "'<path>' exists; pass overwrite=True to replace it"
    (`naming_arguments`: the command line says `--overwrite`).

    Args:
        path: the existing file or folder.
        error: the exception class (FileExistsError; a part's own ValueError subclass, e.g.
            `fcn_keras.export.ExportError`).
        note: words after "exists" (" and is not empty").

    Returns:
        The exception, to raise.
    """
    return naming_arguments(error(f"{os.fspath(path)!r} exists{note}; pass overwrite=True to replace it"),
                            "overwrite")


class DownloadError(OSError):
    """A download that failed or could not be verified; nothing was written to the cache.

    Raised for pretrained weights (`fcn_keras.weights.DownloadError`) and TFDS data sets
    (`fcn_keras.data.DownloadError`), the same class: a runtime failure (`fcn-keras` exits 1).

    A message that names a keyword argument (`weights=PATH`) is marked with
    `naming_arguments`, so that the command line says its flag instead.

    Attributes:
        cli_message: earlier callers' message as the command line words it, or None (new
            callers use `naming_arguments` instead).
    """

    def __init__(self, message, cli_message=None):
        super().__init__(message)
        self.cli_message = cli_message

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def atomic_write(path, write):
    """Calls `write(tmp)` with a temporary path beside `path`, then renames it to `path`.

    The temporary name is ".tmp-<pid>-<random>-<base name>": it ends with `path`'s own base
    name, so writers that read the suffix (`.keras`, `.weights.h5`, `.png`) see the right
    one. While `write` runs, its lock file (`lock_name`) is locked (`held`), so that other
    processes, on this machine or sharing the folder, see it is alive. A failing (or
    interrupted) `write` leaves nothing; the temporary files of killed processes are removed
    by a later `atomic_write` of the same path (`remove_stale_temps`).

    Args:
        path: the final file path (its folder is created when missing).
        write: a callable that writes the complete file at the path it is given.

    Returns:
        `path` (as a string).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temps(path)
    tmp = _temp_name(path)
    try:
        with held(tmp):
            write(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def to_json(obj):
    """`obj` as indented JSON text, ending in a newline (NumPy scalars and arrays as plain
    numbers and lists)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    return json.dumps(obj, indent=2, default=default) + "\n"


def save_json(path, obj):
    """Writes `obj` as JSON (`to_json`) to `path` atomically (`atomic_write`); returns `path`."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(to_json(obj))

    return atomic_write(path, write)


def _temp_name(path):
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")


def lock_name(temp):
    """The lock file of temporary file or folder `temp` (".tmp-X" -> ".lock-X", beside it).

    A separate file, since the writer may lock the temporary file itself (HDF5 does)."""
    folder, name = os.path.split(os.fspath(temp))
    return os.path.join(folder, ".lock-" + name.split("-", 1)[1])


@contextlib.contextmanager
def staging_folder(path):
    """A new hidden folder beside `path` to build it in, locked while in use, then removed.

    Named ".tmp-<pid>-<random>-<base name>" like `atomic_write`'s files, so the folders of
    killed processes (an export killed with kill -9 leaves hundreds of megabytes) are removed
    by a later `staging_folder` or `atomic_write` of the same path (`remove_stale_temps`).

    Args:
        path: the file or folder that will be built (its parent is created when missing).

    Yields:
        the staging folder's path.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    remove_stale_temps(path)
    staging = _temp_name(path)
    try:
        with held(staging):
            os.mkdir(staging)
            yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged(path):
    """The path to build `path` (a file or a folder) under, in a `staging_folder` beside it.

    The caller builds it there (and whatever goes beside it, e.g. sidecar files) and moves it
    into place (`move_into_place`) before the with-block ends; what is left is removed.

    Yields:
        `<staging folder>/<base name of path>`.
    """
    with staging_folder(path) as staging:
        yield os.path.join(staging, os.path.basename(os.fspath(path)))


@contextlib.contextmanager
def held(temp):
    """Holds an exclusive advisory lock (flock) on `temp`'s lock file (`lock_name`) while the
    with-block runs; the lock file is removed after.

    The lock says "in use" to `remove_stale_temps` in every process that sees it: on this
    machine, in containers sharing the folder, and over NFS (where Linux maps flock to the
    server's locks). Where no lock can be taken (Windows, some network file systems) it
    does nothing, and staleness is decided by age alone.
    """
    lock = lock_name(temp)
    fd = None
    try:
        import fcntl

        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.remove(lock)
            os.close(fd)  # releases the lock


def _in_use(temp):
    """True when a process holds `temp`'s lock (`held`): a live writer."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(lock_name(temp), os.O_RDWR)
    except OSError:  # no lock file: a temp of an earlier version, or its writer ended
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # our probe's lock, if taken, goes with it


def _last_write(path):
    """The newest modification time of `path` or, for a folder, of anything in it."""
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def remove_stale_temps(path, max_age_s=STALE_AFTER_S):
    """Removes the temporary files and staging folders killed processes left for `path`.

    One is stale when no process holds its lock (`held`) and nothing in it has been written
    for `max_age_s` seconds. The process id in its name is not used: with a folder shared
    between containers or machines it names a process elsewhere. The age guards a live
    writer whose lock this machine cannot see (a network file system without locks): a live
    download writes at least every `timeout` seconds, an export keeps adding files.

    Args:
        path: the final file or folder whose temporaries are looked for.
        max_age_s: seconds since the last write after which an unlocked one is stale.

    Returns:
        The removed paths (lock files not listed), sorted.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    base = os.path.basename(os.fspath(path))
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    now = time.time()
    for name in names:
        match = _TEMP.fullmatch(name) or _LEGACY_STAGING.fullmatch(name)
        if not match or match.groups()[-1] != base:
            continue
        temp = os.path.join(folder, name)
        try:
            if _in_use(temp) or now - _last_write(temp) < max_age_s:
                continue
            if os.path.isdir(temp) and not os.path.islink(temp):
                shutil.rmtree(temp)
            else:
                os.remove(temp)
        except FileNotFoundError:  # finished or removed by its own process meanwhile
            continue
        removed.append(temp)
    for name in names:  # lock files whose writer died before making its temp, or with it
        match = _LOCK.fullmatch(name)
        lock = os.path.join(folder, name)
        temp = os.path.join(folder, ".tmp-" + name[len(".lock-"):])
        if match and match.group(2) == base and not os.path.lexists(temp) and not _in_use(temp):
            with contextlib.suppress(OSError):
                if now - os.lstat(lock).st_mtime >= max_age_s or temp in removed:
                    os.remove(lock)
    return sorted(removed)


def move_into_place(tmp, path, overwrite=False):
    """Renames the finished file or folder `tmp` to `path` (same file system).

    An existing `path` (file or folder) is replaced only with overwrite=True: a folder is first
    renamed aside, so `path` is never half old and half new, and then removed.

    Args:
        tmp: the completed file or folder, beside `path`.
        path: its final name.
        overwrite: replace an existing `path`.

    Returns:
        `path`.

    Raises:
        FileExistsError: `path` exists and overwrite is False.
    """
    tmp, path = os.fspath(tmp), os.fspath(path)
    if os.path.lexists(path):
        if not overwrite:
            raise exists_error(path)
        if os.path.isdir(path) and not os.path.islink(path):
            old = os.path.join(os.path.dirname(os.path.abspath(path)),
                               f".old-{os.getpid()}-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
            return path
        if os.path.isdir(tmp):
            os.remove(path)
    os.replace(tmp, path)
    return path


def varint(n):
    """The protobuf base-128 varint of the non-negative int `n` (bytes, least significant
    group first)."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def protobuf_key(number, wire_type=2):
    """The protobuf key of field `number` (bytes); wire type 2: length-delimited."""
    return varint((number << 3) | wire_type)
