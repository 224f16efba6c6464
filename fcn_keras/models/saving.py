"""Opening `.keras` files with errors that say what is wrong with the file.

Keras reports a truncated or empty `.keras` file as "File not found"; here a missing file,
an empty one, a folder and a file that is not a complete `.keras` archive (a zip file holding
`config.json`) are each named as such before Keras reads it. A `.keras` file may come from
someone else: its `config.json` is capped at `MAX_CONFIG_BYTES`, and whatever Keras raises
comes back as one `ValueError` line naming the file. (`fcn_keras.weights.keras_file.load_keras`
also compares an FCN's declared architecture with its weights before anything is built.)

    from fcn_keras.models.saving import load_keras
    model = load_keras("model.keras")      # registers fcn_keras' classes, compile=False

`keras.models.load_model` itself needs the classes registered: `from fcn_keras import FCN`
first.
"""

import json
import os
import re
import zipfile

KERAS_SUFFIX = ".keras"
MAX_CONFIG_BYTES = 4 * 2**20  # an FCN's config.json is a few KB (255 class names and colours: ~10 KB)


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


def read_config(path, arg="model"):
    """The parsed `config.json` of a checked `.keras` file, at most MAX_CONFIG_BYTES.

    Raises:
        ValueError: an oversized or invalid config.json (naming the file).
    """
    with zipfile.ZipFile(path) as archive:
        size = archive.getinfo("config.json").file_size
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"`{arg}` {path!r}: its config.json declares {size:,} bytes, more than the "
                             f"{MAX_CONFIG_BYTES:,} a model's configuration needs")
        with archive.open("config.json") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
    try:
        config = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"`{arg}` {path!r}: its config.json is not valid JSON ({e})") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(f"`{arg}` {path!r}: its config.json is not a Keras model configuration")
    return config


def short_error(err):
    """The gist of a Keras loading error in one line, without Keras' dump of tensor values."""
    text = str(err)
    found = re.search(r"name=(\w+).*?variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text, re.S)
    if found:
        return (f"layer {found.group(1)}: the file has shape {found.group(3)}, the model needs "
                f"{found.group(2)}")
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:300]


def load_keras(path, arg="model", compile=False):
    """The model of a `.keras` file, fcn_keras' classes registered, after `check_keras_file`.

    Args:
        path: the `.keras` file.
        arg: how errors name the argument.
        compile: passed to `keras.saving.load_model` (False: inference, export, evaluation).

    Returns:
        The `keras.Model` (an `fcn_keras.FCN` for files fcn_keras wrote).

    Raises:
        FileNotFoundError, IsADirectoryError: see `check_keras_file`.
        ValueError: see `check_keras_file`, `read_config`; anything Keras raises while loading,
            in one line naming the file.
    """
    import keras

    from fcn_keras.models import fcn, layers  # noqa: F401  (register FCN and the custom layers)
    from fcn_keras.models.deferred_init import weights_follow

    path = check_keras_file(path, arg)
    read_config(path, arg)
    try:
        with weights_follow():  # Keras loads every weight or raises: no random draw
            return keras.saving.load_model(path, compile=compile)
    except (TypeError, ValueError, KeyError, AttributeError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"`{arg}` {path!r} cannot be loaded: {short_error(e)}") from None
