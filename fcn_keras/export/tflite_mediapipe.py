"""A MediaPipe-ready .tflite: the file MediaPipe's Image Segmenter task (and its Android, iOS and
web sample apps) loads as is.

    export(model, "fcn8s_mp.tflite", "tflite", target="mediapipe", input_size=(512, 512))

The file:
- one input, float32 (1, H, W, 3): RGB pixels 0..255 (MediaPipe resizes each image to H x W and
  normalises it with the metadata's mean 0, std 1, so it feeds the raw pixels the model's own
  preprocessing expects);
- one output, float32 (1, H, W, C): the class logits (MediaPipe's category mask is their
  argmax, its confidence masks their softmax, as the metadata's segmenter options say);
- TFLite Model Metadata in the standard schema (buffer "TFLITE_METADATA", identifier M001):
  name, description, version, author, license, the input's normalisation and colour space, the
  output's class names as a TENSOR_AXIS_LABELS associated file (`labels.txt`, zipped onto the
  end of the file as MediaPipe expects), and the "SEGMENTER_METADATA" custom metadata;
- fcn_keras' own metadata ("fcn_keras", as in every .tflite export), for `read_metadata`.

The metadata is written with the schema's generated flatbuffer classes shipped in the
`mediapipe` wheel (`pip install fcn_keras[mediapipe]`): its metadata writer needs a native
module the wheel does not hold (`mediapipe.tasks.cc`), the schema classes need none.
"""

import io
import zipfile

import numpy as np

from fcn_keras import _io

from . import tflite
from ._common import METADATA_NAME, ExportError
from ._runner import Runner

NAME = "mediapipe"
REFINES = "tflite"  # a .tflite file: chosen by export(..., "tflite", target="mediapipe")
TARGET = "mediapipe"
SUFFIX = tflite.SUFFIX
DESCRIPTION = "a MediaPipe-ready .tflite file"
EXTRA_SUFFIXES = ()
QUANTIZE = ("float32", "float16", "int8")
NO_BFLOAT16 = tflite.NO_BFLOAT16
LABELS_FILE = "labels.txt"
TFLITE_METADATA = "TFLITE_METADATA"
_SOFTMAX = 2  # the segmenter options' Activation


def _schemas():
    """(TFLite Model Metadata schema, image segmenter options schema): mediapipe's generated classes."""
    try:
        from mediapipe.tasks.metadata import image_segmenter_metadata_schema_py_generated as segmenter
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata
    except ImportError:
        raise ExportError("target='mediapipe' writes TFLite Model Metadata with the schema classes of the "
                          "`mediapipe` package: pip install 'fcn_keras[mediapipe]'") from None
    return metadata, segmenter


def adjust_metadata(meta):
    """`export`'s metadata for this file: target "mediapipe", float32 input, one scores output."""
    meta = dict(meta, target=TARGET)
    meta["input"] = dict(meta["input"], dtype="float32", layout="NHWC, RGB, pixel values 0..255 as float32 "
                         "(MediaPipe: normalisation mean 0, std 1; preprocessing is inside)")
    meta["outputs"] = {"scores": meta["outputs"]["scores"]}
    return meta


def _serving(model):
    """float32 RGB 0..255 (N, H, W, 3) -> {"scores": float32 (N, H, W, C)}, the preprocessing inside."""
    from ._common import serving_fn

    serve = serving_fn(model, input_dtype="float32")
    return lambda image: {"scores": serve(image)["scores"]}


def _convert(model, quantize, input_size, calibration):
    """The converted flatbuffer bytes: the `_serving` function at (1, h, w, 3), builtin ops only."""
    import tempfile

    import tensorflow as tf

    module = tf.Module(name="fcn_keras_mediapipe")
    module.model_variables = [v.value for v in model.weights]
    module.serve = tf.function(_serving(model), input_signature=[
        tf.TensorSpec([1, *input_size, 3], tf.float32, name="image")])
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.serve.get_concrete_function()})
        conv = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize in ("float16", "int8"):
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if quantize == "int8":  # int8 inside, float32 input and scores (what MediaPipe feeds and reads)
            conv.representative_dataset = lambda: ({"image": np.asarray(img, np.float32)[None]} for img in calibration)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return conv.convert()


def metadata_buffer(meta, input_size):
    """The TFLite Model Metadata flatbuffer (bytes) of an export with metadata `meta`."""
    import flatbuffers

    schema, segmenter = _schemas()
    model_md = schema.ModelMetadataT()
    model_md.name = meta["model"]["name"]
    model_md.description = (f"Semantic segmentation, {len(meta['class_names'])} classes (Fully Convolutional "
                            f"Network, Long, Shelhamer & Darrell), input {input_size[0]}x{input_size[1]} RGB")
    model_md.version = f"{meta['model']['name']} {meta['quantize']} (fcn_keras export, keras {meta['keras_version']})"
    model_md.author = "fcn_keras"
    model_md.license = "MIT (the weights: the license of their source)"

    image = _image_tensor(schema, "image", "RGB pixels 0..255 (mean 0, std 1: fed as they are; the model "
                          "subtracts its own mean)", schema.ColorSpaceType.RGB)
    normalization = schema.ProcessUnitT()
    normalization.optionsType = schema.ProcessUnitOptions.NormalizationOptions
    normalization.options = schema.NormalizationOptionsT()
    normalization.options.mean, normalization.options.std = [0.0], [1.0]
    image.processUnits = [normalization]
    image.stats = schema.StatsT()
    image.stats.min, image.stats.max = [0.0], [255.0]

    masks = _image_tensor(schema, "segmentation_masks", "Per-pixel class logits (the category mask is "
                          "their argmax).", schema.ColorSpaceType.GRAYSCALE)
    masks.content.range = schema.ValueRangeT()
    masks.content.range.min, masks.content.range.max = 1, 2
    labels = schema.AssociatedFileT()
    labels.name = LABELS_FILE
    labels.description = "The class names, one a line, in class order."
    labels.type = schema.AssociatedFileType.TENSOR_AXIS_LABELS
    masks.associatedFiles = [labels]

    options = segmenter.ImageSegmenterOptionsT()
    options.activation = _SOFTMAX
    b = flatbuffers.Builder(0)
    b.Finish(options.Pack(b), b"V001")
    custom = schema.CustomMetadataT()
    custom.name = "SEGMENTER_METADATA"
    custom.data = bytes(b.Output())

    subgraph = schema.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], [masks]
    subgraph.customMetadata = [custom]
    model_md.subgraphMetadata = [subgraph]
    model_md.minParserVersion = "1.5.0"  # custom_metadata was added in schema version 1.5.0
    b = flatbuffers.Builder(0)
    b.Finish(model_md.Pack(b), b"M001")
    return bytes(b.Output())


def _image_tensor(schema, name, description, color_space):
    """The TensorMetadataT of an image-like tensor `name` (the input, or the masks output) in
    colour space `color_space` (a `schema.ColorSpaceType`)."""
    tensor = schema.TensorMetadataT()
    tensor.name = name
    tensor.description = description
    tensor.content = schema.ContentT()
    tensor.content.contentPropertiesType = schema.ContentProperties.ImageProperties
    tensor.content.contentProperties = schema.ImagePropertiesT()
    tensor.content.contentProperties.colorSpace = color_space
    return tensor


def _embed(data, entries):
    """The flatbuffer `data` with model metadata {name: bytes} added (TF's flatbuffer object API)."""
    from tensorflow.lite.tools import flatbuffer_utils

    schema = tflite._schema()
    model = flatbuffer_utils.convert_bytearray_to_object(data)
    for sig in model.signatureDefs or []:  # the tensors named after their signature keys
        tensors = model.subgraphs[sig.subgraphIndex].tensors
        for tmap in (sig.inputs or []) + (sig.outputs or []):
            tensors[tmap.tensorIndex].name = tmap.name
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name.encode()
        entry.buffer = len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def write(model, path, options):
    """Converts `model` and writes the MediaPipe-ready `path` (`formats.WriteOptions`)."""
    import json

    if options.input_size is None:
        raise _io.naming_arguments(ExportError(
            "target='mediapipe' needs a fixed input size (MediaPipe resizes every image to it): "
            "pass `input_size` (height and width). Received: input_size=None"), "input_size")
    meta = options.meta
    data = _convert(model, options.quantize, options.input_size, options.calibration)
    data = _embed(data, {TFLITE_METADATA: metadata_buffer(meta, options.input_size),
                         METADATA_NAME: json.dumps(meta).encode()})
    buf = io.BytesIO(data)
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_STORED) as z:  # the associated file, appended as MediaPipe reads it
        z.writestr(LABELS_FILE, "".join(f"{name}\n" for name in meta["class_names"]))
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    bad = [o["name"] for o in tflite.op_names(path) if not o["builtin"]]
    if bad:
        raise RuntimeError(f"the TFLite conversion produced non-builtin ops {sorted(set(bad))}")
    return [path]


def read_standard_metadata(path):
    """The file's TFLite Model Metadata as a dict (the schema reader) plus its labels file."""
    schema, segmenter = _schemas()
    with open(path, "rb") as f:
        data = f.read()
    model = tflite._schema().Model.GetRootAsModel(data, 0)
    found = None
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == TFLITE_METADATA.encode():
            found = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    if found is None:
        return {}
    if not schema.ModelMetadata.ModelMetadataBufferHasIdentifier(found, 0):
        raise ExportError(f"{path!r}: its TFLITE_METADATA buffer is not a Model Metadata flatbuffer (M001)")
    md = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAsModelMetadata(found, 0))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    return {"metadata": md, "files": files}


def is_artefact(path):
    """A .tflite file carrying fcn_keras metadata with target "mediapipe"."""
    return tflite.is_artefact(path) and tflite.embedded_metadata(path).get("target") == TARGET


def embedded_metadata(path):
    return tflite.embedded_metadata(path)


def runtime_name():
    return tflite.runtime_name().replace("(signature runner)", "(one scores output)")


class MediaPipeRunner(Runner):
    """Runs the file in LiteRT as MediaPipe does: float pixels in, the argmax of the scores."""

    def __init__(self, path, num_threads=None):
        self.interp = tflite.interpreter(path, num_threads)
        self.runner = self.interp.get_signature_runner("serving_default")
        shape = self.runner.get_input_details()["image"]["shape"]
        self.fixed_size = (int(shape[1]), int(shape[2]))

    def prepare(self, images):
        return np.asarray(images, np.float32)

    def run(self, prepared):
        scores = self.runner(image=prepared)["scores"].astype(np.float32)
        labels = np.argmax(scores, axis=-1)
        return labels.astype(np.uint8 if scores.shape[-1] <= 256 else np.int32), scores


runner = MediaPipeRunner
