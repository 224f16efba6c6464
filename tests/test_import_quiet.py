"""`import fcn_keras` in a Python program: every public submodule reachable as an attribute
(as the README writes `fcn_keras.loading.load_model(path)`), and no TensorFlow start-up
notes on stderr, while what is not such a note still gets through."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_import_is_quiet_and_submodules_load_on_use():
    run = _python("import fcn_keras\n"
                  "for name in ('loading', 'data', 'metrics', 'export', 'training', 'weights',\n"
                  "             'viz', 'models', 'predict'):\n"
                  "    getattr(fcn_keras, name)\n"
                  "print(fcn_keras.loading.load_model.__name__)\n"
                  "fcn_keras.build('alexnet', '32s', num_classes=3, width=0.0625)")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "load_model"
    assert run.stderr == "", run.stderr


def test_filter_keeps_what_is_not_noise():
    run = _python(
        "import os\n"
        "from fcn_keras._progress import native_stderr_filtered\n"
        "with native_stderr_filtered():\n"
        "    os.write(2, b'I0000 00:00:1.0 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "    os.write(2, b'E0000 00:00:1.0 x.cc:1] a real error\\n')\n"
        "    os.write(2, b'E0000 00:00:1.0 cuda_platform.cc:52] failed call to cuInit: no GPU\\n')\n"
        "    os.write(2, b'plain text\\n')\n"
        "os.write(2, b'after\\n')\n")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ("E0000 00:00:1.0 x.cc:1] a real error\nplain text\nafter\n")


def test_import_loads_no_framework_and_the_model_class_registers():
    """`import fcn_keras` in a Python program imports neither TensorFlow nor Keras (as in the
    command line: one lazy scheme); `from fcn_keras import FCN` registers the class for
    Keras' loader."""
    run = _python("import sys\n"
                  "import fcn_keras\n"
                  "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))\n"
                  "import keras\n"
                  "print(keras.saving.get_registered_object('fcn_keras>FCN'))\n"
                  "from fcn_keras import FCN\n"
                  "print(keras.saving.get_registered_object('fcn_keras>FCN') is FCN)\n")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split("\n")[:3] == ["[]", "None", "True"], run.stdout
