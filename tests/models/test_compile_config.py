"""A compiled FCN saved to `.keras` reloads compiled with its optimizer and its state, and trains on."""

import keras
import numpy as np
import pytest

import fcn_keras


def _data(num_classes=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 24, 28, 3)).astype("float32")
    labels = rng.integers(0, num_classes, size=(2, 24, 28)).astype("int32")
    return images, labels


def _fit_save_load(model, path):
    images, labels = _data()
    model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    model.save(path)
    return keras.models.load_model(path), images, labels


def test_adam_and_its_state_survive_a_round_trip(tmp_path):
    model = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-4), metrics=[])
    loaded, images, labels = _fit_save_load(model, tmp_path / "adam.keras")
    assert loaded.compiled and isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(3e-4)
    assert int(loaded.optimizer.iterations) == 1
    saved = {v.path: keras.ops.convert_to_numpy(v) for v in model.optimizer.variables}
    restored = {v.path: keras.ops.convert_to_numpy(v) for v in loaded.optimizer.variables}
    assert saved.keys() == restored.keys()
    moments = [p for p in saved if "momentum" in p or "velocity" in p]
    assert moments and any(np.abs(saved[p]).max() > 0 for p in moments)
    for p in saved:
        np.testing.assert_array_equal(restored[p], saved[p])
    loaded.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert int(loaded.optimizer.iterations) == 2


def test_the_papers_default_compile_survives_a_round_trip(tmp_path):
    model = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    model.compile()
    loaded, images, labels = _fit_save_load(model, tmp_path / "paper.keras")
    opt = loaded.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and int(opt.iterations) == 1
    assert float(opt.learning_rate) == pytest.approx(1.875e-5)
    assert float(opt.momentum) == pytest.approx(0.99) and float(opt.weight_decay) == pytest.approx(5e-4)
    # Biases stay excluded from weight decay, as in compile().
    bias = loaded.get_layer("fc7").bias
    kernel = loaded.get_layer("fc7").kernel
    assert not opt._use_weight_decay(bias) and opt._use_weight_decay(kernel)
    history = loaded.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert int(opt.iterations) == 2 and np.isfinite(history.history["loss"][0])
    assert set(history.history) == {"loss", "pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}
