"""format="openvino": verified in OpenVINO's runtime at several sizes, class names in the
model's runtime info, `predict` runs the folder, float16 halves the weights."""

import json
import os

import numpy as np
import pytest

from fcn_keras.export import export, read_metadata
from fcn_keras.predict import Predictor

from export_helpers import FAST_VERIFY


def test_openvino_export_verified_and_predicted(vgg8s, tmp_path):
    import openvino as ov

    path = str(tmp_path / "fcn_ov")
    names = ["background", "cat", "mug", "sky"]
    result = export(vgg8s, path, "openvino", class_names=names, verify=FAST_VERIFY)
    assert result.format == "openvino" and result.report.passed
    overall = result.report.to_dict()["overall"]
    assert overall["label_agreement"] >= 0.999 and overall["rel"] <= 1e-4
    assert sorted(os.listdir(path)) == ["model.bin", "model.xml"]
    model = ov.Core().read_model(os.path.join(path, "model.xml"))  # as OpenVINO's own users read it
    assert json.loads(model.get_rt_info("fcn_keras").astype(str))["class_names"] == names
    assert read_metadata(path)["format"] == "openvino"
    image = np.random.default_rng(1).integers(0, 256, (53, 71, 3), dtype=np.uint8)
    predictor = Predictor(path, max_size=0)
    assert predictor.format == "openvino" and predictor.class_names == names
    labels = predictor.predict(image, return_scores=False)[0]
    expected = Predictor(vgg8s, max_size=0).predict(image, return_scores=False)[0]
    assert np.mean(labels == expected) >= 0.999


@pytest.mark.slow  # two more OpenVINO conversions, one verified
def test_openvino_float16_halves_the_weights(vgg8s, tmp_path):
    f32 = export(vgg8s, str(tmp_path / "f32"), "openvino", verify=False)
    f16 = export(vgg8s, str(tmp_path / "f16"), "openvino", "float16", verify=FAST_VERIFY)
    assert f16.quantize == "float16" and f16.report.passed
    size = {r.path: os.path.getsize(os.path.join(r.path, "model.bin")) for r in (f32, f16)}
    assert size[f16.path] < 0.55 * size[f32.path]
