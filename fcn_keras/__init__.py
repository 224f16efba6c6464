"""fcn_keras: the Fully Convolutional Networks of Long, Shelhamer & Darrell as a Keras 3 zoo.

    model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")
    model.compile()                      # the paper's recipe
    model.fit(train_ds, validation_data=val_ds)
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys

if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "fcn-keras":
    # The command line: keep TensorFlow's C++ info/warning lines out of the user's terminal.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fcn_keras.api import build, list_models  # noqa: E402
from fcn_keras.models import FCN, build_backbone  # noqa: E402  (registers the layers)
from fcn_keras.models.convolutionalize import convolutionalize  # noqa: E402


def __getattr__(name):
    # Submodules that pull in TensorFlow-only code load on first use.
    if name in ("data", "metrics", "export", "training", "weights", "viz"):
        import importlib

        return importlib.import_module(f"fcn_keras.{name}")
    raise AttributeError(f"module 'fcn_keras' has no attribute {name!r}")


__all__ = ["FCN", "build", "build_backbone", "convolutionalize", "list_models", "__version__"]
