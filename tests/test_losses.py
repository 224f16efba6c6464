"""`fcn_keras.losses`: each loss against a hand computation on a tiny example (label 255
ignored), on every backend; class weights through `FCN.compile`."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras import losses

from .conftest import ROOT

# Three pixels, three classes. Pixel 0: logits equal (p = 1/3 each), label 0. Pixel 1:
# p = (1/4, 1/4, 1/2), label 2. Pixel 2: label 255 with wild logits, which must change nothing.
LOGITS = np.array([[[[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2.0)], [50.0, -50.0, 9.0]]]], np.float32)
LABELS = np.array([[[0, 2, 255]]], np.int32)
LN2, LN3 = math.log(2.0), math.log(3.0)
HAND = {
    "ce": (LN3 + LN2) / 2,
    "ce_weighted": (2 * LN3 + 3 * LN2) / 2,                # weights (2, 1, 3)
    "focal": ((2 / 3) ** 2 * LN3 + (1 / 2) ** 2 * LN2) / 2,  # gamma 2
    # class 0: 2 * (1/3) / ((1/3 + 1/4) + 1) = 8/19; class 2: 2 * (1/2) / ((1/3 + 1/2) + 1) = 6/11
    "dice": 1 - (8 / 19 + 6 / 11) / 2,
    # class 0: errors (2/3 fg, 1/4 bg): Lovasz gradient (1, 0) -> 2/3; class 2: (1/2 fg, 1/3 bg) -> 1/2
    "lovasz": (2 / 3 + 1 / 2) / 2,
}
HAND["ce+dice"] = HAND["ce"] + HAND["dice"]

SCRIPT = """
import json, numpy as np
from fcn_keras import losses
from tests.test_losses import LOGITS, LABELS
out = {name: float(losses.get(name)(LABELS, LOGITS)) for name in losses.LOSSES}
out["ce_weighted"] = float(losses.CrossEntropy(class_weights=[2, 1, 3])(LABELS, LOGITS))
print("RESULT " + json.dumps(out))
"""


def _values():
    out = {name: float(losses.get(name)(LABELS, LOGITS)) for name in losses.LOSSES}
    out["ce_weighted"] = float(losses.CrossEntropy(class_weights=[2, 1, 3])(LABELS, LOGITS))
    return out


def _check(values):
    for name, expected in HAND.items():
        assert values[name] == pytest.approx(expected, rel=1e-5, abs=1e-6), name


def test_losses_match_the_hand_computation():
    _check(_values())


@pytest.mark.slow  # JAX and PyTorch in subprocesses
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_losses_match_the_hand_computation_on_other_backends(backend):
    pytest.importorskip(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, proc.stderr[-2000:]
    _check(json.loads(line[0][7:]))


def _lovasz_reference(logits, labels):
    """Berman et al.'s reference (lovasz_softmax_flat, classes='present'): ignored pixels
    filtered out, one class at a time, in NumPy."""
    c = logits.shape[-1]
    z = logits.reshape(-1, c).astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = labels.reshape(-1)
    keep = y != 255
    p, y = p[keep], y[keep]
    per_class = []
    for k in range(c):
        fg = (y == k).astype(np.float64)
        if fg.sum() == 0:
            continue
        errors = np.abs(fg - p[:, k])
        order = np.argsort(-errors, kind="stable")
        gt = fg[order]
        inter = gt.sum() - np.cumsum(gt)
        union = gt.sum() + np.cumsum(1 - gt)
        jac = 1 - inter / union
        jac[1:] = jac[1:] - jac[:-1]
        per_class.append(float(errors[order] @ jac))
    return float(np.mean(per_class))


def test_lovasz_matches_the_reference_algorithm_on_a_random_batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(2, 5, 6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 5, 6)).astype(np.int32)
    labels[0, :2] = 255
    labels[labels == 3] = 1  # class 3 absent: not averaged
    got = float(losses.LovaszSoftmax()(labels, logits))
    assert got == pytest.approx(_lovasz_reference(logits, labels), rel=1e-5)


def test_cross_entropy_equals_keras_ignore_class_loss_without_weights():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(2, 4, 5, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=(2, 4, 5)).astype(np.int32)
    labels[1, 1:3] = 255
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    assert float(losses.CrossEntropy()(labels, logits)) == pytest.approx(float(ref(labels, logits)), rel=1e-5)


def test_unknown_loss_and_weights_with_dice_are_refused():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="Class weights go with the ce, focal or ce\\+dice loss"):
        losses.get("dice", class_weights=[1, 2])


def test_compile_class_weights_train_and_survive_a_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    model.compile(optimizer="adam", loss="auto", class_weights={3: 5.0})
    assert isinstance(model.loss, losses.CrossEntropy) and model.loss.class_weights == [1, 1, 1, 5]
    ds = fcn_keras.data.pipeline(fcn_keras.data.shapes("val", num_examples=2, image_size=32),
                                 batch_size=2)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss.class_weights == [1, 1, 1, 5]
    with pytest.raises(ValueError, match="`class_weights` must hold 4 finite non-negative weights"):
        model.compile(class_weights=[1, 2])
    with pytest.raises(ValueError, match="only with the default loss"):
        model.compile(loss=losses.DiceLoss(), class_weights=[1, 1, 1, 1])


def test_train_offers_every_loss():
    """`fcn-keras train --loss` lists its choices without importing Keras: the same names."""
    from fcn_keras.cli import make_parser

    parser = make_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    loss = next(a for a in train._actions if a.dest == "loss")
    assert tuple(loss.choices) == losses.LOSSES
