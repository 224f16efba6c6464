"""The artefact API other tools build on: `runner`, `read_metadata`, `detect_format`, on real files.

Also the exported interfaces themselves: the TFLite classic API's tensor names and the ONNX
graph's named dynamic dims.
"""

import os
import shutil

import numpy as np
import pytest

from fcn_keras.export import ExportError, detect_format, export, read_metadata, runner

from export_helpers import assert_labels_agree, assert_scores_close

NAMES = ["bg", "circle", "square", "triangle"]
FILES = {"saved_model": "server", "tflite": "m.tflite", "onnx": "m.onnx"}


@pytest.fixture(scope="module")
def artefacts(vgg8s, tmp_path_factory):
    """The small VGG16 FCN-8s exported to each format (float32, not verified here: test_export does)."""
    folder = tmp_path_factory.mktemp("artefacts")
    return {fmt: export(vgg8s, str(folder / name), fmt, class_names=NAMES, verify=False).path
            for fmt, name in FILES.items()}


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_runner_and_metadata_of_each_format(fmt, artefacts, vgg8s, val_batch, tmp_path):
    path = artefacts[fmt]
    assert detect_format(path) == fmt
    run = runner(path, num_threads=2)
    assert run.fixed_size is None
    labels, scores = run(val_batch)  # batch 2 at 83 x 117
    ref = vgg8s(val_batch.astype(np.float32), training=False).numpy()
    assert labels.shape == (2, 83, 117) and labels.dtype == np.uint8 and scores.dtype == np.float32
    assert_scores_close(scores, ref)
    assert_labels_agree(labels, ref)
    meta = read_metadata(path)
    assert meta["class_names"] == NAMES and np.asarray(meta["palette"]).shape == (4, 3)
    assert meta["format"] == fmt and meta["model"]["num_classes"] == 4
    # a lone artefact, without its <path>.json, still says what its classes are
    lone = str(tmp_path / os.path.basename(path))
    (shutil.copytree if fmt == "saved_model" else shutil.copy)(path, lone)
    assert not os.path.exists(lone + ".json")
    lone_meta = read_metadata(lone)
    assert lone_meta["class_names"] == NAMES and lone_meta["palette"] == meta["palette"]


def test_tflite_classic_api_tensor_names(artefacts):
    from fcn_keras.export.tflite import interpreter

    it = interpreter(artefacts["tflite"])
    assert [d["name"] for d in it.get_input_details()] == ["image"]
    assert sorted(d["name"] for d in it.get_output_details()) == ["labels", "scores"]
    # the signature runner still finds them under the same keys
    assert set(it.get_signature_runner("serving_default").get_output_details()) == {"labels", "scores"}


def test_onnx_dynamic_dims_are_named(artefacts):
    import onnx

    graph = onnx.load(artefacts["onnx"]).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [dims(v) for v in graph.input] == [["batch", "height", "width", 3]]
    assert {v.name: dims(v) for v in graph.output} == {
        "labels": ["batch", "height", "width"], "scores": ["batch", "height", "width", 4]}


def test_fixed_size_runner_takes_a_batch_and_refuses_other_sizes(vgg8s, val_batch, tmp_path):
    path = export(vgg8s, str(tmp_path / "fixed.tflite"), input_size=(83, 117), verify=False).path
    run = runner(path)
    assert run.fixed_size == (83, 117)
    labels, scores = run(val_batch)  # (1, 83, 117, 3) input: the batch of 2 runs image by image
    assert labels.shape == (2, 83, 117) and scores.shape == (2, 83, 117, 4)
    assert_scores_close(scores, vgg8s(val_batch.astype(np.float32), training=False).numpy())
    with pytest.raises(ValueError, match=r"size \(83, 117\).*Received"):
        run(val_batch[:, :64, :64])
    with pytest.raises(ValueError, match=r"uint8 of shape \(N, H, W, 3\).*Received"):
        run(val_batch.astype(np.float32))


def test_detect_format_refuses_what_is_not_an_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_format(tmp_path / "missing.tflite")
    with pytest.raises(ExportError, match="saved_model.pb"):
        detect_format(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"PK")
    with pytest.raises(ExportError, match=r"\.tflite file, a \.onnx file or an OpenVINO folder"):
        detect_format(tmp_path / "model.keras")


def test_every_format_module_exposes_the_table_names():
    """`formats.TABLE` is the only place that knows the formats: each module has the same names."""
    from fcn_keras.export import FORMATS, QUANTIZATIONS, Runner, formats

    assert tuple(formats.TABLE) == ("saved_model", "tflite", "onnx", "mediapipe", "openvino")
    assert FORMATS == tuple(formats.TABLE) + ("web",)  # a folder around an ONNX export
    for name, module in formats.TABLE.items():
        assert module.NAME == name and QUANTIZATIONS[name] == module.QUANTIZE
        assert module.SUFFIX is None or module.SUFFIX.startswith(".")
        assert isinstance(module.DESCRIPTION, str) and isinstance(module.EXTRA_SUFFIXES, tuple)
        assert module.NO_BFLOAT16 is None or "int8" in module.NO_BFLOAT16
        for fn in ("is_artefact", "write", "embedded_metadata", "runtime_name"):
            assert callable(getattr(module, fn)), (name, fn)
        assert issubclass(module.runner, Runner), name
    assert formats.suffixes() == (".tflite", ".onnx") and formats.folder_format() == "saved_model"
