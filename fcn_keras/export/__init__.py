"""Export an FCN for servers and phones: SavedModel (or bfloat16), TFLite (float16 / int8), ONNX.

    import fcn_keras
    from fcn_keras.export import Verification, export

    model = fcn_keras.build("vgg16", "8s", num_classes=21)
    export(model, "fcn8s", "saved_model")                       # server, TF Serving
    export(model, "fcn8s.tflite", "tflite", "float16")          # phone
    export(model, "fcn8s_int8.tflite", "tflite", "int8",
           representative_data="shapes", input_size=(320, 320))  # phone, full integer
    export(model, "fcn8s.onnx", verify=Verification(data="VOCdevkit/VOC2012", num_images=8))
    export(model, "fcn8s_bf16", "saved_model", "bfloat16")     # server CPU with AVX-512 BF16 / AMX

Every artefact computes the same serving function: image uint8 (N, H, W, 3) RGB ->
{"labels": uint8 (N, H, W) argmax, "scores": float32 (N, H, W, C) logits}, with the model's
preprocessing inside. Each export is written under a temporary name, verified against the
Keras model in its own runtime (`verify`), and only then moved into place; an existing path
is replaced only with overwrite=True. Next to the artefact: `<path>.json` (class names, palette,
input / output spec, also embedded in the artefact) and `<path>.verify.json` (the report).

Any artefact runs through `runner(path)` and describes itself through `read_metadata(path)`.
"""

from fcn_keras._progress import import_quietly

_NAMES = {  # public name -> the submodule that defines it
    "FORMATS": "fcn_keras.export.formats",
    "QUANTIZATIONS": "fcn_keras.export.formats",
    "ExportError": "fcn_keras.export._common",
    "ParityError": "fcn_keras.export._common",
    "UntrustedModelError": "fcn_keras.export.graph_check",
    "Exported": "fcn_keras.export._writer",
    "export": "fcn_keras.export._writer",
    "fit_to_size": "fcn_keras.export.images",
    "sample_images": "fcn_keras.export.images",
    "DEFAULT_OPSET": "fcn_keras.export.onnx",
    "Report": "fcn_keras.export.report",
    "Stats": "fcn_keras.export.report",
    "Targets": "fcn_keras.export.report",
    "format_table": "fcn_keras.export.report",
    "Runner": "fcn_keras.export._runner",
    "detect_format": "fcn_keras.export.runtime",
    "read_metadata": "fcn_keras.export.runtime",
    "runner": "fcn_keras.export.runtime",
    "DEFAULT_SIZES": "fcn_keras.export.verification",
    "TARGETS": "fcn_keras.export.verification",
    "Verification": "fcn_keras.export.verification",
    "verify": "fcn_keras.export.verification",
}

__all__ = [
    "export", "Exported", "Verification", "Targets", "TARGETS", "DEFAULT_SIZES", "verify", "Report",
    "Stats", "format_table", "runner", "Runner", "read_metadata", "detect_format", "sample_images",
    "fit_to_size", "ExportError", "ParityError", "UntrustedModelError", "FORMATS", "QUANTIZATIONS", "DEFAULT_OPSET",
]


def __getattr__(name):
    # Names load on first use (PEP 562): importing a light submodule, or the command
    # line reading its choices, does not import TensorFlow.
    if name in _NAMES:
        return getattr(import_quietly(_NAMES[name]), name)
    raise AttributeError(f"module 'fcn_keras.export' has no attribute {name!r}")
