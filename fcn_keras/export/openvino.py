"""OpenVINO IR for Intel CPUs, GPUs and NPUs: a folder holding `model.xml` and `model.bin`.

    export(model, "fcn8s_openvino", "openvino")        # then: fcn-keras predict fcn8s_openvino img.jpg

Route: the ONNX export of the same serving function (`fcn_keras.export.onnx`, written to a
temporary file) converted with OpenVINO's own converter (`openvino.convert_model`): image uint8
(N, H, W, 3) any N, H, W -> {"labels", "scores"}, the preprocessing inside; its scores equal
Keras' to float32 rounding. The direct routes compute wrong scores on this model with dynamic
height and width (OpenVINO 2026.4: the SavedModel converted, and Keras' own
`model.export(format="openvino")`, are off by about 30% of the largest logit from the first
transposed convolution on, at every size; at a fixed size they are exact).
quantize="float16" stores the weights in float16 (`compress_to_fp16`), computed in float32.
The export metadata (class names, palette, input / output spec) is the model's runtime info
"fcn_keras" (JSON), so `core.read_model("model.xml").get_rt_info("fcn_keras")` has it.

The runner compiles for the CPU with inference precision f32: OpenVINO's CPU plugin would
otherwise compute in bfloat16 on CPUs with AVX-512 BF16 or AMX.
"""

import json
import os

import numpy as np

from ._common import METADATA_NAME
from ._runner import Runner

NAME = "openvino"
SUFFIX = None  # a folder
DESCRIPTION = "an OpenVINO folder (model.xml, model.bin)"
EXTRA_SUFFIXES = ()
QUANTIZE = ("float32", "float16")
NO_BFLOAT16 = ("OpenVINO's CPU plugin computes in bfloat16 by itself where the CPU has AVX-512 BF16 or AMX "
               "(its inference precision hint); the export stores float32 or float16 weights (int8 would "
               "need NNCF's quantisation, not done here)")
XML, BIN = "model.xml", "model.bin"


def write(model, path, options):
    """Converts the ONNX export of `model` and writes the folder `path` (`formats.WriteOptions`)."""
    import dataclasses
    import tempfile

    import openvino as ov

    from . import onnx

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
        onnx_path = os.path.join(scratch, "model.onnx")
        onnx.write(model, onnx_path, dataclasses.replace(options, quantize="float32", external_data=None,
                                                         opset=options.opset or onnx.DEFAULT_OPSET))
        converted = ov.convert_model(onnx_path)
    if options.meta is not None:
        converted.set_rt_info(json.dumps(options.meta), METADATA_NAME)
    os.makedirs(path)
    ov.save_model(converted, os.path.join(path, XML), compress_to_fp16=options.quantize == "float16")
    return [path]


def is_artefact(path):
    """True for a folder holding model.xml and model.bin."""
    return all(os.path.isfile(os.path.join(os.fspath(path), f)) for f in (XML, BIN))


def embedded_metadata(path):
    """The metadata in the model's runtime info "fcn_keras" ({} if none)."""
    import openvino as ov

    model = ov.Core().read_model(os.path.join(os.fspath(path), XML))
    if not model.has_rt_info(METADATA_NAME):
        return {}
    return json.loads(model.get_rt_info(METADATA_NAME).astype(str))


def runtime_name():
    import openvino as ov

    return f"openvino {ov.__version__.split('-')[0]} (CPU, inference precision f32)"


class OpenVINORunner(Runner):
    """Runs the folder's model with OpenVINO on the CPU (float32 compute)."""

    def __init__(self, path, num_threads=None):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(os.path.join(os.fspath(path), XML))
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self.compiled = core.compile_model(model, "CPU", config)
        shape = model.inputs[0].get_partial_shape()
        if shape[1].is_static and shape[2].is_static:
            self.fixed_size = (shape[1].get_length(), shape[2].get_length())
        self._outputs = {next(iter(o.get_names())).split(":")[0]: o for o in self.compiled.outputs}

    def prepare(self, images):
        return np.ascontiguousarray(images, np.uint8)

    def run(self, prepared):
        out = self.compiled(prepared)
        return np.asarray(out[self._outputs["labels"]]), np.asarray(out[self._outputs["scores"]], np.float32)


runner = OpenVINORunner
