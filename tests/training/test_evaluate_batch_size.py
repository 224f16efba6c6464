"""Scores never depend on the batch size: whole images of different sizes are batched only
with images of their own size (padding a batch changes an FCN's scores near the padding).
`training.evaluate`, Keras' validation metrics (`model.evaluate`, as in `train`) and
`fcn-keras evaluate` give the same confusion matrix at batch 1 and batch 16."""

import json

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras import data, training
from tests.conftest import fcn_keras_cli, random_scores

# 40 images of 48..51 x 48..51 pixels: 16 sizes, so batches of 16 hold several images of a
# size, and a padded batch would hold several sizes.
SIZES, NUM = (48, 51), 40
WIDE = (40, 120)  # as in the report: padding up to 80 pixels wide


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    net = random_scores(fcn_keras.build("alexnet", "8s", num_classes=4, width=0.0625), seed=1)
    net.compile()
    path = tmp_path_factory.mktemp("model") / "m.keras"
    net.save(path)
    return net, str(path)


def test_pipeline_batches_one_size_at_a_time():
    src = data.shapes("val", num_examples=NUM, image_size=SIZES)
    alone = [x.shape[1:3] for x, _ in data.pipeline(src, batch_size=1).as_numpy_iterator()]
    batches = list(data.pipeline(src, batch_size=16).as_numpy_iterator())
    assert any(len(x) > 1 for x, _ in batches)
    # never padded: each image keeps its own size
    assert sorted(x.shape[1:3] for x, _ in batches for _ in x) == sorted(alone)
    assert all(x.shape[:3] == y.shape for x, y in batches)


def test_training_evaluate_and_keras_metrics_do_not_depend_on_batch_size(model):
    net, _ = model
    src = data.shapes("val", num_examples=NUM, image_size=WIDE)
    scores = {b: training.evaluate(net, data.pipeline(src, batch_size=b), progress=False)
              for b in (1, 16)}
    assert scores[1]["images"] == scores[16]["images"] == NUM
    assert scores[1]["confusion_matrix"] == scores[16]["confusion_matrix"]
    logs = {b: net.evaluate(data.pipeline(src, batch_size=b), verbose=0, return_dict=True)
            for b in (1, 16)}
    assert logs[1]["mean_iou"] == pytest.approx(logs[16]["mean_iou"], abs=1e-6)
    assert logs[1]["pixel_accuracy"] == pytest.approx(logs[16]["pixel_accuracy"], abs=1e-6)


@pytest.mark.slow  # three command-line evaluations
def test_cli_evaluate_does_not_depend_on_batch_size(model, tmp_path):
    _, path = model
    matrices = {}
    for b in (1, 16):
        out = tmp_path / f"b{b}.json"
        run = fcn_keras_cli("evaluate", "--model", path, "--data", "shapes", "--split", "val",
                            "--image-size", ",".join(map(str, WIDE)), "--num-examples", str(NUM),
                            "--batch-size", str(b), "--json", str(out), "--quiet")
        assert run.returncode == 0, run.stderr[-2000:]
        matrices[b] = json.loads(out.read_text())["confusion_matrix"]
    assert np.asarray(matrices[1]).sum() > 0 and matrices[1] == matrices[16]
