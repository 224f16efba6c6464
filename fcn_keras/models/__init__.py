"""FCN models: `build()`, the `FCN` class, backbones, heads and their layers."""

from fcn_keras.models.fcn import FCN, build, build_backbone
from fcn_keras.models.registry import BACKBONES, architectures

__all__ = ["FCN", "build", "build_backbone", "BACKBONES", "architectures"]
