"""Labels from a model on every backend: `label_function` (the argmax where the model runs)
and `predict_labels` (images -> uint8 class ids)."""

from __future__ import annotations

import keras
import numpy as np


def predict_labels(model, images, batch_size=1):
    """Class ids per pixel for RGB images.

    Args:
        model: a Keras model producing (N, H, W, C) scores from RGB pixel values 0..255.
        images: one (H, W, 3) image or a batch (N, H, W, 3), uint8 or float.
        batch_size: images per model call.

    Returns:
        uint8 labels, (N, H, W), or (H, W) for one image.
    """
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    labels_of = label_function(model)
    out = [labels_of(arr[i:i + batch_size].astype(np.float32)).astype(np.uint8)
           for i in range(0, len(arr), batch_size)]
    labels = np.concatenate(out, 0)
    return labels[0] if single else labels


def label_function(model):
    """A function `images (N, H, W, 3) numpy -> int32 class ids (N, H, W) numpy` for `model`.

    The argmax is taken where the model runs (in a `tf.function` on TensorFlow, under
    `jax.jit` on JAX, without autograd on PyTorch), so only the labels travel back to the host.
    Under a `keras.distribution` the JAX function computes on the distribution's devices.
    """
    backend = keras.backend.backend()
    return _LABELS_BY_BACKEND.get(backend, _eager_labels)(model)


def _tensorflow_labels(model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def labels(x):
        return tf.argmax(model(x, training=False), -1, output_type=tf.int32)

    return lambda x: labels(tf.convert_to_tensor(x, tf.float32)).numpy()


def _jax_labels(model):
    import jax

    @jax.jit
    def labels(trainable, non_trainable, x):
        logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return jax.numpy.argmax(logits, -1).astype("int32")

    def run(x):
        return np.asarray(labels([v.value for v in model.trainable_variables],
                                 [v.value for v in model.non_trainable_variables],
                                 np.asarray(x, np.float32)))

    return run


def _torch_labels(model):
    import torch

    eager = _eager_labels(model)

    def run(x):
        with torch.no_grad():
            return eager(x)

    return run


def _eager_labels(model):
    def run(x):
        logits = model(np.asarray(x, np.float32), training=False)
        return keras.ops.convert_to_numpy(keras.ops.argmax(logits, -1)).astype(np.int32)

    return run


_LABELS_BY_BACKEND = {"tensorflow": _tensorflow_labels, "jax": _jax_labels,
                      "torch": _torch_labels}
