"""`fcn_keras.build()`: bad arguments give ValueErrors that name the argument, the value and the
choices; weights, zoo names and `dtype` are applied as documented; defaults of positional calls."""

import numpy as np
import pytest
from keras import ops

import fcn_keras
from tests.conftest import random_scores as _random_scores


@pytest.mark.parametrize("kwargs,match", [
    (dict(backbone="resnet50", head="8s"), r"Unknown backbone.*'vgg16', 'alexnet', 'googlenet'.*resnet50"),
    (dict(backbone="alexnet", head="8s-atonce"), r"Unknown head for backbone 'alexnet'.*'32s', '16s', '8s'"),
    (dict(backbone="vgg16", head="4s"), r"Unknown head.*4s"),
    (dict(backbone="vgg16", head="8s", num_classes=0), r"num_classes.*positive integer.*0"),
    (dict(backbone="vgg16", head="8s", num_classes=2.5), r"num_classes.*2\.5"),
    (dict(backbone="vgg16", head="8s", num_classes=256), r"at most 255"),
    (dict(backbone="vgg16", head="8s", input_shape=(None, None, 4)), r"input_shape.*\(None, None, 4\)"),
    (dict(backbone="vgg16", head="8s", input_shape=(64, 0, 3)), r"input_shape"),
    (dict(backbone="vgg16", head="8s", input_shape=(64, 3)), r"input_shape"),
    (dict(backbone="vgg16", head="8s", width=0), r"width"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fcn_keras.build(**kwargs)


def test_fixed_input_shape_and_uint8_input():
    model = fcn_keras.build("alexnet", "32s", num_classes=3, input_shape=(50, 70, 3), width=0.125)
    assert model.input_shape == (None, 50, 70, 3)
    x = np.random.default_rng(0).integers(0, 256, size=(1, 50, 70, 3))
    np.testing.assert_array_equal(model(x.astype("uint8")), model(x.astype("float32")))


def test_weights_that_do_not_fit_name_the_layer_and_both_shapes(tmp_path):
    path = tmp_path / "five.weights.h5"
    fcn_keras.build("vgg16", "32s", num_classes=5, width=0.125).save_weights(path)
    with pytest.raises(ValueError) as err:
        fcn_keras.build("vgg16", "32s", num_classes=6, width=0.125, weights=str(path))
    message = str(err.value)
    assert "score_fr" in message and "(1, 1, 512, 6)" in message and "(1, 1, 512, 5)" in message


def test_weights_round_trip_through_a_keras_file(tmp_path):
    model = fcn_keras.build("googlenet", "8s", num_classes=4, width=0.125)
    model.get_layer("score_fr").set_weights([np.full((1, 1, 128, 4), 0.01, "float32"), np.arange(4, dtype="float32")])
    model.save(tmp_path / "g.keras")
    again = fcn_keras.build("googlenet", "8s", num_classes=4, width=0.125, weights=str(tmp_path / "g.keras"))
    x = np.random.default_rng(0).integers(0, 256, size=(1, 37, 41, 3)).astype("float32")
    np.testing.assert_array_equal(again(x), model(x))


@pytest.mark.parametrize("kwargs,match", [
    (dict(backbone="alexnet", weights="voc-fcn8s"),
     r"`backbone` conflicts with the zoo entry 'voc-fcn8s'\. Expected backbone='vgg16'.*Received: backbone='alexnet'"),
    (dict(head="32s", weights="voc-fcn8s"), r"Expected head='8s'.*Received: head='32s'"),
    (dict(backbone="vgg16", head="8s", num_classes=5, weights="voc-fcn8s"),
     r"Expected num_classes=21.*Received: num_classes=5"),
    (dict(head="8s", weights="siftflow-fcn8s", num_classes=21), r"Expected num_classes=33.*Received: num_classes=21"),
    (dict(head="8s", weights="alexnet-imagenet", backbone="vgg16"), r"Expected backbone='alexnet'"),
    (dict(weights="vgg16-imagenet"), r"`head` is required.*Received: head=None, weights='vgg16-imagenet'"),
    (dict(head="8s"), r"`backbone` is required.*Received: backbone=None"),
])
def test_zoo_name_conflicts_fail_before_anything_is_built_or_downloaded(kwargs, match, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", "/nonexistent/keras_home")  # any download attempt would fail differently
    with pytest.raises(ValueError, match=match):
        fcn_keras.build(**kwargs)


def test_positional_build_keeps_its_defaults():
    model = fcn_keras.build("googlenet", "16s", width=0.125)
    assert (model.backbone_name, model.head_name, model.num_classes) == ("googlenet", "16s", 21)
    assert fcn_keras.build("vgg16", "8s", 4, None, (None, None, 3), False, width=0.125).num_classes == 4


def test_build_dtype_rounds_loaded_weights(tmp_path):
    model = _random_scores(fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625))
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    fast = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625, weights=path, dtype="bfloat16")
    assert fast.dtype_policy.name == "bfloat16"
    for a, b in zip(model.weights, fast.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(ops.cast(a, "bfloat16")).astype("float32"),
                                      ops.convert_to_numpy(b).astype("float32"))
    assert fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625, dtype="bfloat16").get_config()[
        "dtype"] == "bfloat16"
