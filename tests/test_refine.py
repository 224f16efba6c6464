"""Dense CRF refinement (`fcn_keras.refine.CRF`, `Predictor(refine="crf")`): on a toy image
whose answer is known, the CRF moves a blurred class edge onto the colour edge."""

import numpy as np
import pytest

from fcn_keras.predict import Predictor
from fcn_keras.refine import CRF, MAX_VALUES


def _toy():
    """A 60 x 80 picture, dark left of column 40 and bright from it; blurred probabilities
    whose 50% point sits at column 30 (an FCN's coarse, shifted edge)."""
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, 40:] = 220
    cols = np.arange(80, dtype=np.float32)
    p1 = 1 / (1 + np.exp(-(cols - 30) / 6))                      # class 1 rises around column 30
    p1 = np.clip(p1, 0.2, 0.8)                                   # never confident
    probs = np.stack([1 - p1, p1], -1)[None].repeat(60, 0).astype(np.float32)
    truth = (np.arange(80) >= 40).astype(np.uint8)[None].repeat(60, 0)
    return image, probs, truth


def test_the_crf_snaps_labels_to_the_colour_edge():
    image, probs, truth = _toy()
    before = probs.argmax(-1)
    assert (before == truth).mean() < 0.9            # 10 columns wrong
    image.flags.writeable = False  # as Pillow's arrays are
    after = CRF()(image, probs)
    assert after.shape == probs.shape and np.allclose(after.sum(-1), 1, atol=1e-4)
    np.testing.assert_array_equal(after.argmax(-1), truth)


def test_predictor_refines_a_models_scores():
    import keras

    # a "model" whose logits are the toy's log-probabilities, whatever the input
    image, probs, truth = _toy()
    inp = keras.Input((None, None, 3))
    logits = keras.layers.Lambda(lambda x: keras.ops.zeros_like(x[..., :2]) + keras.ops.log(probs))(inp)
    model = keras.Model(inp, logits)
    plain, _ = Predictor(model, max_size=0).predict(image)
    refined, scores = Predictor(model, max_size=0, refine="crf").predict(image)
    assert (plain == truth).mean() < 0.9
    np.testing.assert_array_equal(refined, truth)
    assert np.all(scores <= 0)  # log-probabilities


def test_crf_parameters_and_errors():
    assert CRF.parse("crf") == CRF()
    crf = CRF.parse("crf:iterations=3,bilateral_xy=40")
    assert crf.iterations == 3 and crf.bilateral_xy == 40 and crf.gaussian_xy == 1
    assert CRF.parse({"bilateral_rgb": 5}).bilateral_rgb == 5
    for bad, match in (("dcrf", "crf"), ("crf:depth=3", "unknown CRF parameter 'depth'"),
                       ("crf:iterations=0", "iterations"), ("crf:bilateral_xy=x", "numbers"),
                       ("crf:iterations", "name=value")):
        with pytest.raises(ValueError, match=match):
            CRF.parse(bad)
    big = int(np.sqrt(MAX_VALUES / 2)) + 8
    with pytest.raises(ValueError, match="too large for the CRF.*max_size"):
        CRF()(np.zeros((big, big, 3), np.uint8), np.full((big, big, 2), 0.5, np.float32))


def test_without_the_extra_the_command_says_which_to_install(tmp_path):
    """pydensecrf2 made unimportable (a package of that name that fails to import, first on the
    path) in a real `fcn-keras predict` process: one line, exit 2, before any model is loaded."""
    import os
    import subprocess
    import sys

    from PIL import Image

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    Image.fromarray(_toy()[0]).save(tmp_path / "a.png")
    blocker = tmp_path / "blocker" / "pydensecrf"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    run = subprocess.run([sys.executable, "-m", "fcn_keras.cli", "predict", str(tmp_path / "a.png"),
                          "--model", "voc-fcn8s", "--out", str(tmp_path / "out"), "--refine", "crf"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=f"{blocker.parent}{os.pathsep}{root}",
                                  KERAS_HOME=str(tmp_path / "home")))
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == ['fcn-keras predict: error: CRF refinement needs pydensecrf2: pip install "fcn-keras[crf]"'], lines
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
