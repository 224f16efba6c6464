"""The backbones' kernel initializer, and `weights_follow()`: build a net whose weights are
loaded right after without drawing its random kernels.

A backbone's convolutions are declared with Keras' default, glorot_uniform. Drawing it costs
three temporaries the size of the kernel on TensorFlow (the uniform draw, its scaling, its
shift): 1.2 GB for VGG16's fc6 (7x7x512x4096 floats, 411 MB), which TensorFlow's oneDNN CPU
allocator then keeps for the life of the process. A net whose weights are loaded right after
(`fcn_keras.build(weights=...)`, a `.keras` file, a copy in another precision) never uses
those values: within `weights_follow()` its kernels are created as zeros, and `restore()`
puts the declared initializer back on each layer once the net is built, so its config, and
any file saved from it, are those of a net built without it.
"""

import contextlib
import contextvars

import keras

DECLARED = "glorot_uniform"  # Keras' default kernel initializer of Conv2D (what configs record)
_FOLLOW = contextvars.ContextVar("fcn_keras_weights_follow", default=False)


class Unset(keras.initializers.Zeros):
    """Zeros standing in for the initializer `declared` while the weights are loaded right after."""

    def __init__(self, declared):
        self.declared = declared


@contextlib.contextmanager
def weights_follow():
    """Within: the backbones' kernels are created as zeros (no random draw); use only where every
    weight is loaded before the net is used (a failed load must discard the net)."""
    token = _FOLLOW.set(True)
    try:
        yield
    finally:
        _FOLLOW.reset(token)


def kernel_init(declared=DECLARED):
    """The initializer a backbone layer is built with: `declared` (a Keras initializer or its
    name), or within `weights_follow()` an `Unset` zeros that remembers it."""
    declared = keras.initializers.get(declared)
    return Unset(declared) if _FOLLOW.get() else declared


def restore(model):
    """Puts the declared initializer back on every layer of `model` built with an `Unset` one
    (its config then equals a net built outside `weights_follow()`). Returns `model`."""
    for layer in model.layers:
        init = getattr(layer, "kernel_initializer", None)
        if isinstance(init, Unset):
            layer.kernel_initializer = init.declared
    return model
