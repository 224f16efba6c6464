"""`jit_compile="auto"` for training (`fcn_keras.training.jit_choice`): what is picked, and
the line that says so."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import fcn_keras
from fcn_keras import training
from fcn_keras.training.jit_choice import choose_jit, fixed_shape

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _images(size):
    """Two batches of one 32x32 image; `size` None: declared of any size, as whole images are."""
    def gen():
        for _ in range(2):
            yield np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 32, 32), np.int32)

    return tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((None, size, size, 3), tf.float32), tf.TensorSpec((None, size, size), tf.int32)))


def test_fixed_shape_tells_crops_from_whole_images():
    assert fixed_shape(_images(32)) is True
    assert fixed_shape(_images(None)) is False
    assert fixed_shape([1, 2]) is None


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the CPU rule")
def test_auto_on_a_tensorflow_cpu_is_the_graph():
    jit, line = choose_jit("auto", _images(32))
    assert jit is False
    assert line.startswith("training step: a TensorFlow graph") and "XLA measured slower" in line


def test_an_explicit_choice_is_kept_and_a_wrong_one_refused():
    assert choose_jit(True) == (True, "training step: XLA (as asked)")
    assert choose_jit(False)[0] is False
    with pytest.raises(ValueError, match="jit_compile='on'"):
        choose_jit("on")


def test_auto_on_jax_is_xla():
    code = ("from fcn_keras.training.jit_choice import choose_jit; "
            "jit, line = choose_jit('auto'); print(jit, '|', line)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True | training step: XLA (jax.jit, JAX's compiled path)"


def test_run_recipe_compiles_with_the_pick_and_says_it(capsys):
    ds = fcn_keras.data.pipeline(fcn_keras.data.shapes("train", num_examples=2, image_size=32),
                                 batch_size=2, crop_size=32, training=True, seed=0)
    r = training.run_recipe("alexnet", ds, schedule="32s", num_classes=4, epochs=1, width=0.0625,
                            optimizer="adam", verbose=1, steps_per_epoch=1)
    expected, line = choose_jit("auto", ds)
    assert r.model.jit_compile is expected
    assert line in capsys.readouterr().out
