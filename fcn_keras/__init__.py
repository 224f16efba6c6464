"""fcn_keras: the Fully Convolutional Networks of Long, Shelhamer & Darrell as a Keras 3 zoo.

    model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")
    model.compile()                      # the paper's recipe
    model.fit(train_ds, validation_data=val_ds)

`import fcn_keras` imports Keras and registers the package's layers and model class, so that
`keras.saving.load_model("model.keras")` works afterwards (Keras finds custom classes only
once the package that registers them is imported).
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

# The command line (`fcn-keras`, `python -m fcn_keras.cli`) parses its arguments before it
# imports Keras, so that `--help` and typos answer at once: there the names load on first use.
_CLI = _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("fcn-keras", "-m")


def _import_all():
    """Imports the public names (and so Keras, registering the package's classes)."""
    for name, module in _NAMES.items():
        globals()[name] = getattr(_importlib.import_module(module), name)


def _import_all_quietly():
    """`_import_all` in a Python program: TensorFlow's start-up notes (oneDNN, CPU features,
    no CUDA driver, a failed cuInit without a GPU: `fcn_keras._progress.NATIVE_NOISE`) are
    dropped, its warnings and errors kept; TF_CPP_MIN_LOG_LEVEL=0 set before the import shows
    everything."""
    if _os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        _import_all()
        return
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's later info lines
    from fcn_keras._progress import native_stderr_filtered

    with native_stderr_filtered():
        _import_all()
        tf = _sys.modules.get("tensorflow")
        if tf is not None and hasattr(tf, "config"):
            tf.config.list_physical_devices("GPU")  # where TensorFlow's GPU build logs cuInit


if _CLI:
    # Keep TensorFlow's C++ info/warning lines out of the user's terminal.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
else:
    _import_all_quietly()


def __getattr__(name):
    # Submodules that pull in TensorFlow-only code, and (in the command line) every name,
    # load on first use.
    if name in _NAMES:
        return getattr(_importlib.import_module(_NAMES[name]), name)
    if name in _SUBMODULES:
        return _importlib.import_module(f"fcn_keras.{name}")
    raise AttributeError(f"module 'fcn_keras' has no attribute {name!r}")


__all__ = ["FCN", "build", "build_backbone", "convolutionalize", "list_models", "__version__"]
