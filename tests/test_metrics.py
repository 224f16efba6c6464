"""The paper's four metrics against a hand-computed confusion matrix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from fcn_keras import metrics as M

# Ground truth / prediction for 8 pixels, 4 classes; two pixels are void (255).
Y_TRUE = np.array([[0, 0, 0, 1], [1, 2, 255, 255]])
Y_PRED = np.array([[0, 1, 0, 1], [1, 3, 2, 0]])
# Rows: ground truth, columns: prediction, over the 6 scored pixels:
#   gt 0: pred 0, pred 1, pred 0        gt 1: pred 1, pred 1      gt 2: pred 3
#   class 3 never appears in the ground truth but is predicted once.
HIST = np.array([[2, 1, 0, 0],
                 [0, 2, 0, 0],
                 [0, 0, 0, 1],
                 [0, 0, 0, 0]])
# pixel acc = (2+2+0)/6; class acc = 2/3, 2/2, 0/1, (0/0 skipped) -> mean 5/9
# IU: c0 2/(3+2-2)=2/3, c1 2/(2+3-2)=2/3, c2 0/(1+0-0)=0, c3 0/(0+1-0)=0 -> mean 1/3
# fw IU: freq 3/6, 2/6, 1/6, 0 -> 1/2*2/3 + 1/3*2/3 + 1/6*0 = 5/9
EXPECTED = {"pixel_accuracy": 4 / 6, "mean_accuracy": 5 / 9, "mean_iou": 1 / 3,
            "frequency_weighted_iou": 5 / 9}


def _logits(pred, c):
    return tf.one_hot(pred, c) * 5.0 - 1.0


def test_hand_computed_confusion_matrix():
    cm = M.ConfusionMatrix(4)
    cm.update_state(Y_TRUE, _logits(Y_PRED, 4))
    np.testing.assert_array_equal(cm.confusion_matrix(), HIST)


@pytest.mark.parametrize("metric", M.paper_metrics(4), ids=lambda m: m.name)
def test_hand_computed_scores(metric):
    metric.update_state(Y_TRUE, _logits(Y_PRED, 4))
    assert float(metric.result()) == pytest.approx(EXPECTED[metric.name], abs=1e-6)


def test_class_absent_from_truth_and_prediction_is_skipped():
    # a 5th class that never occurs changes nothing (0/0 is skipped by nanmean)
    for metric in M.paper_metrics(5):
        metric.update_state(Y_TRUE, _logits(Y_PRED, 5))
        assert float(metric.result()) == pytest.approx(EXPECTED[metric.name], abs=1e-6)
    s = M.scores_from_confusion(np.pad(HIST, ((0, 1), (0, 1))))
    assert np.isnan(s["per_class_iou"][4]) and s["per_class_iou"][3] == 0.0
    assert np.isnan(s["per_class_accuracy"][3])


def test_numpy_scores_match():
    s = M.scores_from_confusion(HIST)
    for k, v in EXPECTED.items():
        assert s[k] == pytest.approx(v)
    np.testing.assert_allclose(s["per_class_iou"], [2 / 3, 2 / 3, 0, 0])
    assert s["pixels"] == 6


def test_batches_accumulate_and_reset():
    m = M.MeanIoU(4)
    m.update_state(Y_TRUE[:1], _logits(Y_PRED[:1], 4))
    m.update_state(Y_TRUE[1:], _logits(Y_PRED[1:], 4))
    assert float(m.result()) == pytest.approx(1 / 3)
    m.reset_state()
    assert np.isnan(float(m.result()))  # nothing scored yet
    # class ids as predictions work too, and (N, H, W, 1) labels
    m.update_state(Y_TRUE, Y_PRED)
    assert float(m.result()) == pytest.approx(1 / 3)
    m.reset_state()
    m.update_state(Y_TRUE[..., None], _logits(Y_PRED, 4))
    assert float(m.result()) == pytest.approx(1 / 3)


def test_random_data_matches_reference_score_py():
    rng = np.random.default_rng(0)
    c = 6
    yt = rng.integers(0, c, (3, 17, 23))
    yt[rng.random(yt.shape) < 0.1] = 255
    yp = rng.integers(0, c, (3, 17, 23))
    # reference: score.py's fast_hist
    k = yt != 255
    hist = np.bincount(c * yt[k] + yp[k], minlength=c * c).reshape(c, c)
    want = M.scores_from_confusion(hist)
    for m in M.paper_metrics(c):
        m.update_state(yt, _logits(yp, c))
        assert float(m.result()) == pytest.approx(want[m.name], abs=1e-6)
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    assert want["mean_iou"] == pytest.approx(np.nanmean(iu))


def test_numpy_confusion_matrix_matches_the_keras_metric():
    """`metrics.confusion_matrix` (numpy, one image: viz.image_scores) counts what the metric counts."""
    rng = np.random.default_rng(3)
    c = 5
    yt = rng.integers(0, c, (2, 13, 11))
    yt[rng.random(yt.shape) < 0.2] = 255
    yp = rng.integers(0, c, yt.shape)
    keras_cm = M.ConfusionMatrix(c)
    keras_cm.update_state(yt, _logits(yp, c))
    hist = M.confusion_matrix(yt, yp, c)
    assert hist.shape == (c, c) and hist.dtype == np.int64
    np.testing.assert_array_equal(hist, keras_cm.confusion_matrix())
    assert hist.sum() == (yt != 255).sum() and hist[1, 2] == ((yt == 1) & (yp == 2)).sum()
    with pytest.raises(ValueError, match="differ in size"):
        M.confusion_matrix(yt, yp[:1], c)


def test_numpy_confusion_matrix_policy_is_the_metrics():
    """The one numpy confusion matrix follows the module's label policy: 255 not scored, any
    other label outside 0..C-1 an error naming it, predicted ids clipped (as the metric does);
    (N, H, W, 1) labels go with (N, H, W) predictions."""
    yt = np.array([[[0], [1], [255], [2]]])
    yp = np.array([[0, 7, 1, -1]])
    hist = M.confusion_matrix(yt, yp, 3)
    keras_cm = M.ConfusionMatrix(3)
    keras_cm.update_state(yt[..., 0], yp)
    np.testing.assert_array_equal(hist, keras_cm.confusion_matrix())
    assert hist[1, 2] == 1 and hist[2, 0] == 1 and hist.sum() == 3
    for bad in (3, -1):
        message = rf"0\.\.2 or the ignore label 255\. Received: label {bad} \(1 pixels\)"
        with pytest.raises(ValueError, match=message):
            M.confusion_matrix(np.array([[0, bad]]), np.array([[0, 0]]), 3)


def test_label_out_of_range_raises_with_value():
    m = M.PixelAccuracy(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside 0\.\.3[\s\S]*\b7\b"):
        m.update_state(np.array([[0, 7]]), np.array([[0, 0]]))


def test_usable_in_compile_and_evaluate():
    rng = np.random.default_rng(1)
    x = rng.random((4, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, (4, 8, 8))
    y[:, 0] = 255
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255),
                  metrics=M.paper_metrics(3))
    logs = model.evaluate(x, y, batch_size=2, return_dict=True, verbose=0)
    pred = np.argmax(model.predict(x, verbose=0), -1)
    k = y != 255
    hist = np.bincount(3 * y[k] + pred[k], minlength=9).reshape(3, 3)
    want = M.scores_from_confusion(hist)
    for name in EXPECTED:
        assert logs[name] == pytest.approx(want[name], abs=1e-5)
    # and fit runs with them
    model.fit(x, y, epochs=1, verbose=0)


def test_config_round_trip():
    m = M.FrequencyWeightedIoU(7, name="fwiu")
    m2 = M.FrequencyWeightedIoU.from_config(m.get_config())
    assert (m2.num_classes, m2.name) == (7, "fwiu")
    with pytest.raises(ValueError, match="num_classes"):
        M.MeanIoU(0)


def test_empty_matrix_scores_as_score_py():
    # score.py: freq = hist.sum(1) / hist.sum() is all NaN, no class has freq > 0, the
    # empty sum is 0; the accuracies and mean IU are NaN
    s = M.scores_from_confusion(np.zeros((3, 3)))
    assert s["frequency_weighted_iou"] == 0.0
    assert all(np.isnan(s[k]) for k in ("pixel_accuracy", "mean_accuracy", "mean_iou"))
    for m in M.paper_metrics(3):
        m.update_state(np.full((1, 2, 2), 255), np.zeros((1, 2, 2), "int32"))  # all ignored
        want = 0.0 if m.name == "frequency_weighted_iou" else None
        got = float(m.result())
        assert got == want if want is not None else np.isnan(got), m.name


_JAX_COUNTS = r"""
import jax, keras, numpy as np
from fcn_keras import metrics as M
assert keras.backend.backend() == "jax" and not jax.config.read("jax_enable_x64")
m = M.ConfusionMatrix(3)
yt, yp = np.array([[0, 1]]), np.array([[0, 2]])
m.update_state(yt, yp, sample_weight=np.array([[2.0**24, 3.0]], "float32"))
for _ in range(5):
    m.update_state(yt, yp)  # 2**24 + 1 ... : not representable in one float32
assert m.confusion_matrix()[0, 0] == 2**24 + 5 and m.confusion_matrix()[1, 2] == 8
# the same inside jax.jit (as in fit / evaluate), with 2**22 + 1 pixels per batch
n = 2**22 + 1
update = jax.jit(m.stateless_update_state)
values = [v.value for v in m.variables]
zeros = np.zeros((1, n), "int32")
for _ in range(5):
    values = update(values, zeros, zeros)
for v, x in zip(m.variables, values):
    v.assign(x)
assert m.confusion_matrix()[0, 0] == 2**24 + 5 + 5 * n, m.confusion_matrix()
print("exact")
"""


@pytest.mark.slow  # JAX in a subprocess
def test_counts_exact_beyond_float32_under_jax():
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run([sys.executable, "-c", _JAX_COUNTS], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "exact" in out.stdout, out.stderr[-3000:]


def test_counts_exact_beyond_float32_under_tensorflow():
    m = M.ConfusionMatrix(2)
    m.update_state(np.array([[0]]), np.array([[1]]), sample_weight=np.array([[2.0**53 - 8]]))
    m.update_state(np.zeros((1, 2**12 + 3), "int32"), np.ones((1, 2**12 + 3), "int32"))
    assert m.confusion_matrix()[0, 1] == 2**53 - 8 + 2**12 + 3


_ONE_BATCH = r"""
import keras, numpy as np
from fcn_keras import metrics as M
n = 4097 * 4097  # > 2**24 pixels of one class in one batch
truth = np.zeros((1, 4097, 4097), "int32")
m = M.ConfusionMatrix(2)
m.update_state(truth, truth)
m.update_state(truth, truth)
w = M.ConfusionMatrix(2)
w.update_state(truth, truth, sample_weight=np.ones((1, 4097, 4097), "float32"))
# and inside the backend's compiled step, as in fit / evaluate
c = M.ConfusionMatrix(2)
if keras.backend.backend() == "jax":
    import jax
    values = jax.jit(c.stateless_update_state)([v.value for v in c.variables], truth, truth)
    for v, x in zip(c.variables, values):
        v.assign(x)
elif keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    tf.function(c.update_state, jit_compile=True)(truth, truth)
else:
    c.update_state(truth, truth)
assert m.confusion_matrix()[0, 0] == 2 * n, (keras.backend.backend(), m.confusion_matrix())
assert c.confusion_matrix()[0, 0] == n, (keras.backend.backend(), c.confusion_matrix())
if keras.backend.backend() != "jax":  # JAX without x64 sums weights in float32
    assert w.confusion_matrix()[0, 0] == n, (keras.backend.backend(), w.confusion_matrix())
print("exact", keras.backend.backend())
"""


@pytest.mark.slow  # a 4097 x 4097 batch on each backend, in subprocesses
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_one_batch_beyond_float32_is_exact_on_every_backend(backend):
    """4097 x 4097 pixels of one class: PyTorch's segment_sum counted 2**24 (float32)."""
    import os
    import subprocess
    import sys

    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run([sys.executable, "-c", _ONE_BATCH], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and f"exact {backend}" in out.stdout, out.stderr[-3000:]
