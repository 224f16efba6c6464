"""Training and evaluation under the JAX backend with the project's own data path.

Runs in a subprocess with KERAS_BACKEND=jax (the backend is chosen when Keras is imported):
`model.fit` consumes `fcn_keras.data.pipeline(shapes(...))` (a tf.data dataset) with the
paper's recipe and metrics, and the metrics equal `scores_from_confusion` of the numpy
confusion matrix of the model's own predictions.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # fit and evaluate on JAX in a subprocess

SCRIPT = r"""
import keras, numpy as np
import fcn_keras
from fcn_keras import data, metrics
assert keras.backend.backend() == "jax"
model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
model.compile(learning_rate=1e-3)
train = data.pipeline(data.shapes("train", num_examples=4), batch_size=2, crop_size=64,
                      training=True, seed=0)
val = data.pipeline(data.shapes("val", num_examples=2), batch_size=2, crop_size=64)
hist = model.fit(train, validation_data=val, epochs=2, verbose=0)
for key in ("loss", "mean_iou", "val_loss", "val_mean_iou", "val_frequency_weighted_iou"):
    assert np.all(np.isfinite(hist.history[key])), (key, hist.history)
logs = model.evaluate(val, return_dict=True, verbose=0)
x, y = next(iter(val.as_numpy_iterator()))
pred = np.argmax(model.predict(x, verbose=0), -1)
k = y != 255
want = metrics.scores_from_confusion(np.bincount(4 * y[k] + pred[k], minlength=16).reshape(4, 4))
for name in ("pixel_accuracy", "mean_iou", "frequency_weighted_iou"):
    assert abs(logs[name] - want[name]) < 1e-5, (name, logs[name], want[name])
print("jax fit ok")
"""


def test_fit_and_evaluate_under_jax_with_the_data_pipeline():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0 and "jax fit ok" in out.stdout, out.stderr[-4000:]
