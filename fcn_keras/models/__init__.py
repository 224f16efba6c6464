"""FCN models: the `FCN` class, `build_backbone()`, the registry of backbones and heads,
`with_precision()` (a bfloat16 copy for inference).

This subpackage imports only Keras and fcn_keras' conventions and metrics; `fcn_keras.build()`
(which also loads weights) sits above it. Its names load on first use (PEP 562), so that
`fcn_keras.models.registry` (plain data) can be read without importing Keras.
"""

import importlib

_NAMES = {
    "FCN": "fcn", "build_backbone": "fcn", "with_precision": "fcn",
    "BACKBONES": "registry", "architectures": "registry", "heads": "registry",
    "PRECISIONS": "precision", "native_bfloat16": "cpu_flags",
}

__all__ = list(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"fcn_keras.models.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'fcn_keras.models' has no attribute {name!r}")
