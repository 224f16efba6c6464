"""bfloat16 FCNs (`with_precision`, `FCN(dtype=...)`; `build(dtype=...)` is in tests/test_api.py): every custom layer
computes in bfloat16, the logits stay float32, `.keras` files keep the precision, and the labels
follow float32's wherever its top two scores are apart. Backend-neutral (runs on JAX too)."""

import keras
import numpy as np
import pytest
from keras import ops

import fcn_keras
from fcn_keras.models import PRECISIONS, native_bfloat16, with_precision
from fcn_keras.models.layers import Conv2DTranspose
from tests.conftest import random_scores as _random_scores

MARGIN = 0.05  # the export verifier's wide margin: 5% of the largest |logit|


def _image(h=67, w=91, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, h, w, 3)).astype("float32")


def _logits(model, x):
    return ops.convert_to_numpy(model(x, training=False))


def _compare(ref, got):
    """(relative max error, label agreement, agreement on pixels with a wide float32 margin)."""
    top2 = np.sort(ref, -1)[..., -2:]
    wide = top2[..., 1] - top2[..., 0] > MARGIN * np.abs(ref).max()
    same = ref.argmax(-1) == got.argmax(-1)
    return np.abs(got - ref).max() / np.abs(ref).max(), same.mean(), same[wide].mean()


# AlexNet has every custom layer (Preprocess, GroupConv2D, LRN, Conv2DTranspose, CropToLike). On
# JAX, XLA:CPU's bfloat16 convolutions make GoogLeNet's first call take minutes (measured: 411 s
# on the loaded 2-core machine), VGG16's 1.5 min: those two run on TensorFlow only.
SLOW_ON_JAX = pytest.mark.skipif(keras.backend.backend() == "jax", reason="XLA:CPU bfloat16 convs: minutes")


@pytest.mark.parametrize("backbone", ["alexnet", pytest.param("vgg16", marks=SLOW_ON_JAX),
                                      pytest.param("googlenet", marks=SLOW_ON_JAX)])
def test_bfloat16_copy_computes_in_bfloat16_with_float32_logits(backbone):
    model = _random_scores(fcn_keras.build(backbone, "8s", num_classes=3, width=0.0625))
    before = keras.config.dtype_policy().name
    fast = with_precision(model, "bfloat16")
    assert keras.config.dtype_policy().name == before  # the policy is restored
    assert fast is not model and fast.dtype_policy.name == "bfloat16"
    assert {w.dtype for w in fast.weights} == {"bfloat16"}  # half the memory
    assert {w.dtype for w in model.weights} == {"float32"}  # the original is untouched
    x = _image()
    ref, got = _logits(model, x), _logits(fast, x)
    assert got.dtype == np.float32 and got.shape == ref.shape == (1, 67, 91, 3)
    rel, agree, wide = _compare(ref, got)
    assert 1e-4 < rel < 0.05, rel  # bfloat16 really computed (not float32), and close
    assert agree > 0.95 and wide == 1.0, (agree, wide)


def test_keras_file_keeps_the_precision(tmp_path):
    fast = with_precision(_random_scores(fcn_keras.build("alexnet", "16s", num_classes=3, width=0.0625)),
                          "bfloat16")
    path = str(tmp_path / "m.keras")
    fast.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.dtype_policy.name == "bfloat16" and {w.dtype for w in loaded.weights} == {"bfloat16"}
    x = _image(40, 52)
    np.testing.assert_allclose(_logits(loaded, x), _logits(fast, x), rtol=0, atol=1e-6)
    mixed = with_precision(loaded, "mixed_bfloat16")  # a training policy: saved as float32
    assert mixed.get_layer("conv1").compute_dtype == "bfloat16"
    assert mixed.get_config()["dtype"] == "float32"
    back = with_precision(loaded, "float32")
    assert {w.dtype for w in back.weights} == {"float32"}
    assert with_precision(back, "float32") is back


def test_dense_upsampling_kernel_stays_dense():
    """A non-diagonal (e.g. random Caffe) deconvolution kernel takes the dense path in the copy too."""
    model = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    _random_scores(model)
    up = model.get_layer("upscore")
    up.set_weights([np.random.default_rng(2).normal(0, 0.01, up.kernel.shape).astype("float32")])
    assert not up.channelwise
    fast = with_precision(model, "bfloat16")
    assert not fast.get_layer("upscore").channelwise
    assert isinstance(fast.get_layer("upscore"), Conv2DTranspose)
    x = _image(45, 45)
    rel, _, wide = _compare(_logits(model, x), _logits(fast, x))
    assert rel < 0.05 and wide == 1.0


@pytest.mark.parametrize("dtype", ["int8", "int8_from_float32", "half-float", 3])
def test_bad_dtype_is_named(dtype):
    with pytest.raises(ValueError, match="`dtype` must be a Keras float dtype policy"):
        fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625, dtype=dtype)
    with pytest.raises(ValueError, match="`dtype` must be"):
        with_precision(fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625), dtype)


def test_with_precision_needs_an_fcn():
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ValueError, match="`model` must be an fcn_keras FCN"):
        with_precision(plain, "bfloat16")
    with pytest.raises(ValueError, match="Received: dtype=None"):
        with_precision(fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625), None)


def test_every_listed_precision_builds_and_copies():
    """`PRECISIONS` (what the command line and the docs offer) are precisions a model really
    takes: built in one, or copied into it, its weights are of that dtype."""
    assert "float32" in PRECISIONS and "bfloat16" in PRECISIONS
    model = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    for name in PRECISIONS:
        built = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625, dtype=name)
        copied = with_precision(model, name)
        for m in (built, copied):
            assert m.dtype_policy.name == name and {w.dtype for w in m.weights} == {name}, name


def test_native_bfloat16_reads_the_cpu_flags(tmp_path):
    for flags, expected in [("fpu avx2 fma", []), ("avx2 avx512f avx512_bf16 amx_bf16", ["avx512_bf16", "amx_bf16"])]:
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
        assert native_bfloat16(str(path)) == expected
    assert native_bfloat16(str(tmp_path / "missing")) is None
