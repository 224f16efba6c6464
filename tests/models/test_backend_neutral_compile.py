"""A compiled `.keras` saved on PyTorch or JAX loads, compiled, under TensorFlow without
importing that framework or its Keras backend (Keras records the backend's optimizer class
otherwise). `torch` is absent from sys.modules after the load; `jax` is imported by TensorFlow
2.21 itself where it is installed, so for JAX the check is that loading adds neither `jax`
nor `keras.src.backend.jax`."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAVE = """
import sys, numpy as np, keras, fcn_keras
m = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
m.compile()
m.fit(np.zeros((1, 24, 24, 3), "float32"), np.zeros((1, 24, 24), "int32"), verbose=0)
m.save(sys.argv[1])
"""

# TensorFlow 2.21 itself imports jax where it is installed: what counts is what loading adds.
LOAD = """
import sys, keras
from fcn_keras import FCN  # registers the classes load_model needs
FRAMEWORKS = ("torch", "jax", "keras.src.backend.torch", "keras.src.backend.jax")
before = {k for k in FRAMEWORKS if k in sys.modules}
m = keras.saving.load_model(sys.argv[1])
assert m.compiled and isinstance(m.optimizer, keras.optimizers.SGD), m.optimizer
assert int(m.optimizer.iterations) == 1
print("loaded", keras.backend.backend(), sorted(k for k in FRAMEWORKS if k in sys.modules and k not in before))
"""


def _run(code, backend, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # PyTorch and JAX in subprocesses
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_file_saved_on_another_backend_loads_under_tensorflow_without_it(backend, tmp_path):
    pytest.importorskip(backend)
    path = tmp_path / f"{backend}.keras"
    _run(SAVE, backend, path)
    with zipfile.ZipFile(path) as archive:
        optimizer = json.loads(archive.read("config.json"))["compile_config"]["optimizer"]
    assert optimizer["module"] == "keras.optimizers", optimizer["module"]
    assert _run(LOAD, "tensorflow", path).strip().splitlines()[-1] == "loaded tensorflow []"


@pytest.mark.slow  # processes on other backends
def test_a_file_with_a_backends_optimizer_module_loads_neutral(tmp_path):
    """Files saved before the fix name keras.src.backend.torch.optimizers...: read as keras.optimizers."""
    path = tmp_path / "old.keras"
    _run(SAVE, "tensorflow", path)
    old = tmp_path / "old_torch.keras"
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(old, "w") as b:
        for item in a.infolist():
            data = a.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["optimizer"]["module"] = "keras.src.backend.torch.optimizers.torch_sgd"
                data = json.dumps(config).encode()
            b.writestr(item, data)
    assert _run(LOAD, "tensorflow", old).strip().splitlines()[-1] == "loaded tensorflow []"
