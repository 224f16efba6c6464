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


def runner(path, num_threads=None):
    """A `Runner` for an exported artefact, in the artefact's own runtime.

    TensorFlow runs a SavedModel (its signature `serving_default`), the LiteRT interpreter a
    `.tflite` file (its signature runner; quantised inputs and outputs are converted), and
    onnxruntime (CPU) a `.onnx` file.

    Args:
        path: a SavedModel folder, a `.tflite` or a `.onnx` file.
        num_threads: threads of the LiteRT interpreter / onnxruntime (default: all CPUs). A
            SavedModel runs on TensorFlow's own thread pool.

    Returns:
        A `Runner`: `run(images uint8 (N, H, W, 3)) -> (labels (N, H, W), scores float32
        (N, H, W, C))`, and `run.fixed_size`, None or the fixed input (h, w).

    Raises:
        FileNotFoundError, ExportError: see `detect_format`.
    """
    return TABLE[detect_format(path)].runner(path, num_threads)


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
    if os.path.isfile(p + SIDECAR_SUFFIX):
        with open(p + SIDECAR_SUFFIX) as f:
            meta.update(json.load(f))
    meta.update(TABLE[fmt].embedded_metadata(p))
    return meta
