"""A short real training run on the synthetic set reaches a stated mean IU on its
validation split (2 CPU cores, about a minute).

Model: FCN-8s AlexNet at width 0.125 (conv1 12 channels ... fc6/fc7 512). On 64x64 images
the FCN pads its input by 100 pixels, so a VGG16 step costs about 3x an AlexNet step (its
full-resolution 3x3 convs run on 264x264) for no gain on this easy set; AlexNet's stride-4
conv1 makes ~40 steps of 8 images a few seconds on 2 cores.
Optimiser: Adam 3e-4 (the paper's SGD at 1e-10-scale fixed rates is made for fine-tuning
ImageNet weights with an unnormalised loss, not for a from-scratch net in a minute).
"""

import numpy as np
import pytest

from fcn_keras import data, training

pytestmark = pytest.mark.slow  # the shapes_alexnet training run (6 epochs)

BAR = 0.70  # mean IU on shapes:val (128 images); runs of this test reach ~0.75-0.8


def test_shapes_training_reaches_mean_iu(shapes_alexnet):
    """The run is tests/conftest.py's `shapes_alexnet` (shared with the int8 export tests)."""
    run = shapes_alexnet
    history = run.history
    scores = training.evaluate(run.model, run.val_ds, 4, data.SHAPES_CLASSES, progress=False)
    print(f"\nshapes:val after 6 epochs ({run.seconds:.0f}s):\n" + training.format_report(scores))
    assert scores["mean_iou"] >= BAR, training.format_report(scores)
    # Keras' metric (accumulated during validation) and evaluate() agree
    assert history.history["val_mean_iou"][-1] == pytest.approx(scores["mean_iou"], abs=1e-4)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # every shape class is actually segmented, not just the background
    assert all(v is not None and v > 0.4 for v in scores["per_class_iou"].values())
    # the run left what it promises
    assert np.isfinite(history.history["val_loss"]).all()
    for name in ("model.keras", "log.csv", "history.json", "checkpoints/best.weights.h5"):
        assert (run.out_dir / name).exists(), name
