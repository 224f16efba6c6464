"""The one resolver: what a model spec names, and whether the request around it is consistent.

    from fcn_keras.resolve import resolve
    resolve("voc-fcn8s")                        # Resolved(kind="zoo", arch: vgg16, 8s, 21 classes)
    resolve("run.weights.h5", backbone="alexnet", head="8s", num_classes=4)   # kind "weights"
    resolve("model.keras").kind                 # "keras"
    resolve("fcn8s.tflite").kind                # "tflite": an exported artefact (export's table)
    resolve("voc-fcn8s", backbone="alexnet")    # ValueError naming `backbone` and the entry's value

A spec is sorted once, in this order: a folder is an exported artefact folder ("saved_model";
`fcn_keras.export.detect_format` tells a SavedModel from an OpenVINO folder); a zoo name or
"imagenet" that is not also a path names the zoo; then the file suffix: `.keras`, a weights
file (`WEIGHT_SUFFIXES`), an exported artefact (the suffixes of `fcn_keras.export.formats.TABLE`).
A zoo FCN implies its backbone, head and class count, a zoo backbone its backbone: a conflicting
argument is refused here, once. A `.keras` file, a keras.Model and an exported artefact define
their own architecture: any architecture argument is refused.

`fcn_keras.build`, `fcn_keras.load_model` and `fcn_keras.loading.open_runnable` (so
`fcn_keras.predict.Predictor` and every command) and `fcn_keras.training.run_recipe` ask this
function, once per request. It sits above the weights and the export table (which it reads)
and below everything that opens a model; the export package below it takes only a keras.Model
or a `.keras` file (`fcn_keras.export._common.keras_model`).
"""

import dataclasses
import os

from fcn_keras.export import formats as export_formats  # plain data: no TensorFlow imported
from fcn_keras.models.saving import KERAS_SUFFIX
from fcn_keras.weights import zoo
from fcn_keras.weights.loader import WEIGHT_SUFFIXES, sort_spec

ARCH = ("backbone", "head", "num_classes", "width")
IMAGENET = "imagenet"
#: Exported artefacts that are files: suffix -> format (a variant, e.g. MediaPipe, is detected in the file).
ARTEFACT_SUFFIXES = {m.SUFFIX: name for name, m in export_formats.TABLE.items()
                     if m.SUFFIX and not getattr(m, "REFINES", None)}
#: The kinds a spec may be besides an exported artefact's format name.
MODEL_KINDS = ("model", "keras", "weights", "zoo", IMAGENET)


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What `resolve` found.

    Attributes:
        kind: "model" (a keras.Model), "keras", "weights", "zoo", "imagenet", an exported
            artefact's format ("saved_model" for any folder, "tflite", "onnx"), or None
            (nothing this project knows; `spec` None included).
        path: the spec as a string (`os.fspath`), or None for spec None or a keras.Model.
        arch: {"backbone", "head", "num_classes", "width"}: the arguments given, with what
            the zoo entry implies filled in (None: neither given nor implied).
        entry: the zoo entry (a dict of `fcn_keras.weights.zoo.ENTRIES`) for kind "zoo", else None.
        implied: the architecture keys the spec itself fills (a zoo entry's; for a
            `.caffemodel` read with `read_classes`, "num_classes").
        missing: the architecture keys a build of these weights still needs (["backbone",
            "head"], ...). num_classes is never missing for ImageNet or zoo backbone weights,
            nor for a `.caffemodel` of an ImageNet classifier: `build`'s default count applies.
        is_artefact: True for an exported artefact (run by its own runtime, not by Keras).
    """

    kind: str
    path: str
    arch: dict
    entry: dict = dataclasses.field(default=None, repr=False)
    implied: frozenset = frozenset()
    missing: list = dataclasses.field(init=False)
    is_artefact: bool = dataclasses.field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "is_artefact", self.kind is not None and self.kind not in MODEL_KINDS)
        default_classes = self.kind in ("zoo", IMAGENET) or "num_classes" in self.implied
        object.__setattr__(self, "missing", [k for k in ("backbone", "head", "num_classes") if self.arch[k] is None
                                             and not (k == "num_classes" and default_classes)])


def resolve(spec, *, backbone=None, head=None, num_classes=None, width=None, read_classes=False,
            as_weights=False):
    """Sorts `spec` and checks the architecture arguments against it.

    Args:
        spec: None, a keras.Model, a zoo name, "imagenet", or a path (str or os.PathLike) to
            a `.keras` file, a weights file (`.weights.h5`, `.h5`, `.caffemodel`), a SavedModel
            or OpenVINO folder or an exported `.tflite` / `.onnx` file. Nothing is opened
            except with `read_classes`.
        backbone, head, num_classes, width: the architecture arguments as given (None: not given).
        read_classes: with num_classes None, read an existing `.caffemodel`'s class count
            (its score layer's; an ImageNet classifier's: none, `build`'s default applies).
        as_weights: `spec` is the `weights` of a build on the architecture given: a `.keras`
            file then lends its weights, and nothing is refused for defining its own architecture.

    Returns:
        A `Resolved`.

    Raises:
        ValueError: an argument that conflicts with the zoo entry (naming the argument, the
            entry's value and the one received), or an architecture argument given for a
            spec that defines its own architecture (a keras.Model, `.keras`, an artefact).
    """
    given = {"backbone": backbone, "head": head, "num_classes": num_classes, "width": width}
    if spec is None:
        return Resolved(None, None, given)
    if not isinstance(spec, (str, os.PathLike)):
        import keras

        if isinstance(spec, keras.Model) and not as_weights:
            _refuse_arch(given, "a keras.Model")
            return Resolved("model", None, given)
        return Resolved(None, None, given)
    path = os.fspath(spec)
    kind, entry = _sort(path)
    if kind == "zoo" or kind == IMAGENET:
        arch, implied = _from_zoo(path, entry, given)
        return Resolved(kind, path, arch, entry, implied)
    if kind == "weights" and read_classes and num_classes is None and path.lower().endswith(".caffemodel") \
            and os.path.isfile(path):
        return Resolved(kind, path, {**given, "num_classes": caffemodel_classes(path)}, None, frozenset({"num_classes"}))
    if kind is not None and kind != "weights" and not as_weights:
        _refuse_arch(given, path)
    return Resolved(kind, path, given)


def kind_of(path):
    """The kind of the path or name `path` (a str), as `Resolved.kind`, by existence and suffix only."""
    return _sort(path)[0]


def _sort(path):
    """(kind, zoo entry or None) of `path`: a folder is an exported artefact; then what the
    weights read (`fcn_keras.weights.loader.sort_spec`: zoo names, "imagenet", `.keras`, weights
    files); then the artefact suffixes of export's format table."""
    if os.path.isdir(path):
        return export_formats.folder_format(), None
    kind, entry = sort_spec(path)
    if kind is not None:
        return kind, entry
    lower = path.lower()
    return next((k for s, k in ARTEFACT_SUFFIXES.items() if lower.endswith(s)), None), None


def _from_zoo(name, entry, given):
    """(arch, implied keys): `given` with zoo entry `entry`'s architecture filled in; a conflict refused."""
    if entry is None:  # "imagenet": the backbone given
        return dict(given), frozenset()
    filled, implied = dict(given), set()
    for arg in ("backbone", "head", "num_classes"):
        value = entry[arg]
        if value is None:
            continue
        if given[arg] is not None and given[arg] != value:
            raise ValueError(
                f"`{arg}` conflicts with the zoo entry {name!r}. Expected {arg}={value!r} (the "
                f"entry's; or leave `{arg}` out). Received: {arg}={given[arg]!r}")
        filled[arg] = value
        implied.add(arg)
    return filled, frozenset(implied)


def _refuse_arch(arch, what):
    """Raises ValueError if an architecture argument is given for `what`, which has its own."""
    given = {k: v for k, v in arch.items() if v is not None}
    if given:
        k, v = next(iter(given.items()))
        raise ValueError(f"`{k}` applies only to weights files ({', '.join(WEIGHT_SUFFIXES)}); {what} "
                         f"defines its own architecture. Received: {k}={v!r}")


def caffemodel_classes(path):
    """The class count of a `.caffemodel`'s score layer (score_fr / score_fr_sem), or None."""
    from fcn_keras.weights.caffemodel import read_caffemodel

    layers = read_caffemodel(path).layers
    score = zoo.score_layer(layer.name for layer in layers)
    return next((int(layer.blobs[0].shape[0]) for layer in layers if layer.name == score), None)


def expected_text():
    """What a model argument may be, for error messages."""
    return (f"a {KERAS_SUFFIX} file, a weights file ({', '.join(WEIGHT_SUFFIXES)}) with its architecture, "
            "a zoo name (fcn_keras.list_models(), `fcn-keras zoo`), or for predict an exported .tflite, "
            ".onnx or SavedModel folder")


def must_exist(spec, arg="model"):
    """Raises FileNotFoundError naming `arg` and what it may be, if `spec` does not exist."""
    if not os.path.exists(spec):
        raise FileNotFoundError(f"`{arg}` {spec!r} does not exist: expected {expected_text()}")
