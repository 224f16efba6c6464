"""`export`: check every argument, write into a staging folder, verify, then move into place."""

import dataclasses
import os
import shutil
import tempfile

from fcn_keras import _io
from fcn_keras.models.layers import dense_upsampling

from . import _common, formats
from ._common import IO_TYPES, REPORT_SUFFIX, SIDECAR_SUFFIX, ExportError
from .formats import TABLE, WriteOptions
from .images import DEFAULT_CALIBRATION, fit_to_size, sample_images
from .onnx import DEFAULT_OPSET
from .verification import as_verification, describe, parity_report, raise_on_failure


@dataclasses.dataclass
class Exported:
    """What `export` wrote.

    Attributes:
        path: the artefact (a SavedModel folder, a .tflite or a .onnx file).
        files: every file written, sidecars included.
        format: "saved_model", "tflite" or "onnx"; quantize: "float32", "bfloat16",
            "float16", "dynamic-int8" or "int8".
        metadata: what `<path>.json` (and the artefact itself) holds.
        report: the verification `Report`, or None with verify=False.
    """

    path: str
    files: list
    format: str
    quantize: str
    metadata: dict
    report: object = None


def export(model, path, format=None, quantize=None, *, representative_data=None, verify=True,
           overwrite=False, input_size=None, io_type="uint8", class_names=None, palette=None,
           opset=DEFAULT_OPSET, external_data=None, target=None, **web_options):
    """Exports `model` to `path`, verifies it in its own runtime, and only then moves it into place.

    Args:
        model: a keras model (an `fcn_keras.FCN`) or the path of a `.keras` file. A bfloat16
            FCN exports as quantize="bfloat16" (SavedModel only).
        path: a folder for "saved_model" and "web", `*.tflite`, `*.onnx`.
        format: "saved_model" | "tflite" | "onnx" | "web" (None: from the path's suffix). "web":
            a folder with the ONNX export (quantize as for "onnx"), a page and its runtime,
            for browsers (`fcn_keras.export.web`).
        quantize: None (the model's own precision: "float32", or "bfloat16" for a bfloat16 FCN)
            or "float32"; TFLite: "float16" (weights) | "dynamic-int8" (weights,
            slow on x86) | "int8" (full integer, calibrated on `representative_data`); ONNX
            and web: "int8" (QDQ: int8 weights per channel, uint8 activations, uint8 input and
            float32 scores as in float32, calibrated on `representative_data`);
            SavedModel: "bfloat16" (bfloat16 weights and compute, float32 scores: TensorFlow
            can run it fast only on CPUs with AVX-512 BF16 or AMX, no faster than float32 elsewhere;
            verified against the float32 `model`). LiteRT and onnxruntime have no bfloat16
            convolution: asking for it there is an ExportError naming their fast path (int8).
        representative_data: calibration images for quantize="int8": a list of uint8 images
            (H, W, 3) (all used), or "shapes", a VOC / SBD folder, a data spec, a
            `fcn_keras.data.Source` or a tf.data.Dataset (32 images of the train split); see
            `sample_images`.
        verify: True (the default `Verification`), a `Verification`, or False (not recommended).
            A missed target raises ParityError and nothing is written.
        overwrite: replace an existing `path` and its sidecar files.
        input_size: None (any N, H, W) or (h, w): input fixed to (1, h, w, 3); calibration
            images are padded (mean colour) and centre-cropped to it.
        io_type: quantize="int8" only: "uint8" (raw pixels, scale 1) or "int8" (pixel - 128)
            input, and the same type for the quantised scores output.
        class_names, palette: stored with the artefact (default: the VOC names for 21 classes,
            else "class_i"; the VOC colour map), C names and (C, 3) RGB values.
        opset: ONNX opset, 11..18 (tf2onnx 1.17 converts no later one).
        external_data: ONNX weights in `<path>.data` (None: only above 1.8 GB).
        target: None, or the app platform a format is written for: format="tflite",
            target="mediapipe" writes a file MediaPipe's Image Segmenter loads (needs input_size;
            `fcn_keras.export.tflite_mediapipe`).
        web_options: format="web" only: `max_side`, `runtime` (`fcn_keras.export.web.write_folder`).

    Returns:
        An `Exported`. Beside the artefact: `<path>.json` (class names, palette, input / output
        spec) and `<path>.verify.json` (the verification report).

    Raises:
        ExportError: a bad argument or an existing target, before any conversion work.
        ParityError: the verification failed (nothing is written).
    """
    import keras

    kwargs = dict(representative_data=representative_data, verify=verify, overwrite=overwrite,
                  input_size=input_size, io_type=io_type, class_names=class_names, palette=palette,
                  opset=opset, external_data=external_data, target=target, **web_options)
    if keras.backend.backend() != "tensorflow":
        return _export_on_tensorflow(model, path, format, quantize, kwargs)
    return _export(model, path, format, quantize, **kwargs)


def _export(model, path, format, quantize, *, target, overwrite, **kwargs):
    """`export` in a process whose Keras runs on TensorFlow: a FOLDERS format's folder, or
    `_export_artefact`."""
    model = _common.keras_model(model)
    path = os.fspath(path).rstrip("/\\")
    fmt = formats.apply_target(formats.normalize_format(format, path), target)
    folder = formats.FOLDERS.get(fmt)
    own = {k: kwargs.pop(k) for k in folder.OPTIONS if k in kwargs} if folder is not None else {}
    unknown = sorted(set(kwargs) - _ARTEFACT_OPTIONS)
    if unknown:
        takers = sorted(name for name, m in formats.FOLDERS.items() if set(unknown) <= set(m.OPTIONS))
        if not takers:
            raise TypeError(f"export() got unexpected keyword arguments {unknown}")
        raise ExportError(f"{unknown} apply to format={takers[0] if len(takers) == 1 else takers!r} only. "
                          f"Received: format={fmt!r}")
    if folder is not None:  # a folder around an artefact of format folder.WRAPS
        return folder.write_folder(model, path, quantize, write_artefact=_export_artefact,
                                   overwrite=overwrite, **own, **kwargs)
    return _export_artefact(model, path, fmt, quantize, overwrite=overwrite, **kwargs)


_ARTEFACT_OPTIONS = {"representative_data", "verify", "input_size", "io_type", "class_names", "palette",
                     "opset", "external_data"}


def _export_artefact(model, path, fmt, quantize, *, representative_data=None, verify=True, overwrite=False,
                     input_size=None, io_type="uint8", class_names=None, palette=None, opset=DEFAULT_OPSET,
                     external_data=None):
    """Writes, verifies and moves into place the artefact of TABLE format `fmt` (arguments as
    for `export`; `model` a loaded keras model, `path` without a trailing slash)."""
    quantize, written = formats.export_precision(model, fmt, quantize)  # the one normalisation
    input_size = _common.normalize_size(input_size)
    _check_path_and_options(fmt, path, quantize, io_type, representative_data, opset)
    verification = as_verification(verify)
    names, pal = _common.model_classes(model, class_names, palette)
    extra = [path + SIDECAR_SUFFIX, path + REPORT_SUFFIX] + [path + s for s in TABLE[fmt].EXTRA_SUFFIXES]
    _common.check_target(path, overwrite, extra=extra)
    if verification is not None:  # read the images now: a bad `data` fails before the conversion
        images = sample_images(verification.data, "val", verification.num_images, arg="verify.data")
        data_name = describe(verification.data)
        verification = dataclasses.replace(verification, data=images)
    calibration = _calibration(representative_data, input_size) if quantize == "int8" else None
    meta = _metadata(written, fmt, quantize, names, pal, input_size, io_type, opset, representative_data,
                     calibration)

    with _io.staged(path) as staged:  # killed exports' folders are removed by later ones
        with dense_upsampling(written):  # one transposed-conv op per layer in the artefact
            options = WriteOptions(quantize=quantize, input_size=input_size, io_type=io_type,
                                   calibration=calibration, class_names=names, palette=pal, opset=opset,
                                   external_data=external_data, meta=meta)
            files = TABLE[fmt].write(written, staged, options)
        files.append(_io.save_json(staged + SIDECAR_SUFFIX, meta))
        report = None
        if verification is not None:
            report = parity_report(staged, model, verification, quantize=quantize)
            report.path = path
            report.data = data_name
            raise_on_failure(report, written=False)
            files.append(_io.save_json(staged + REPORT_SUFFIX, report.to_dict()))
        final = _move_into_place(files, path, overwrite, TABLE[fmt].EXTRA_SUFFIXES)
    return Exported(path=path, files=final, format=fmt, quantize=quantize, metadata=meta, report=report)


def _check_path_and_options(fmt, path, quantize, io_type, representative_data, opset):
    suffix = TABLE[fmt].SUFFIX
    if suffix and not path.endswith(suffix):
        raise ExportError(f"a {fmt} export must be written to a '*{suffix}' path. Received: path={path!r}")
    if suffix is None and path.endswith(formats.suffixes() + (".keras",)):
        raise ExportError(f"a {fmt} export is a folder; `path` must not end in a file suffix. Received: path={path!r}")
    if io_type not in IO_TYPES:
        raise ExportError(f"`io_type` must be one of {IO_TYPES}. Received: io_type={io_type!r}")
    if io_type != "uint8" and (quantize != "int8" or "io_type" not in formats.options(fmt)):
        raise ExportError(f"`io_type` applies to TFLite quantize='int8' only. Received: io_type={io_type!r}, "
                          f"quantize={quantize!r}, format={fmt!r}")
    if quantize == "int8" and representative_data is None:
        raise _io.naming_arguments(ExportError(
            "quantize='int8' needs `representative_data`: 'shapes', a data folder, a fcn_keras.data "
            "Source, a tf.data.Dataset or a list of uint8 images. Received: representative_data=None"),
            "representative_data")
    if quantize != "int8" and representative_data is not None:
        raise ExportError(f"`representative_data` applies to quantize='int8' only. "
                          f"Received: quantize={quantize!r}")
    if "opset" in formats.options(fmt) and not (isinstance(opset, int) and 11 <= opset <= 18):
        raise ExportError(f"`opset` must be an int in 11..18 (tf2onnx 1.17). Received: opset={opset!r}")


def _calibration(data, input_size):
    """uint8 images (H, W, 3) for full-int8 calibration, at `input_size` when it is fixed."""
    num = None if isinstance(data, (list, tuple)) else DEFAULT_CALIBRATION
    pairs = sample_images(data, "train", num, arg="representative_data")
    return [fit_to_size(image, None, input_size)[0] for image, _ in pairs]


def _metadata(model, fmt, quantize, names, palette, input_size, io_type, opset, representative_data, calibration):
    meta = _common.base_metadata(model, fmt, quantize, names, palette, input_size, io_type=io_type)
    if "opset" in formats.options(fmt):
        meta["opset"] = opset
    if quantize == "int8":
        meta["calibration"] = {"images": len(calibration), "data": describe(representative_data)}
        meta["input"]["quantization"] = ("uint8 raw pixels (scale 1, zero point 0)" if io_type == "uint8"
                                         else "int8 = pixel - 128 (scale 1, zero point -128)")
        if "io_type" in formats.options(fmt):  # ONNX QDQ keeps float32 scores
            meta["outputs"]["scores"]["dtype"] = f"{io_type} (quantised: float = (q - zero_point) * scale)"
    return getattr(TABLE[fmt], "adjust_metadata", dict)(meta)


def _move_into_place(files, path, overwrite, extra_suffixes=()):
    """Moves the staged files beside `path`: the format's extra files (ONNX external data) first,
    the artefact, then sidecars.

    With overwrite, an earlier export's extra files or report that does not describe the new
    artefact is removed.
    """
    parent = os.path.dirname(os.path.abspath(path))
    final = []
    extra = tuple(extra_suffixes)
    for f in sorted(files, key=lambda f: (not (extra and f.endswith(extra)), f.endswith(".json"))):
        final.append(_io.move_into_place(f, os.path.join(parent, os.path.basename(f)), overwrite))
    for stale in [os.path.abspath(path) + s for s in extra] + [os.path.abspath(path) + REPORT_SUFFIX]:
        if overwrite and stale not in final and os.path.exists(stale):
            os.remove(stale)
    return final


_ON_TENSORFLOW = """
import pickle, sys
from fcn_keras.export._writer import _export
with open(sys.argv[1], "rb") as f:
    model, path, format, quantize, kwargs = pickle.load(f)
try:
    result = (True, _export(model, path, format, quantize, **kwargs))
except Exception as e:  # sent back and raised in the calling process
    result = (False, e)
with open(sys.argv[2], "wb") as f:
    pickle.dump(result, f)
"""


def _export_on_tensorflow(model, path, format, quantize, kwargs):
    """`export` from a process whose Keras runs on JAX or PyTorch: the model (its `.keras`
    file) is exported and verified by a Python process of its own on the TensorFlow backend
    (`_export`; the artefacts are TensorFlow graphs); its result, or its error, comes back here."""
    import pickle
    import subprocess
    import sys

    import keras

    work = tempfile.mkdtemp(prefix=".fcn_keras-export-")
    try:
        if isinstance(model, keras.Model):
            saved = os.path.join(work, "model.keras")
            model.save(saved)
            model = saved
        elif not isinstance(model, (str, os.PathLike)):
            raise ExportError(f"`model` must be a keras.Model or a .keras path. "
                              f"Received: model of type {type(model).__name__}")
        args, out = os.path.join(work, "args.pkl"), os.path.join(work, "result.pkl")
        try:
            with open(args, "wb") as f:
                pickle.dump((os.fspath(model), os.fspath(path), format, quantize, kwargs), f)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise ExportError(
                f"export on the {keras.backend.backend()} backend runs in a TensorFlow process, "
                f"and its arguments must be picklable ({e}): give representative_data and "
                f"verify.data as image lists, 'shapes' or a folder") from None
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        run = subprocess.run([sys.executable, "-c", _ON_TENSORFLOW, args, out], env=env,
                             capture_output=True, text=True)
        if not os.path.exists(out):
            raise ExportError(f"the TensorFlow export process failed (exit {run.returncode}): "
                              f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")
        with open(out, "rb") as f:
            ok, result = pickle.load(f)
        if not ok:
            raise result
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
