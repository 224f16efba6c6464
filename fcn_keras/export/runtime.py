"""Running and reading exported artefacts: `runner`, `read_metadata`, `detect_format`.

These three are the public way to use any file `export` wrote, whatever its format:

    from fcn_keras.export import runner, read_metadata

    run = runner("fcn8s.tflite")              # or a SavedModel folder, or "fcn8s.onnx"
    labels, scores = run(images)              # uint8 (N, H, W, 3) -> (N, H, W), (N, H, W, C)
    names = read_metadata("fcn8s.tflite")["class_names"]

Each format's runtime and metadata reader live in its module (`fcn_keras.export.formats`).
"""

import json
import os

from ._common import SIDECAR_SUFFIX, ExportError
from ._runner import Runner  # noqa: F401  (the base class of every runner, public here)
from .formats import TABLE, detect
from .graph_check import UntrustedModelError

MAX_METADATA_BYTES = 2**20  # a sidecar JSON holds names, colours and the export's settings


def _expected():
    """'a SavedModel folder (...), a .tflite file or a .onnx file': every format of the table."""
    kinds = [m.DESCRIPTION for m in TABLE.values() if not getattr(m, "REFINES", None)]  # a variant is one of them
    return ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]


def detect_format(path):
    """The format of an exported artefact.

    Args:
        path: a SavedModel folder (holding saved_model.pb), a `.tflite` or a `.onnx` file.

    Returns:
        "saved_model", "tflite" or "onnx" (a key of `fcn_keras.export.formats.TABLE`).

    Raises:
        FileNotFoundError: `path` does not exist.
        ExportError: `path` is none of the formats.
    """
    p = os.fspath(path).rstrip("/\\")
    if not os.path.exists(p):
        raise FileNotFoundError(f"Expected an exported model ({_expected()}). "
                                f"Received: path={p!r}, which does not exist")
    fmt = detect(p)
    if fmt is None:
        kind = "a folder" if os.path.isdir(p) else "a file"
        raise ExportError(f"Expected an exported model: {_expected()}. Received: path={p!r}, {kind} "
                          "that is none of them")
    return fmt


def runner(path, num_threads=None, trust=False):
    """A `Runner` for an exported artefact, in the artefact's own runtime.

    TensorFlow runs a SavedModel (its signature `serving_default`), the LiteRT interpreter a
    `.tflite` file (its signature runner; quantised inputs and outputs are converted), and
    onnxruntime (CPU) a `.onnx` file.

    Args:
        path: a SavedModel folder, a `.tflite` or a `.onnx` file.
        num_threads: threads of the LiteRT interpreter / onnxruntime (default: all CPUs). A
            SavedModel runs on TensorFlow's own thread pool.
        trust: a SavedModel is a program: False (default) refuses one holding an op that an
            fcn_keras export does not (`fcn_keras.export.graph_check`); True loads any, for a
            SavedModel from a source trusted as a program. Other formats ignore it.

    Returns:
        A `Runner`: `run(images uint8 (N, H, W, 3)) -> (labels (N, H, W), scores float32
        (N, H, W, C))`, and `run.fixed_size`, None or the fixed input (h, w).

    Raises:
        FileNotFoundError, ExportError: see `detect_format`.
        fcn_keras.export.graph_check.UntrustedModelError: a SavedModel with an op outside the
            allowlist (and trust=False).
    """
    fmt = detect_format(path)
    program = getattr(TABLE[fmt], "PROGRAM", False)  # a program's runner checks its graph unless trusted
    try:
        return TABLE[fmt].runner(path, num_threads, **({"trust": trust} if program else {}))
    except (ExportError, FileNotFoundError, UntrustedModelError):
        raise
    except Exception as e:  # noqa: BLE001 - the runtimes' own errors: a damaged or hostile file
        raise ExportError(f"{os.fspath(path)}: cannot be opened as {TABLE[fmt].DESCRIPTION} "
                          f"({_first_line(e)})") from None


def _first_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]


def read_metadata(path):
    """The metadata `export` stored with an artefact.

    It is read from inside the artefact (the SavedModel's asset `assets/fcn_keras.json`, the
    `.tflite` file's model metadata "fcn_keras", the `.onnx` file's metadata_props), so a lone
    file describes itself, and from the JSON file beside it (`<path>.json`); the embedded copy
    wins where both have a key.

    Args:
        path: a SavedModel folder, a `.tflite` or a `.onnx` file.

    Returns:
        A dict: "class_names" (list of C names), "palette" (C lists of 3 ints, RGB), "format",
        "quantize", "model", "input" and "outputs" when the artefact has them; {} for a file
        that carries none.
    """
    fmt = detect_format(path)
    p = os.fspath(path).rstrip("/\\")
    meta = {}
    where = p + SIDECAR_SUFFIX
    try:
        if os.path.isfile(where):
            with open(where) as f:
                meta.update(json.loads(f.read(MAX_METADATA_BYTES + 1)))
        where = p
        meta.update(TABLE[fmt].embedded_metadata(p))
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - invalid JSON, a damaged file: named, in one line
        raise ExportError(f"{where}: unreadable metadata ({_first_line(e)})") from None
    if not isinstance(meta, dict):
        raise ExportError(f"{where}: its metadata is not a JSON object")
    return meta
