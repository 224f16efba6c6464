"""The `fcn-keras` command line as a user runs it (a real subprocess)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fcn_keras_cli(*args, cwd=None, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "fcn_keras.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def test_help_lists_every_command():
    result = fcn_keras_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("demo", "train", "evaluate", "predict", "export", "convert", "zoo"):
        assert command in result.stdout


def test_unknown_command_fails():
    result = fcn_keras_cli("segment-everything")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = fcn_keras_cli("demo", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("metrics.json", "train/model.keras", "export/fcn8s.tflite", "export/fcn8s.onnx",
                 "export/fcn8s_int8.tflite", "export/fcn8s_savedmodel/saved_model.pb",
                 "predictions/0_overlay.png"):
        assert (out / name).exists(), name
    assert "mean IU" in result.stdout
    # A second run never clobbers the first without --overwrite.
    again = fcn_keras_cli("demo", "--quick", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
