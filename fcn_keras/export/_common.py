"""Shared pieces of the exporters: argument checks, atomic writes, metadata, serving function.

Everything that is exported computes the same serving function:

    image uint8 (N, H, W, 3), RGB 0..255
      -> {"labels": uint8 (N, H, W) (int32 when num_classes > 256), argmax of the scores,
          "scores": float32 (N, H, W, num_classes), the model's logits}

The preprocessing (RGB->BGR, mean subtraction) is the model's own (`include_preprocessing=True`)
or is added here for a model built with `include_preprocessing=False`.
"""

import contextlib
import json
import os
import shutil
import uuid

import numpy as np

from fcn_keras.conventions import VOC_CLASSES, voc_palette

FORMATS = ("saved_model", "tflite", "onnx")
# quantize values per format; None = float32
QUANTIZATIONS = {
    "saved_model": (None,),
    "tflite": (None, "float16", "dynamic-int8", "int8"),
    "onnx": (None,),
}
IO_TYPES = ("uint8", "int8")
SIDECAR_SUFFIX = ".json"          # metadata next to the artefact: <path>.json
REPORT_SUFFIX = ".verify.json"    # verification report next to the artefact


class ExportError(ValueError):
    """A bad export argument or target, raised before any conversion work starts."""


class ParityError(RuntimeError):
    """An exported artefact computes numbers that miss the parity targets.

    `report` holds the full verification report (dict).
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- arguments

def normalize_format(format, path=None):
    """Returns one of FORMATS; format=None is inferred from the path's suffix."""
    if format is None and path is not None:
        p = os.fspath(path)
        if p.endswith(".tflite"):
            return "tflite"
        if p.endswith(".onnx"):
            return "onnx"
        return "saved_model"
    if not isinstance(format, str):
        raise ExportError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    f = format.lower().replace("-", "_")
    aliases = {"savedmodel": "saved_model", "tf_saved_model": "saved_model", "litert": "tflite"}
    f = aliases.get(f, f)
    if f not in FORMATS:
        raise ExportError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    return f


def normalize_quantize(format, quantize):
    if quantize in (None, "none", "float32", "fp32"):
        quantize = None
    elif isinstance(quantize, str):
        quantize = {"fp16": "float16", "dynamic_int8": "dynamic-int8", "dynamic": "dynamic-int8",
                    "full-int8": "int8", "full_int8": "int8"}.get(quantize.lower(), quantize.lower())
    allowed = QUANTIZATIONS[format]
    if quantize not in allowed:
        raise ExportError(
            f"`quantize` for format={format!r} must be one of {allowed}. Received: quantize={quantize!r}"
        )
    return quantize


def normalize_input_size(input_size):
    if input_size is None:
        return None
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ExportError(f"`input_size` must be None or (height, width). Received: input_size={input_size!r}")
    if h < 1 or w < 1 or (h, w) != tuple(input_size):
        raise ExportError(f"`input_size` must be two positive integers. Received: input_size={input_size!r}")
    return (h, w)


def class_metadata(model, class_names=None, palette=None):
    """(class_names list[str], palette uint8 (C, 3)) for the model."""
    num_classes = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
    num_classes = getattr(model, "num_classes", None) or num_classes
    if num_classes is None:
        raise ExportError("cannot tell the model's number of classes (no `num_classes`, unknown output shape)")
    if class_names is None:
        class_names = list(VOC_CLASSES) if num_classes == 21 else [f"class_{i}" for i in range(num_classes)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != num_classes:
        raise ExportError(
            f"`class_names` must have num_classes={num_classes} entries. Received {len(class_names)}: "
            f"{class_names[:5]}{'...' if len(class_names) > 5 else ''}"
        )
    if palette is None:
        palette = voc_palette(num_classes)
    palette = np.asarray(palette)
    if palette.shape != (num_classes, 3) or palette.min() < 0 or palette.max() > 255:
        raise ExportError(
            f"`palette` must be ({num_classes}, 3) values in 0..255. Received shape {palette.shape}"
        )
    return class_names, palette.astype(np.uint8)


def label_dtype(num_classes):
    return "uint8" if num_classes <= 256 else "int32"


# --------------------------------------------------------------------------- atomic writes

def sidecars(path):
    p = os.fspath(path).rstrip("/\\")
    return [p + SIDECAR_SUFFIX, p + REPORT_SUFFIX]


def check_target(path, overwrite, extra=()):
    """Raises ExportError if path (or its sidecar files) exists and overwrite is False."""
    path = os.fspath(path)
    if not path:
        raise ExportError("the output path is empty")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ExportError(f"the output directory {parent!r} does not exist (for path={path!r})")
    if overwrite:
        return
    for p in [path, *extra]:
        if os.path.lexists(p):
            raise ExportError(
                f"{p!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it"
            )


def _remove(p):
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p, ignore_errors=True)
    elif os.path.lexists(p):
        os.remove(p)


def tmp_name(path):
    path = os.fspath(path).rstrip("/\\")
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(path, overwrite=False):
    """Yields a temporary path next to `path`; renamed to `path` when the block completes.

    Works for files and directories. On any exception the temporary is removed and
    `path` is untouched. An existing `path` is replaced only with overwrite=True.
    """
    path = os.fspath(path).rstrip("/\\")
    tmp = tmp_name(path)
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise RuntimeError(f"internal error: nothing was written to {tmp!r}")
        commit(tmp, path, overwrite)
    except BaseException:
        _remove(tmp)
        raise


def commit(tmp, path, overwrite):
    """Renames tmp -> path (replacing path only if overwrite)."""
    if os.path.lexists(path):
        if not overwrite:
            raise ExportError(f"{path!r} appeared while exporting; pass overwrite=True to replace it")
        if os.path.isdir(path) and not os.path.islink(path):
            trash = tmp_name(path) + ".old"
            os.rename(path, trash)
            os.rename(tmp, path)
            _remove(trash)
            return
        if os.path.isdir(tmp):
            os.remove(path)
    os.replace(tmp, path)


def write_json_atomic(path, obj, overwrite=True):
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=_json_default)
            f.write("\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def path_size(path):
    """Bytes of a file, or of all files under a directory."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


# --------------------------------------------------------------------------- serving function

def serving_fn(model, input_dtype="uint8", call=None):
    """A plain Python function image -> {"labels", "scores"} built on the model (TF backend).

    input_dtype "uint8": the image is cast inside; "float32": RGB 0..255 floats (the full-int8
    TFLite route, whose converter turns the float input into a quantised uint8/int8 one).
    call: optional `call(x) -> logits` replacing `model(x, training=False)` (the ONNX route
    passes a stateless call whose weights are function arguments).
    """
    import tensorflow as tf

    preprocess = None
    if getattr(model, "include_preprocessing", True) is False:
        from fcn_keras.models.layers import Preprocess

        preprocess = Preprocess(name="export_preprocess")
    num_classes = int(model.outputs[0].shape[-1])
    out_dtype = tf.uint8 if num_classes <= 256 else tf.int32

    def serve(image):
        x = tf.cast(image, tf.float32)
        if preprocess is not None:
            x = preprocess(x)
        logits = call(x) if call is not None else model(x, training=False)
        scores = tf.cast(logits, tf.float32)
        # tf.argmax, never keras.ops.argmax: Keras' -0.0 fix adds Bitcast/BitwiseAnd (Flex in TFLite,
        # invalid in ONNX), export-notes row 20.
        labels = tf.argmax(scores, axis=-1, output_type=tf.int32)
        if out_dtype != tf.int32:
            labels = tf.cast(labels, out_dtype)
        return {"labels": labels, "scores": scores}

    return serve


def input_spec(input_size=None, dtype="uint8", batch=None):
    import tensorflow as tf

    if input_size is None:
        shape = [batch, None, None, 3]
    else:
        shape = [1 if batch is None else batch, input_size[0], input_size[1], 3]
    return tf.TensorSpec(shape, getattr(tf, dtype), name="image")


def model_num_classes(model):
    return int(model.outputs[0].shape[-1])


def base_metadata(model, fmt, quantize, class_names, palette, input_size, io_type=None, extra=None):
    import keras

    num_classes = model_num_classes(model)
    meta = {
        "format": fmt,
        "quantize": quantize or "float32",
        "model": {
            "name": model.name,
            "backbone": getattr(model, "backbone_name", None),
            "head": getattr(model, "head_name", None),
            "num_classes": num_classes,
            "width": getattr(model, "width", None),
            "params": int(model.count_params()),
        },
        "input": {
            "name": "image",
            "dtype": io_type or "uint8",
            "shape": [None, None, None, 3] if input_size is None else [1, input_size[0], input_size[1], 3],
            "layout": "NHWC, RGB, pixel values 0..255 (preprocessing is inside)",
        },
        "outputs": {
            "labels": {"dtype": label_dtype(num_classes), "shape": "(N, H, W)", "meaning": "argmax of scores"},
            "scores": {"dtype": "float32", "shape": f"(N, H, W, {num_classes})", "meaning": "class logits"},
        },
        "class_names": list(class_names),
        "palette": np.asarray(palette).tolist(),
        "keras_version": keras.__version__,
    }
    if extra:
        meta.update(extra)
    return meta
