"""`fcn-keras --backend ...`: the option in --help, refusals by name, and train (with
`--distribute data_parallel` on 2 virtual CPU devices) / evaluate / predict on JAX and
PyTorch as a user runs them."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.conftest import fcn_keras_cli

TINY = ("--backbone", "alexnet", "--head", "32s", "--width", "0.0625", "--data", "shapes",
        "--image-size", "32", "--num-examples", "4")


def test_help_states_the_backend_option():
    run = fcn_keras_cli("--help")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "--backend {tensorflow,jax,torch}" in text and "KERAS_BACKEND" in text, text
    train = " ".join(fcn_keras_cli("train", "--help").stdout.split())
    assert "--distribute {data_parallel,model_parallel}" in train and "JAX" in train


def test_export_on_another_backend_is_refused_by_name(tmp_path):
    run = fcn_keras_cli("--backend", "jax", "export", str(tmp_path / "m.keras"), "-o",
                        str(tmp_path / "m.onnx"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "fcn-keras export: error: export runs on the TensorFlow backend (it traces the model "
        "into TensorFlow graphs). Received: --backend jax; a .keras file trained on any "
        "backend exports as it is: drop --backend"], run.stderr


def test_bad_keras_backend_variable_is_refused(tmp_path):
    run = fcn_keras_cli("zoo", env={"KERAS_BACKEND": "numpyy"})
    assert run.returncode == 2 and "KERAS_BACKEND must be one of" in run.stderr, run.stderr


@pytest.mark.slow  # the command line on PyTorch
def test_tf_distribute_strategy_on_torch_names_backend_and_alternative(tmp_path):
    pytest.importorskip("torch")
    run = fcn_keras_cli("--backend", "torch", "train", *TINY, "--strategy", "mirrored",
                        "--val-split", "none", "--out", str(tmp_path / "run"))
    assert run.returncode == 2, run.stderr[-2000:]
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("fcn-keras train: error: strategy='mirrored' is a tf.distribute "
                           "strategy and needs the TensorFlow backend"), line
    assert "'torch'" in line and "KERAS_BACKEND=jax" in line and "Traceback" not in run.stderr


@pytest.mark.slow  # training on JAX, evaluate and predict on PyTorch
def test_train_on_jax_with_data_parallel_then_evaluate_and_predict_on_torch(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    out = tmp_path / "run"
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    # each batch is split between the 2 devices: a validation batch of 1 cannot be
    odd = fcn_keras_cli("--backend", "jax", "train", *TINY, "--distribute", "data_parallel",
                        "--out", str(out), env={"XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"})
    assert odd.returncode == 2 and odd.stderr.strip().splitlines()[-1] == (
        "fcn-keras train: error: `--batch-size` must be a multiple of the 2 devices that "
        "--distribute data_parallel splits each batch between. Received: --batch-size 1"), odd.stderr
    run = fcn_keras_cli("--backend", "jax", "train", *TINY, "--batch-size", "2", "--crop-size",
                        "32", "--val-batch-size", "2", "--epochs", "1", "--steps-per-epoch", "2",
                        "--distribute",
                        "data_parallel", "--out", str(out), "--quiet",
                        env={"XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "model.keras").exists() and (out / "scores.json").exists()
    assert "epoch 1/1  loss" in run.stdout, run.stdout

    scores = tmp_path / "scores.json"
    run = fcn_keras_cli("--backend", "torch", "evaluate", "--model", str(out / "model.keras"),
                        "--data", "shapes", "--split", "val", "--image-size", "32",
                        "--num-examples", "4", "--json", str(scores), "--quiet")
    assert run.returncode == 0, run.stderr[-3000:]
    with open(scores) as f:
        assert json.load(f)["images"] == 4

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(photos / "a.png")
    run = fcn_keras_cli("--backend", "torch", "predict", "--model", str(out / "model.keras"),
                        str(photos), "--out", str(tmp_path / "masks"), "--quiet")
    assert run.returncode == 0, run.stderr[-3000:]
    assert Image.open(tmp_path / "masks" / "a.png_labels.png").size == (30, 20)
