"""A `fcn-keras train` that fails on a data error exits, every time, on every backend.

A VOC folder whose masks are RGB colour images (the commonest beginner's mistake) fails
inside tf.data while its threads may still be decoding the next files; finalising that
iterator at interpreter exit could wait on them forever (the run printed the right error
and hung, 4 runs in 6). Each run here must end, with exit 2 and the error, well within
its timeout (a hang is a `TimeoutExpired`: a run takes ~10 s on an idle 2-core machine,
the timeout leaves room for a loaded one).
"""

import os

import pytest
from PIL import Image

from tests.conftest import fcn_keras_cli, make_tiny_voc

pytestmark = pytest.mark.slow  # repeated command-line training runs on each backend

RUNS = {"tensorflow": 10, "jax": 2, "torch": 2}


@pytest.fixture(scope="module")
def colour_masks(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("voc_rgb"))
    make_tiny_voc(root, splits=(("train", 6), ("val", 2)), size=(24, 32))
    masks = os.path.join(root, "SegmentationClass")
    for name in os.listdir(masks):
        Image.open(os.path.join(masks, name)).convert("RGB").save(os.path.join(masks, name))
    return root


@pytest.mark.parametrize("backend", sorted(RUNS))
def test_train_with_colour_masks_exits_every_time(colour_masks, tmp_path, backend):
    for i in range(RUNS[backend]):
        run = fcn_keras_cli("train", "--out", str(tmp_path / f"run{i}"), "--backbone", "alexnet",
                            "--width", "0.0625", "--head", "32s", "--data", colour_masks,
                            "--val-split", "none", timeout=300, env={"KERAS_BACKEND": backend})
        assert run.returncode == 2, (i, run.stderr[-2000:])
        assert "the mask must be a palette or grayscale PNG" in run.stderr, run.stderr[-2000:]
