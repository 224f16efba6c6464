"""Opening `.keras` files with errors that say what is wrong with the file.

Keras reports a truncated or empty `.keras` file as "File not found"; here a missing file,
an empty one, a folder and a file that is not a complete `.keras` archive (a zip file holding
`config.json`) are each named as such before Keras reads it.

    from fcn_keras.models.saving import load_keras
    model = load_keras("model.keras")      # registers fcn_keras' classes, compile=False

`keras.models.load_model` itself needs the classes registered: `import fcn_keras` (or
`fcn_keras.models`) first.
"""

import os
import zipfile

KERAS_SUFFIX = ".keras"


def check_keras_file(path, arg="model"):
    """Raises if `path` is not an existing, complete `.keras` archive; returns the path as str.

    Args:
        path: the file.
        arg: how errors name the argument (e.g. "model", "--model").

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: a folder.
        ValueError: an empty file, or one that is not a complete `.keras` (zip) archive.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{arg}` {path!r} does not exist (expected a .keras file)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"`{arg}` {path!r} is a folder; expected a .keras file")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"`{arg}` {path!r} is empty (0 bytes); expected a .keras file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"`{arg}` {path!r} exists ({size:,} bytes) but is not a complete .keras archive "
                         "(a .keras file is a zip archive; this one is truncated, e.g. by an interrupted "
                         "copy or download, or is another kind of file)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"`{arg}` {path!r} is not a readable .keras archive ({e})") from None
    if "config.json" not in names:
        raise ValueError(f"`{arg}` {path!r} is a zip archive without config.json: not a .keras model file")
    return path


def load_keras(path, arg="model", compile=False):
    """The model of a `.keras` file, fcn_keras' classes registered, after `check_keras_file`.

    Args:
        path: the `.keras` file.
        arg: how errors name the argument.
        compile: passed to `keras.saving.load_model` (False: inference, export, evaluation).

    Returns:
        The `keras.Model` (an `fcn_keras.FCN` for files fcn_keras wrote).

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: see `check_keras_file`.
    """
    import keras

    from fcn_keras.models import fcn, layers  # noqa: F401  (register FCN and the custom layers)

    return keras.saving.load_model(check_keras_file(path, arg), compile=compile)
