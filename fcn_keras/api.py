"""`build()` and `list_models()`: the public entry points, above `models` and `weights`."""

import contextlib
import os

import keras

from fcn_keras import weights as weight_sources
from fcn_keras.models import FCN
from fcn_keras.models import registry
from fcn_keras.models.deferred_init import weights_follow
from fcn_keras.models.fcn import with_precision
from fcn_keras.models.precision import policy_name
from fcn_keras.resolve import resolve
from fcn_keras.weights import zoo

from fcn_keras.conventions import DEFAULT_NUM_CLASSES


def build(backbone=None, head=None, num_classes=None, weights=None, input_shape=(None, None, 3),
          include_preprocessing=True, *, width=1.0, name=None, dtype=None, class_names=None,
          palette=None):
    """Builds an FCN and loads `weights`.

        fcn_keras.build("vgg16", "8s", num_classes=21)   # random backbone, zero score layers
        fcn_keras.build(weights="voc-fcn8s")             # the zoo entry implies vgg16, 8s, 21
        fcn_keras.build(weights="voc-fcn8s", dtype="bfloat16")   # bfloat16 inference copy

    Args:
        backbone: a backbone name ("alexnet", "vgg16", "googlenet"; see
            `fcn_keras.models.BACKBONES`). Optional when `weights` is a zoo name.
        head: "32s", "16s", "8s" or "8s-atonce" (VGG16 only). Optional when `weights` names
            an FCN of the zoo.
        num_classes: output channels, 1..255 (255 is the ignore label). Default: the zoo
            entry's, else 21.
        weights: None (random backbone, zero score layers, bilinear deconvolutions),
            "imagenet" (backbone only), a zoo name (`fcn_keras.list_models()`), or a path to
            a `.keras`, `.weights.h5` or `.caffemodel` file.
        input_shape: (H, W, 3); None for any size.
        include_preprocessing: True: the model takes RGB 0..255 and does RGB->BGR and mean
            subtraction itself; False: it takes preprocessed BGR.
        width: channel multiplier of the backbone (like MobileNet's alpha); pretrained
            weights need 1.0. Small widths give fast models for tests and demos.
        name: the model's name (default "fcn<head>_<backbone>").
        dtype: the Keras dtype policy: None (the global one, float32 unless set), "float32",
            "bfloat16" (bfloat16 weights and compute, for inference: the weights are loaded
            in float32 and rounded; can be fast only on CPUs with AVX-512 BF16 or AMX, see
            `fcn_keras.models.with_precision`) or a mixed policy ("mixed_bfloat16") for
            training. Kept in the model's config and `.keras` files.
        class_names, palette: the names (label id -> name) and (num_classes, 3) RGB colours the
            model carries in its config and `.keras` files (used by `predict --legend`,
            `export()` and the reports). Default: a zoo FCN's classes, else None.

    Returns:
        `FCN`: (N, H, W, 3) -> float32 logits (N, H, W, num_classes), whatever `dtype`.

    Raises:
        ValueError: an unknown or missing name, a bad argument, or an argument that conflicts
            with the zoo entry named by `weights` (the message names the argument, the
            entry's value and the one received).
        fcn_keras.weights.WeightsMismatchError: a weights file that does not fit.
        fcn_keras.weights.DownloadError: weights that must be downloaded and cannot be.
    """
    found = resolve(weights if isinstance(weights, (str, os.PathLike)) else None, backbone=backbone, head=head,
                    num_classes=num_classes, as_weights=True)
    return build_resolved(found, weights, input_shape, include_preprocessing, width=width, name=name,
                          dtype=dtype, class_names=class_names, palette=palette)


def build_resolved(found, weights=None, input_shape=(None, None, 3), include_preprocessing=True, *, width=1.0,
                   name=None, dtype=None, class_names=None, palette=None):
    """`build` of a spec already sorted by `fcn_keras.resolve.resolve` (which `build` calls first;
    `fcn_keras.loading` resolves once and calls this). `found.arch` gives backbone, head and
    num_classes; `weights` is `build`'s argument as given; the rest as in `build`."""
    arch, entry = found.arch, found.entry
    for arg in ("backbone", "head"):
        if arch[arg] is None:
            raise ValueError(
                f"`{arg}` is required unless `weights` names a zoo FCN. Expected one of "
                f"{registry.backbones() if arg == 'backbone' else registry.heads(arch['backbone'])}. "
                f"Received: {arg}=None, weights={weights!r}")
    registry.check(arch["backbone"], arch["head"])
    kwargs = {"name": name} if name else {}
    n = DEFAULT_NUM_CLASSES if arch["num_classes"] is None else arch["num_classes"]
    policy = keras.config.dtype_policy().name if dtype is None else policy_name(dtype)
    # the loaders and converters write float32 values: a net with other variables (bfloat16)
    # loads them in float32 and is rounded after; float32 and mixed policies build once
    float_vars = keras.dtype_policies.get(policy).variable_dtype == "float32"
    load_as = policy if weights is None or float_vars else "float32"
    if class_names is None and entry is not None and len(entry.get("classes") or ()) == n:
        class_names = list(entry["classes"])  # a zoo FCN's classes travel with the model
    if entry is not None and width == 1.0:
        weight_sources.prefetch(weights)  # offline: fail before building the model
    # weights to load: the kernels are not drawn at random (a failed load raises, the net is dropped)
    with weights_follow() if weights is not None else contextlib.nullcontext():
        model = FCN(arch["backbone"], arch["head"], n, input_shape, include_preprocessing, width, load_as,
                    class_names=class_names, palette=palette, **kwargs)
    if found.kind in ("weights", "keras"):
        weight_sources.load_file(model, found.path, backup=False)  # a file: its reader; dropped on failure
    elif weights is not None:
        weight_sources.load(model, weights)
    return with_precision(model, policy)


def list_models():
    """The zoo: one dict per pretrained entry (a copy).

    Returns:
        A list of dicts with name, kind ("fcn" or "backbone"), backbone, head, num_classes,
        classes, num_params, dataset, source (urls, filename, checksum, checksum_source,
        reference), preprocessing, metrics and notes.
    """
    return zoo.list_models()
