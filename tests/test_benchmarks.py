"""The pieces of the speed benchmark (benchmarks/speed.py) its figures rest on, in-process and
fast: the MAC count, the PyTorch port's agreement with the Keras net (checked before any timing)
and the bfloat16 variant's agreement. Figures are never asserted.

Also: shapes_numpy.py, gpu_jax.py's TensorFlow-free feed, gives the bundled set's examples.

The scripts themselves (speed.py's grid, backends.py, gpu_jax.py's dry run, the memory
children) are run by hand, not here: at width 0.0625 on the 2 shared CI cores, speed.py's tiny
grid took 143 s, its inference variants alone 95 s of wall time (one AlexNet 32s, 33 pixels),
gpu_jax.py 96 s (its dry run's subset 81 s), backends.py's smoke run 7 min (four worker
processes and the peak's 4096^2 matmuls) and one memory child 37 s, for figures CI does not read.
"""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def test_macs_of_fcn8s_vgg16_at_500():
    import speed

    dense, computed = speed.macs("vgg16", "8s", 500)
    # the figure: about 181 GMAC at 500x500 (dense upsampling as defined)
    assert 175e9 < dense < 190e9 and dense - computed > 0.5e9


def test_torch_port_computes_the_keras_net():
    """The PyTorch port (benchmarks/torch_fcn.py) with the Keras weights gives the Keras logits:
    the check speed.py makes before it times the two side by side (torch is in the `test` extra)."""
    import speed

    model, net = speed.build_pair("vgg16", "8s", 0.0625)
    assert net is not None
    assert speed.check_agreement(model, net, 45) <= 1e-4
    fns = speed.inference_fns(model, net, 45, 1)
    assert {"keras_predict", "tf_function", "torch"} <= set(fns)
    assert tuple(fns["torch"]().shape) == (1, speed.NUM_CLASSES, 45, 45)


def test_bfloat16_variant_and_its_agreement():
    """`--bf16`'s pieces: the bfloat16 tf.function variant and its label agreement with float32."""
    import speed

    from fcn_keras.models import with_precision

    model, _ = speed.build_pair("alexnet", "8s", 0.0625, with_torch=False)
    fast = with_precision(model, "bfloat16")
    x = np.random.default_rng(0).normal(0, 50, size=(1, 45, 45, 3)).astype("float32")
    agree = speed.bfloat16_agreement(model, fast, x)
    assert 0.9 < agree["label_agreement"] <= 1 and agree["label_agreement_wide_margin"] == 1.0
    assert 1e-4 < agree["relative_error"] < 0.05  # bfloat16 computed, close to float32
    fns = speed.inference_fns(model, None, 45, 1, fast)
    assert "tf_function_bfloat16" in fns and fns["tf_function_bfloat16"]().dtype == np.float32


def test_numpy_shapes_are_the_bundled_set():
    """benchmarks/shapes_numpy.py (gpu_jax.py's feed where TensorFlow is missing) draws the very
    examples of fcn_keras.data.shapes (same code, same seeds) and batches them in a PyDataset."""
    import shapes_numpy

    import fcn_keras

    ref = list(fcn_keras.data.shapes("val", num_examples=3, image_size=32))
    images, masks = shapes_numpy.arrays("val", 3, image_size=32)
    for (image, mask), got_image, got_mask in zip(ref, images, masks):
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_mask, mask)
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 255} and len(set(np.unique(masks))) > 2
    batches = shapes_numpy.py_dataset(images, masks, 2, shuffle_seed=0)
    x, y = batches[0]
    assert len(batches) == 1 and x.shape == (2, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    with pytest.raises(ValueError, match="image_size"):
        shapes_numpy.arrays("val", 2, image_size=(32, 40))
