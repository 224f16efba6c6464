"""`weights_follow()`: a net whose weights are loaded right after is built without drawing its
random kernels (`fcn_keras.build(weights=...)`, `.keras` files, `with_precision`), with the same
layers, names and config; a net built without weights still gets random kernels."""

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras.models import FCN, build_backbone, with_precision
from fcn_keras.models.deferred_init import Unset, weights_follow
from fcn_keras.models.saving import load_keras

WIDTH = 0.125


@pytest.fixture
def draws(monkeypatch):
    """Counts the random kernel draws (Keras' glorot_uniform, the backbones' declared initializer)."""
    calls = []
    draw = keras.initializers.GlorotUniform.__call__

    def counted(self, shape, dtype=None):
        calls.append(tuple(shape))
        return draw(self, shape, dtype=dtype)

    monkeypatch.setattr(keras.initializers.GlorotUniform, "__call__", counted)
    return calls


def _kernels(model):
    return {layer.name: keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers
            if hasattr(layer, "kernel") and not layer.name.startswith(("score", "upscore"))}


@pytest.mark.parametrize("backbone", ["vgg16", "alexnet", "googlenet"])
def test_within_the_kernels_are_zeros_and_the_config_is_unchanged(backbone):
    with weights_follow():
        follow = FCN(backbone, "32s", 5, width=WIDTH)
    plain = FCN(backbone, "32s", 5, width=WIDTH)
    assert follow.get_config() == plain.get_config()
    assert [layer.get_config() for layer in follow.layers] == [layer.get_config() for layer in plain.layers]
    assert not any(isinstance(getattr(layer, "kernel_initializer", None), Unset) for layer in follow.layers)
    zeros, drawn = _kernels(follow), _kernels(plain)
    assert zeros.keys() == drawn.keys() and len(zeros) > 3
    assert all(not k.any() for k in zeros.values())
    assert all(k.std() > 0 for k in drawn.values())  # outside: random, as before


def test_backbone_alone_restores_its_initializers():
    with weights_follow():
        follow = build_backbone("alexnet", width=WIDTH)
    plain = build_backbone("alexnet", width=WIDTH)
    assert [layer.get_config() for layer in follow.layers] == [layer.get_config() for layer in plain.layers]


def test_build_without_weights_draws_every_backbone_kernel(draws):
    a = fcn_keras.build("vgg16", "8s", num_classes=3, width=WIDTH)
    assert len(draws) == 15  # 13 convolutions, fc6, fc7
    b = fcn_keras.build("vgg16", "8s", num_classes=3, width=WIDTH)
    assert all(not np.array_equal(x, y) for x, y in zip(_kernels(a).values(), _kernels(b).values()))


def test_build_with_a_weights_file_draws_nothing_and_loads_it(tmp_path, draws):
    source = fcn_keras.build("alexnet", "8s", num_classes=3, width=WIDTH)
    path = str(tmp_path / "run.weights.h5")
    source.save_weights(path)
    del draws[:]
    model = fcn_keras.build("alexnet", "8s", num_classes=3, width=WIDTH, weights=path)
    assert draws == []
    assert model.get_config() == source.get_config()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), source.get_weights()))


def test_keras_file_and_precision_copy_draw_nothing(tmp_path, draws):
    source = fcn_keras.build("vgg16", "16s", num_classes=3, width=WIDTH)
    path = str(tmp_path / "m.keras")
    source.save(path)
    del draws[:]
    loaded = load_keras(path)
    copy = with_precision(source, "bfloat16")
    assert draws == []
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), source.get_weights()))
    assert copy.get_config() == {**source.get_config(), "dtype": "bfloat16"}
    fcn_keras.build("vgg16", "16s", num_classes=3, width=WIDTH)  # later, without weights: drawn again
    assert len(draws) == 15


def test_a_file_that_does_not_fit_still_fails_clearly(tmp_path):
    other = fcn_keras.build("vgg16", "8s", num_classes=4, width=WIDTH)
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ValueError, match="other.weights.h5"):
        fcn_keras.build("vgg16", "8s", num_classes=3, width=WIDTH, weights=path)


def test_a_file_with_nan_is_refused_and_a_model_keeps_its_weights(tmp_path):
    source = fcn_keras.build("alexnet", "32s", num_classes=3, width=WIDTH)
    kernel = source.get_layer("fc7").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    path = str(tmp_path / "nan.weights.h5")
    source.save_weights(path)
    with pytest.raises(fcn_keras.weights.WeightsMismatchError, match="fc7"):
        fcn_keras.build("alexnet", "32s", num_classes=3, width=WIDTH, weights=path)
    model = fcn_keras.build("alexnet", "32s", num_classes=3, width=WIDTH)
    before = model.get_weights()
    with pytest.raises(fcn_keras.weights.WeightsMismatchError, match="NaN"):
        fcn_keras.weights.load(model, path)  # backup: all or nothing on a model of the caller's
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
