"""Pretrained weights: ImageNet backbones, the paper's released FCNs and the zoo.

    fcn_keras.build(weights="voc-fcn8s")                           # a zoo entry (implies vgg16, 8s)
    fcn_keras.build("vgg16", "8s", weights="imagenet")             # backbone only
    fcn_keras.build("vgg16", "8s", weights="fcn8s-heavy-pascal.caffemodel")  # read directly

`load(model, weights)` (called by `build`) accepts None, "imagenet", a zoo name
(`fcn_keras.list_models()`), or a path to a `.caffemodel`, `.keras`, `.weights.h5` or
Keras' VGG16 `.h5` file. Zoo and ImageNet files are downloaded once into
`$KERAS_HOME/models/` (checksum-verified, see `download`) and their converted weights are
cached in `$KERAS_HOME/models/fcn_keras/<name>.converted.h5`, so a second `build` neither
downloads nor converts. A path never touches the network. Loading is all or nothing.
"""

import os

from fcn_keras.models.saving import KERAS_SUFFIX
from fcn_keras.weights import mapping, zoo
from fcn_keras.weights.download import parse_hash
from fcn_keras.weights.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel
from fcn_keras.weights.download import ChecksumError, DownloadError, converted_dir, keras_home
from fcn_keras.weights.download import download as _download
from fcn_keras.weights.mapping import (WeightsMismatchError, assign, load_converted, save_converted,
                                       values_from_caffe, values_from_keras_vgg16)

list_models = zoo.list_models

#: Files that hold weights only: their architecture comes from backbone/head/num_classes/width.
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".caffemodel")
PATH_SUFFIXES = WEIGHT_SUFFIXES + (KERAS_SUFFIX,)  # what `load` reads from a path


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
    entry = zoo.get(name)
    src = entry["source"]
    checksum = src["checksum"]
    if file_hash is not None and checksum is not None and parse_hash(file_hash) != parse_hash(checksum):
        raise ValueError(f"`file_hash` disagrees with the published checksum of {name!r}. Expected "
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
    fetch(entry["name"])


def converted_path(name):
    """Where the converted weights of zoo entry `name` are cached."""
    return os.path.join(converted_dir(), f"{name}.converted.h5")


def _convert(model, entry, progress):
    """Converted values for `entry` (from the cache, or downloaded and converted now)."""
    cached = converted_path(entry["name"])
    if os.path.exists(cached):
        values, meta = load_converted(cached)
        if str(meta.get("checksum", "")) == str(entry["source"]["checksum"] or ""):
            return values, cached
        # Converted from another file than the one the zoo names now: convert again.
    path = fetch(entry["name"], progress=progress)
    if entry["source"]["format"] == "keras-h5":
        values = values_from_keras_vgg16(model, path)
    else:
        net = read_caffemodel(path)
        ignore = tuple(entry.get("ignore", ())) or ()
        values = values_from_caffe(model, net, rename=entry.get("rename"), ignore=ignore,
                                   progress=progress)
    save_converted(cached, values, {"entry": entry["name"], "source": entry["source"]["filename"],
                                    "checksum": entry["source"]["checksum"]})
    return values, path


def _load_path(model, path, progress):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The weights file does not exist. Received: weights={path!r}")
    lower = path.lower()
    if lower.endswith(".caffemodel"):
        net = read_caffemodel(path)
        names = {layer.name for layer in net.layers}
        kwargs = {}
        if zoo.two_headed(names):
            sift = zoo.ENTRIES["siftflow-fcn8s"]
            kwargs = {"rename": sift["rename"], "ignore": tuple(sift["ignore"]) + mapping.DEFAULT_IGNORE}
        values = values_from_caffe(model, net, progress=progress, **kwargs)
        return assign(model, values, path)
    if lower.endswith(".h5") and not lower.endswith(".weights.h5"):
        import h5py

        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", [])]
            converted = f.attrs.get("fcn_keras_converted") is not None
        if converted:
            values, _ = load_converted(path)
            return assign(model, values, path)
        if "block1_conv1" in names:
            return assign(model, values_from_keras_vgg16(model, path), path)
    # .keras, .weights.h5, other Keras files: Keras' own loader, undone if it fails half-way.
    backup = [w.numpy() for w in model.weights]
    try:
        model.load_weights(path)
    except Exception:
        for w, value in zip(model.weights, backup):
            w.assign(value)
        mapping.refresh_upsampling(model)
        raise
    return model


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
        return _load_path(model, os.fspath(weights), progress)
    if not isinstance(weights, str):
        raise TypeError(f"`weights` must be None, a string or a path. Received: weights={weights!r}")
    if weights == "imagenet":
        backbone = _backbone_of(model)
        _check_width(model, "ImageNet weights")
        entry = zoo.imagenet_entry(backbone)
        values, _ = _convert(model, entry, progress)
        return assign(model, values, f"{entry['name']} ({entry['source']['filename']})")
    if weights in zoo.ENTRIES:
        entry = zoo.get(weights)
        if entry["kind"] == "backbone":
            if entry["backbone"] != _backbone_of(model):
                _wrong_arch(model, entry)
            return load(model, "imagenet", progress=progress)
        have = (getattr(model, "backbone_name", None), getattr(model, "head_name", None),
                getattr(model, "num_classes", None))
        if have != (entry["backbone"], entry["head"], entry["num_classes"]):
            _wrong_arch(model, entry)
        _check_width(model, f"The {weights!r} weights")
        values, _ = _convert(model, entry, progress)
        return assign(model, values, f"{weights} ({entry['source']['filename']})")
    if weights.lower().endswith(PATH_SUFFIXES) or os.path.sep in weights or os.path.exists(weights):
        return _load_path(model, weights, progress)
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


__all__ = [
    "CaffeModelError", "ChecksumError", "DownloadError", "WeightsMismatchError", "assign", "converted_path",
    "fetch", "prefetch", "keras_home", "list_models", "load", "read_caffemodel", "values_from_caffe",
    "values_from_keras_vgg16", "write_caffemodel", "zoo", "WEIGHT_SUFFIXES",
]
