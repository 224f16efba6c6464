"""FCN models: the `FCN` class, `build_backbone()`, the registry of backbones and heads.

This subpackage imports only Keras and fcn_keras' conventions and metrics; `fcn_keras.build()`
(which also loads weights) sits above it.
"""

from fcn_keras.models.fcn import FCN, build_backbone
from fcn_keras.models.registry import BACKBONES, architectures, heads

__all__ = ["FCN", "build_backbone", "BACKBONES", "architectures", "heads"]
