"""Convolutionalization: a classifier's Flatten + Dense head as equivalent convolutions.

The first Dense after Flatten, seeing an (h, w, c) map, becomes an (h, w) 'valid' Conv2D
with the same weights (Flatten is row-major over h, w, c, the kernel's own order); every
later Dense becomes a 1x1 Conv2D. The result takes any input size: at the classifier's
size it returns its scores as a (N, 1, 1, classes) map; on a larger image each output cell
is the classifier applied to one window, at the stride of the network (the paper's
example: VGG16 on 384x384 gives 6x6 cells, windows 224x224 at stride 32). Cells equal the
classifier on their window exactly when the convolutions use no padding; with 'same'
padding (as VGG16 has) the windows' borders see image pixels where the classifier saw
zeros, so only the 224x224 case is exact there.
"""

import keras
import numpy as np
from keras import layers


def _chain(classifier):
    """The classifier's layers as a single chain (input layer excluded)."""
    chain = []
    for layer in classifier.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        nodes = list(layer._inbound_nodes)
        if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
            raise ValueError(
                "convolutionalize() expects a classifier whose layers form one chain (like "
                f"keras.applications.VGG16). Received: layer {layer.name!r} with several inputs or calls")
        chain.append(layer)
    return chain


def _clone(layer, x):
    new = layer.__class__.from_config(layer.get_config())
    y = new(x)
    new.set_weights(layer.get_weights())
    return y


def _split(classifier):
    """(layers before Flatten, layers after it, the (h, w, c) shape entering Flatten)."""
    chain = _chain(classifier)
    flat = [i for i, layer in enumerate(chain) if isinstance(layer, layers.Flatten)]
    if len(flat) != 1:
        raise ValueError("convolutionalize() expects exactly one Flatten layer followed by Dense layers. "
                         f"Received: {len(flat)} Flatten layers in {classifier.name!r}")
    f = flat[0]
    head = chain[f + 1 :]
    if not any(isinstance(layer, layers.Dense) for layer in head):
        raise ValueError(f"Expected a Dense layer after Flatten. Received: none in {classifier.name!r}")
    for layer in head:
        if not isinstance(layer, (layers.Dense, layers.Dropout, layers.Activation)):
            raise ValueError(
                "convolutionalize() can turn only Dense, Dropout and Activation layers after Flatten into "
                f"convolutions. Received: {layer.name!r} ({type(layer).__name__})")
    feature_shape = chain[f].input.shape[1:]
    if len(feature_shape) != 3 or None in feature_shape:
        raise ValueError(
            "Expected a fixed (h, w, c) map entering Flatten (build the classifier with a fixed input "
            f"size). Received: shape={tuple(feature_shape)} in {classifier.name!r}")
    return chain[:f], head, feature_shape


def convolutionalize(classifier, name=None):
    """Returns a fully convolutional keras.Model equivalent to `classifier`.

    Args:
        classifier: a keras.Model whose layers form a chain ending in Flatten -> Dense(s)
            (Dropout / Activation between them allowed), channels_last, with a fixed input size.
        name: the new model's name (default "<classifier name>_fcn").

    Returns:
        A keras.Model taking (N, H, W, C) of any size and returning (N, H', W', units of the
        last Dense); H' = W' = 1 at the classifier's input size.

    Raises:
        TypeError: `classifier` is not a keras.Model.
        ValueError: its layers are not such a chain (the message names the layer).
    """
    if not isinstance(classifier, keras.Model):
        raise TypeError(f"convolutionalize() takes a keras.Model. Received: {type(classifier).__name__}")
    body, head, feature_shape = _split(classifier)

    inputs = keras.Input(shape=(None, None, classifier.input.shape[-1]), name="image")
    x = inputs
    for layer in body:
        x = _clone(layer, x)
    kernel_hw, channels = feature_shape[:2], feature_shape[2]
    for layer in head:
        if not isinstance(layer, layers.Dense):
            x = _clone(layer, x)
            continue
        w, b = layer.get_weights() if layer.use_bias else (layer.get_weights()[0], None)
        conv = layers.Conv2D(
            layer.units, kernel_hw, padding="valid", activation=layer.activation,
            use_bias=layer.use_bias, name=layer.name)
        x = conv(x)
        kernel = np.reshape(w, (*kernel_hw, channels, layer.units))
        conv.set_weights([kernel, b] if b is not None else [kernel])
        kernel_hw, channels = (1, 1), layer.units
    return keras.Model(inputs, x, name=name or f"{classifier.name}_fcn")
