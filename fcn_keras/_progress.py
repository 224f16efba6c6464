"""The package's one progress bar: tqdm on stderr, drawn only where a person watches.

Every long loop outside `model.fit` (downloads, weight conversion, evaluation, prediction,
export verification, data checks) uses `bar`; training uses `fcn_keras.training`'s callback,
which draws the same tqdm bar inside each epoch.
"""

import contextlib
import os
import sys
import tempfile

from tqdm import tqdm


def interactive(stream=None):
    """True when `stream` (default stderr) is a terminal: bars are drawn, else plain lines."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def bar(total=None, desc=None, unit="it", enabled=None, **kwargs):
    """A tqdm progress bar on stderr.

    Args:
        total: number of steps (None: unknown), in `unit`s.
        desc: the label before the bar.
        unit: what one step is ("B" with `unit_scale=True` for bytes, "image", "layer").
        enabled: True draws it, False never, None (default) only when stderr is a terminal,
            so redirected output holds no carriage returns or ANSI codes.
    Returns:
        a `tqdm` object (`update(n)`, `close()`, usable as a context manager); disabled, it
        is a no-op.
    """
    if enabled is None:
        enabled = interactive()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kwargs)


#: How the lines start that native libraries write to stderr and that tell a command-line user
#: nothing: TFLite's delegate announcement, the TFLite converter's quantizer settings, and the
#: INFO / WARNING lines TensorFlow's C++ core logs through absl before absl is initialised
#: ("I0000 00:00:..."; `TF_CPP_MIN_LOG_LEVEL` does not reach them in TF 2.21: the oneDNN and
#: CPU-feature notes at `import tensorflow`), with absl's announcement of them.
NATIVE_NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
                b"fully_quantize: ",
                b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                b"I0000 00:00:", b"W0000 00:00:",
                b"To enable the following instructions: ")
#: Lines dropped only when they also hold the text beside: TensorFlow's GPU build, on a machine
#: without a GPU, logs "E0000 00:00:... cuda_platform.cc:52] failed call to cuInit ...".
#: A cluster that lost a machine: the survivors' collective ops log their abort (with gRPC's
#: detail lines) before `fcn_keras.training.cluster.WorkerLost` says it in one line.
NATIVE_NOISE_WITH = ((b"E0000 00:00:", b"failed call to cuInit"),
                     (b"E0000 00:00:", b"ring_alg.cc"),
                     (b"E0000 00:00:", b"base_collective_executor.cc"),
                     (b"E0000 00:00:", b"coordination_service"),
                     (b"Additional GRPC error information from remote target", b""),
                     (b":UNKNOWN:Error received from peer", b""),
                     (b"/job:worker/replica:", b""), (b"/job:chief/replica:", b""),
                     (b"The tasks have crashed. Check the task logs", b""),
                     (b"The error could be from a previous operation.", b""),
                     (b"RPC: /tensorflow.CoordinationService/", b""),
                     (b"[Gloo] Rank ", b""))  # jax.distributed's CPU collectives connecting


def is_native_noise(line, prefixes=NATIVE_NOISE):
    """True when the bytes `line` (no newline) is one of the lines described above."""
    return line.startswith(prefixes) or any(line.startswith(p) and text in line
                                            for p, text in NATIVE_NOISE_WITH)


@contextlib.contextmanager
def native_stderr_filtered():
    """Within the block, what is written to file descriptor 2 (native libraries' log lines,
    Python's stderr too) is held in a temporary file; at the block's end it is written to
    stderr less the lines of `is_native_noise`, errors and warnings kept, in order. For the
    library (`import fcn_keras`, the TFLite converter), where no filter thread runs: the
    command line filters its whole run with `filter_native_stderr`. What a crash of the
    process inside the block wrote is lost.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no file descriptor 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True)
                    if not is_native_noise(line.rstrip(b"\r\n"))]
            if kept:
                os.write(2, b"".join(kept))


def filter_native_stderr(prefixes=NATIVE_NOISE):
    """Drops the lines starting with `prefixes` that native code writes to file descriptor 2.

    C++ libraries (TFLite, its converter) write to the process's stderr directly, often a line
    in several writes; Python's `sys.stderr` cannot filter them. Here fd 2 becomes a pipe read
    by a thread that forwards everything but those lines to the original stderr (a partial
    line is held only while it may still become one of them); `sys.stderr` itself is rebound
    to the original descriptor, so progress bars still see a terminal. For the command line.

    Args:
        prefixes: bytes each dropped line starts with.

    Returns:
        `restore()`: flushes, puts fd 2 back and waits for the thread (also run at exit).
    """
    import atexit
    import threading

    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    replaced = _rebind_python_stderr(original)
    thread = threading.Thread(target=_forward_lines, args=(read_end, original, prefixes),
                              name="stderr-filter", daemon=True)
    thread.start()
    restore = _restorer(original, thread, replaced)
    atexit.register(restore)
    return restore


def _rebind_python_stderr(original):
    """Points `sys.stderr` at a copy of the descriptor `original` when it writes to fd 2;
    returns the stream it replaced, or None (a stream replaced already, e.g. captured by a
    test, is left as it is)."""
    python_stderr = sys.stderr
    try:
        on_fd2 = python_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return None
    if not on_fd2:
        return None
    sys.stderr = open(os.dup(original), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                      errors="backslashreplace", closefd=True)
    return python_stderr


def _forward_lines(read_end, original, prefixes):
    """Reads the pipe `read_end` to its end, writing to the descriptor `original` every line
    that is not native noise (`is_native_noise` with `prefixes`); a partial line (a progress
    bar) goes on at once unless it may still become such a line."""
    starts = prefixes + tuple(p for p, _ in NATIVE_NOISE_WITH)

    def maybe_noise(partial):
        return any(p.startswith(partial) or partial.startswith(p) for p in starts)

    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as source:
        while True:
            chunk = source.read(65536)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            kept = [line + b"\n" for line in lines if not is_native_noise(line, prefixes)]
            if pending and not maybe_noise(pending):
                kept.append(pending)
                pending = b""
            if kept:
                os.write(original, b"".join(kept))
    if pending and not is_native_noise(pending, prefixes):
        os.write(original, pending)


def _restorer(original, thread, replaced):
    """`filter_native_stderr`'s `restore()`: flushes, puts the descriptor `original` back on
    fd 2 (the pipe's last write end closes: `thread` reads its end and stops), waits for
    `thread`, and gives `sys.stderr` back the stream `replaced` (None: it kept its own).
    Calls after the first do nothing."""
    done = []

    def restore():
        if done:
            return
        done.append(True)
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        thread.join(timeout=5)
        if replaced is not None:  # the rebound stream stays open: loggers made meanwhile may hold it
            sys.stderr.flush()
            sys.stderr = replaced

    return restore


def import_quietly(module):
    """Imports `module` (a dotted name) and returns it; if that is the process's first import of
    TensorFlow, its start-up notes (`NATIVE_NOISE`: oneDNN, CPU features, no CUDA driver, a
    failed cuInit) are dropped from stderr, its warnings and errors kept. TF_CPP_MIN_LOG_LEVEL=0
    set before it shows everything. The lazy names of `fcn_keras` and its subpackages load
    through this (PEP 562 module `__getattr__`)."""
    import importlib

    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return importlib.import_module(module)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's later info lines
    with native_stderr_filtered():
        loaded = importlib.import_module(module)
        tf = sys.modules.get("tensorflow")
        if tf is not None and hasattr(tf, "config"):
            tf.config.list_physical_devices("GPU")  # where TensorFlow's GPU build logs cuInit
    return loaded
