"""fcn_keras: the Fully Convolutional Networks of Long, Shelhamer & Darrell as a Keras 3 zoo.

    model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")
    model.compile()                      # the paper's recipe
    model.fit(train_ds, validation_data=val_ds)

`import fcn_keras` is quick: it imports neither Keras nor TensorFlow. Every public name
(`build`, `FCN`, ...) and submodule (`fcn_keras.data`, `fcn_keras.export`, ...) loads on first
use (a module `__getattr__`, PEP 562), and TensorFlow's start-up notes (oneDNN, CPU features,
no CUDA driver, a failed cuInit without a GPU: `fcn_keras._progress.NATIVE_NOISE`) are dropped
from that first load, its warnings and errors kept; TF_CPP_MIN_LOG_LEVEL=0 set before it shows
everything. `fcn_keras.export`'s and `fcn_keras.training`'s public names load the same way
(`from fcn_keras.export import export` is quiet too); `fcn_keras.models` imports only Keras
and its own files, so `from fcn_keras import FCN` is the quiet way to it. The command line
(`fcn-keras`) relies on this: it parses its arguments before anything imports Keras, so
`--help` and typos answer at once.

`keras.saving.load_model("model.keras")` finds the package's layers and model class once the
class is imported (Keras knows custom classes only then): `from fcn_keras import FCN` first, or
open the file with `fcn_keras.loading.load_model(path)`. Building a model (`fcn_keras.build`)
imports it too.
"""

__version__ = "0.1.0"

from fcn_keras._progress import import_quietly as _import_quietly

_NAMES = {
    "build": "fcn_keras.api", "list_models": "fcn_keras.api",
    "FCN": "fcn_keras.models.fcn", "build_backbone": "fcn_keras.models.fcn",
    "convolutionalize": "fcn_keras.models.convolutionalize",
}
_SUBMODULES = ("data", "metrics", "losses", "export", "training", "weights", "viz", "models", "predict",
               "loading")


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
