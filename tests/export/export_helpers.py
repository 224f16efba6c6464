"""Helpers for the export tests: small FCNs (width 0.125, 4 classes) with random weights.

A freshly built FCN has zero-initialised score layers (all logits 0), so every trainable
kernel is re-drawn He-normal (seeded): the logits then vary per pixel and class. Random nets
have many near-tie pixels, so the int8 tests check label agreement on pixels whose Keras
margin is wide besides the overall agreement. `benchmarks/export_benchmark.py` imports
`randomize` from here (by path).
"""

import numpy as np

from fcn_keras.export import Verification

SMALL = dict(num_classes=4, width=0.125)
FAST_VERIFY = Verification(num_images=2, sizes=(None, (83, 117)))
RTOL = 1e-4  # float32 exports: max |export - Keras| <= RTOL * max |Keras| (different kernels)


def randomize(model, seed=0, bias_std=0.05):
    """Re-draws every trainable kernel He-normal and every bias N(0, bias_std), seeded; returns model.

    The fixed bilinear deconvolutions (not trainable) keep their kernels.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.trainable:
            continue
        for w in layer.weights:
            if "kernel" in w.path:
                fan_in = int(np.prod(w.shape[:-1]))
                w.assign(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype("float32"))
            elif "bias" in w.path:
                w.assign(rng.normal(0, bias_std, w.shape).astype("float32"))
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


def assert_scores_close(actual, expected, rtol=RTOL):
    """Max |actual - expected| within rtol of the largest |expected| (float outputs of two graphs)."""
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err, scale = float(np.abs(actual - expected).max()), float(np.abs(expected).max())
    assert err <= rtol * scale, f"max abs difference {err:.3g} > {rtol} * max |expected| {scale:.3g}"


def assert_labels_agree(labels, logits, min_agreement=0.999, margin=0.05):
    """Labels equal the argmax of `logits` on every pixel whose top-1 / top-2 margin exceeds
    `margin` of the largest |logit| (near ties may flip between kernels), and on at least
    `min_agreement` of all pixels."""
    labels, logits = np.asarray(labels), np.asarray(logits)
    top2 = np.sort(logits, axis=-1)[..., -2:]
    wide = top2[..., 1] - top2[..., 0] > margin * np.abs(logits).max()
    same = labels == logits.argmax(-1)
    assert wide.any() and same[wide].all(), (wide.mean(), same[wide].mean())
    assert same.mean() >= min_agreement, same.mean()
