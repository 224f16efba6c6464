"""The pieces of the speed benchmark (benchmarks/speed.py) its figures rest on, in-process and
fast: the MAC count, the PyTorch port's agreement with the Keras net (checked before any timing)
and the bfloat16 variant's agreement. Figures are never asserted.

The scripts themselves (speed.py's grid, gpu_jax.py, the memory children) are run by hand, not
here: at width 0.0625 on the 2 shared CI cores, speed.py's tiny grid took 143 s, its inference
variants alone 95 s of wall time (one AlexNet 32s, 33 pixels), gpu_jax.py 96 s and one memory
child 37 s, for figures CI does not read.
"""

import os
import sys

import numpy as np

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
