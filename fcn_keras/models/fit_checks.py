"""What `FCN.fit` / `FCN.evaluate` check before Keras runs, and the one line they give for
TensorFlow's errors about the data.

Before: a `fcn_keras.data` source (unbatched examples) passed as is; NumPy masks whose size
is not the images' or whose labels the model has no class for. After: a data error raised
inside a `fcn_keras.data.pipeline` (a file named), and TensorFlow's "label value outside the
valid range" (a dataset with more classes than the model), each as one line.
"""

import re

import numpy as np

from fcn_keras.conventions import IGNORE_LABEL, DataError, data_error_message

#: TensorFlow's loss and the package's metrics on a label the model has no class for
_LABEL_RANGE = (re.compile(r"Received a label value of (-?\d+) which is outside the valid range"),
                re.compile(r"label values outside 0\.\.\d+ that are not the ignore label \d+; "
                           r"largest bad label\] \[(-?\d+)\]"))


def _is_source(x):
    """True for a `fcn_keras.data.Source` (checked by kind: models do not import data)."""
    return type(x).__module__.startswith("fcn_keras.data") and hasattr(x, "dataset")


def check_inputs(model, x, y=None, validation_data=None):
    """Raises a ValueError naming what is wrong with `fit` / `evaluate` inputs, else None.

    Args:
        model: the FCN (its `num_classes`).
        x, y: the inputs: a dataset (unchecked here), or NumPy images (N, H, W, 3) and masks
            (N, H, W) or (N, H, W, 1) of class ids, 255 = ignore.
        validation_data: `fit`'s, checked the same way.
    """
    for name, value in (("x", x), ("validation_data", validation_data)):
        if _is_source(value):
            raise ValueError(
                f"Keras takes batches: wrap the source in fcn_keras.data.pipeline(source) "
                f"(batch_size=1, images of any size; training=True to augment). Received: "
                f"{name}={value!r}")
    if isinstance(validation_data, tuple) and len(validation_data) >= 2:
        check_inputs(model, *validation_data[:2])
    if y is None or not hasattr(x, "shape") or not hasattr(y, "shape"):
        return
    images, masks = tuple(x.shape), tuple(y.shape)
    if len(masks) == 4 and masks[-1] == 1:
        masks = masks[:3]
    if len(images) != 4 or masks != images[:3]:
        raise ValueError(f"masks must be (N, H, W) class ids of the images' size (N, H, W, 3). "
                         f"Received: images of shape {images}, masks of shape {tuple(y.shape)}")
    labels = np.unique(np.asarray(y))
    bad = labels[(labels != IGNORE_LABEL) & ((labels < 0) | (labels >= model.num_classes))]
    if bad.size:
        raise ValueError(_too_many_classes(model.num_classes, int(bad[0])))


def squeeze_masks(y):
    """NumPy masks (N, H, W, 1) as (N, H, W), the shape the loss and metrics take; else `y`."""
    if isinstance(y, np.ndarray) and y.ndim == 4 and y.shape[-1] == 1:
        return y[..., 0]
    return y


def _too_many_classes(num_classes, label):
    return (f"the masks hold label {label}, but the model has {num_classes} classes "
            f"(0..{num_classes - 1}, {IGNORE_LABEL} = ignore): build it with the data's class "
            f"count (num_classes=source.num_classes)")


def clear_error(model, error):
    """The one-line error to raise instead of TensorFlow's `error`, or None (raise it as is)."""
    message = data_error_message(error)
    if message is not None:
        return DataError(message)
    text = getattr(error, "message", None) or str(error)
    for pattern in _LABEL_RANGE:
        found = pattern.search(text)
        if found:
            return ValueError(_too_many_classes(model.num_classes, int(found.group(1))))
    return None
