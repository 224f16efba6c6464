"""Helpers for the export tests: small FCNs (width 0.125, 4 classes) with random weights.

A freshly built FCN has zero-initialised score layers (all logits 0), so every trainable
kernel is re-drawn He-normal (seeded): the logits then vary per pixel and class. Random nets
have many near-tie pixels, so the int8 tests check label agreement on pixels whose Keras
margin is wide (export-notes §6) besides the overall agreement.
"""

import numpy as np

SMALL = dict(num_classes=4, width=0.125)
FAST_VERIFY = dict(verify_images=2, verify_sizes=(None, (83, 117)))


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.trainable:
            continue  # the fixed bilinear deconvolutions keep their kernels
        for w in layer.weights:
            if "kernel" in w.path:
                fan_in = int(np.prod(w.shape[:-1]))
                w.assign(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype("float32"))
            elif "bias" in w.path:
                w.assign(rng.normal(0, 0.05, w.shape).astype("float32"))
    return model


_CACHE = {}


def small_model(backbone, head, seed=0):
    key = (backbone, head, seed)
    if key not in _CACHE:
        import keras

        import fcn_keras

        keras.utils.set_random_seed(seed)
        _CACHE[key] = randomize(fcn_keras.build(backbone, head, **SMALL), seed)
    return _CACHE[key]


