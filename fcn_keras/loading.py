"""One way to open a model: a path or a name -> a Keras model.

    from fcn_keras.loading import load_model
    load_model("model.keras")                                        # a saved model
    load_model("voc-fcn8s")                                          # a zoo name
    load_model("fcn8s-heavy-pascal.caffemodel", backbone="vgg16", head="8s")  # classes read from it
    load_model("run.weights.h5", backbone="alexnet", head="8s", num_classes=4, width=0.125)
    load_model(weights="voc-fcn8s")                                  # build(..., weights=...)

Every command (`evaluate`, `predict`, `export`, `convert`) and `fcn_keras.predict.Predictor`
open Keras models through `load_model`. What a spec names, and whether the architecture
arguments fit it, is `fcn_keras.resolve.resolve`'s answer; this module builds or opens what
it names (it sits above `fcn_keras.build`). `.keras` files are opened by
`fcn_keras.weights.keras_file.load_keras`, the checked loader export uses too.
"""

import dataclasses
import os
import warnings

import numpy as np

from fcn_keras.models.saving import KERAS_SUFFIX, short_error
from fcn_keras.resolve import expected_text, must_exist, resolve
from fcn_keras.weights.keras_file import load_keras


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
    if (model is None) == (weights is None):
        raise ValueError(f"Give one of `{arg}` (a model file or zoo name) or `weights` (with the "
                         f"architecture). Received: {arg}={model!r}, weights={weights!r}")
    arch = {"backbone": backbone, "head": head, "num_classes": num_classes, "width": width}
    if weights is not None:
        return build_with_weights(resolve(os.fspath(weights), **arch, read_classes=True, as_weights=True))
    return _keras_model(resolve(model, **arch, read_classes=True), model, arg)


def _keras_model(found, model, arg):
    """The keras.Model that `found` (the `Resolved` of `model`) names; errors name `arg`."""
    if found.kind == "model":
        return model
    if found.kind == "keras":
        return load_keras(found.path, arg)
    if found.kind in ("weights", "zoo"):
        return build_with_weights(found)
    if found.is_artefact:
        raise ValueError(f"`{arg}` {found.path!r} is an exported {found.kind} artefact: only `predict` runs "
                         f"those; give the {KERAS_SUFFIX} model it was exported from")
    must_exist(found.path, arg)
    raise ValueError(f"`{arg}` must be {expected_text()}. Received: {arg}={found.path!r}")


def build_with_weights(found):
    """`fcn_keras.build` of the architecture `found.arch` with the weights `found.path` names.

    Args:
        found: the `fcn_keras.resolve.Resolved` of a weights file (.weights.h5, .h5,
            .caffemodel), a zoo name or "imagenet", with the architecture arguments (a zoo
            FCN implies all but width; a `.caffemodel` resolved with `read_classes` its class
            count; otherwise backbone, head and num_classes are required; width: 1.0).

    Returns:
        the `fcn_keras.FCN` (class names set from the zoo entry for a zoo FCN).

    Raises:
        FileNotFoundError: a weights file that does not exist.
        ValueError: a missing architecture argument, or weights that do not fit it (in short,
            without Keras' dump of tensor values).
    """
    from fcn_keras import api
    from fcn_keras.weights import WeightsMismatchError

    weights, arch = found.path, found.arch
    if found.kind not in ("zoo", "imagenet"):
        must_exist(weights, "weights")
    missing = found.missing
    if missing:
        raise ValueError(
            f"{weights} holds weights only: give the architecture they were trained with "
            f"({', '.join(f'`{k}`' for k in missing)} missing; command line: --backbone, --head, "
            "--num-classes, and --width when not 1.0)")
    width = 1.0 if arch["width"] is None else arch["width"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = api.build_resolved(found, weights, width=width)
        except ValueError as e:  # Keras' warnings about the layers it skipped say nothing more
            if found.kind in ("zoo", "imagenet") or not isinstance(e, WeightsMismatchError):
                raise  # a zoo entry's own message, or a file refused as such (it names the file)
            gist = getattr(e, "gist", None) or short_error(e)  # the file's misfit, named once
            raise ValueError(f"{weights} does not fit FCN-{arch['head']} {arch['backbone']} with "
                             f"num_classes={arch['num_classes']}, width={width}: {gist}") from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


@dataclasses.dataclass(frozen=True)
class Runnable:
    """A model or exported artefact opened for inference (`open_runnable`).

    Attributes:
        call: images uint8 (N, H, W, 3) RGB 0..255 -> float32 scores (N, H, W, num_classes).
        fixed_size: None (any size) or the (height, width) an artefact was exported with.
        num_classes: C.
        precision: a Keras dtype policy name ("float32", "bfloat16") or an artefact's
            `quantize` ("float32", "bfloat16", "float16", "dynamic-int8", "int8").
        format: "keras", "weights", "zoo", or the artefact's format ("saved_model", "tflite", ...).
        source: the path, zoo name or (for a keras.Model) the model's name.
        meta: {"class_names", "palette"} and, for an artefact, its export metadata ("model": the
            architecture, ...).
        model: the keras.Model, or None for an artefact.
    """

    call: object
    fixed_size: tuple
    num_classes: int
    precision: str
    format: str
    source: str
    meta: dict
    model: object = None


def open_runnable(model, *, backbone=None, head=None, num_classes=None, width=None, precision=None,
                  num_threads=None, trust=False):
    """Opens `model` (see `fcn_keras.predict.Predictor`) for inference, Keras model or exported artefact.

    Args:
        model: a keras.Model, a `.keras` file, a weights file with its architecture, a zoo
            name, or an exported artefact (a SavedModel or OpenVINO folder, `.tflite`, `.onnx`).
        backbone, head, num_classes, width: the architecture of a weights file.
        precision: None (the model's own) or a policy name for a Keras model; for an artefact
            None or the precision it was exported with.
        num_threads: threads of the TFLite / ONNX runtimes.
        trust: load any SavedModel (False: `fcn_keras.export.graph_check` first).

    Returns:
        A `Runnable`.

    Raises:
        FileNotFoundError, ValueError: see `fcn_keras.predict.Predictor`.
    """
    found = resolve(model, backbone=backbone, head=head, num_classes=num_classes, width=width, read_classes=True)
    if not found.is_artefact:
        keras_model = _keras_model(found, model, "model")
        source = keras_model.name if found.kind == "model" else found.path
        return _keras_runnable(keras_model, precision, "keras" if found.kind == "model" else found.kind, source)
    must_exist(found.path)
    return _artefact_runnable(found.path, precision, num_threads, trust)


def _keras_runnable(model, precision, fmt, source):
    """A `Runnable` of a keras.Model, as a copy in `precision` when that is not the model's own."""
    from fcn_keras.models.fcn import with_precision

    if precision is not None and precision != model.dtype_policy.name:
        model = with_precision(model, precision)
    call, fixed = _keras_call(model)
    meta = {"class_names": getattr(model, "class_names", None), "palette": getattr(model, "palette", None)}
    return Runnable(call, fixed, int(model.outputs[0].shape[-1]), model.dtype_policy.name, fmt, source, meta,
                    model)


def _artefact_runnable(path, precision, num_threads, trust):
    """A `Runnable` of an exported artefact, run by its own runtime (`fcn_keras.export.runner`)."""
    from fcn_keras.export import detect_format, read_metadata, runner

    fmt = detect_format(path)  # a folder may be a SavedModel or an OpenVINO model
    run = runner(path, num_threads=num_threads, trust=trust)
    call = lambda x: np.asarray(run(x)[1], np.float32)  # noqa: E731
    meta = read_metadata(path)
    own = meta.get("quantize") or "float32"
    if precision not in (None, own):
        raise ValueError(
            f"`precision` applies to Keras models (.keras, weights files, zoo names); {path} was "
            f"exported with quantize={own!r}, which fixes what it computes in. Expected "
            f"precision=None or {own!r}. Received: precision={precision!r}")
    n = (meta.get("model") or {}).get("num_classes") or len(meta.get("class_names") or ())
    if not n:
        probe = np.zeros((1,) + tuple(run.fixed_size or (32, 32)) + (3,), np.uint8)
        n = call(probe).shape[-1]
    return Runnable(call, run.fixed_size, int(n), own, fmt, path, meta)


def _keras_call(model):
    """(call: uint8 (N, H, W, 3) -> float32 logits, fixed (h, w) input size or None) of a
    keras.Model: a compiled call (`fcn_keras.inference.CompiledCall`)."""
    from fcn_keras.inference import CompiledCall

    call = CompiledCall(model)
    return call, call.fixed_size
