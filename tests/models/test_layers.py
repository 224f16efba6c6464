"""The custom layers against NumPy definitions of Caffe's operations."""

import keras
import numpy as np
import pytest

from fcn_keras.models.layers import LRN, BilinearInitializer, CropToLike, GroupConv2D, Preprocess, bilinear_kernel, caffe_max_pool


def test_bilinear_kernel_is_the_reference_interp():
    k = bilinear_kernel(4, 2)
    profile = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(k[:, :, 0, 0], np.outer(profile, profile))
    assert k[:, :, 0, 1].sum() == 0 and k[:, :, 1, 0].sum() == 0
    odd = bilinear_kernel(3, 1)[:, :, 0, 0]
    np.testing.assert_allclose(odd, np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5]))
    with pytest.raises(ValueError, match="square kernel"):
        BilinearInitializer()((4, 4, 2, 3))


def _caffe_pool(x, k, s):
    n, h, w, c = x.shape
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    out = np.empty((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * s : min(i * s + k, h), j * s : min(j * s + k, w)].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("k,s", [(3, 2), (2, 2)])
@pytest.mark.parametrize("h,w", [(5, 6), (7, 7), (8, 13), (2, 3)])
def test_caffe_ceil_pooling(k, s, h, w):
    x = np.random.default_rng(h * w).uniform(0, 1, size=(2, h, w, 3)).astype("float32")
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, caffe_max_pool(inputs, k, s, name="pool"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), _caffe_pool(x, k, s))


def test_lrn_is_caffes_across_channels():
    x = np.random.default_rng(0).uniform(0, 50, size=(1, 3, 4, 7)).astype("float32")
    y = keras.ops.convert_to_numpy(LRN(5, 1e-4, 0.75)(x))
    sq = np.pad(x**2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window = sum(sq[..., i : i + 7] for i in range(5))
    np.testing.assert_allclose(y, x / (1 + 1e-4 / 5 * window) ** 0.75, rtol=1e-6)


def test_group_conv_equals_two_convs():
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 6)).astype("float32")
    layer = GroupConv2D(4, 3, groups=2)
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 3, 4)
    ref = keras.layers.Conv2D(4, 3, padding="same", groups=2)
    ref.build((None, 9, 9, 6))
    ref.set_weights([kernel, bias])
    np.testing.assert_allclose(y, keras.ops.convert_to_numpy(ref(x)), rtol=1e-5, atol=1e-5)


def test_crop_and_preprocess():
    x = np.arange(2 * 10 * 12 * 1, dtype="float32").reshape(2, 10, 12, 1)
    like = np.zeros((2, 4, 5, 3), "float32")
    np.testing.assert_array_equal(CropToLike(3)([x, like]), x[:, 3:7, 3:8])
    rgb = np.array([[[[10, 20, 30]]]], "uint8")
    np.testing.assert_allclose(Preprocess(mean=(1, 2, 3))(rgb), [[[[29, 18, 7]]]])
