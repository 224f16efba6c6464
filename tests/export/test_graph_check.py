"""SavedModels are programs: a hostile one (file reads and writes in its serving function) is
refused before it loads, the project's own exports load with no flag, and `--trust-model` /
`trust=True` runs any."""

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras.export import graph_check
from fcn_keras.export.saved_model import write_saved_model
from fcn_keras.models.fcn import with_precision
from fcn_keras.models.layers import dense_upsampling
from fcn_keras.predict import Predictor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (backbone, head, variant): every backbone, every kind of head, bfloat16, a fixed input size,
# the float32 input of the int8 route, and the dense upsampling path (trained or Caffe kernels
# that are not channel-wise; what the TFLite / ONNX exporters trace).
EXPORTS = [("vgg16", "32s", None), ("vgg16", "8s-atonce", None), ("alexnet", "16s", None),
           ("googlenet", "8s", None), ("alexnet", "8s", "bfloat16"), ("googlenet", "32s", "fixed"),
           ("vgg16", "16s", "float_input"), ("alexnet", "8s", "dense"), ("googlenet", "16s", "dense")]


def _export(backbone, head, variant, folder):
    model = fcn_keras.build(backbone, head, num_classes=3, width=0.0625)
    kwargs = {}
    if variant == "bfloat16":
        model = with_precision(model, "bfloat16")
    elif variant == "fixed":
        kwargs["input_size"] = (32, 40)
    elif variant == "float_input":
        kwargs["input_dtype"] = "float32"
    with dense_upsampling(model) if variant == "dense" else contextlib.nullcontext():
        return write_saved_model(model, str(folder), ["a", "b", "c"], np.zeros((3, 3), np.uint8),
                                 meta={"class_names": ["a", "b", "c"]}, **kwargs)


@pytest.mark.slow  # nine SavedModel exports, every backbone
def test_the_allowlist_covers_fresh_exports_of_every_architecture(tmp_path):
    seen = set()
    for i, (backbone, head, variant) in enumerate(EXPORTS):
        folder = _export(backbone, head, variant, tmp_path / str(i))
        ops = graph_check.graph_ops(folder)
        outside = set(ops) - graph_check.ALLOWED_OPS - graph_check.CHECKPOINT_OPS
        assert not outside, (backbone, head, variant, {op: ops[op] for op in outside})
        assert graph_check.check_saved_model(folder) == folder
        seen |= set(ops)
    # the frozen set holds no op the exporter stopped emitting (kept as small as it can be)
    assert graph_check.PURE_OPS - seen == set()


def _hostile_saved_model(folder, secret, stolen):
    """A SavedModel whose serving function copies the file `secret` to `stolen` (ReadFile, WriteFile)."""
    import tensorflow as tf

    def serve(image):
        tf.io.write_file(stolen, tf.io.read_file(secret))
        shape = tf.shape(image)
        scores = tf.zeros(tf.concat([shape[:3], [2]], 0), tf.float32)
        return {"labels": tf.zeros(shape[:3], tf.uint8), "scores": scores}

    module = tf.Module()
    module.serve = tf.function(serve, input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8, name="image")])
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve.get_concrete_function()})
    return str(folder)


@pytest.fixture()
def hostile(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private key\n")
    os.utime(secret, (1_000_000_000, 1_000_000_000))
    stolen = tmp_path / "stolen.txt"
    folder = _hostile_saved_model(tmp_path / "evil_model", str(secret), str(stolen))
    image = tmp_path / "photos" / "a.png"
    image.parent.mkdir()
    Image.fromarray(np.full((20, 24, 3), 100, np.uint8)).save(image)
    return folder, secret, stolen, image


def _predict_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "fcn_keras.cli", "predict", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_predict_refuses_a_savedmodel_that_reads_and_writes_files(hostile, tmp_path):
    folder, secret, stolen, image = hostile
    result = _predict_cli("--model", folder, "--out", tmp_path / "out", image)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert os.path.join(folder, "saved_model.pb") in lines[0] and "--trust-model" in lines[0]
    assert "'ReadFile'" in lines[0] or "'WriteFile'" in lines[0]
    assert not stolen.exists()
    assert secret.read_text() == "private key\n" and secret.stat().st_mtime == 1_000_000_000
    assert not (tmp_path / "out" / "a.png_labels.png").exists()

    with pytest.raises(graph_check.UntrustedModelError, match="saved_model.pb"):
        Predictor(folder)
    from fcn_keras.export import runner

    with pytest.raises(graph_check.UntrustedModelError, match="WriteFile|ReadFile"):
        runner(folder)
    assert not stolen.exists()


def test_trust_model_runs_it(hostile, tmp_path):
    folder, secret, stolen, image = hostile
    result = _predict_cli("--model", folder, "--out", tmp_path / "out", "--trust-model", image)
    assert result.returncode == 0, result.stderr
    assert stolen.read_text() == "private key\n"  # what the flag allows is what it says
    assert "--trust-model" in _predict_cli("--help").stdout
    stolen.unlink()
    labels, _ = Predictor(folder, trust=True).predict(np.zeros((8, 8, 3), np.uint8))
    assert labels.shape == (8, 8) and stolen.exists()


def test_checkpoint_ops_only_in_the_savers_functions(tmp_path):
    """SaveV2 writes files: allowed where TensorFlow's saver writes variables/, not in a serving function."""
    import tensorflow as tf

    target = str(tmp_path / "planted")

    def serve(image):
        tf.raw_ops.SaveV2(prefix=target, tensor_names=["x"], shape_and_slices=[""],
                          tensors=[tf.constant([1.0])])
        return {"labels": tf.zeros(tf.shape(image)[:3], tf.uint8)}

    module = tf.Module()
    module.serve = tf.function(serve, input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8)])
    folder = str(tmp_path / "sm")
    tf.saved_model.save(module, folder, signatures={"serving_default": module.serve.get_concrete_function()})
    with pytest.raises(graph_check.UntrustedModelError, match="'SaveV2'"):
        graph_check.check_saved_model(folder)


def test_an_unreadable_graph_is_named(tmp_path):
    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff not a protocol buffer")
    with pytest.raises(graph_check.UntrustedModelError, match="saved_model.pb"):
        graph_check.check_saved_model(folder)
