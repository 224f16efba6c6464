"""The compiled call `Predictor` computes with (`fcn_keras.inference.CompiledCall`): the same
logits as the model's own eager call on every backbone at odd sizes, compiled once per input
shape, and the tiles of two images with the same size modulo 32 reuse one set of compiled
shapes. Runs on any Keras backend (`KERAS_BACKEND=jax pytest tests/test_inference.py`)."""

import keras
import numpy as np
import pytest

from fcn_keras import tiling
from fcn_keras.inference import CompiledCall
from fcn_keras.models import registry
from fcn_keras.models.fcn import FCN
from fcn_keras.predict import Predictor
from tests.conftest import random_scores

RTOL = 1e-5  # of the largest logit
COMPILES = keras.backend.backend() in ("tensorflow", "jax")


def _model(backbone, head="8s", preprocessing=True):
    keras.utils.set_random_seed(0)
    return random_scores(FCN(backbone, head, num_classes=5, width=0.0625,
                             include_preprocessing=preprocessing))


def _images(h, w, n=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _plain(model, images):
    """The model's own eager call (what Predictor computed with before the compiled call)."""
    return np.asarray(keras.ops.convert_to_numpy(model(images, training=False)), np.float32)


def _check_equal(got, want):
    assert np.abs(want).max() > 0.01  # a model that says something
    assert float(np.abs(got - want).max()) <= RTOL * np.abs(want).max()
    top2 = np.sort(want, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4 * np.abs(want).max()
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(got.argmax(-1)[clear], want.argmax(-1)[clear])


@pytest.mark.parametrize("backbone", registry.backbones())
def test_compiled_call_equals_the_plain_call(backbone):
    model = _model(backbone)
    for xla_after in (None, 1):  # TensorFlow: the graph (a shape's first call), then XLA
        call = CompiledCall(model, xla_after=xla_after)
        for h, w in [(1, 1), (33, 47)]:
            images = _images(h, w, n=2, seed=h)
            _check_equal(call(images), _plain(model, images))


def test_a_model_without_preprocessing_gets_it_in_front():
    from fcn_keras.models.layers import Preprocess

    model = _model("alexnet", "32s", preprocessing=False)
    images = _images(45, 38)
    want = _plain(model, Preprocess()(images))
    _check_equal(CompiledCall(model, xla_after=1)(images), want)


def test_one_compilation_per_shape_and_the_graph_first():
    model = _model("alexnet", "32s")
    call = CompiledCall(model)  # the default: TensorFlow compiles a shape on its second call
    a, b = _images(40, 50), _images(41, 50)
    call(a)
    first = call.compiles
    assert first == (1 if keras.backend.backend() == "jax" else 0)
    call(a), call(a), call(b), call(b), call(b)
    assert call.compiles == (2 if COMPILES else 0)


@pytest.mark.skipif(not COMPILES, reason="PyTorch runs eagerly: nothing is compiled")
def test_tiles_of_two_sizes_in_the_same_bucket_share_their_compilations():
    model = _model("alexnet", "8s")
    spec = tiling.tile_spec(model)
    call = CompiledCall(model, xla_after=1)

    def tiled(image):
        windows = set()
        for _, (iy0, iy1, ix0, ix1) in tiling.plan(*image.shape[:2], 32, spec):
            call(image[None, iy0:iy1, ix0:ix1])
            windows.add((iy1 - iy0, ix1 - ix0))
        return windows

    window = spec.before + 32 + spec.after
    # both larger than a window on both axes, and the same size modulo 32: the same window shapes
    first = tiled(_images(window + 70, window + 101)[0])
    assert call.compiles == len(first) == 4
    second = tiled(_images(window + 70 + 64, window + 101 + 32, seed=1)[0])
    assert second == first and call.compiles == 4
    tiled(_images(window + 75, window + 101, seed=2)[0])  # another size modulo 32: new edge windows
    assert call.compiles == 6


def test_predictor_computes_with_the_compiled_call():
    model = _model("alexnet", "32s")
    predictor = Predictor(model, max_size=0)
    image = _images(57, 70)[0]
    for _ in range(2):  # the first call of a shape and a later one (XLA on TensorFlow)
        labels, scores = predictor.predict(image)
        _check_equal(scores[None], _plain(model, image[None]))
    assert isinstance(predictor._call, CompiledCall)
    assert predictor._call.compiles == (1 if COMPILES else 0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the XLA choice is TensorFlow's")
def test_a_bfloat16_model_runs_as_the_graph():
    from fcn_keras.models.fcn import with_precision

    fast = with_precision(_model("alexnet", "32s"), "bfloat16")
    call = CompiledCall(fast, xla_after=1)
    images = _images(40, 52)
    got, want = call(images), _plain(fast, images)
    call(images)
    assert call.compiles == 0  # XLA's CPU backend is slow in bfloat16: never compiled
    assert float(np.abs(got - want).max()) <= 2e-2 * np.abs(want).max()


def test_tiles_run_as_the_graph_on_tensorflow():
    """Tiles bound memory; XLA's compiled shapes would add to it (Predictor sets xla_after=None)."""
    model = _model("alexnet", "32s")
    predictor = Predictor(model, max_size=0, tile=32)
    calls = [predictor._call] + (predictor._staged.calls if predictor._staged else [])  # staged: its pieces
    image = _images(40, 52)[0]
    predictor.predict(image)
    first = [c.compiles for c in calls]
    for _ in range(2):
        labels, scores = predictor.predict(image)
    _check_equal(scores[None], _plain(model, image[None]))
    assert [c.compiles for c in calls] == first  # repeated shapes add nothing (jax.jit: one per shape)
    if keras.backend.backend() == "tensorflow":
        assert sum(first) == 0
