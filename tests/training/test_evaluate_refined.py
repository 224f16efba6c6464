"""`training.evaluate` and `fcn-keras evaluate` with the boundary F-score, and with tiles, TTA
and CRF refinement (`--tile`, `--tta`, `--refine`): tiles give the very same confusion matrix
as the whole images; the boundary F-score is the one `fcn_keras.metrics.BoundaryF` gives."""

import json

import numpy as np
import pytest

from fcn_keras import data, training
from fcn_keras.metrics import BoundaryF
from tests.conftest import fcn_keras_cli

pytestmark = pytest.mark.slow  # the shapes_alexnet training run, CRF evaluation


def test_evaluate_reports_the_boundary_f_score(shapes_alexnet):
    model = shapes_alexnet.model
    src = data.shapes("val", num_examples=6, image_size=(48, 80))
    scores = training.evaluate(model, data.pipeline(src, batch_size=1), progress=False)
    bf = BoundaryF(4)
    for image, mask in src:
        labels = training.predict_labels(model, np.asarray(image))
        bf.update(np.asarray(mask), labels)
    assert scores["boundary_f"] == pytest.approx(bf.result()["boundary_f"])
    assert "boundary F" in training.format_report(scores)
    assert "boundary_f" not in training.evaluate(model, data.pipeline(src, batch_size=1), progress=False,
                                                 boundary=False)


@pytest.fixture(scope="module")
def trained_file(shapes_alexnet, tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate_refined") / "shapes.keras"
    shapes_alexnet.model.save(path)
    return str(path)


def _evaluate(model, tmp_path, name, *flags):
    out = tmp_path / f"{name}.json"
    run = fcn_keras_cli("evaluate", "--model", model, "--data", "shapes", "--split", "val",
                        "--num-examples", "12", "--image-size", "64,100", "--json", str(out), *flags,
                        timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "boundary F" in run.stdout
    return json.loads(out.read_text())


def test_tiles_tta_and_crf_through_the_evaluate_command(trained_file, tmp_path):
    plain = _evaluate(trained_file, tmp_path, "plain")
    tiled = _evaluate(trained_file, tmp_path, "tiled", "--tile", "32")
    assert tiled["confusion_matrix"] == plain["confusion_matrix"]  # exact tiles, same labels
    refined = _evaluate(trained_file, tmp_path, "refined", "--tta", "flip", "--refine", "crf")
    assert refined["images"] == plain["images"] == 12
    assert refined["confusion_matrix"] != plain["confusion_matrix"]  # the refinement did something
    for scores in (plain, refined):
        assert 0 <= scores["boundary_f"] <= 1 and 0 <= scores["mean_iou"] <= 1
