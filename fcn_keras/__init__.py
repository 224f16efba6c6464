"""fcn_keras: the Fully Convolutional Networks of Long, Shelhamer & Darrell as a Keras 3 zoo.

    model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")
    model.compile()                      # the paper's recipe
    model.fit(train_ds, validation_data=val_ds)

`import fcn_keras` is quick: it imports neither Keras nor TensorFlow. Every public name
(`build`, `FCN`, ...) and submodule (`fcn_keras.data`, `fcn_keras.export`, ...) loads on first
use (a module `__getattr__`, PEP 562), and TensorFlow's start-up notes (oneDNN, CPU features,
no CUDA driver, a failed cuInit without a GPU: `fcn_keras._progress.NATIVE_NOISE`) are dropped
from that first load, its warnings and errors kept; TF_CPP_MIN_LOG_LEVEL=0 set before it shows
everything. (`from fcn_keras.export import export` imports the submodule itself, past this
filter: `from fcn_keras import export` first keeps it quiet.) The command line (`fcn-keras`) relies on this: it parses its arguments before
anything imports Keras, so `--help` and typos answer at once.

`keras.saving.load_model("model.keras")` finds the package's layers and model class once the
class is imported (Keras knows custom classes only then): `from fcn_keras import FCN` first, or
open the file with `fcn_keras.loading.load_model(path)`. Building a model (`fcn_keras.build`)
imports it too.
"""

__version__ = "0.1.0"

import importlib as _importlib
import os as _os
import sys as _sys

_NAMES = {
    "build": "fcn_keras.api", "list_models": "fcn_keras.api",
    "FCN": "fcn_keras.models.fcn", "build_backbone": "fcn_keras.models.fcn",
    "convolutionalize": "fcn_keras.models.convolutionalize",
}
_SUBMODULES = ("data", "metrics", "losses", "export", "training", "weights", "viz", "models", "predict",
               "loading")


def _import_quietly(module):
    """Imports `module` (a dotted name); if that is the process's first import of TensorFlow,
    its start-up notes are dropped from stderr (see the module docstring)."""
    if "tensorflow" in _sys.modules or _os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return _importlib.import_module(module)
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's later info lines
    from fcn_keras._progress import native_stderr_filtered

    with native_stderr_filtered():
        loaded = _importlib.import_module(module)
        tf = _sys.modules.get("tensorflow")
        if tf is not None and hasattr(tf, "config"):
            tf.config.list_physical_devices("GPU")  # where TensorFlow's GPU build logs cuInit
    return loaded


def __getattr__(name):
    """The public names and submodules, each imported on first use (then a plain attribute)."""
    if name in _NAMES:
        value = getattr(_import_quietly(_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _import_quietly(f"fcn_keras.{name}")  # the import makes it an attribute
    raise AttributeError(f"module 'fcn_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))


__all__ = ["FCN", "build", "build_backbone", "convolutionalize", "list_models", "__version__"]
