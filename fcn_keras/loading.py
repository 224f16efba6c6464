"""One way to open a model: a path or a name -> a Keras model (or, for `predict`, an artefact).

    from fcn_keras.loading import load_model, kind_of
    load_model("model.keras")                                        # a saved model
    load_model("voc-fcn8s")                                          # a zoo name
    load_model("fcn8s-heavy-pascal.caffemodel", backbone="vgg16", head="8s")  # classes read from it
    load_model("run.weights.h5", backbone="alexnet", head="8s", num_classes=4, width=0.125)
    load_model(weights="voc-fcn8s")                                  # build(..., weights=...)
    kind_of("fcn8s.tflite")                                          # "tflite": an exported artefact

Every command (`evaluate`, `predict`, `export`, `convert`) and `fcn_keras.predict.Predictor`
open models through `load_model`; `kind_of` sorts a spec first, so `predict` hands exported
artefacts (`.tflite`, `.onnx`, SavedModel folders) to their runtimes. This module sits above
`fcn_keras.build` and the export formats (it builds models, loads weights and knows the
artefacts' suffixes); the export package below it opens `.keras` files with
`fcn_keras.weights.keras_file.load_keras`, the same checks and loader.
"""

import os
import warnings

from fcn_keras.export import formats as export_formats  # plain data: no TensorFlow imported
from fcn_keras.models.saving import KERAS_SUFFIX, short_error
from fcn_keras.weights.keras_file import load_keras
from fcn_keras.weights import WEIGHT_SUFFIXES

#: Exported artefacts (besides SavedModel folders), run by `fcn_keras.export.runner`.
ARTEFACT_SUFFIXES = {m.SUFFIX: name for name, m in export_formats.TABLE.items()
                     if m.SUFFIX and not getattr(m, "REFINES", None)}  # a variant: detected in the file
ARCH = ("backbone", "head", "num_classes", "width")


def kind_of(spec):
    """What `spec` names: "keras", "weights", "zoo", "saved_model", "tflite", "onnx" or None.

    A path that exists is sorted by its suffix (a folder: "saved_model"); a zoo name that is not
    also a path is "zoo"; anything else is sorted by its suffix, or None.
    """
    from fcn_keras.weights import zoo

    spec = os.fspath(spec)
    lower = spec.lower()
    if os.path.isdir(spec):
        return "saved_model"
    if spec in zoo.ENTRIES and not os.path.exists(spec):
        return "zoo"
    if lower.endswith(KERAS_SUFFIX):
        return "keras"
    if lower.endswith(WEIGHT_SUFFIXES):
        return "weights"
    return next((k for s, k in ARTEFACT_SUFFIXES.items() if lower.endswith(s)), None)


def expected_text():
    """What a model argument may be, for error messages."""
    return (f"a {KERAS_SUFFIX} file, a weights file ({', '.join(WEIGHT_SUFFIXES)}) with its architecture, "
            "a zoo name (fcn_keras.list_models(), `fcn-keras zoo`), or for predict an exported .tflite, "
            ".onnx or SavedModel folder")


def load_model(model=None, *, weights=None, backbone=None, head=None, num_classes=None, width=None,
               arg="model"):
    """The Keras model that `model` (or `weights` on the given architecture) names.

    Args:
        model: a `keras.Model` (returned as is); a `.keras` file; a weights file (`.weights.h5`,
            `.h5`, `.caffemodel`) with `backbone` and `head` (and `num_classes`, read from a
            `.caffemodel` when not given; `width` when not 1.0); or a zoo name.
        weights: instead of `model`: weights for `fcn_keras.build(backbone, head, num_classes,
            width=width, weights=weights)`: a zoo name (which implies the architecture),
            "imagenet" or a weights file.
        backbone, head, num_classes, width: the architecture of a weights file (or of
            `weights`); refused with a `.keras` file or a keras.Model, which define their own.
        arg: how errors name the model argument ("model", "--model", "source").

    Returns:
        The `keras.Model` (an `fcn_keras.FCN` except for a foreign `.keras` file).

    Raises:
        FileNotFoundError: a path that does not exist (and is not a zoo name).
        ValueError: an empty or truncated `.keras` file, a weights file without its
            architecture or one that does not fit it, an exported artefact, an unknown kind.
        fcn_keras.weights.DownloadError: a zoo model that is neither cached nor downloadable.
    """
    import keras

    arch = {"backbone": backbone, "head": head, "num_classes": num_classes, "width": width}
    if (model is None) == (weights is None):
        raise ValueError(f"Give one of `{arg}` (a model file or zoo name) or `weights` (with the "
                         f"architecture). Received: {arg}={model!r}, weights={weights!r}")
    if weights is not None:
        return build_with_weights(os.fspath(weights), arch)
    if isinstance(model, keras.Model):
        refuse_arch(arch, "a keras.Model")
        return model
    spec = os.fspath(model)
    kind = kind_of(spec)
    if kind == "keras":
        refuse_arch(arch, spec)
        return load_keras(spec, arg)
    if kind in ("weights", "zoo"):
        return build_with_weights(spec, arch)
    if kind is not None:
        raise ValueError(f"`{arg}` {spec!r} is an exported {kind} artefact: only `predict` runs those; "
                         f"give the {KERAS_SUFFIX} model it was exported from")
    must_exist(spec, arg)
    raise ValueError(f"`{arg}` must be {expected_text()}. Received: {arg}={spec!r}")


def build_with_weights(weights, arch):
    """`fcn_keras.build` of the architecture `arch` with `weights` (a file or a name).

    Args:
        weights: a weights file (.weights.h5, .h5, .caffemodel), a zoo name or "imagenet".
        arch: dict with "backbone", "head", "num_classes", "width" (None: not given). A zoo
            FCN name implies all but width; a `.caffemodel` implies num_classes (its score
            layer's; an ImageNet classifier's: 21, as do "imagenet" and the zoo's backbone
            entries); otherwise backbone, head and num_classes are required; width: 1.0.

    Returns:
        the `fcn_keras.FCN` (class names set from the zoo entry for a zoo FCN).

    Raises:
        FileNotFoundError: a weights file that does not exist.
        ValueError: a missing architecture argument, or weights that do not fit it (in short,
            without Keras' dump of tensor values).
    """
    from fcn_keras import api
    from fcn_keras.models import registry
    from fcn_keras.weights import WeightsMismatchError, zoo

    arch = dict(arch)
    entry = zoo.ENTRIES.get(weights) if not os.path.exists(weights) else None
    implied = set() if entry is None else {k for k in ("backbone", "head", "num_classes") if entry[k] is not None}
    if entry is None and weights != "imagenet":
        must_exist(weights, "weights")
        if arch["num_classes"] is None and weights.lower().endswith(".caffemodel"):
            arch["num_classes"] = caffemodel_classes(weights)
            if arch["num_classes"] is None:  # a backbone's classifier: build's default class count
                implied.add("num_classes")
    missing = [k for k in ("backbone", "head", "num_classes") if arch[k] is None and k not in implied]
    if missing == ["num_classes"] and (entry is not None or weights == "imagenet"):
        missing = []  # a backbone's ImageNet weights: build's default class count
    if missing:
        raise ValueError(
            f"{weights} holds weights only: give the architecture they were trained with "
            f"({', '.join(f'`{k}`' for k in missing)} missing; command line: --backbone, --head, "
            "--num-classes, and --width when not 1.0)")
    if arch["backbone"] and arch["head"]:
        registry.check(arch["backbone"], arch["head"])
    width = 1.0 if arch["width"] is None else arch["width"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = api.build(arch["backbone"], arch["head"], num_classes=arch["num_classes"],
                              width=width, weights=weights)
        except ValueError as e:  # Keras' warnings about the layers it skipped say nothing more
            if entry is not None or weights == "imagenet" or not isinstance(e, WeightsMismatchError):
                raise  # a zoo entry's own message, or a file refused as such (it names the file)
            gist = getattr(e, "gist", None) or short_error(e)  # the file's misfit, named once
            raise ValueError(f"{weights} does not fit FCN-{arch['head']} {arch['backbone']} with "
                             f"num_classes={arch['num_classes']}, width={width}: {gist}") from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def caffemodel_classes(path):
    """The class count of a `.caffemodel`'s score layer (score_fr / score_fr_sem), or None."""
    from fcn_keras.weights import zoo
    from fcn_keras.weights.caffemodel import read_caffemodel

    layers = read_caffemodel(path).layers
    score = zoo.score_layer(layer.name for layer in layers)
    return next((int(layer.blobs[0].shape[0]) for layer in layers if layer.name == score), None)


def refuse_arch(arch, what):
    """Raises ValueError if an architecture argument is given for `what`, which has its own."""
    given = {k: v for k, v in arch.items() if v is not None}
    if given:
        k, v = next(iter(given.items()))
        raise ValueError(f"`{k}` applies only to weights files ({', '.join(WEIGHT_SUFFIXES)}); {what} "
                         f"defines its own architecture. Received: {k}={v!r}")


def must_exist(spec, arg="model"):
    """Raises FileNotFoundError naming `arg` and what it may be, if `spec` does not exist."""
    if not os.path.exists(spec):
        raise FileNotFoundError(f"`{arg}` {spec!r} does not exist: expected {expected_text()}")
