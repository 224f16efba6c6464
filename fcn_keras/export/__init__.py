"""Export an FCN for servers and phones: SavedModel, TFLite (float32 / float16 / int8), ONNX.

    import fcn_keras
    from fcn_keras.export import export, verify

    model = fcn_keras.build("vgg16", "8s", num_classes=21)
    export(model, "fcn8s", "saved_model")                       # server, TF Serving
    export(model, "fcn8s.tflite", "tflite", quantize="float16")  # phone
    export(model, "fcn8s_int8.tflite", "tflite", quantize="int8",
           representative_data="shapes", input_size=(320, 320))  # phone, full integer
    export(model, "fcn8s.onnx", "onnx")                          # onnxruntime

Every artefact computes the same serving function: image uint8 (N, H, W, 3) RGB ->
{"labels": uint8 (N, H, W) argmax, "scores": float32 (N, H, W, C) logits}, with the model's
preprocessing inside. Each export is written under a temporary name, verified against the
Keras model in its own runtime (`verify`), and only then renamed into place; an existing path
is replaced only with overwrite=True. Next to the artefact: `<path>.json` (class names, palette,
input/output spec) and `<path>.verify.json` (the verification report).
"""

import dataclasses
import os
import shutil

import numpy as np

from ._common import (  # noqa: F401
    FORMATS, IO_TYPES, QUANTIZATIONS, REPORT_SUFFIX, SIDECAR_SUFFIX, VOC_CLASSES, ExportError,
    ParityError,
)
from .onnx import DEFAULT_OPSET
from .verification import DEFAULT_SIZES, TARGETS, format_table, verify  # noqa: F401
from . import _common

__all__ = [
    "export", "export_saved_model", "export_tflite", "export_onnx", "verify", "format_table",
    "Exported", "ExportError", "ParityError", "FORMATS", "QUANTIZATIONS", "TARGETS",
]


@dataclasses.dataclass
class Exported:
    """What `export` wrote: `path`, all `files` (incl. sidecars), the metadata and the report."""

    path: str
    files: list
    format: str
    quantize: str
    metadata: dict
    report: dict = None


def export(model, path, format=None, *, quantize=None, input_size=None, io_type="uint8",
           representative_data=None, num_calibration=32, class_names=None, palette=None,
           opset=DEFAULT_OPSET, external_data=None, overwrite=False, verify=True,
           verify_data="shapes", verify_sizes=DEFAULT_SIZES, verify_images=4, verify_targets=None,
           latency=True, latency_size=None, latency_rounds=5):
    """Exports `model` to `path` and verifies it. Returns an `Exported`.

    Args:
        model: a keras model (an `fcn_keras.FCN`) or the path of a `.keras` file.
        path: target: a directory for "saved_model", `*.tflite`, `*.onnx`.
        format: "saved_model" | "tflite" | "onnx" (None: from the path's suffix).
        quantize: TFLite only: None (float32) | "float16" (weights) | "dynamic-int8" (weights,
            slow on x86, not a default target) | "int8" (full integer, calibrated).
        input_size: None (any N, H, W) or (h, w): input fixed to (1, h, w, 3).
        io_type: full int8 only: "uint8" (raw pixels, scale 1) or "int8" (pixel - 128) input,
            and the same type for the quantised scores output.
        representative_data: calibration for quantize="int8": "shapes", a VOC/SBD directory,
            a `fcn_keras.data.Source`, an unbatched tf.data.Dataset of (image, mask), or a list of
            uint8 images; drawn through `fcn_keras.data.pipeline` (train split).
        num_calibration: calibration images taken from it.
        class_names, palette: stored with the artefact (default: VOC names for 21 classes,
            else "class_i"; the VOC colour map).
        opset: ONNX opset (11..18; tf2onnx 1.17 fails at 19+).
        external_data: ONNX weights in `<path>.data` (default: only above 1.8 GB).
        overwrite: replace an existing `path` (and its sidecars).
        verify: verify before renaming into place (ParityError on a miss, nothing written).
        verify_data, verify_sizes, verify_images, verify_targets, latency, latency_size,
            latency_rounds: see
            `verify` (`data`, `sizes`, `num_images`, `targets`, ...); targets default to
            TARGETS[quantize].
    """
    import keras

    # ---- every argument is checked before any work
    if isinstance(model, (str, os.PathLike)):
        mp = os.fspath(model)
        if not os.path.isfile(mp):
            raise ExportError(f"model file {mp!r} does not exist (expected a .keras file or a keras model)")
        import fcn_keras  # noqa: F401  (registers the custom layers)

        model = keras.models.load_model(mp, compile=False)
    if not isinstance(model, keras.Model):
        raise ExportError(f"`model` must be a keras.Model or a .keras path. Received: {type(model).__name__}")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise ExportError(f"`model` must have one (N, H, W, classes) output. Received outputs "
                          f"{[tuple(o.shape) for o in model.outputs]}")
    path = os.fspath(path).rstrip("/\\")
    fmt = _common.normalize_format(format, path)
    quantize = _common.normalize_quantize(fmt, quantize)
    input_size = _common.normalize_input_size(input_size)
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}.get(fmt)
    if suffix and not path.endswith(suffix):
        raise ExportError(f"a {fmt} export must be written to a '*{suffix}' path. Received: path={path!r}")
    if fmt == "saved_model" and path.endswith((".tflite", ".onnx", ".keras")):
        raise ExportError(f"a SavedModel is a directory; path={path!r} looks like a file name")
    if io_type not in IO_TYPES:
        raise ExportError(f"`io_type` must be one of {IO_TYPES}. Received: io_type={io_type!r}")
    if io_type != "uint8" and quantize != "int8":
        raise ExportError(f"`io_type` applies to quantize='int8' only. Received: io_type={io_type!r}, "
                          f"quantize={quantize!r}")
    if quantize == "int8" and representative_data is None:
        raise ExportError("quantize='int8' needs `representative_data` (CLI: --representative-data): "
                          "'shapes', a data directory, a fcn_keras.data Source, a tf.data.Dataset or a "
                          "list of uint8 images")
    if not isinstance(num_calibration, int) or num_calibration < 1:
        raise ExportError(f"`num_calibration` must be a positive int. Received: {num_calibration!r}")
    if fmt == "onnx" and not (isinstance(opset, int) and 11 <= opset <= 18):
        raise ExportError(f"`opset` must be an int in 11..18 (tf2onnx 1.17). Received: opset={opset!r}")
    names, pal = _common.class_metadata(model, class_names, palette)
    extra = _common.sidecars(path) + ([path + ".data"] if fmt == "onnx" else [])
    _common.check_target(path, overwrite, extra=extra)
    if isinstance(verify_data, (str, os.PathLike)) and verify and os.fspath(verify_data) != "shapes" \
            and not os.path.isdir(verify_data):
        raise ExportError(f"`verify_data` must be 'shapes' or an existing directory. Received: {verify_data!r}")
    calibration = None
    if quantize == "int8":
        calibration = calibration_images(representative_data, num_calibration, input_size)

    io = io_type if quantize == "int8" else "uint8"
    meta = _common.base_metadata(model, fmt, quantize, names, pal, input_size, io_type=io)
    if fmt == "onnx":
        meta["opset"] = opset
    if quantize == "int8":
        meta["calibration"] = {"images": len(calibration),
                               "data": representative_data if isinstance(representative_data, str)
                               else type(representative_data).__name__}
        meta["input"]["quantization"] = ("uint8 raw pixels (scale 1, zero point 0)" if io == "uint8"
                                         else "int8 = pixel - 128 (scale 1, zero point -128)")
        meta["outputs"]["scores"]["dtype"] = f"{io} (quantised: float = (q - zero_point) * scale)"

    # ---- write into a staging directory next to the target, verify, then rename into place
    parent, base = os.path.split(os.path.abspath(path))
    staging = _common.tmp_name(path)
    os.makedirs(staging)
    try:
        staged = os.path.join(staging, base)
        if fmt == "saved_model":
            from .saved_model import write_saved_model

            write_saved_model(model, staged, names, pal, input_size=input_size, meta=meta)
            files = [staged]
        elif fmt == "tflite":
            from .tflite import write_tflite

            write_tflite(model, staged, quantize=quantize, input_size=input_size, io_type=io,
                         calibration_images=calibration, class_names=names, palette=pal)
            files = [staged]
        else:
            from .onnx import write_onnx

            files = write_onnx(model, staged, opset=opset, input_size=input_size, class_names=names,
                               palette=pal, external_data=external_data, meta=meta)
        _common.write_json_atomic(staged + SIDECAR_SUFFIX, meta)
        files.append(staged + SIDECAR_SUFFIX)
        report = None
        if verify:
            report = _verify_staged(staged, path, model, verify_data, quantize or "float32",
                                    verify_sizes, verify_images, verify_targets, latency, latency_size,
                                    latency_rounds)
            files.append(staged + REPORT_SUFFIX)
        # commit: data files first, the artefact, then the sidecars
        final = []
        for f in sorted(files, key=lambda f: (not f.endswith(".data"), f.endswith(".json"))):
            dest = os.path.join(parent, os.path.basename(f))
            _common.commit(f, dest, overwrite)
            final.append(dest)
        # an earlier export's external data / report that does not describe this file
        for stale in (os.path.abspath(path) + ".data", os.path.abspath(path) + REPORT_SUFFIX):
            if overwrite and stale not in final and os.path.exists(stale):
                os.remove(stale)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Exported(path=path, files=final, format=fmt, quantize=quantize or "float32", metadata=meta,
                    report=report)


def _verify_staged(staged, path, model, data, quantize, sizes, num_images, targets, latency, latency_size,
                   latency_rounds):
    from .verification import verify as _verify

    report = _verify(staged, model, data, quantize=quantize, sizes=sizes, num_images=num_images, targets=targets,
                     latency=latency, latency_size=latency_size, latency_rounds=latency_rounds,
                     write_report=False,
                     raise_on_failure=False)
    report["path"] = path
    if report["failures"]:
        raise ParityError(
            f"export to {path!r} misses its parity targets (nothing was written):\n  "
            + "\n  ".join(report["failures"]) + "\n" + format_table(report), report)
    _common.write_json_atomic(staged + REPORT_SUFFIX, report)
    return report


def calibration_images(data, num, input_size=None):
    """Up to `num` uint8 images (H, W, 3) for int8 calibration, drawn through the data pipeline."""
    if isinstance(data, (list, tuple)):
        images = [np.asarray(d[0] if isinstance(d, (list, tuple)) else d) for d in data][:num]
        if not images:
            raise ExportError("`representative_data` is an empty list")
        for i, img in enumerate(images):
            if img.ndim != 3 or img.shape[-1] != 3:
                raise ExportError(f"`representative_data`[{i}] must be an (H, W, 3) image. Received shape {img.shape}")
        if input_size is not None:
            import tensorflow as tf

            images = [np.clip(np.round(tf.image.resize(img, input_size).numpy()), 0, 255) for img in images]
        return [np.asarray(i, np.uint8) for i in images]
    if isinstance(data, (str, os.PathLike)):
        d = os.fspath(data)
        if d != "shapes" and not os.path.isdir(d):
            raise ExportError(f"`representative_data` must be 'shapes' or an existing data directory. "
                              f"Received: {d!r}")
    from .verification import _pipeline_items, resolve_source

    try:
        source = resolve_source(data, split="train")
        items = _pipeline_items(source, input_size, num)
    except (TypeError, ValueError) as e:
        raise ExportError(f"`representative_data`={data!r} could not be read: {e}") from e
    if not items:
        raise ExportError(f"`representative_data`={data!r} yielded no images")
    return [img for img, _ in items]


def export_saved_model(model, path, **kwargs):
    """`export(model, path, "saved_model", **kwargs)`."""
    return export(model, path, "saved_model", **kwargs)


def export_tflite(model, path, quantize=None, **kwargs):
    """`export(model, path, "tflite", quantize=quantize, **kwargs)`."""
    return export(model, path, "tflite", quantize=quantize, **kwargs)


def export_onnx(model, path, **kwargs):
    """`export(model, path, "onnx", **kwargs)`."""
    return export(model, path, "onnx", **kwargs)
