"""Test-time augmentation (`Predictor(tta=...)`): softmax probabilities averaged over flips and
scales, composable with tiles."""

import keras
import numpy as np
import pytest

from fcn_keras.models.fcn import FCN
from fcn_keras.predict import TTA, Predictor, _softmax, resize_rows
from tests.conftest import random_scores


def _mirror_symmetric_net():
    """A fully convolutional net that commutes with horizontal flips: odd kernels symmetric
    left-right, 'same' padding at stride 1."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 5, padding="same", activation="relu")(x)
    out = keras.layers.Conv2D(4, 3, padding="same")(x)
    model = keras.Model(inp, out)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k, b = layer.get_weights()
            layer.set_weights([(k + k[:, ::-1]) / 2, b])
    return model


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_flip_tta_of_a_mirror_symmetric_net_changes_nothing():
    model = _mirror_symmetric_net()
    image = _image(37, 53)
    labels, scores = Predictor(model, max_size=0).predict(image)
    tl, ts = Predictor(model, max_size=0, tta="flip").predict(image)
    np.testing.assert_allclose(np.exp(ts), _softmax(scores), atol=1e-6)
    np.testing.assert_array_equal(tl, labels)


def test_flip_and_scales_average_the_probabilities():
    model = random_scores(FCN("alexnet", "8s", num_classes=4, width=0.0625))
    image = _image(64, 96, seed=1)
    plain = Predictor(model, max_size=0)
    _, ts = Predictor(model, max_size=0, tta="flip,scales=0.5,1").predict(image)
    parts = []
    for scale in (0.5, 1.0):
        size = (round(64 * scale), round(96 * scale))
        x = image if scale == 1 else np.asarray(
            __import__("PIL.Image", fromlist=["Image"]).fromarray(image).resize(size[::-1], 2))
        for flip in (False, True):
            s = plain._scores(np.ascontiguousarray(x[:, ::-1]) if flip else x)
            p = _softmax(s[:, ::-1] if flip else s)
            parts.append(np.concatenate([r for _, _, r in resize_rows(p, 64, 96)]))
    np.testing.assert_allclose(np.exp(ts), np.mean(parts, 0), rtol=1e-4, atol=1e-6)
    # the flip is not a no-op on this (asymmetric) net
    _, flipped_only = Predictor(model, max_size=0, tta="flip").predict(image)
    assert np.abs(np.exp(flipped_only) - parts[2]).max() > 1e-4


def test_tta_composes_with_tiles():
    model = random_scores(FCN("alexnet", "32s", num_classes=4, width=0.0625))
    image = _image(150, 170, seed=2)
    _, whole = Predictor(model, max_size=0, tta="flip,scales=0.75,1").predict(image)
    _, tiled = Predictor(model, max_size=0, tta="flip,scales=0.75,1", tile=64).predict(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_tta_specs():
    assert (TTA.parse("flip").flip, TTA.parse("flip").scales) == (True, (1.0,))
    t = TTA.parse("flip,scales=0.5,0.75,1,1.25,1.5")
    assert t.flip and t.scales == (0.5, 0.75, 1.0, 1.25, 1.5)
    assert str(t) == "flip,scales=0.5,0.75,1,1.25,1.5"
    assert TTA.parse("scales=1,2").flip is False
    for bad in ("mirror", "flip,scales=a", "scales=0", "flip,scales=-1", ""):
        with pytest.raises(ValueError, match="tta|scales"):
            TTA.parse(bad)
