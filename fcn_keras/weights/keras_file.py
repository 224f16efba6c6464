"""A `.keras` file from someone else: its declared architecture checked against its weights.

A `.keras` file's `config.json` alone decides what Keras allocates: a config declaring
`width: 4` builds a model of gigabytes before the weights are read and found not to fit.
`load_keras` reads the shapes in the archive's weights file first (no values) and compares
them with what an FCN's config declares, then loads it with `fcn_keras.models.saving.load_keras`
(config size cap, errors in one line):

    from fcn_keras.weights.keras_file import load_keras
    model = load_keras("someone_elses.keras")
"""

import re
import zipfile

from fcn_keras.models.saving import check_keras_file, read_config
from fcn_keras.models.saving import load_keras as _load_checked
from fcn_keras.weights.hdf5 import open_hdf5

WEIGHTS_NAME = "model.weights.h5"
FCN_NAME = "fcn_keras>FCN"


def load_keras(path, arg="model", compile=False):
    """`fcn_keras.models.saving.load_keras` after `check_declared_architecture`.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: see `fcn_keras.models.saving.load_keras`
            and `check_declared_architecture` (each naming the file).
    """
    path = check_keras_file(path, arg)
    check_declared_architecture(path, read_config(path, arg), arg)
    return _load_checked(path, arg, compile=compile)


def _weight_shapes(archive, path, arg):
    """{dataset path: shape} of the `.keras` archive's weights file (shapes read, no values)."""
    import h5py

    if WEIGHTS_NAME not in archive.namelist():
        raise ValueError(f"`{arg}` {path!r} holds no {WEIGHTS_NAME}: a .keras model file keeps its weights there")
    shapes = {}
    with archive.open(WEIGHTS_NAME) as raw, open_hdf5(raw, f"{path} ({WEIGHTS_NAME})") as f:
        f.visititems(lambda name, obj: shapes.__setitem__(name, obj.shape)
                     if isinstance(obj, h5py.Dataset) else None)
    return shapes


def check_declared_architecture(path, config, arg="model"):
    """Compares an FCN's declared width and num_classes with its weights' shapes, before building.

    The first convolution's output channels (`layers/conv2d`) must be what the declared width
    gives the backbone's first layer, and the decoder's upsampling kernels (`conv2d_transpose*`)
    must have num_classes channels: a config that declares more than its weights hold is
    refused before Keras allocates it.

    Raises:
        ValueError: naming the file, the field, what the config declares and what the weights hold.
    """
    if config.get("registered_name") != FCN_NAME:
        return  # another Keras model: its own classes decide
    from fcn_keras.models import registry

    fields = config["config"]
    backbone, width, num_classes = fields.get("backbone"), fields.get("width"), fields.get("num_classes")
    if backbone not in registry.BACKBONES or not isinstance(width, (int, float)) or not 0 < width <= 4 or (
            not isinstance(num_classes, int) or not 0 < num_classes <= 255):
        raise ValueError(f"`{arg}` {path!r}: its config declares backbone={backbone!r}, width={width!r}, "
                         f"num_classes={num_classes!r}; expected a backbone of {registry.backbones()}, "
                         "0 < width <= 4 and 1 <= num_classes <= 255")
    with zipfile.ZipFile(path) as archive:
        shapes = _weight_shapes(archive, path, arg)
    first = shapes.get("layers/conv2d/vars/0")
    need = max(1, int(registry.BACKBONES[backbone]["first_channels"] * width))
    if first is None or len(first) != 4 or first[-1] != need:
        raise ValueError(f"`{arg}` {path!r}: its config declares {backbone} with width={width} (a first "
                         f"convolution of {need} channels); its weights hold {first} for that layer")
    for name, shape in shapes.items():
        if re.fullmatch(r"layers/conv2d_transpose(_\d+)?/vars/0", name) and shape[-1] != num_classes:
            raise ValueError(f"`{arg}` {path!r}: its config declares num_classes={num_classes}; its weights "
                             f"hold {shape[-1]} classes ({name}: {tuple(shape)})")
