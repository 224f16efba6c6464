"""Loading weights into a built model: `load`, the zoo's downloads (`fetch`, `prefetch`) and
the converted-weights cache.

`load(model, weights)` (called by `fcn_keras.build`) accepts None, "imagenet", a zoo name
(`fcn_keras.list_models()`), or a path to a `.caffemodel`, `.keras`, `.weights.h5` or
Keras' VGG16 `.h5` file. Zoo and ImageNet files are downloaded once into
`$KERAS_HOME/models/` (checksum-verified, see `download`) and their converted weights are
cached in `$KERAS_HOME/models/fcn_keras/<name>.converted.h5`, so a second `build` neither
downloads nor converts. A path never touches the network. Loading is all or nothing.
"""

import os

from fcn_keras.models.saving import KERAS_SUFFIX, check_keras_file, read_config, short_error
from fcn_keras.weights import mapping, zoo
from fcn_keras.weights.download import parse_hash
from fcn_keras.weights.hdf5 import open_hdf5
from fcn_keras.weights.caffemodel import CaffeModelError, read_caffemodel
from fcn_keras.weights.download import converted_dir
from fcn_keras.weights.download import download as _download
from fcn_keras.weights.mapping import (WeightsMismatchError, assign, load_converted, save_converted,
                                       values_from_caffe, values_from_keras_vgg16)

#: Files that hold weights only: their architecture comes from backbone/head/num_classes/width.
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".caffemodel")


def sort_spec(spec):
    """(kind, zoo entry or None) of a weights spec (a str), by existence and suffix only.

    kind: "zoo" (a zoo name, `entry` its entry) or "imagenet", for a name that is not also an
    existing path; else "keras" (`.keras`), "weights" (`WEIGHT_SUFFIXES`), or None (nothing this
    package reads; `fcn_keras.resolve` goes on with folders and exported artefacts).
    """
    entry = zoo.ENTRIES.get(spec)
    if (entry is not None or spec == "imagenet") and not os.path.exists(spec):
        return ("zoo" if entry is not None else "imagenet"), entry
    lower = spec.lower()
    if lower.endswith(KERAS_SUFFIX):
        return "keras", None
    if lower.endswith(WEIGHT_SUFFIXES):
        return "weights", None
    return None, None


def _backbone_of(model):
    name = getattr(model, "backbone_name", None)
    if name:
        return name
    if model.name.endswith("_backbone"):
        return model.name[: -len("_backbone")]
    raise ValueError("Cannot tell the model's backbone. Expected a model made by fcn_keras.build() or "
                     f"fcn_keras.build_backbone(). Received: model.name={model.name!r}")


def _check_width(model, what):
    width = getattr(model, "width", 1.0)
    if width != 1.0:
        raise ValueError(f"{what} are for full-width models: build with width=1.0. Received: width={width}")


def fetch(name, file_hash=None, *, progress=None):
    """Downloads (or finds in the cache) the source file of zoo entry `name`.

    Args:
        name: a zoo entry name.
        file_hash: "sha256:<hex>", "sha1:<hex>" or "md5:<hex>"; required for entries without
            a published checksum, and must agree with the published one where there is one.
        progress: draw a progress bar on stderr (None: when stderr is a terminal).

    Returns:
        The path of the file in the cache.

    Raises:
        ValueError: an unknown name, or a `file_hash` that disagrees with the published one.
        DownloadError: the file cannot be downloaded or verified.
    """
    return _fetch_source(zoo.get(name), file_hash, progress)


def _fetch_source(entry, file_hash=None, progress=None):
    """`fetch` of the zoo entry `entry` (a dict of `zoo.ENTRIES`)."""
    src = entry["source"]
    checksum = src["checksum"]
    if file_hash is not None and checksum is not None and parse_hash(file_hash) != parse_hash(checksum):
        raise ValueError(f"`file_hash` disagrees with the published checksum of {entry['name']!r}. Expected "
                         f"file_hash={checksum!r}. Received: file_hash={file_hash!r}")
    return _download(src["urls"], src["filename"], checksum or file_hash, progress=progress,
                     size=src.get("size"))


def prefetch(name):
    """Makes sure zoo entry `name`'s weights are at hand (converted cache or downloaded source)
    before a model is built for them: offline, the DownloadError comes at once.

    Raises:
        DownloadError: neither cached nor downloadable.
    """
    entry = zoo.get(name)
    if os.path.exists(converted_path(name)):
        return
    if entry["kind"] == "backbone":
        entry = zoo.imagenet_entry(entry["backbone"])
        if os.path.exists(converted_path(entry["name"])):
            return
    _fetch_source(entry)


def converted_path(name):
    """Where the converted weights of zoo entry `name` are cached."""
    return os.path.join(converted_dir(), f"{name}.converted.h5")


def check_cache_folder(folder):
    """Refuses a cache folder (or its parent) that other users can write to, or another user owns.

    Converted weights are code-free but are trusted to be this project's conversion of the
    published file: a folder others can write to lets them plant any weights.

    Raises:
        PermissionError: naming the folder and how to fix it.
    """
    for path in (folder, os.path.dirname(folder)):
        if not os.path.isdir(path):
            continue
        info = os.stat(path)
        others = info.st_mode & 0o002 and not info.st_mode & 0o1000  # world-writable, not sticky
        foreign = hasattr(os, "getuid") and info.st_uid not in (os.getuid(), 0)
        if others or foreign:
            why = "other users can write to it" if others else f"it belongs to another user (uid {info.st_uid})"
            raise PermissionError(f"The weights cache {path} is refused: {why}, so its files could have been "
                                  f"planted. Fix it (chmod o-w {path}) or set KERAS_HOME to a folder of your own")


def _cached_values(cached, entry):
    """The values of a cached conversion of `entry`, or None (absent, from another source file,
    or unreadable: a warning names the file, which is converted again)."""
    import warnings

    if not os.path.exists(cached):
        return None
    try:
        values, meta = load_converted(cached)
    except (CaffeModelError, OSError) as e:
        warnings.warn(f"{cached}: unreadable converted weights ({e}); converting again", stacklevel=3)
        return None
    same = (str(meta.get("entry", "")) == entry["name"]
            and str(meta.get("checksum", "")) == str(entry["source"]["checksum"] or ""))
    return values if same else None  # converted from another file than the one the zoo names now


def _load_entry(model, entry, progress, source):
    """Assigns the converted values of zoo `entry` (from the cache, or downloaded and converted
    now) to `model`. A cached conversion that is unreadable or does not fit the model (NaN,
    shapes, missing layers) is converted again from the source file; returns `model`."""
    cached = converted_path(entry["name"])
    check_cache_folder(os.path.dirname(cached))
    values = _cached_values(cached, entry)
    if values is not None:
        try:
            return assign(model, values, f"{source}, cached as {cached}")
        except WeightsMismatchError as e:
            import warnings

            warnings.warn(f"{cached}: the cached conversion does not fit ({str(e).splitlines()[0]}); "
                          "converting again", stacklevel=3)
    path = _fetch_source(entry, progress=progress)
    if entry["source"]["format"] == "keras-h5":
        values = values_from_keras_vgg16(model, path)
    else:
        net = read_caffemodel(path)
        ignore = tuple(entry.get("ignore", ())) or ()
        values = values_from_caffe(model, net, rename=entry.get("rename"), ignore=ignore,
                                   progress=progress)
    assign(model, values, source)
    save_converted(cached, values, {"entry": entry["name"], "source": entry["source"]["filename"],
                                    "checksum": entry["source"]["checksum"]})
    return model


def load_file(model, path, progress=None, backup=True):
    """Loads the weights file `path` (.caffemodel, Keras' VGG16 .h5, a converted .h5, .weights.h5,
    .keras) into `model`, all or nothing; never touches the network (see `load`).

    `backup=False` is for a net that is dropped when loading fails (`fcn_keras.build`): Keras'
    own files are then loaded without first copying every weight to restore on failure (a
    copy of the whole net: 513 MB for VGG16), so a failure leaves the net part loaded.

    Raises:
        FileNotFoundError: no such file.
        WeightsMismatchError, ValueError: see `load`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The weights file does not exist. Received: weights={path!r}")
    lower = path.lower()
    if lower.endswith(".caffemodel"):
        return _load_caffemodel(model, path, progress)
    if lower.endswith(".h5") and not lower.endswith(".weights.h5"):
        with open_hdf5(path) as f:
            root = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", [])]
            converted = f.attrs.get("fcn_keras_converted") is not None
        if converted:
            values, _ = load_converted(path)
            return assign(model, values, path)
        if "block1_conv1" in names:
            return assign(model, values_from_keras_vgg16(model, path), path)
    return _keras_load_weights(model, path, backup)


def _load_caffemodel(model, path, progress):
    """A `.caffemodel` read directly; a two-headed net (SIFT Flow's) converted with its zoo entry's rules."""
    net = read_caffemodel(path)
    names = {layer.name for layer in net.layers}
    kwargs = {}
    if zoo.two_headed(names):
        sift = zoo.ENTRIES["siftflow-fcn8s"]
        kwargs = {"rename": sift["rename"], "ignore": tuple(sift["ignore"]) + mapping.DEFAULT_IGNORE}
    values = values_from_caffe(model, net, progress=progress, **kwargs)
    return assign(model, values, path)


def _keras_load_weights(model, path, backup=True):
    """Keras' own loader for `.keras` / `.weights.h5` files, checked first, undone if it fails
    (with `backup`; without, the model is left part loaded).

    Raises:
        ValueError: a damaged `.keras` archive or HDF5 file (naming it).
        WeightsMismatchError: weights of another architecture (one line: the layer and both
            shapes) or NaN / Inf values (the layer); the model keeps its weights (with `backup`).
    """
    import warnings

    if path.lower().endswith(KERAS_SUFFIX):
        check_keras_file(path, "weights")
        read_config(path, "weights")
    else:
        with open_hdf5(path):
            pass
    saved = [w.numpy() for w in model.weights] if backup else None
    try:
        with warnings.catch_warnings(record=True) as caught:  # Keras' notes on skipped layers: moot if it fails
            warnings.simplefilter("always")
            model.load_weights(path)
        bad = next((w for w in model.weights if not _finite(w)), None)
        if bad is not None:
            raise WeightsMismatchError(f"{path}: {bad.path} holds NaN or Inf values; nothing was loaded")
    except Exception as e:
        if saved is not None:
            for w, value in zip(model.weights, saved):
                w.assign(value)
            mapping.refresh_upsampling(model)
        if isinstance(e, WeightsMismatchError):
            raise
        if isinstance(e, (ValueError, KeyError, TypeError, OSError)):
            gist = short_error(e)
            err = WeightsMismatchError(f"The weights in {path} do not fit the model {model.name!r}; nothing was "
                                       f"loaded: {gist}")
            err.gist = gist  # what does not fit, for callers that name the file and model themselves
            raise err from None
        raise
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def _finite(variable):
    """Whether every value of `variable` is finite (computed where it lives: no copy of it in NumPy)."""
    import keras

    return bool(keras.ops.convert_to_numpy(keras.ops.all(keras.ops.isfinite(variable))))


def load(model, weights, *, progress=None):
    """Loads `weights` into `model` (an fcn_keras FCN or backbone), all or nothing.

    Args:
        model: a model made by `fcn_keras.build` or `fcn_keras.build_backbone`.
        weights: None; "imagenet" (backbone only: VGG16 from Keras' file, AlexNet from BVLC
            CaffeNet, GoogLeNet from BVLC GoogLeNet); a zoo entry name; or a file path.
        progress: draw progress bars on stderr (None: when stderr is a terminal).

    Returns:
        `model`.

    Raises:
        ValueError: an unknown name, or an architecture the entry does not fit.
        WeightsMismatchError: a file that does not fit (nothing is assigned).
        DownloadError: a file must be downloaded and cannot be.
    """
    if weights is None:
        return model
    if isinstance(weights, os.PathLike):
        return load_file(model, os.fspath(weights), progress)
    if not isinstance(weights, str):
        raise TypeError(f"`weights` must be None, a string or a path. Received: weights={weights!r}")
    kind, entry = sort_spec(weights)
    if kind == "imagenet":
        backbone = _backbone_of(model)
        _check_width(model, "ImageNet weights")
        entry = zoo.imagenet_entry(backbone)
        return _load_entry(model, entry, progress, f"{entry['name']} ({entry['source']['filename']})")
    if kind == "zoo":
        if entry["kind"] == "backbone":
            if entry["backbone"] != _backbone_of(model):
                _wrong_arch(model, entry)
            return load(model, "imagenet", progress=progress)
        have = (getattr(model, "backbone_name", None), getattr(model, "head_name", None),
                getattr(model, "num_classes", None))
        if have != (entry["backbone"], entry["head"], entry["num_classes"]):
            _wrong_arch(model, entry)
        _check_width(model, f"The {weights!r} weights")
        return _load_entry(model, entry, progress, f"{weights} ({entry['source']['filename']})")
    if kind is not None or os.path.sep in weights or os.path.exists(weights):
        return load_file(model, weights, progress)
    raise ValueError(
        "The `weights` argument should be None (random initialisation), 'imagenet' (backbone "
        f"pretrained on ImageNet), a zoo name ({', '.join(sorted(zoo.ENTRIES))}), or the path to a "
        f".caffemodel, .keras, .weights.h5 or .h5 file. Received: weights={weights!r}")


def _wrong_arch(model, entry):
    if entry["kind"] == "backbone":
        raise ValueError(f"{entry['name']!r} holds {entry['backbone']} ImageNet weights. Expected a model with "
                         f"backbone={entry['backbone']!r}. Received: backbone={_backbone_of(model)!r}")
    raise ValueError(
        f"{entry['name']!r} is FCN-{entry['head']} on {entry['backbone']} with {entry['num_classes']} classes: "
        f"build it with fcn_keras.build({entry['backbone']!r}, {entry['head']!r}, num_classes={entry['num_classes']}, "
        f"weights={entry['name']!r}) or fcn_keras.build(weights={entry['name']!r}). Received a model with "
        f"backbone={getattr(model, 'backbone_name', None)!r}, "
        f"head={getattr(model, 'head_name', None)!r}, num_classes={getattr(model, 'num_classes', None)!r}.")


