"""Shared pieces of the exporters: argument checks, metadata, JSON files, the serving function.

Everything that is exported computes the same serving function:

    image uint8 (N, H, W, 3), RGB 0..255
      -> {"labels": uint8 (N, H, W) (int32 when num_classes > 256), argmax of the scores,
          "scores": float32 (N, H, W, num_classes), the model's logits}

The preprocessing (RGB->BGR, mean subtraction) is the model's own (`include_preprocessing=True`)
or is added here for a model built with `include_preprocessing=False`.
"""

import os

import numpy as np

from fcn_keras import _io
from fcn_keras import conventions

IO_TYPES = ("uint8", "int8")
SIDECAR_SUFFIX = ".json"          # metadata next to the artefact: <path>.json
REPORT_SUFFIX = ".verify.json"    # verification report next to the artefact
METADATA_NAME = "fcn_keras"       # key of the metadata embedded in a .tflite / .onnx file


class ExportError(ValueError):
    """A bad export argument or target, raised before any conversion work starts."""


class ParityError(RuntimeError):
    """An exported artefact computes numbers that miss the parity targets.

    Attributes:
        report: the `fcn_keras.export.Report` of the verification that failed.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- arguments

def normalize_size(size, name="input_size"):
    """None or a (height, width) tuple of positive ints, or ExportError naming `name`."""
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ExportError(f"`{name}` must be None or (height, width). Received: {name}={size!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(size):
        raise ExportError(f"`{name}` must be two positive integers. Received: {name}={size!r}")
    return (h, w)


def keras_model(model):
    """`model` itself if it is a keras.Model with one (N, H, W, C) output, else the loaded .keras file.

    Other model kinds (zoo names, weights files) are sorted above this package by
    `fcn_keras.resolve.resolve` and opened by `fcn_keras.loading.load_model`, which pass a
    keras.Model here. (Named apart from `fcn_keras.load_model`, which opens every kind.)
    """
    import keras

    from fcn_keras.models.saving import KERAS_SUFFIX
    from fcn_keras.weights.keras_file import load_keras

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not path.endswith(KERAS_SUFFIX) and not os.path.isfile(path):
            raise ExportError(f"`model` must be a keras.Model or an existing .keras file. "
                              f"Received: model={path!r} (no such file)")
        try:
            model = load_keras(path)
        except (OSError, ValueError) as e:
            raise ExportError(str(e)) from None
    if not isinstance(model, keras.Model):
        raise ExportError(f"`model` must be a keras.Model or a .keras path. "
                          f"Received: model of type {type(model).__name__}")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise ExportError(f"`model` must have one (N, H, W, classes) output. "
                          f"Received: outputs={[tuple(o.shape) for o in model.outputs]}")
    return model


def model_num_classes(model):
    return int(model.outputs[0].shape[-1])


def model_classes(model, class_names=None, palette=None):
    """(class_names list[str], palette uint8 (C, 3)) for the model: the arguments, else the
    model's own (an FCN's `class_names` / `palette`), else the defaults."""
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    if palette is None:
        palette = getattr(model, "palette", None)
    try:
        return conventions.class_metadata(model_num_classes(model), class_names, palette)
    except ValueError as e:
        raise ExportError(str(e)) from None


def label_dtype(num_classes):
    return "uint8" if num_classes <= 256 else "int32"


def check_target(path, overwrite, extra=()):
    """Raises ExportError if `path` (or a file in `extra`) exists and overwrite is False."""
    path = os.fspath(path)
    if not path:
        raise ExportError("`path` must not be empty. Received: path=''")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ExportError(f"Expected an existing output folder. Received: path={path!r} "
                          f"({parent!r} does not exist)")
    if overwrite:
        return
    for p in [path, *extra]:
        if os.path.lexists(p):
            raise _io.exists_error(p, ExportError)


# --------------------------------------------------------------------------- files

def path_size(path):
    """Bytes of a file, or of all files under a folder."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


# --------------------------------------------------------------------------- serving function

def serving_fn(model, input_dtype="uint8", call=None):
    """A plain Python function image -> {"labels", "scores"} built on the model (TF backend).

    Args:
        model: the keras model.
        input_dtype: "uint8" (cast inside) or "float32" (RGB 0..255 floats: the full-int8 TFLite
            route, whose converter turns the float input into a quantised uint8 / int8 one).
        call: optional `call(x) -> logits` replacing `model(x, training=False)` (the ONNX route
            passes a stateless call whose weights are function arguments).

    Returns:
        `serve(image) -> {"labels": (N, H, W), "scores": float32 (N, H, W, C)}`.
    """
    import tensorflow as tf

    from fcn_keras.models.layers import input_preprocess

    preprocess = input_preprocess(model, name="export_preprocess")
    out_dtype = getattr(tf, label_dtype(model_num_classes(model)))

    def serve(image):
        x = tf.cast(image, tf.float32)
        if preprocess is not None:
            x = preprocess(x)
        scores = tf.cast(call(x) if call is not None else model(x, training=False), tf.float32)
        # tf.argmax, not keras.ops.argmax: Keras' TF argmax adds a -0.0 fix (Bitcast, BitwiseAnd)
        # that is a Flex op in TFLite and an invalid op in ONNX.
        labels = tf.argmax(scores, axis=-1, output_type=tf.int32)
        if out_dtype != tf.int32:
            labels = tf.cast(labels, out_dtype)
        return {"labels": labels, "scores": scores}

    return serve


def input_spec(input_size=None, dtype="uint8"):
    """The `image` TensorSpec: (None, None, None, 3), or (1, h, w, 3) for a fixed input_size."""
    import tensorflow as tf

    shape = [None, None, None, 3] if input_size is None else [1, input_size[0], input_size[1], 3]
    return tf.TensorSpec(shape, getattr(tf, dtype), name="image")


def base_metadata(model, fmt, quantize, class_names, palette, input_size, io_type="uint8"):
    """The metadata stored with an artefact (sidecar JSON and, where the format allows, inside it)."""
    import keras

    num_classes = model_num_classes(model)
    return {
        "format": fmt,
        "quantize": quantize,
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
            "dtype": io_type,
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
