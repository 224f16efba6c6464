"""The full-width FCNs the benchmarks time: seeded random weights, score layers included.

    from random_weights import random_fcn        # benchmarks/ is on the path of its scripts
    model = random_fcn("vgg16", "8s")            # 21 classes, He-normal kernels, seed 0

A fresh FCN's score layers are zero (it would output all zeros), and no ImageNet or VOC
weights reach a benchmark machine offline: `randomize` of tests/export/export_helpers.py draws
every trainable kernel He-normal and every bias N(0, bias_std); the bilinear upsampling keeps
its fixed kernels.
"""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_fcn(backbone="vgg16", head="8s", seed=0, num_classes=21, bias_std=0.01):
    """The full-width FCN with seeded random weights (a `keras.Model`)."""
    import keras

    import fcn_keras

    spec = importlib.util.spec_from_file_location(
        "export_helpers", os.path.join(ROOT, "tests", "export", "export_helpers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    keras.utils.set_random_seed(seed)
    return helpers.randomize(fcn_keras.build(backbone, head, num_classes=num_classes), seed, bias_std=bias_std)
