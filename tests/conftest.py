"""Shared test helpers. `check_architecture` is the one battery every FCN passes."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import fcn_keras  # noqa: E402

# Sizes every architecture must map to same-size outputs: tiny, odd, non-multiples of 32.
SIZES = [(1, 1), (7, 9), (33, 47), (83, 117)]


def check_architecture(backbone, head, tmp_path, width=0.125, num_classes=5, fit_steps=16):
    """Builds, checks sizes, `.keras` round trip and that a short fit lowers the loss."""
    model = fcn_keras.build(backbone, head, num_classes=num_classes, width=width)
    assert isinstance(model, fcn_keras.FCN)
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        x = rng.integers(0, 256, size=(2, h, w, 3)).astype("uint8")
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == (2, h, w, num_classes), (backbone, head, (h, w), y.shape)
        assert y.dtype == np.float32
        assert np.isfinite(y).all()

    # Score layers start at zero: a fresh FCN predicts all-zero logits.
    np.testing.assert_array_equal(y, 0.0)

    # Give the score layers weights so the round trip compares something non-trivial.
    for layer in model.layers:
        if layer.name.startswith("score_") and layer.weights:
            layer.set_weights([rng.normal(0, 0.01, size=w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.integers(0, 256, size=(1, 45, 61, 3)).astype("uint8")
    before = keras.ops.convert_to_numpy(model(x))
    path = tmp_path / f"{backbone}_{head}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is fcn_keras.FCN
    assert (loaded.backbone_name, loaded.head_name, loaded.num_classes) == (backbone, head, num_classes)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), before)
    assert [w.name for w in loaded.non_trainable_weights] == [w.name for w in model.non_trainable_weights]

    # A short fit on random data lowers the loss (measured without dropout, before/after).
    # Images near the mean colour keep random-init activations small, so a large step is stable.
    mean_rgb = np.array([122.68, 116.67, 104.01], "float32")
    images = (mean_rgb + rng.normal(0, 2, size=(4, 32, 36, 3))).astype("float32")
    # Skewed labels: even learning the class frequencies lowers the loss below log(C).
    labels = rng.choice(num_classes, size=(4, 32, 36), p=[0.6] + [0.4 / (num_classes - 1)] * (num_classes - 1))
    labels = labels.astype("int32")
    labels[:, :4] = 255  # ignored pixels
    model.compile(optimizer=keras.optimizers.Adam(2e-3), metrics=[])
    loss0 = model.evaluate(images, labels, batch_size=2, verbose=0)
    model.fit(images, labels, batch_size=2, epochs=fit_steps // 2, verbose=0)
    loss1 = model.evaluate(images, labels, batch_size=2, verbose=0)
    assert np.isfinite(loss1) and loss1 < loss0 - 0.05, (loss0, loss1)
    return model


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A private KERAS_HOME so no test reads or writes the user's cache."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
