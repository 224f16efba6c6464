"""Writing files so that nothing half-written is ever left under the final name."""

import os
import uuid


def atomic_write(path, write):
    """Calls `write(tmp)` with a temporary path beside `path`, then renames it to `path`.

    The temporary name ends with `path`'s own base name, so writers that read the suffix
    (`.keras`, `.weights.h5`, `.png`) see the right one. A failing `write` leaves nothing.
    Returns `path`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


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
            raise FileExistsError(f"Expected no file or folder at {path!r} (pass overwrite=True to "
                                  f"replace it). Received: overwrite={overwrite!r}")
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
