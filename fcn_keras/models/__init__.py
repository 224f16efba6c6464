"""FCN models: the `FCN` class, `build_backbone()`, the registry of backbones and heads,
`with_precision()` (a bfloat16 copy for inference).

This subpackage imports only Keras and fcn_keras' conventions and metrics; `fcn_keras.build()`
(which also loads weights) sits above it.
"""

from fcn_keras.models.cpu_flags import native_bfloat16
from fcn_keras.models.fcn import FCN, build_backbone, model_precision, with_precision
from fcn_keras.models.precision import PRECISIONS
from fcn_keras.models.registry import BACKBONES, architectures, heads

__all__ = ["FCN", "build_backbone", "BACKBONES", "architectures", "heads", "PRECISIONS", "with_precision",
           "model_precision", "native_bfloat16"]
