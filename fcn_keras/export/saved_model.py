"""SavedModel for servers (TF Serving / `tf.saved_model.load`).

Signature `serving_default`: image uint8 (N, H, W, 3) any N, H, W -> {"labels", "scores"}.
Signature `segment_bytes` (up to 256 classes): encoded images in, palette PNG label maps and
the class names out (`fcn_keras.export.label_png`), for REST clients.
Each weight is stored once: a `tf.Module` tracks the model's variables and a `tf.function`
endpoint, saved with `tf.saved_model.save` (Keras' own `model.export` stores every weight
twice today, keras-team/keras#23553). Class names and palette are stored three ways:
variables `class_names` / `palette` of the loaded object, the asset `assets/fcn_keras.json`
(the whole metadata), and the JSON next to the folder (`<path>.json`).
"""

import json
import os
import shutil

import numpy as np

from fcn_keras import _io

from . import _common, label_png
from ._runner import Runner
from .graph_check import check_saved_model

NAME = "saved_model"
SUFFIX = None  # a folder
PROGRAM = True  # loading it can run any op: its runner takes `trust` (False: graph_check first)
DESCRIPTION = "a SavedModel folder (holding saved_model.pb)"
EXTRA_SUFFIXES = ()
QUANTIZE = ("float32", "bfloat16")
NO_BFLOAT16 = None
ASSET = os.path.join("assets", _common.METADATA_NAME + ".json")  # the embedded metadata, inside the folder


def _build_module(model, class_names, palette, input_size=None, input_dtype="uint8", segment_bytes=False):
    import tensorflow as tf

    serve = _common.serving_fn(model, input_dtype=input_dtype)
    module = tf.Module(name="fcn_keras_serving")
    # the backing tf.Variables, tracked once (keras Variable.value is the tf.Variable on TF)
    module.model_variables = [v.value for v in model.weights]
    module.class_names = tf.Variable(list(class_names), trainable=False, name="class_names")
    module.palette = tf.Variable(np.asarray(palette, np.uint8), trainable=False, name="palette")
    module.serve = tf.function(serve, input_signature=[_common.input_spec(input_size, input_dtype)])
    if segment_bytes:
        module.segment_bytes = tf.function(label_png.segment_bytes_fn(serve, class_names, palette),
                                           input_signature=[label_png.input_spec()])
    return module


def _signatures(module):
    """{signature name: concrete function} of a `_build_module` module."""
    signatures = {"serving_default": module.serve.get_concrete_function()}
    if hasattr(module, "segment_bytes"):
        signatures[label_png.SIGNATURE] = module.segment_bytes.get_concrete_function()
    return signatures


def write_saved_model(model, folder, class_names, palette, input_size=None, input_dtype="uint8",
                      meta=None, segment_bytes=False):
    """Writes the SavedModel `folder` (no checks, no atomicity: `export` does those).

    Args:
        model: the keras model.
        folder: the folder to create.
        class_names: C names; palette: uint8 (C, 3).
        input_size: None (any N, H, W) or (h, w): input (1, h, w, 3).
        input_dtype: "uint8", or "float32" for the full-int8 TFLite route.
        meta: metadata dict stored as the asset `assets/fcn_keras.json` (None: no asset).
        segment_bytes: add the `segment_bytes` signature (uint8 input and up to 256 classes only).

    Returns:
        `folder`.
    """
    import tensorflow as tf

    module = _build_module(model, class_names, palette, input_size, input_dtype, segment_bytes)
    scratch = None
    if meta is not None:  # an asset keeps its base name: write it as fcn_keras.json in a scratch folder
        scratch = folder + ".assets"
        os.makedirs(scratch)
        asset = os.path.join(scratch, _common.METADATA_NAME + ".json")
        _io.save_json(asset, meta)
        module.metadata_file = tf.saved_model.Asset(asset)
    try:
        tf.saved_model.save(module, folder, signatures=_signatures(module))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


def write(model, path, options):
    """`write_saved_model` with `export`'s `formats.WriteOptions`; returns the files written."""
    return [write_saved_model(model, path, options.class_names, options.palette, input_size=options.input_size,
                              meta=options.meta,
                              segment_bytes=len(options.class_names) <= label_png.MAX_CLASSES)]


def is_artefact(path):
    """True for a folder holding saved_model.pb."""
    return os.path.isfile(os.path.join(os.fspath(path), "saved_model.pb"))


def embedded_metadata(path):
    """The metadata dict stored as the asset `assets/fcn_keras.json` by `export` ({} if none)."""
    asset = os.path.join(os.fspath(path), ASSET)
    if not os.path.isfile(asset):
        return {}
    if os.path.islink(asset) or os.path.islink(os.path.dirname(asset)):
        raise _common.ExportError(f"{asset}: a link (it could point at any file); an export writes a plain file")
    try:
        with open(asset) as f:
            return json.load(f)
    except (UnicodeDecodeError, ValueError) as e:
        raise _common.ExportError(f"{asset}: not a JSON metadata file ({e})") from None


def runtime_name():
    import tensorflow as tf

    return f"tensorflow {tf.__version__} (tf.saved_model.load, serving_default)"


class SavedModelRunner(Runner):
    """Runs the `serving_default` signature of a SavedModel with TensorFlow (its own thread pool).

    A SavedModel is a program: unless `trust=True`, its graph is checked first
    (`graph_check.check_saved_model`: only the ops an fcn_keras export holds, else
    `UntrustedModelError`).
    """

    def __init__(self, path, num_threads=None, trust=False):
        import tensorflow as tf

        if not trust:
            check_saved_model(path)
        self._tf = tf
        self._loaded = tf.saved_model.load(os.fspath(path))
        self._fn = self._loaded.signatures["serving_default"]
        shape = self._fn.structured_input_signature[1]["image"].shape.as_list()
        self.fixed_size = tuple(shape[1:3]) if shape[1] and shape[2] else None

    def prepare(self, images):
        return self._tf.constant(images, self._tf.uint8)

    def run(self, prepared):
        out = self._fn(image=prepared)
        return out["labels"].numpy(), out["scores"].numpy()


runner = SavedModelRunner
