"""Running and reading exported artefacts: `runner`, `read_metadata`, `detect_format`.

These three are the public way to use any file `export` wrote, whatever its format:

    from fcn_keras.export import runner, read_metadata

    run = runner("fcn8s.tflite")              # or a SavedModel folder, or "fcn8s.onnx"
    labels, scores = run(images)              # uint8 (N, H, W, 3) -> (N, H, W), (N, H, W, C)
    names = read_metadata("fcn8s.tflite")["class_names"]
"""

import json
import os

import numpy as np

from ._common import METADATA_NAME, SIDECAR_SUFFIX, SUFFIXES, ExportError


def detect_format(path):
    """The format of an exported artefact.

    Args:
        path: a SavedModel folder (holding saved_model.pb), a `.tflite` or a `.onnx` file.

    Returns:
        "saved_model", "tflite" or "onnx".

    Raises:
        FileNotFoundError: `path` does not exist.
        ExportError: `path` is none of the three.
    """
    p = os.fspath(path).rstrip("/\\")
    if not os.path.exists(p):
        raise FileNotFoundError(f"Expected an exported model (SavedModel folder, .tflite or .onnx). "
                                f"Received: path={p!r}, which does not exist")
    if os.path.isdir(p):
        if os.path.isfile(os.path.join(p, "saved_model.pb")):
            return "saved_model"
        raise ExportError(f"Expected a SavedModel folder holding saved_model.pb. Received: path={p!r}")
    fmt = next((f for f, s in SUFFIXES.items() if p.endswith(s)), None)
    if fmt is None:
        raise ExportError(f"Expected a SavedModel folder, a .tflite or a .onnx file. Received: path={p!r}")
    return fmt


class Runner:
    """Runs an exported artefact: uint8 images in, (labels, float32 scores) out.

    Attributes:
        fixed_size: None when the artefact takes any height and width, else its (h, w).
    """

    fixed_size = None

    def __call__(self, images):
        """Labels and scores for a batch of images.

        Args:
            images: uint8 (N, H, W, 3) RGB pixels; (H, W) must equal `fixed_size` when it is set
                (a fixed-size artefact takes one image at a time; a batch is run image by image).

        Returns:
            (labels uint8 (N, H, W) (int32 above 256 classes), scores float32 (N, H, W, C)): the
            argmax and the class logits (dequantised for a full-int8 TFLite file).

        Raises:
            ValueError: `images` is not a uint8 (N, H, W, 3) array of the accepted size.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"Expected `images` uint8 of shape (N, H, W, 3). "
                             f"Received: images.shape={images.shape}, dtype={images.dtype}")
        if self.fixed_size is not None:
            if tuple(images.shape[1:3]) != tuple(self.fixed_size):
                raise ValueError(f"Expected `images` of size {tuple(self.fixed_size)} (this artefact has "
                                 f"a fixed input size). Received: images.shape={images.shape}")
            if len(images) > 1:
                outs = [self.run(self.prepare(img[None])) for img in images]
                return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
        return self.run(self.prepare(images))

    def prepare(self, images):
        """The runtime's input for uint8 images (N, H, W, 3); `run` takes it."""
        raise NotImplementedError

    def run(self, prepared):
        """(labels, float32 scores) for a `prepare`d input."""
        raise NotImplementedError


class SavedModelRunner(Runner):
    """Runs the `serving_default` signature of a SavedModel with TensorFlow."""

    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(os.fspath(path))
        self._fn = self._loaded.signatures["serving_default"]
        shape = self._fn.structured_input_signature[1]["image"].shape.as_list()
        self.fixed_size = tuple(shape[1:3]) if shape[1] and shape[2] else None

    def prepare(self, images):
        return self._tf.constant(images, self._tf.uint8)

    def run(self, prepared):
        out = self._fn(image=prepared)
        return out["labels"].numpy(), out["scores"].numpy()


def runner(path, num_threads=None):
    """A `Runner` for an exported artefact, in the artefact's own runtime.

    TensorFlow runs a SavedModel (its signature `serving_default`), the LiteRT interpreter a
    `.tflite` file (its signature runner; quantised inputs and outputs are converted), and
    onnxruntime (CPU) a `.onnx` file.

    Args:
        path: a SavedModel folder, a `.tflite` or a `.onnx` file.
        num_threads: threads of the LiteRT interpreter / onnxruntime (default: all CPUs). A
            SavedModel runs on TensorFlow's own thread pool.

    Returns:
        A `Runner`: `run(images uint8 (N, H, W, 3)) -> (labels (N, H, W), scores float32
        (N, H, W, C))`, and `run.fixed_size`, None or the fixed input (h, w).

    Raises:
        FileNotFoundError, ExportError: see `detect_format`.
    """
    fmt = detect_format(path)
    if fmt == "saved_model":
        return SavedModelRunner(path)
    if fmt == "tflite":
        from .tflite import TFLiteRunner

        return TFLiteRunner(path, num_threads)
    from .onnx import ONNXRunner

    return ONNXRunner(path, num_threads)


def read_metadata(path):
    """The metadata `export` stored with an artefact.

    It is read from inside the artefact (the SavedModel's asset `assets/fcn_keras.json`, the
    `.tflite` file's model metadata "fcn_keras", the `.onnx` file's metadata_props), so a lone
    file describes itself, and from the JSON file beside it (`<path>.json`); the embedded copy
    wins where both have a key.

    Args:
        path: a SavedModel folder, a `.tflite` or a `.onnx` file.

    Returns:
        A dict: "class_names" (list of C names), "palette" (C lists of 3 ints, RGB), "format",
        "quantize", "model", "input" and "outputs" when the artefact has them; {} for a file
        that carries none.
    """
    fmt = detect_format(path)
    p = os.fspath(path).rstrip("/\\")
    meta = {}
    if os.path.isfile(p + SIDECAR_SUFFIX):
        with open(p + SIDECAR_SUFFIX) as f:
            meta.update(json.load(f))
    if fmt == "saved_model":
        asset = os.path.join(p, "assets", METADATA_NAME + ".json")
        if os.path.isfile(asset):
            with open(asset) as f:
                meta.update(json.load(f))
    elif fmt == "tflite":
        from .tflite import embedded_metadata

        meta.update(embedded_metadata(p))
    else:
        from .onnx import embedded_metadata

        meta.update(embedded_metadata(p))
    return meta
