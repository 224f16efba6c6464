"""int8 exports from Python print only the report: no onnxruntime "WARNING:root" advice, no
tf.lite.Interpreter deprecation, no converter or LiteRT log lines."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CODE = """
import fcn_keras
from fcn_keras.export import export
model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
export(model, "m8.tflite", quantize="int8", representative_data="shapes")
export(model, "m8.onnx", quantize="int8", representative_data="shapes")
"""


def test_int8_exports_are_quiet(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", CODE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    for noise in ("WARNING:root", "Please consider", "deprecated", "I0000", "W0000",
                  "fully_quantize", "XNNPACK"):
        assert noise not in run.stderr, run.stderr[-3000:]
    assert (tmp_path / "m8.tflite").exists() and (tmp_path / "m8.onnx").exists()
