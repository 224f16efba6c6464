"""Caffe blobs and Keras' VGG16 file -> the weights of an fcn_keras model, all or nothing.

Layers map by name (Caffe "inception_3a/1x1" is Keras "inception_3a_1x1"). Layouts:

    Caffe Convolution   (Cout, Cin/group, kh, kw)  -> Keras Conv2D / GroupConv2D kernel (kh, kw, Cin/group, Cout)
    Caffe InnerProduct  (Cout, Cin*kh*kw), Cin-major, as Caffe flattens CHW -> the same conv kernel (fc -> conv)
    Caffe Deconvolution (Cin, Cout/group, kh, kw)  -> Keras Conv2DTranspose kernel (kh, kw, Cout, Cin)
    Caffe Scale         (C,) fixed factors         -> checked against the model's Rescaling factor
    Keras VGG16 fc1     (7*7*512, 4096), HWC-major -> fc6 (7, 7, 512, 4096); fc2 -> fc7 (1, 1, 4096, 4096)

Every new value is computed and every shape checked before anything is assigned: a file
that does not fit raises `WeightsMismatchError` listing each layer that does not fit with
both shapes (and the layers missing on either side), and the model keeps its weights.
"""

import os

import keras
import numpy as np

from fcn_keras._io import atomic_write
from fcn_keras._progress import bar
from fcn_keras.models.layers import GroupConv2D, refresh_upsampling
from fcn_keras.weights.caffemodel import CaffeModelError
from fcn_keras.weights.hdf5 import open_hdf5

# Layers of the FCN decoders; a file with none of them is a backbone (ImageNet) file.
HEAD_PREFIXES = ("score", "upscore", "scale_pool")
# Classifier layers of the ImageNet nets that the FCN backbones do not have.
DEFAULT_IGNORE = ("fc8", "loss1/", "loss2/", "loss3/classifier")
CONVERTED_FORMAT = 1


class WeightsMismatchError(CaffeModelError):
    """A weights file that does not fit the model; nothing was assigned."""


def keras_name(caffe_name):
    """The Keras layer name of a Caffe layer ("inception_3a/1x1" -> "inception_3a_1x1")."""
    return caffe_name.replace("/", "_")


def _is_head(name):
    return name.startswith(HEAD_PREFIXES)


def weight_layers(model):
    """{name: layer} for every layer with weights or a fixed scale, nested models flattened."""
    found = {}

    def visit(layer):
        if isinstance(layer, keras.Model) and layer is not model:
            for sub in layer.layers:
                visit(sub)
            return
        if layer.weights or isinstance(layer, keras.layers.Rescaling):
            found[layer.name] = layer

    for layer in model.layers:
        visit(layer)
    return found


def _kernel_shape(layer):
    return tuple(int(d) for d in layer.kernel.shape)


class _Problems:
    def __init__(self):
        self.shapes, self.missing, self.extra = [], [], []

    def raise_if_any(self, source, model):
        if not (self.shapes or self.missing or self.extra):
            return
        lines = [f"The weights in {source} do not fit the model {model.name!r}; nothing was loaded."]
        for caffe_layer, keras_layer, what, file_shape, model_shape in self.shapes:
            lines.append(f"  - file layer {caffe_layer!r} -> Keras layer {keras_layer!r} {what}: "
                         f"the file has shape {file_shape}, the model needs {model_shape}")
        if self.missing:
            lines.append(f"  - model layers not in the file: {', '.join(self.missing)}")
        if self.extra:
            lines.append(f"  - file layers the model does not have: {', '.join(self.extra)}")
        raise WeightsMismatchError("\n".join(lines))


def _conv_kernel(blob, layer, caffe_layer, problems, deconv=False):
    """Caffe conv / inner-product / deconv weights -> the Keras kernel (or None, recorded)."""
    kh, kw, a, b = _kernel_shape(layer)
    if deconv:  # Keras (kh, kw, Cout, Cin) <- Caffe (Cin, Cout, kh, kw)
        caffe_shape, accepted = (b, a, kh, kw), [(b, a, kh, kw)]
    else:  # Keras (kh, kw, Cin, Cout) <- Caffe (Cout, Cin, kh, kw) or inner product (Cout, Cin*kh*kw)
        caffe_shape = (b, a, kh, kw)
        accepted = [caffe_shape, (b, a * kh * kw)]
    squeezed = tuple(blob.shape)
    while len(squeezed) > 2 and squeezed[0] == 1 and squeezed not in accepted:
        squeezed = squeezed[1:]  # legacy 4-D shapes of inner products: (1, 1, Cout, Cin)
    if squeezed not in accepted:
        problems.shapes.append((caffe_layer, layer.name, "weights", tuple(blob.shape), caffe_shape))
        return None
    return np.ascontiguousarray(blob.reshape(caffe_shape).transpose(2, 3, 1, 0), dtype=np.float32)


def _bias(blob, layer, caffe_layer, problems):
    need = tuple(int(d) for d in layer.bias.shape)
    flat = blob.reshape(-1)
    if flat.shape != need:
        problems.shapes.append((caffe_layer, layer.name, "bias", tuple(blob.shape), need))
        return None
    return np.asarray(flat, dtype=np.float32)


def _layer_values(layer, caffe_layer, problems):
    """The Keras weight list for `layer` from a CaffeLayer (None when it does not fit)."""
    blobs = caffe_layer.blobs
    name = caffe_layer.name
    if isinstance(layer, keras.layers.Rescaling):
        factor = float(layer.scale)
        values = np.concatenate([blob.reshape(-1) for blob in blobs]) if blobs else np.zeros(0)
        if values.size == 0 or not np.allclose(values, factor, rtol=1e-6, atol=0.0):
            seen = f"values {np.unique(values)[:5].tolist()}" if values.size else "no values"
            problems.shapes.append((name, layer.name, "fixed scale", seen, f"all {factor}"))
            return None
        return []
    deconv = isinstance(layer, keras.layers.Conv2DTranspose)
    if not (deconv or isinstance(layer, (keras.layers.Conv2D, GroupConv2D))):
        problems.shapes.append((name, layer.name, f"type {type(layer).__name__}", caffe_layer.type,
                                "a convolution"))
        return None
    has_bias = getattr(layer, "bias", None) is not None
    need = 2 if has_bias else 1
    if len(blobs) != need:
        problems.shapes.append((name, layer.name, "number of blobs", len(blobs), need))
        return None
    kernel = _conv_kernel(blobs[0], layer, name, problems, deconv=deconv)
    bias = _bias(blobs[1], layer, name, problems) if has_bias else None
    if kernel is None or (has_bias and bias is None):
        return None
    return [kernel, bias] if has_bias else [kernel]


def _matches(name, patterns):
    return any(name.startswith(p) for p in patterns)


def values_from_caffe(model, net, *, rename=None, ignore=DEFAULT_IGNORE, progress=False):
    """The weights of `model` from a `CaffeNet`, checked, not assigned.

    A file without decoder layers (score*, upscore*) is a backbone file: it must supply every
    backbone layer and leaves the decoder's initial weights alone. Otherwise it must supply
    every layer of the model.

    Args:
        model: an fcn_keras FCN or backbone.
        net: a `CaffeNet` (`read_caffemodel`).
        rename: {caffe name: keras name} applied first (e.g. SIFT Flow's "score_fr_sem").
        ignore: Caffe names or prefixes the model is not meant to have (classifiers, other heads).
        progress: draw a bar over the layers on stderr (None: when stderr is a terminal).

    Returns:
        {keras layer name: [arrays]} in Keras layouts.

    Raises:
        WeightsMismatchError: layers that do not fit, listing each with both shapes.
    """
    rename = rename or {}
    targets = weight_layers(model)
    problems = _Problems()
    source = {}
    for layer in net.layers:
        if _matches(layer.name, ignore):
            continue
        name = keras_name(rename.get(layer.name, layer.name))
        if name in targets:
            source[name] = layer
        else:
            problems.extra.append(layer.name)
    backbone_file = not any(_is_head(n) for n in source) and not any(
        _is_head(keras_name(rename.get(n, n))) for n in problems.extra)
    values = {}
    layer_bar = bar(len(targets), f"Converting {os.path.basename(net.path) or 'caffemodel'}", unit="layer",
                    enabled=progress)
    for name, layer in targets.items():
        layer_bar.update(1)
        if name not in source:
            if backbone_file and _is_head(name):
                continue  # a backbone file leaves the decoder's initial weights alone
            problems.missing.append(name)
            continue
        new = _layer_values(layer, source[name], problems)
        if new is not None:
            values[name] = new
    layer_bar.close()
    problems.raise_if_any(net.path or "the caffemodel", model)
    return values


def _keras_h5_arrays(path):
    """{layer name: [arrays]} of a Keras HDF5 weights file that holds VGG16's block1_conv1."""
    with open_hdf5(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", [])]
        if "block1_conv1" not in names:
            raise CaffeModelError(
                f"Expected Keras' VGG16 weights file (a layer 'block1_conv1'). Received: path={path!r} with "
                f"layers {names[:8]}{'...' if len(names) > 8 else ''}")
        arrays = {}
        for lname in names:
            group = root.get(lname)
            wnames = [w.decode() if isinstance(w, bytes) else str(w)
                      for w in (group.attrs.get("weight_names", []) if group is not None else [])]
            missing = [w for w in wnames if w not in group] if group is not None else [lname]
            if missing:
                raise CaffeModelError(f"{path}: layer {lname!r} lists {missing[0]!r}, which the file does "
                                      "not hold (a damaged or edited file)")
            arrays[lname] = [np.asarray(group[w], dtype=np.float32) for w in wnames]
    return arrays


def values_from_keras_vgg16(model, path):
    """The weights of `model` from Keras' VGG16 ImageNet file (keras.applications' layout).

    The file's block<b>_conv<i> become conv<b>_<i>; fc1 (25088, 4096) becomes the 7x7 fc6
    convolution, fc2 the 1x1 fc7; 'predictions' is not used.

    Args:
        model: an fcn_keras VGG16 FCN or backbone.
        path: the `.h5` file.

    Returns:
        {keras layer name: [arrays]}.

    Raises:
        CaffeModelError: not an HDF5 file, or not Keras' VGG16 file.
        WeightsMismatchError: layers that do not fit.
    """
    arrays = _keras_h5_arrays(path)
    targets = weight_layers(model)
    problems = _Problems()
    values = {}
    plan = {f"block{b}_conv{i}": f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
            for i in range(1, n + 1)}
    plan.update({"fc1": "fc6", "fc2": "fc7"})
    for src, dst in plan.items():
        if dst not in targets:
            problems.missing.append(dst)
            continue
        if src not in arrays or len(arrays[src]) != 2:
            problems.extra.append(f"{src} (absent or not kernel + bias in the file)")
            continue
        layer = targets[dst]
        kernel, bias = arrays[src]
        need = _kernel_shape(layer)
        if kernel.size != int(np.prod(need)) or kernel.shape[-1] != need[-1] or (
                kernel.ndim == 4 and kernel.shape != need):
            problems.shapes.append((src, dst, "weights", kernel.shape, need))
            continue
        if bias.shape != (need[-1],):
            problems.shapes.append((src, dst, "bias", bias.shape, (need[-1],)))
            continue
        values[dst] = [np.ascontiguousarray(kernel.reshape(need)), bias]
    problems.raise_if_any(path, model)
    return values


def assign(model, values, source="the weights"):
    """Assigns `values` ({layer name: [arrays]}) after checking every shape; all or nothing.

    The values must cover every layer of the model that has weights, except that values with
    no decoder layer (score*, upscore*) are a backbone's and leave the decoder alone; and every
    value must be finite.

    Args:
        model: the model to change.
        values: {layer name: [arrays]} in the layers' weight order.
        source: how error messages name where the values came from.

    Returns:
        `model`.

    Raises:
        WeightsMismatchError: a layer missing on either side, a shape that differs, or a
            NaN / Inf value (named by layer; nothing assigned).
    """
    targets = weight_layers(model)
    problems = _Problems()
    backbone_only = not any(_is_head(n) for n in values)
    problems.missing = [name for name, layer in targets.items() if layer.weights and name not in values
                        and not (backbone_only and _is_head(name))]
    for name, arrays in values.items():
        bad = next((i for i, a in enumerate(arrays) if not np.isfinite(a).all()), None)
        if bad is not None:
            raise WeightsMismatchError(f"{source}: layer {name!r} array {bad} holds NaN or Inf values; "
                                       "nothing was loaded")
    for name, arrays in values.items():
        if name not in targets:
            problems.extra.append(name)
            continue
        weights = targets[name].weights
        if len(weights) != len(arrays):
            problems.shapes.append((name, name, "number of arrays", len(arrays), len(weights)))
            continue
        for w, a in zip(weights, arrays):
            if tuple(w.shape) != tuple(a.shape):
                problems.shapes.append((name, name, w.path if hasattr(w, "path") else w.name,
                                        tuple(a.shape), tuple(w.shape)))
    problems.raise_if_any(source, model)
    for name, arrays in values.items():
        for w, a in zip(targets[name].weights, arrays):
            w.assign(a)
    refresh_upsampling(model)
    return model


def save_converted(path, values, meta):
    """Writes converted weights to an HDF5 file, atomically (`fcn_keras._io.atomic_write`).

    Args:
        path: the file to write.
        values: {layer name: [arrays]}.
        meta: {key: str or None} stored as file attributes (entry, source, checksum).

    Returns:
        `path`.
    """
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["fcn_keras_converted"] = CONVERTED_FORMAT
            for key, value in meta.items():
                f.attrs[key] = "" if value is None else value
            for name, arrays in values.items():
                group = f.create_group(name)
                for i, a in enumerate(arrays):
                    group.create_dataset(str(i), data=a)

    return atomic_write(path, write)


def load_converted(path):
    """Reads a file written by `save_converted` (checked by `open_hdf5`).

    Returns:
        ({layer name: [arrays]}, {meta key: value}).

    Raises:
        CaffeModelError: not an fcn_keras converted-weights file, or a damaged one (naming it).
    """
    import h5py

    with open_hdf5(path) as f:
        if f.attrs.get("fcn_keras_converted") != CONVERTED_FORMAT:
            raise CaffeModelError(f"Expected an fcn_keras converted-weights file (format {CONVERTED_FORMAT}). "
                                  f"Received: path={path!r}")
        meta = {k: v for k, v in f.attrs.items() if k != "fcn_keras_converted"}
        values = {}
        for name, group in f.items():
            if not isinstance(group, h5py.Group) or sorted(group) != [str(i) for i in range(len(group))]:
                raise CaffeModelError(f"{path}: {name!r} is not a layer's numbered arrays (a damaged or "
                                      "edited converted-weights file)")
            values[name] = [np.asarray(group[str(i)], dtype=np.float32) for i in range(len(group))]
    return values, meta
