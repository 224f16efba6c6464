"""Exports of small FCNs run in their real runtimes (TF, LiteRT, onnxruntime) and agree with Keras."""

import dataclasses
import json
import os

import numpy as np
import pytest

from fcn_keras.export import ExportError, ParityError, Targets, Verification, export, verify
from fcn_keras.export import tflite as tfl

from export_helpers import FAST_VERIFY, assert_labels_agree, assert_scores_close, small_model

INT8_RANDOM_TARGETS = Targets(
    # random weights: many near-tie pixels, so the overall bar is lower than the trained-model
    # target (97%); on pixels with a wide Keras margin the labels must agree
    min_label_agreement=0.90,
    min_label_agreement_margin=0.999,
)


def keras_logits(model, images):
    return model(images.astype(np.float32), training=False).numpy()


def check_report(report, quantize):
    assert report.passed and not report.failures
    assert set(report.per_size) >= {"native", "83x117"}
    if quantize == "float32":
        for s in report.per_size.values():
            assert s.label_agreement >= 0.999 and s.rel <= 1e-4, s
    return report


# --------------------------------------------------------------------------- SavedModel

def test_saved_model_server_signature(vgg8s, val_batch, tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "server")
    res = export(vgg8s, path, "saved_model", class_names=["bg", "circle", "square", "triangle"],
                 verify=FAST_VERIFY)
    assert sorted(os.listdir(tmp_path)) == ["server", "server.json", "server.verify.json"]
    check_report(res.report, "float32")

    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    spec = fn.structured_input_signature[1]["image"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, None, None, 3]
    out = fn(image=tf.constant(val_batch))  # batch 2 at 83 x 117
    ref = keras_logits(vgg8s, val_batch)
    assert_scores_close(out["scores"].numpy(), ref)
    assert out["labels"].dtype == tf.uint8 and out["labels"].shape == (2, 83, 117)
    assert_labels_agree(out["labels"].numpy(), ref)
    # class names and palette: variables, asset and sidecar JSON
    assert [c.decode() for c in loaded.class_names.numpy()] == ["bg", "circle", "square", "triangle"]
    assert loaded.palette.numpy().shape == (4, 3) and loaded.palette.numpy().dtype == np.uint8
    with open(os.path.join(path, "assets", "fcn_keras.json")) as f:
        assert json.load(f)["class_names"][1] == "circle"
    with open(path + ".json") as f:
        assert json.load(f)["palette"] == loaded.palette.numpy().tolist()
    # each weight stored once (keras' model.export stores them twice, keras#23553)
    weight_bytes = sum(int(np.prod(v.shape)) * 4 for v in vgg8s.weights)
    var_bytes = sum(os.path.getsize(os.path.join(path, "variables", f))
                    for f in os.listdir(os.path.join(path, "variables")))
    assert weight_bytes <= var_bytes < 1.1 * weight_bytes


# --------------------------------------------------------------------------- TFLite

def test_tflite_float32_dynamic_builtin_only(vgg8s, val_batch, tmp_path):
    path = str(tmp_path / "m.tflite")
    res = export(vgg8s, path, "tflite", verify=FAST_VERIFY)
    check_report(res.report, "float32")
    ops = {o["name"] for o in tfl.op_names(path)}
    assert tfl.builtin_only(path) and not any(o.startswith("Flex") for o in ops), ops
    assert {"CONV_2D", "TRANSPOSE_CONV", "ARG_MAX"} <= ops
    runner = tfl.TFLiteRunner(path)
    assert runner.fixed_size is None
    labels, scores = runner(val_batch)  # batch 2, odd size, resized by the signature runner
    ref = keras_logits(vgg8s, val_batch)
    assert_scores_close(scores, ref)
    assert labels.dtype == np.uint8
    assert_labels_agree(labels, ref)
    lat = res.report.latency
    assert lat.keras_s > 0 and lat.export_s > 0 and "tf.function" in res.report.to_dict()["latency"]["keras_call"]


@pytest.mark.slow  # a verified export; float16 and fixed sizes run fast in test_predict.py
def test_tflite_float16_fixed_input_size(vgg8s, tmp_path):
    path = str(tmp_path / "m16.tflite")
    res = export(vgg8s, path, "tflite", "float16", input_size=(83, 117), verify=Verification(num_images=2))
    rep = res.report
    assert rep.passed and rep.fixed_input_size == (83, 117)
    assert rep.overall.label_agreement >= 0.995
    assert tfl.builtin_only(path)
    runner = tfl.TFLiteRunner(path)
    assert runner.fixed_size == (83, 117)
    assert 0.4 < rep.size_ratio < 0.6  # float16 weights: half of float32


@pytest.mark.slow  # int8 calibration and conversion (the fast int8 path: test_predict.py, test_quiet_int8.py)
def test_tflite_full_int8_uint8_input(vgg8s, tmp_path):
    import fcn_keras.data as fd
    from fcn_keras.export import sample_images

    path = str(tmp_path / "m8.tflite")
    calibration = sample_images(fd.shapes("train", num_examples=8), "train")
    res = export(vgg8s, path, "tflite", "int8", representative_data=calibration,
                 verify=dataclasses.replace(FAST_VERIFY, targets=INT8_RANDOM_TARGETS))
    rep = res.report
    assert rep.passed and rep.quantize == "int8" and res.metadata["calibration"]["images"] == 8
    assert rep.size_ratio < 0.3  # about a quarter of float32
    assert tfl.builtin_only(path)
    runner = tfl.TFLiteRunner(path)
    d = runner.in_details
    assert d["dtype"] == np.uint8 and tuple(d["quantization"]) == (1.0, 0)  # raw pixels in
    assert runner.out_details["scores"]["dtype"] == np.uint8
    assert runner.out_details["labels"]["dtype"] == np.uint8
    assert rep.mean_iou is not None and abs(rep.mean_iou["loss_points"]) < 5


@pytest.mark.slow  # int8 calibration and conversion (the fast int8 path: test_predict.py, test_quiet_int8.py)
def test_tflite_full_int8_int8_io_fixed_size(vgg8s, tmp_path):
    import fcn_keras.data as fd

    path = str(tmp_path / "m8i.tflite")
    res = export(vgg8s, path, "tflite", "int8", io_type="int8", input_size=(64, 64),
                 representative_data=fd.shapes("train", num_examples=4),
                 verify=Verification(num_images=2, targets=INT8_RANDOM_TARGETS, latency=False))
    runner = tfl.TFLiteRunner(path)
    d = runner.in_details
    assert d["dtype"] == np.int8 and tuple(d["quantization"]) == (1.0, -128)  # pixel - 128
    assert runner.out_details["scores"]["dtype"] == np.int8
    assert runner.fixed_size == (64, 64) and res.report.passed
    with open(path + ".json") as f:
        meta = json.load(f)
    assert meta["input"]["dtype"] == "int8" and meta["quantize"] == "int8"
    assert meta["calibration"] == {"images": 4, "data": "Source"}


def test_builtin_only_detects_flex_ops(tmp_path):
    """The builtin-ops check can fail: a graph with keras.ops.argmax needs FlexBitwiseAnd."""
    import keras
    import tensorflow as tf

    fn = tf.function(lambda x: tf.cast(keras.ops.argmax(x, axis=-1), tf.float32),
                     input_signature=[tf.TensorSpec([1, 4, 4, 3], tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    p = tmp_path / "flex.tflite"
    p.write_bytes(conv.convert())
    names = {o["name"] for o in tfl.op_names(p)}
    assert any(n.startswith("Flex") for n in names) and not tfl.builtin_only(p)


# --------------------------------------------------------------------------- ONNX

def test_onnx_dynamic_shapes(vgg8s, val_batch, tmp_path):
    import onnx

    path = str(tmp_path / "m.onnx")
    res = export(vgg8s, path, "onnx", verify=FAST_VERIFY)
    check_report(res.report, "float32")
    m = onnx.load(path)
    onnx.checker.check_model(m)
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in m.graph.input] == ["image"]  # the weights are initializers
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert [d.HasField("dim_value") for d in dims] == [False, False, False, True]
    assert json.loads({p.key: p.value for p in m.metadata_props}["class_names"]) == [
        f"class_{i}" for i in range(4)]
    from fcn_keras.export.onnx import ONNXRunner

    labels, scores = ONNXRunner(path)(val_batch)
    ref = keras_logits(vgg8s, val_batch)
    assert_scores_close(scores, ref)
    assert_labels_agree(labels, ref)


def test_onnx_external_data(vgg8s, tmp_path):
    path = str(tmp_path / "ext.onnx")
    res = export(vgg8s, path, "onnx", external_data=True, verify=Verification(num_images=1, latency=False))
    assert os.path.getsize(path) < 200_000 and os.path.getsize(path + ".data") > 2_000_000
    assert res.report.passed and path + ".data" in res.files


def test_onnx_float16_halves_the_weights_and_is_verified(vgg8s, tmp_path):
    f32 = export(vgg8s, str(tmp_path / "m.onnx"), "onnx", verify=False)
    f16 = export(vgg8s, str(tmp_path / "m16.onnx"), "onnx", "float16",
                 verify=dataclasses.replace(FAST_VERIFY, latency=False))
    assert f16.quantize == "float16" and f16.report.passed
    assert os.path.getsize(f16.path) < 0.55 * os.path.getsize(f32.path)


@pytest.mark.slow  # four more verified exports (AlexNet, GoogLeNet)
@pytest.mark.parametrize("backbone,head", [("alexnet", "32s"), ("googlenet", "8s")])
def test_other_backbones_tflite_and_onnx(backbone, head, tmp_path):
    """AlexNet (GroupConv2D, LRN, 3x3/2 ceil pooling) and GoogLeNet export exactly."""
    model = small_model(backbone, head)
    for fmt, name in (("tflite", "m.tflite"), ("onnx", "m.onnx")):
        res = export(model, str(tmp_path / name), fmt, verify=dataclasses.replace(FAST_VERIFY, latency=False))
        check_report(res.report, "float32")
    assert tfl.builtin_only(str(tmp_path / "m.tflite"))


# --------------------------------------------------------------------------- bad input, atomicity

@pytest.mark.parametrize("kwargs,match", [
    (dict(format="pytorch"), "format"),
    (dict(format="tflite", quantize="int4"), "quantize"),
    (dict(format="onnx", quantize="dynamic-int8"), r"must be one of \('float32', 'float16', 'int8'\)"),
    (dict(format="tflite", quantize="int8"), "representative_data"),
    (dict(format="tflite", quantize="int8", representative_data="/no/such/dir"), "representative_data"),
    (dict(format="tflite", quantize="int8", representative_data=[]), "representative_data"),
    (dict(format="tflite", representative_data="shapes"), "representative_data"),
    (dict(format="tflite", input_size=(0, 10)), "input_size"),
    (dict(format="tflite", io_type="int8"), "io_type"),
    (dict(format="onnx", opset=19), "opset"),
    (dict(format="onnx", quantize="int8", representative_data="shapes", io_type="int8"), "io_type"),
    (dict(format="web", quantize="dynamic-int8"), "quantize"),
    (dict(format="web", max_side=-1), "max_side"),
    (dict(format="tflite", max_side=512), "format='web' only"),
    (dict(format="onnx", verify="yes"), "verify"),
    (dict(format="onnx", verify=Verification(data="/no/such/dir")), "verify.data"),
])
def test_bad_arguments_fail_before_work(vgg8s, tmp_path, kwargs, match):
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}.get(kwargs.get("format"), "")
    with pytest.raises(ExportError, match=match):
        export(vgg8s, str(tmp_path / ("m" + suffix)), **kwargs)
    assert os.listdir(tmp_path) == []


def test_float32_has_one_spelling():
    """None, "none", "fp32" and "float32" all become "float32", the value every part stores."""
    from fcn_keras.export import QUANTIZATIONS, formats

    for fmt in QUANTIZATIONS:
        assert QUANTIZATIONS[fmt][0] == "float32" and None not in QUANTIZATIONS[fmt]
        assert {formats.normalize_quantize(fmt, q) for q in (None, "none", "FP32", "float32")} == {"float32"}
    assert formats.normalize_quantize("tflite", "fp16") == "float16"


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_images=0), "num_images"),
    (dict(sizes=((83, -1),)), "sizes"),
    (dict(targets={"min_agreement": 0.9}), "targets"),
])
def test_bad_verification_options(kwargs, match):
    with pytest.raises(ExportError, match=match):
        Verification(**kwargs)


def test_wrong_suffix_and_missing_dir(vgg8s, tmp_path):
    with pytest.raises(ExportError, match=r"\*\.tflite"):
        export(vgg8s, str(tmp_path / "m.onnx"), "tflite")
    with pytest.raises(ExportError, match="does not exist"):
        export(vgg8s, str(tmp_path / "nodir" / "m.tflite"))
    assert os.listdir(tmp_path) == []


def test_existing_path_is_not_overwritten(vgg8s, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"precious")
    with pytest.raises(ExportError, match="exists; pass overwrite=True"):
        export(vgg8s, str(path), verify=False)
    assert path.read_bytes() == b"precious" and sorted(os.listdir(tmp_path)) == ["m.tflite"]
    res = export(vgg8s, str(path), overwrite=True,
                 verify=Verification(num_images=1, sizes=(None,), latency=False))
    assert path.read_bytes()[4:8] == b"TFL3" and res.report.passed
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "m.tflite.json", "m.tflite.verify.json"]


def test_saved_model_folder_is_replaced_whole(vgg8s, tmp_path):
    """overwrite=True on a SavedModel folder: the new folder replaces the old one, no file of it stays."""
    path = tmp_path / "server"
    path.mkdir()
    (path / "old.txt").write_text("from an earlier export")
    export(vgg8s, str(path), overwrite=True, verify=False)
    assert "old.txt" not in os.listdir(path) and (path / "saved_model.pb").is_file()
    assert sorted(os.listdir(tmp_path)) == ["server", "server.json"]


def test_failed_conversion_leaves_no_partial_file(tmp_path):
    """A layer using keras.ops.argmax cannot be builtins-only: conversion fails, nothing is left."""
    import keras

    @keras.saving.register_keras_serializable(package="fcn_keras_tests")
    class ArgmaxOneHot(keras.layers.Layer):
        def call(self, x):
            return keras.ops.one_hot(keras.ops.argmax(x, axis=-1), 4) * 10.0

    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, ArgmaxOneHot()(keras.layers.Conv2D(4, 1)(inp)))
    with pytest.raises(Exception, match="BitwiseAnd|Flex|not supported|Select TF"):
        export(model, str(tmp_path / "bad.tflite"))
    assert os.listdir(tmp_path) == []


def test_verifier_fails_loudly_on_a_different_model(vgg8s, tmp_path):
    path = str(tmp_path / "m.tflite")
    export(vgg8s, path, verify=False)
    other = small_model("vgg16", "8s", seed=7)  # same architecture, other weights
    one = Verification(num_images=1, sizes=(None,), latency=False)
    with pytest.raises(ParityError, match="label agreement|relative score error") as err:
        verify(path, other, one)
    assert err.value.report.passed is False
    with open(path + ".verify.json") as f:
        saved = json.load(f)
    assert saved["passed"] is False and saved["failures"]
    # the same file verifies against its own model
    assert verify(path, vgg8s, one).passed


@pytest.mark.slow  # int8 calibration and conversion (the fast int8 path: test_predict.py, test_quiet_int8.py)
def test_tflite_dynamic_range_int8(vgg8s, tmp_path):
    path = str(tmp_path / "dyn.tflite")
    res = export(vgg8s, path, "tflite", "dynamic-int8",
                 verify=Verification(num_images=1, sizes=(None, (83, 117)), targets=INT8_RANDOM_TARGETS,
                                     latency=False))
    assert res.report.passed and res.report.size_ratio < 0.3 and tfl.builtin_only(path)
    assert tfl.TFLiteRunner(path).in_details["dtype"] == np.uint8  # float graph, uint8 image in


def test_model_without_preprocessing_gets_it_in_the_export(tmp_path):
    """include_preprocessing=False: the export adds the BGR mean subtraction (uint8 pixels in)."""
    import keras

    import fcn_keras
    from export_helpers import randomize
    from fcn_keras.export.onnx import ONNXRunner
    from fcn_keras.models.layers import Preprocess

    keras.utils.set_random_seed(3)
    model = randomize(fcn_keras.build("vgg16", "32s", num_classes=4, width=0.125,
                                      include_preprocessing=False), 3)
    path = str(tmp_path / "nopre.onnx")
    export(model, path, verify=Verification(num_images=1, sizes=(None,), latency=False))
    img = np.random.default_rng(0).integers(0, 256, (1, 45, 61, 3), dtype=np.uint8)
    _, scores = ONNXRunner(path)(img)
    assert_scores_close(scores, model(Preprocess()(img.astype(np.float32))).numpy())


_ON_JAX = """
import keras, fcn_keras
from fcn_keras.export import ExportError, export
assert keras.backend.backend() == "jax"
model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
onnx = export(model, "m.onnx", verify=False)
web = export(model, "w", "web", verify=False, max_side=128)
try:
    export(model, "m.onnx", verify=False)
except ExportError as e:  # raised in the TensorFlow process, raised again here
    refused = (str(e), e.arguments)
print(repr((onnx.format, [os.path.basename(f) for f in onnx.files], web.format,
            web.metadata["web"]["max_side"], refused)))
"""


@pytest.mark.slow  # other backend end to end (JAX, then a TensorFlow process)
def test_export_from_the_jax_backend_runs_in_a_tensorflow_process(tmp_path):
    """On JAX, `export` hands the model to a TensorFlow process of its own; the folder format
    (web) and an error (an existing path) come back as on TensorFlow."""
    import ast
    import subprocess
    import sys

    pytest.importorskip("jax")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=root)
    run = subprocess.run([sys.executable, "-c", "import os\n" + _ON_JAX], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    fmt, files, web_fmt, max_side, refused = ast.literal_eval(run.stdout.strip().splitlines()[-1])
    assert (fmt, files, web_fmt, max_side) == ("onnx", ["m.onnx", "m.onnx.json"], "web", 128)
    assert refused == ("'m.onnx' exists; pass overwrite=True to replace it", ("overwrite",))
    assert os.path.isfile(tmp_path / "w" / "index.html") and os.path.isfile(tmp_path / "w" / "model.onnx")
