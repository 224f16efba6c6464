"""The channel-wise upsampling layer against Keras' dense Conv2DTranspose."""

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras.models.layers import Conv2DTranspose, bilinear_kernel


def _pair(k, s, c, kernel):
    fast = Conv2DTranspose(c, k, strides=s, use_bias=False, name="up")
    dense = keras.layers.Conv2DTranspose(c, k, strides=s, use_bias=False, name="up")
    for layer in (fast, dense):
        layer.build((None, None, None, c))
        layer.set_weights([kernel])
    return fast, dense


def _rel_err(a, b):
    a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / np.abs(b).max())


# the reference nets' (k, s): VGG16 4/2, 16/8, 32/16, 64/32; AlexNet 63/32; and odd ones
@pytest.mark.parametrize("k,s", [(4, 2), (16, 8), (32, 16), (63, 32), (3, 2), (5, 2), (1, 1)])
def test_equals_dense_transposed_conv_on_odd_sizes(k, s):
    rng = np.random.default_rng(k * s)
    c = 3
    kernel = np.zeros((k, k, c, c), "float32")
    for i in range(c):  # any diagonal kernel, not only the bilinear one
        kernel[:, :, i, i] = rng.normal(size=(k, k))
    fast, dense = _pair(k, s, c, kernel)
    assert fast.kernel_is_channelwise()
    x = rng.normal(size=(2, 7, 5, c)).astype("float32")
    assert _rel_err(fast(x), dense(x)) <= 1e-5
    x = rng.normal(size=(1, 1, 3, c)).astype("float32")
    assert _rel_err(fast(x), dense(x)) <= 1e-5


def test_non_diagonal_kernel_falls_back_to_dense():
    kernel = bilinear_kernel(4, 2)
    kernel[:, :, 0, 1] = 0.5
    fast, dense = _pair(4, 2, 2, kernel)
    assert not fast.kernel_is_channelwise()
    x = np.random.default_rng(0).normal(size=(1, 5, 3, 2)).astype("float32")
    assert _rel_err(fast(x), dense(x)) <= 1e-6
    # weights assigned directly (as the Caffe loader does), then the path re-chosen
    diagonal = bilinear_kernel(4, 2)
    fast.kernel.assign(diagonal)
    dense.kernel.assign(diagonal)
    assert fast.kernel_is_channelwise() and fast.channelwise
    assert _rel_err(keras.ops.convert_to_numpy(fast(x)), dense(x)) <= 1e-6
    fast.kernel.assign(kernel)
    dense.kernel.assign(kernel)
    assert not fast.kernel_is_channelwise()
    assert _rel_err(keras.ops.convert_to_numpy(fast(x)), dense(x)) <= 1e-6


def test_weight_loaders_rechoose_the_path(tmp_path):
    # the Caffe / converted-weights loader assigns variables directly, then refreshes the path
    from fcn_keras.weights.mapping import assign

    model = fcn_keras.build("vgg16", "32s", num_classes=2, width=0.0625)
    up = model.get_layer("upscore")
    assert up.channelwise  # bilinear at build
    dense_kernel = np.random.default_rng(3).normal(size=up.kernel.shape).astype("float32")
    values = {layer.name: [np.asarray(w) for w in layer.get_weights()]  # loading is all or nothing
              for layer in model.layers if layer.weights}
    assign(model, {**values, "upscore": [dense_kernel]})
    assert not up.channelwise
    assign(model, {**values, "upscore": [bilinear_kernel(64, 2)]})
    assert up.channelwise


def test_rejects_what_it_does_not_compute():
    with pytest.raises(ValueError, match="padding='valid'"):
        Conv2DTranspose(3, 4, strides=2, padding="same")
    with pytest.raises(ValueError, match="expected 3 input channels"):
        Conv2DTranspose(3, 4, strides=2).build((None, 8, 8, 5))


def test_model_file_round_trip_keeps_layer_and_dense_kernel(tmp_path):
    model = fcn_keras.build("vgg16", "8s", num_classes=3, width=0.0625)
    up = model.get_layer("upscore8")
    assert isinstance(up, keras.layers.Conv2DTranspose) and up.kernel.shape == (16, 16, 3, 3)
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 37, 45, 3)).astype("float32")
    rng = np.random.default_rng(2)
    for w in model.weights:  # non-zero score layers, so the upsampling is exercised
        if w.path.startswith("score"):
            w.assign(rng.normal(size=w.shape).astype("float32"))
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert type(again.get_layer("upscore8")) is Conv2DTranspose
    assert again.get_layer("upscore8").kernel_is_channelwise()
    assert _rel_err(again(x), model(x)) <= 1e-6


def test_weight_files_are_those_of_keras_conv2d_transpose(tmp_path):
    # a file written with keras.layers.Conv2DTranspose loads into this layer and back
    def net(cls):
        inputs = keras.Input((None, None, 2))
        x = keras.layers.Conv2D(2, 1, name="score")(inputs)
        return keras.Model(inputs, cls(2, 4, strides=2, use_bias=False, name="upscore")(x))

    plain, fast = net(keras.layers.Conv2DTranspose), net(Conv2DTranspose)
    plain.get_layer("upscore").set_weights([bilinear_kernel(4, 2) * 3.0])
    plain.save_weights(tmp_path / "plain.weights.h5")
    fast.load_weights(tmp_path / "plain.weights.h5")
    np.testing.assert_array_equal(fast.get_layer("upscore").get_weights()[0], bilinear_kernel(4, 2) * 3.0)
    assert fast.get_layer("upscore").kernel_is_channelwise()
    x = np.random.default_rng(0).normal(size=(1, 5, 7, 2)).astype("float32")
    assert _rel_err(fast(x), plain(x)) <= 1e-6
    fast.save_weights(tmp_path / "fast.weights.h5")
    plain.load_weights(tmp_path / "fast.weights.h5")
