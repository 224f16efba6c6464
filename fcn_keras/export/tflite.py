"""TFLite / LiteRT flatbuffers for phones: float32, float16 weights, dynamic-range int8, full int8.

Route: the serving function is saved as a temporary SavedModel (one copy of
each weight) and converted with `TFLiteConverter.from_saved_model(signature_keys=["serving_default"])`
with builtin ops only (`TFLITE_BUILTINS`, and `TFLITE_BUILTINS_INT8` for full int8): an op
without a builtin kernel fails the conversion instead of becoming a Flex op, and the written
file is checked again (`builtin_only`).

Signature `serving_default`:
- float32 / float16 / dynamic-int8: image uint8 (N, H, W, 3) -> labels uint8 (N, H, W),
  scores float32 (N, H, W, C).
- int8 (full integer): image uint8 (or int8 = pixel - 128 with io_type="int8"), quantisation
  scale 1 and zero point 0 (-128); labels uint8; scores quantised uint8/int8 (dequantise with
  the output's scale / zero point) so the whole graph is integer.
input_size=None keeps H, W (and N) resizable; (h, w) fixes the input to (1, h, w, 3).

The classic interpreter API sees the same names (`get_input_details()` / `get_output_details()`:
`image`, `labels`, `scores`), and the export metadata (class names, palette, input / output
spec) is stored in the file as model metadata "fcn_keras" (JSON), so a lone .tflite file
describes itself (`fcn_keras.export.read_metadata`).
"""

import json
import os
import shutil
import warnings

import numpy as np

from fcn_keras._progress import native_stderr_filtered

from ._common import METADATA_NAME
from ._runner import Runner

NAME = "tflite"
SUFFIX = ".tflite"
DESCRIPTION = "a .tflite file"
EXTRA_SUFFIXES = ()
QUANTIZE = ("float32", "float16", "dynamic-int8", "int8")
OPTIONS = ("io_type",)  # `formats.py`: quantize="int8" takes a uint8 or int8 input and scores
NO_BFLOAT16 = ("the TFLite converter refuses bfloat16 ops (e.g. 'tf.Conv2D op is neither a custom op nor "
               "a flex op'): LiteRT has no bfloat16 kernels. Its fast CPU path is quantize='int8' (or "
               "'float16' for half the file size)")  # checked with TensorFlow 2.21


def _make_converter(sm_dir, quantize, representative, io_type):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(sm_dir, signature_keys=["serving_default"])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic-int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.representative_dataset = representative
        conv.inference_input_type = getattr(tf, io_type)
        conv.inference_output_type = getattr(tf, io_type)
    return conv


def write_tflite(model, path, *, quantize="float32", input_size=None, io_type="uint8",
                 calibration_images=None, class_names=None, palette=None, meta=None):
    """Converts and writes `path` (no checks, no atomicity: `export` does those).

    Args:
        model: the keras model.
        path: the .tflite file to write.
        quantize: "float32", "float16", "dynamic-int8" or "int8".
        input_size: None (resizable) or (h, w).
        io_type: full int8 only: "uint8" or "int8" input and scores.
        calibration_images: full int8 only: uint8 images (H, W, 3).
        class_names, palette: stored in the temporary SavedModel (not used by the converter).
        meta: metadata dict embedded as model metadata "fcn_keras" (None: none).

    Returns:
        `path`.

    Raises:
        RuntimeError: the converted graph holds non-builtin (Flex / custom) ops.
    """
    from .saved_model import write_saved_model

    int8 = quantize == "int8"
    sm_dir = path + ".savedmodel"
    try:
        write_saved_model(model, sm_dir, class_names, palette, input_size=input_size,
                          input_dtype="float32" if int8 else "uint8")
        representative = None
        if int8:
            images = list(calibration_images)

            def representative():
                for img in images:
                    x = np.asarray(img, np.float32)[None]
                    # pin the input range to exactly 0..255 so the uint8 input is the raw pixel
                    # (scale 1, zero point 0): one black and one white pixel per sample
                    x[0, 0, 0, :] = 0.0
                    x[0, 0, -1, :] = 255.0
                    yield {"image": x}

        conv = _make_converter(sm_dir, quantize, representative, io_type)
        # the converter's log lines and its calibrator's tf.lite.Interpreter deprecation tell
        # the user nothing (the file is verified in LiteRT afterwards); its errors stay
        with native_stderr_filtered(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
            data = _name_tensors_and_embed(conv.convert(), meta)
    finally:
        shutil.rmtree(sm_dir, ignore_errors=True)
    with open(path, "wb") as f:
        f.write(data)
    ops = op_names(path)
    bad = [o for o in ops if not o["builtin"]]
    if bad:
        raise RuntimeError(
            f"the TFLite conversion produced non-builtin ops {sorted({o['name'] for o in bad})}; "
            "the file would not run without the TF (Flex) runtime"
        )
    return path


def write(model, path, options):
    """`write_tflite` with `export`'s `formats.WriteOptions`; returns the files written."""
    return [write_tflite(model, path, quantize=options.quantize, input_size=options.input_size,
                         io_type=options.io_type, calibration_images=options.calibration,
                         class_names=options.class_names, palette=options.palette, meta=options.meta)]


def is_artefact(path):
    """True for a file whose name ends in .tflite."""
    return os.path.isfile(path) and os.fspath(path).endswith(SUFFIX)


def _name_tensors_and_embed(data, meta):
    """The flatbuffer `data` with signature tensors named after their signature keys, `meta` embedded.

    The converter names the outputs "StatefulPartitionedCall:0" / ":1" and the input
    "serving_default_image:0"; the classic interpreter API shows those names. The file is
    rewritten through TF's flatbuffer object API, as the converter itself does when it adds
    its conversion metadata.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(data)
    for sig in model.signatureDefs or []:
        tensors = model.subgraphs[sig.subgraphIndex].tensors
        for tmap in (sig.inputs or []) + (sig.outputs or []):
            tensors[tmap.tensorIndex].name = tmap.name
    if meta is not None:
        schema = _schema()
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME.encode()
        entry.buffer = len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


def embedded_metadata(path):
    """The metadata dict embedded in a .tflite file by `export` ({} if it has none)."""
    schema = _schema()
    with open(path, "rb") as f:
        buf = f.read()
    model = schema.Model.GetRootAsModel(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


# --------------------------------------------------------------------------- inspection

def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - TF's copy
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def op_names(path):
    """The operator codes used by a .tflite file, parsed from its flatbuffer.

    Returns [{"name": "CONV_2D" | custom code, "builtin": bool}] (one entry per operator code).
    A Flex (select TF) op is a CUSTOM op whose custom code starts with "Flex".
    """
    schema = _schema()
    with open(path, "rb") as f:
        buf = f.read()
    model = schema.Model.GetRootAsModel(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom = oc.CustomCode()
            custom = custom.decode() if isinstance(custom, bytes) else str(custom)
            out.append({"name": custom, "builtin": False})
        else:
            out.append({"name": names.get(code, str(code)), "builtin": True})
    return out


def builtin_only(path):
    """True if every operator of the .tflite file is a TFLite builtin (no Flex / custom ops)."""
    return all(o["builtin"] for o in op_names(path))


def runtime_name():
    try:
        import ai_edge_litert

        return f"ai_edge_litert {getattr(ai_edge_litert, '__version__', '?')} Interpreter (signature runner)"
    except ImportError:  # pragma: no cover
        return "tf.lite.Interpreter"


def interpreter(path, num_threads=None):
    """A LiteRT interpreter (ai_edge_litert), or TF's tf.lite.Interpreter if LiteRT is missing."""
    num_threads = num_threads or os.cpu_count() or 1
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=os.fspath(path), num_threads=num_threads)


class TFLiteRunner(Runner):
    """Runs the serving signature of a .tflite file (see `fcn_keras.export.runner`).

    Handles quantised inputs and outputs (int8 / uint8 with scale and zero point) and
    resizable inputs (the signature runner resizes before allocating).
    """

    def __init__(self, path, num_threads=None):
        self._ran = False
        self.interp = interpreter(path, num_threads)
        self.runner = self.interp.get_signature_runner("serving_default")
        self.in_details = self.runner.get_input_details()["image"]
        self.out_details = self.runner.get_output_details()
        sig = self.in_details.get("shape_signature", self.in_details["shape"])
        if len(sig) == 4 and sig[1] > 0 and sig[2] > 0:
            self.fixed_size = (int(sig[1]), int(sig[2]))

    def prepare(self, images):
        d = self.in_details
        dtype = d["dtype"]
        scale, zero = d["quantization"]
        x = np.asarray(images, np.float32)
        if dtype in (np.int8, np.uint8) and scale and not (dtype == np.uint8 and scale == 1 and zero == 0):
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        return x.astype(dtype)

    def run(self, prepared):
        if not self._ran:  # LiteRT's first run announces "INFO: Created TensorFlow Lite XNNPACK delegate"
            with native_stderr_filtered():
                out = self.runner(image=prepared)
            self._ran = True
        else:
            out = self.runner(image=prepared)
        scores = out["scores"]
        if scores.dtype != np.float32:
            scale, zero = self.out_details["scores"]["quantization"]
            scores = (scores.astype(np.float32) - zero) * scale
        return out["labels"], scores


runner = TFLiteRunner
