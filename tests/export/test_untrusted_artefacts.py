"""Damaged and hostile exported files and metadata: one error naming the file, no traceback."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import fcn_keras
from fcn_keras.predict import Predictor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _onnx_model(meta=None, initializer=None):
    """A real, runnable ONNX "FCN": scores = the image as float (3 classes), labels = their argmax."""
    nodes = [helper.make_node("Cast", ["image"], ["scores"], to=TensorProto.FLOAT),
             helper.make_node("ArgMax", ["scores"], ["arg"], axis=3, keepdims=0),
             helper.make_node("Cast", ["arg"], ["labels"], to=TensorProto.UINT8)]
    inits = []
    if initializer is not None:
        inits = [initializer]
        nodes.append(helper.make_node("Identity", [initializer.name], ["extra"]))
    outputs = [helper.make_tensor_value_info("labels", TensorProto.UINT8, ["N", "H", "W"]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "H", "W", 3])]
    if initializer is not None:
        outputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [4]))
    graph = helper.make_graph(nodes, "fcn", [helper.make_tensor_value_info("image", TensorProto.UINT8,
                                                                            ["N", "H", "W", 3])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


def _save(model, path):
    onnx.save(model, str(path))
    return str(path)


def _one_line_error(fn, path, match=None):
    with pytest.raises(ValueError, match=match) as err:
        fn()
    text = str(err.value)
    assert str(path) in text and "\n" not in text, text
    return text


def test_a_valid_tiny_onnx_model_runs(tmp_path):
    path = _save(_onnx_model(), tmp_path / "ok.onnx")
    labels, _ = Predictor(path).predict(np.zeros((5, 6, 3), np.uint8))
    assert labels.shape == (5, 6)


def test_empty_random_and_truncated_onnx_files(tmp_path):
    good = _onnx_model().SerializeToString()
    for name, data in (("empty.onnx", b""), ("random.onnx", os.urandom(3000)), ("cut.onnx", good[:len(good) // 2])):
        path = tmp_path / name
        path.write_bytes(data)
        _one_line_error(lambda: Predictor(str(path)), path)
    env = dict(os.environ, PYTHONPATH=ROOT)
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    result = subprocess.run([sys.executable, "-m", "fcn_keras.cli", "predict", "--model", str(tmp_path / "cut.onnx"),
                             "--out", str(tmp_path / "out"), str(image)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cut.onnx" in result.stderr


def test_onnx_external_data_outside_its_folder(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4, np.float32).tobytes())
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "16")):
        tensor.external_data.add(key=key, value=value)
    (tmp_path / "models").mkdir()
    path = _save(_onnx_model(initializer=tensor), tmp_path / "models" / "evil.onnx")
    _one_line_error(lambda: Predictor(path), path)


def test_onnx_metadata_that_is_not_json_or_not_names_and_colours(tmp_path):
    bad_json = _save(_onnx_model({"fcn_keras": "{not json"}), tmp_path / "badjson.onnx")
    _one_line_error(lambda: Predictor(bad_json), bad_json, "unreadable metadata")
    cases = {"strings.onnx": {"palette": ["red", "green", "blue"]},
             "nan.onnx": {"palette": [[0, 0, 0], [float("nan"), 1, 2], [3, 4, 5]]},
             "name_string.onnx": {"class_names": "abc"},
             "newline.onnx": {"class_names": ["a", "b\nc", "d"]},
             "nan_name.onnx": {"class_names": ["a", float("nan"), "c"]}}
    for name, meta in cases.items():
        path = _save(_onnx_model({"fcn_keras": json.dumps(meta)}), tmp_path / name)
        _one_line_error(lambda: Predictor(path), path, "palette|class_names")


def test_keras_metadata_strings_nan_and_newlines(tmp_path):
    from fcn_keras.loading import load_model

    good = tmp_path / "good.keras"
    fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625).save(good)
    for name, field, value in (("pal.keras", "palette", ["red", "green", "blue"]),
                               ("nan.keras", "palette", [[0, 0, 0], [float("nan"), 0, 0], [1, 1, 1]]),
                               ("nl.keras", "class_names", ["a", "b\nc", "d"])):
        path = tmp_path / name
        with zipfile.ZipFile(good) as a, zipfile.ZipFile(path, "w") as b:
            for item in a.infolist():
                data = a.read(item)
                if item.filename == "config.json":
                    config = json.loads(data)
                    config["config"][field] = value
                    data = json.dumps(config).encode()
                b.writestr(item, data)
        _one_line_error(lambda: load_model(str(path)), path, field)
