"""convolutionalize(): a Flatten/Dense classifier as an equivalent fully convolutional net."""

import keras
import numpy as np
import pytest
from keras import layers

import fcn_keras


def test_vgg16_at_224_gives_the_classifier_scores():
    keras.utils.set_random_seed(1)
    classifier = keras.applications.VGG16(weights=None, classifier_activation=None)
    fcn = fcn_keras.convolutionalize(classifier)
    assert [type(layer).__name__ for layer in fcn.layers[-3:]] == ["Conv2D"] * 3
    assert fcn.get_layer("fc1").kernel.shape == (7, 7, 512, 4096)
    x = np.random.default_rng(0).uniform(-120, 130, size=(2, 224, 224, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(classifier(x))
    got = keras.ops.convert_to_numpy(fcn(x))
    assert got.shape == (2, 1, 1, 1000)
    np.testing.assert_allclose(got[:, 0, 0], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # The paper's example: 384x384 gives a 6x6 map of class scores.
    assert fcn(np.zeros((1, 384, 384, 3), "float32")).shape == (1, 6, 6, 1000)


def _valid_classifier():
    """A classifier whose convolutions have no padding (stride 4, 32x32 windows)."""
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def test_each_cell_is_the_classifier_on_its_window():
    keras.utils.set_random_seed(2)
    classifier = _valid_classifier()
    fcn = fcn_keras.convolutionalize(classifier)
    image = np.random.default_rng(1).normal(size=(1, 56, 44, 3)).astype("float32")
    scores = keras.ops.convert_to_numpy(fcn(image))
    assert scores.shape == (1, 7, 4, 10)  # (56 - 32) / 4 + 1, (44 - 32) / 4 + 1
    windows = np.stack([image[0, 4 * i : 4 * i + 32, 4 * j : 4 * j + 32]
                        for i in range(7) for j in range(4)])
    expected = keras.ops.convert_to_numpy(classifier(windows)).reshape(7, 4, 10)
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-6)


def test_rejects_a_model_without_flatten_dense_head():
    inputs = keras.Input((8, 8, 3))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(ValueError, match="Flatten"):
        fcn_keras.convolutionalize(keras.Model(inputs, outputs))
    with pytest.raises(TypeError, match="keras.Model"):
        fcn_keras.convolutionalize("vgg16")
