"""SavedModel for servers (TF Serving / `tf.saved_model.load`).

Signature `serving_default`: image uint8 (N, H, W, 3) any N, H, W -> {"labels", "scores"}.
Each weight is stored once: a `tf.Module` tracks the model's variables and a `tf.function`
endpoint, saved with `tf.saved_model.save` (Keras' own `model.export` stores every weight
twice today, keras-team/keras#23553). Class names and palette are stored three ways:
variables `class_names` / `palette` of the loaded object, the asset `assets/fcn_keras.json`,
and the JSON next to the directory (`<path>.json`).
"""

import json
import os
import shutil

import numpy as np

from . import _common


def _build_module(model, class_names, palette, input_size=None, input_dtype="uint8", meta=None):
    import tensorflow as tf

    serve = _common.serving_fn(model, input_dtype=input_dtype)
    module = tf.Module(name="fcn_keras_serving")
    # the backing tf.Variables, tracked once (keras Variable.value is the tf.Variable on TF)
    module.model_variables = [v.value for v in model.weights]
    module.class_names = tf.Variable(list(class_names), trainable=False, name="class_names")
    module.palette = tf.Variable(np.asarray(palette, np.uint8), trainable=False, name="palette")
    module.serve = tf.function(serve, input_signature=[_common.input_spec(input_size, input_dtype)])
    return module


def write_saved_model(model, tmp_dir, class_names, palette, input_size=None, input_dtype="uint8",
                      meta=None):
    """Writes the SavedModel directory tmp_dir (no checks, no atomicity: callers do that)."""
    import tensorflow as tf

    module = _build_module(model, class_names, palette, input_size, input_dtype)
    asset_dir = None
    if meta is not None:  # the asset keeps its base name: write it as fcn_keras.json in a scratch dir
        asset_dir = tmp_dir + ".assets"
        os.makedirs(asset_dir)
        asset_src = os.path.join(asset_dir, "fcn_keras.json")
        with open(asset_src, "w") as f:
            json.dump(meta, f, indent=2)
        module.metadata_file = tf.saved_model.Asset(asset_src)
    try:
        signatures = {"serving_default": module.serve.get_concrete_function()}
        tf.saved_model.save(module, tmp_dir, signatures=signatures)
    finally:
        if asset_dir is not None:
            shutil.rmtree(asset_dir, ignore_errors=True)
    return tmp_dir


def load_metadata(path):
    """class names, palette and the rest of the export metadata of an exported SavedModel."""
    p = os.path.join(os.fspath(path), "assets", "fcn_keras.json")
    with open(p) as f:
        return json.load(f)
