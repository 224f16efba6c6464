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
