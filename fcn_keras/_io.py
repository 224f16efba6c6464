"""Writing files so that nothing half-written is ever left under the final name; and the one
error class of a download that cannot be made (weights and data sets alike)."""

import os
import re
import time
import uuid

STALE_AFTER_S = 24 * 3600
_TEMP = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}-(.+)")


class DownloadError(OSError):
    """A download that failed or could not be verified; nothing was written to the cache.

    Raised for pretrained weights (`fcn_keras.weights.DownloadError`) and TFDS data sets
    (`fcn_keras.data.DownloadError`), the same class: a runtime failure (`fcn-keras` exits 1).

    Attributes:
        cli_message: the message as the command line words it (`--weights` for `weights=`),
            or None when the message is the same.
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
    one. A failing (or interrupted) `write` leaves nothing; the temporary files of killed
    processes are removed by the next `atomic_write` of the same path (`remove_stale_temps`).

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
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def remove_stale_temps(path, max_age_s=STALE_AFTER_S):
    """Removes the temporary files `atomic_write` left for `path` in killed processes.

    A temporary file is stale when the process named by its pid is no longer running on
    this machine, or when it has not been written for `max_age_s` seconds (a pid reused by
    another process, or a cache shared with another machine).

    Args:
        path: the final file path whose temporary files are looked for.
        max_age_s: age in seconds (since the last write) after which any of them is stale.

    Returns:
        The removed paths, sorted.
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
        match = _TEMP.fullmatch(name)
        if not match or match.group(2) != base:
            continue
        temp = os.path.join(folder, name)
        try:
            if _running(int(match.group(1))) and now - os.path.getmtime(temp) < max_age_s:
                continue
            os.remove(temp)
        except FileNotFoundError:  # finished or removed by its own process meanwhile
            continue
        removed.append(temp)
    return sorted(removed)


def _running(pid):
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would end the process: age only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


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
    import shutil

    tmp, path = os.fspath(tmp), os.fspath(path)
    if os.path.lexists(path):
        if not overwrite:
            err = FileExistsError(f"Expected no file or folder at {path!r} (pass overwrite=True to "
                                  f"replace it). Received: overwrite={overwrite!r}")
            err.cli_message = f"{path!r} exists; pass --overwrite to replace it"
            raise err
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
