"""The export formats as one table: a format's name -> the module that implements it.

Every format module (`saved_model.py`, `tflite.py`, `onnx.py`) exposes the same names, and
`export`, `runner`, `read_metadata`, `detect_format` and `verify` read them from `TABLE`
instead of testing the format's name:

    NAME            the format's name, the key in TABLE ("tflite")
    SUFFIX          the artefact's file suffix (".tflite"), or None for a folder
    DESCRIPTION     what an artefact is, for error messages ("a .tflite file")
    EXTRA_SUFFIXES  files written beside the artefact, as suffixes of its path (ONNX: (".data",))
    QUANTIZE        the `quantize` values it writes, "float32" first
    NO_BFLOAT16     None, or why it has no bfloat16 and which fast path it has instead
    is_artefact(path) -> bool                     an existing artefact of this format
    write(model, path, options) -> [files]        writes it (`WriteOptions`; no checks, no atomicity)
    runner(path, num_threads) -> Runner            runs it in its own runtime
    embedded_metadata(path) -> dict               the metadata stored inside it ({} if none)
    runtime_name() -> str                         that runtime and its version
    REFINES, TARGET (optional)   a variant of format REFINES for an app platform, chosen by
                                 `export(..., REFINES, target=TARGET)`; detected before REFINES
    adjust_metadata(meta) -> dict (optional)      the export metadata as this format changes it
    PROGRAM (optional)   True for an artefact that is a program (SavedModel): its runner takes
                         `trust` (False: `graph_check` refuses unknown ops before it is loaded)
    OPTIONS (optional)   the `WriteOptions` fields besides quantize and input_size the format
                         takes from the user and records in its metadata: "opset" (checked
                         11..18), "io_type" (quantize="int8": the input's and the quantised
                         scores' type); () when absent

A format that is a folder around another format's artefact (web: an ONNX export, a page and
its runtime) is in FOLDERS instead, a module with:

    NAME        the format's name, the key in FOLDERS ("web")
    WRAPS       the TABLE format of the artefact inside (its QUANTIZE values are the folder's)
    OPTIONS     the keyword arguments of `export` that only this format takes
    write_folder(model, path, quantize, *, write_artefact, ...) -> Exported
                writes, verifies and moves the folder into place (see `web.write_folder`)

Adding a format is adding a module with these names and one line to TABLE (or FOLDERS). This
module also turns the user's `format` and `quantize` arguments into these names (once, at
`export`).
"""

import dataclasses
import os

from . import onnx, openvino, saved_model, tflite, tflite_mediapipe, web
from ._common import ExportError

TABLE = {m.NAME: m for m in (saved_model, tflite, onnx, tflite_mediapipe, openvino)}
FOLDERS = {m.NAME: m for m in (web,)}  # folders around an artefact of TABLE's format m.WRAPS
FORMATS = tuple(TABLE) + tuple(FOLDERS)
QUANTIZATIONS = {name: m.QUANTIZE for name, m in TABLE.items()}  # the quantize values per format
QUANTIZATIONS.update({name: TABLE[m.WRAPS].QUANTIZE for name, m in FOLDERS.items()})
FLOAT32 = "float32"  # the one spelling of "not quantised"
_FORMAT_ALIASES = {"savedmodel": "saved_model", "tf_saved_model": "saved_model", "litert": "tflite"}
_QUANTIZE_ALIASES = {"none": FLOAT32, "fp32": FLOAT32, "fp16": "float16", "dynamic_int8": "dynamic-int8",
                     "dynamic": "dynamic-int8", "full-int8": "int8", "full_int8": "int8", "bf16": "bfloat16"}


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    """What `export` passes to a format's `write` (each format reads the fields it uses).

    Attributes:
        quantize: one of the format's QUANTIZE values.
        input_size: None (any N, H, W) or (h, w): input fixed to (1, h, w, 3).
        io_type: full int8 only: "uint8" or "int8" input and scores.
        calibration: full int8 only: uint8 images (H, W, 3).
        class_names, palette: C names and uint8 (C, 3) RGB.
        opset, external_data: ONNX only.
        meta: the export metadata, embedded where the format allows.
    """

    quantize: str = FLOAT32
    input_size: tuple = None
    io_type: str = "uint8"
    calibration: list = None
    class_names: list = None
    palette: object = None
    opset: int = None
    external_data: bool = None
    meta: dict = None


def options(fmt):
    """The `WriteOptions` fields that TABLE format `fmt` takes besides quantize and input_size."""
    return getattr(TABLE[fmt], "OPTIONS", ())


def written(fmt):
    """The TABLE module that writes format `fmt`'s artefact (a FOLDERS format: the one it wraps)."""
    return TABLE[FOLDERS[fmt].WRAPS] if fmt in FOLDERS else TABLE[fmt]


def suffixes():
    """The file suffixes of the formats whose artefacts are files ((".tflite", ".onnx"))."""
    return tuple(dict.fromkeys(m.SUFFIX for m in TABLE.values() if m.SUFFIX))


def folder_format():
    """The format of an artefact written to a path with none of the `suffixes()`."""
    return next(name for name, m in TABLE.items() if m.SUFFIX is None)


def normalize_format(format, path=None):
    """One of FORMATS; format=None is read from the path's suffix (none: a SavedModel folder)."""
    if format is None and path is not None:
        p = os.fspath(path)
        return next((name for name, m in TABLE.items() if m.SUFFIX and p.endswith(m.SUFFIX)
                     and not getattr(m, "REFINES", None)), folder_format())
    if not isinstance(format, str):
        raise ExportError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    f = format.lower().replace("-", "_")
    f = _FORMAT_ALIASES.get(f, f)
    if f not in FORMATS:
        raise ExportError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    return f


def targets(fmt):
    """{target: format name} of the variants of format `fmt` (tflite: {"mediapipe": "mediapipe"})."""
    return {m.TARGET: name for name, m in TABLE.items() if getattr(m, "REFINES", None) == fmt}


def apply_target(fmt, target):
    """The format that writes `fmt` for app platform `target` (None: `fmt` itself), or ExportError."""
    if target is None:
        return fmt
    choices = targets(fmt)
    if target not in choices:
        raise ExportError(f"`target` for format={fmt!r} must be None" + (f" or one of {sorted(choices)}" if choices
                          else "") + f". Received: target={target!r}")
    return choices[target]


def detect(path):
    """The format name of an existing artefact `path` (a variant before the format it refines), or None."""
    found = [name for name, m in TABLE.items() if m.is_artefact(path)]
    return next((n for n in found if getattr(TABLE[n], "REFINES", None) in found), found[0] if found else None)


def normalize_quantize(fmt, quantize):
    """The canonical quantize value of format `fmt` ("float32" for None), or ExportError."""
    if quantize is None:
        quantize = FLOAT32
    elif isinstance(quantize, str):
        quantize = _QUANTIZE_ALIASES.get(quantize.lower(), quantize.lower())
    module = written(fmt)
    allowed = module.QUANTIZE
    if quantize == "bfloat16" and module.NO_BFLOAT16:
        raise ExportError(f"`quantize` must be one of {allowed} for format={fmt!r}: "
                          f"{module.NO_BFLOAT16}. Received: quantize={quantize!r}")
    if quantize not in allowed:
        raise ExportError(f"`quantize` for format={fmt!r} must be one of {allowed}. Received: quantize={quantize!r}")
    return quantize


def export_precision(model, fmt, quantize):
    """(canonical quantize, the model to write) for `export(model, format=fmt, quantize=quantize)`.

    `quantize=None` is the model's own precision: "bfloat16" for a bfloat16 model, else
    "float32". A bfloat16 export of a float32 model writes a bfloat16 copy
    (`fcn_keras.models.with_precision`).

    Args:
        model: the keras model; fmt: one of FORMATS; quantize: the `quantize` argument as given.

    Raises:
        ExportError: an unknown quantize value for `fmt`, a bfloat16 model for a format without
            bfloat16 or with another quantize value, or a bfloat16 export of a model that is
            not an FCN.
    """
    from fcn_keras.models.fcn import with_precision

    if model.dtype_policy.name == "bfloat16":
        reason = written(fmt).NO_BFLOAT16
        if reason:
            raise ExportError(f"`model` computes in bfloat16, which format={fmt!r} cannot: {reason}. "
                              "Export its float32 original (fcn_keras.models.with_precision(model, "
                              f"'float32') gives one, with the bfloat16-rounded weights). Received: {model.name}")
        if quantize is not None and normalize_quantize(fmt, quantize) != "bfloat16":
            raise ExportError(f"`quantize` must be None or 'bfloat16' for a bfloat16 model. "
                              f"Received: quantize={quantize!r}")
        return "bfloat16", model
    quantize = normalize_quantize(fmt, quantize)
    if quantize != "bfloat16":
        return quantize, model
    try:
        return quantize, with_precision(model, "bfloat16")
    except ValueError as e:
        raise ExportError(f"quantize='bfloat16' rebuilds the model in bfloat16: {e}") from None
