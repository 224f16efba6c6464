"""The project's training path on the JAX and PyTorch backends (and mixed precision on all
three), each in a process of its own: the backend is fixed when Keras is first imported.

What runs there is `tests/backends/battery.py` (see its docstring); this file checks its
exit status, and exports the JAX-trained model under TensorFlow with `fcn-keras export`.
Resume after an interrupt on every backend: tests/training/test_resume.py.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import fcn_keras_cli

pytestmark = pytest.mark.slow  # the JAX and PyTorch training batteries in subprocesses, mixed precision training

BATTERY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "battery.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def battery(backend, modes, out_dir, devices=1, timeout=900):
    """Runs battery.py MODES under KERAS_BACKEND=backend; returns its stdout."""
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CONFIG", None)
    env.pop("JAX_ENABLE_X64", None)
    if devices > 1:  # virtual CPU devices for JAX: must be set before jax is imported
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
    run = subprocess.run([sys.executable, BATTERY, modes, str(out_dir)], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-5000:])
    for mode in modes.split(","):
        assert f"OK {mode}" in run.stdout, run.stdout[-2000:]
    return run.stdout


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """The JAX battery's train + counts run, once: its folder (model.keras, run/, staged/)."""
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("jax_battery")
    battery("jax", "train,counts,mixed", out)
    return out


def test_jax_end_to_end(jax_run):
    # fit on the pipeline through train (history, curves, checkpoints), evaluate == numpy
    # counts, .keras round trip, run_recipe staged and its rerun, > 2**24 pixels counted,
    # mixed_float16 and mixed_bfloat16 training
    for name in ("run/history.json", "run/curves.png", "staged/fcn8s/model.weights.h5",
                 "model.keras"):
        assert (jax_run / name).exists(), name


def test_torch_end_to_end(tmp_path):
    pytest.importorskip("torch")
    out = battery("torch", "train,counts,mixed", tmp_path)
    assert "mixed_float16 [" in out and "mixed_bfloat16 [" in out, out
    with open(tmp_path / "run" / "history.json") as f:
        assert len(json.load(f)["loss"]) == 2


def test_mixed_precision_trains_on_tensorflow(tmp_path):
    # (JAX and PyTorch: in their end-to-end runs above)
    import keras

    from tests.backends import battery as b

    assert keras.backend.backend() == "tensorflow"
    b.mixed_mode(str(tmp_path))
    assert keras.config.dtype_policy().name == "float32"  # restored


def test_data_parallel_on_two_devices_equals_one(tmp_path):
    pytest.importorskip("jax")
    out = battery("jax", "parallel", tmp_path, devices=2)
    assert "max relative weight difference" in out


@pytest.mark.parametrize("fmt,suffix", [("saved_model", "_savedmodel"), ("tflite", ".tflite"),
                                        ("onnx", ".onnx")])
def test_jax_trained_model_exports_under_tensorflow(jax_run, tmp_path, fmt, suffix):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    target = tmp_path / f"fcn{suffix}"
    run = fcn_keras_cli("export", str(jax_run / "model.keras"), "--format", fmt, "-o", str(target),
                        env={"KERAS_BACKEND": "tensorflow"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert target.exists()  # moved into place only once verified against the Keras model
    with open(f"{target}.json") as f:
        assert json.load(f)["model"]["num_classes"] == 4
    with open(f"{target}.verify.json") as f:
        report = json.load(f)
    assert report, report
