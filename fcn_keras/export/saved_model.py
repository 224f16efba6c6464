"""SavedModel for servers (TF Serving / `tf.saved_model.load`).

Signature `serving_default`: image uint8 (N, H, W, 3) any N, H, W -> {"labels", "scores"}.
Each weight is stored once: a `tf.Module` tracks the model's variables and a `tf.function`
endpoint, saved with `tf.saved_model.save` (Keras' own `model.export` stores every weight
twice today, keras-team/keras#23553). Class names and palette are stored three ways:
variables `class_names` / `palette` of the loaded object, the asset `assets/fcn_keras.json`
(the whole metadata), and the JSON next to the folder (`<path>.json`).
"""

import os
import shutil

import numpy as np

from . import _common


def _build_module(model, class_names, palette, input_size=None, input_dtype="uint8"):
    import tensorflow as tf

    serve = _common.serving_fn(model, input_dtype=input_dtype)
    module = tf.Module(name="fcn_keras_serving")
    # the backing tf.Variables, tracked once (keras Variable.value is the tf.Variable on TF)
    module.model_variables = [v.value for v in model.weights]
    module.class_names = tf.Variable(list(class_names), trainable=False, name="class_names")
    module.palette = tf.Variable(np.asarray(palette, np.uint8), trainable=False, name="palette")
    module.serve = tf.function(serve, input_signature=[_common.input_spec(input_size, input_dtype)])
    return module


def write_saved_model(model, folder, class_names, palette, input_size=None, input_dtype="uint8",
                      meta=None):
    """Writes the SavedModel `folder` (no checks, no atomicity: `export` does those).

    Args:
        model: the keras model.
        folder: the folder to create.
        class_names: C names; palette: uint8 (C, 3).
        input_size: None (any N, H, W) or (h, w): input (1, h, w, 3).
        input_dtype: "uint8", or "float32" for the full-int8 TFLite route.
        meta: metadata dict stored as the asset `assets/fcn_keras.json` (None: no asset).

    Returns:
        `folder`.
    """
    import tensorflow as tf

    module = _build_module(model, class_names, palette, input_size, input_dtype)
    scratch = None
    if meta is not None:  # an asset keeps its base name: write it as fcn_keras.json in a scratch folder
        scratch = folder + ".assets"
        os.makedirs(scratch)
        asset = os.path.join(scratch, _common.METADATA_NAME + ".json")
        with open(asset, "w") as f:
            f.write(_common.to_json(meta))
        module.metadata_file = tf.saved_model.Asset(asset)
    try:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.serve.get_concrete_function()})
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return folder
