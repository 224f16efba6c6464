"""The web export: a folder that segments photos in a browser, offline, with ONNX Runtime Web.

    export(model, "fcn8s_web", format="web")    # then: fcn-keras serve fcn8s_web

The folder (nothing in it fetches anything from elsewhere):

    index.html              the page: choose, drop or take a photo; overlay, legend, timing
    fcn.js                  ES module: load(url, options) -> segmenter.segment(image)
    model.onnx              the ONNX export (the same writer and verification as format="onnx")
    model.onnx.json         its metadata: class names, palette, input / output spec
    model.onnx.verify.json  its verification report
    web.json                the page's settings: max side (as `fcn-keras predict`), runtime version
    ort/                    the ONNX Runtime Web files the page loads (WASM; WebGPU bundle)

The ONNX Runtime Web files come from the npm package pinned in the repository's
`web/package-lock.json`: the `runtime` argument, $FCN_KERAS_ORT_WEB, the checkout's
`npm ci --prefix web`, or else the pinned tarball from the npm registry, checked against the
lock's integrity hash and cached in the Keras cache (`fcn_keras.export.ort_web`).
"""

import os
import shutil

from fcn_keras import _io

from . import _common
from ._common import REPORT_SUFFIX, SIDECAR_SUFFIX, ExportError
from .ort_web import ORT_ENV, ORT_FILES, ORT_WEB_VERSION, find_runtime  # noqa: F401 (this module's API too)

NAME = "web"  # `formats.FOLDERS`: a folder around an ONNX export, a page and its runtime
WRAPS = "onnx"
OPTIONS = ("max_side", "runtime")  # the `export` arguments only this format takes
MODEL_NAME = "model.onnx"
SETTINGS_NAME = "web.json"
RUNTIME_DIR = "ort"
ASSETS = ("index.html", "fcn.js")
_ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web_assets")


def settings(max_side, model_meta):
    """web.json: what the page needs beside the model's metadata."""
    return {
        "model": MODEL_NAME,
        "metadata": MODEL_NAME + SIDECAR_SUFFIX,
        "max_side": int(max_side or 0),
        "resize": "as `fcn-keras predict`: an image whose longest side is over max_side (0: never) is "
                  "resized down (Pillow's bilinear) to longest side max_side, and the scores are "
                  "resized back (bilinear, half-pixel centres) before the argmax",
        "onnxruntime_web": ORT_WEB_VERSION,
        "runtime_files": {b: [f"{RUNTIME_DIR}/{f}" for f in files] for b, files in ORT_FILES.items()},
        "class_names": model_meta["class_names"],
    }


def write_folder(model, path, quantize=None, *, write_artefact, verify=True, overwrite=False, max_side=None,
                 runtime=None, opset=None, **artefact_options):
    """Writes the web folder `path` (see the module docstring); `export(..., format="web")` calls this.

    Args:
        model: the keras model.
        path: the folder to write (must not end in a file suffix).
        quantize, verify, opset, artefact_options: as for `export(..., format="onnx")`, which
            writes and verifies the folder's model.onnx.
        write_artefact: `write_artefact(model, path, "onnx", quantize, **options)` writes,
            verifies and moves into place an ONNX export and returns its `Exported`
            (`fcn_keras.export._writer` passes its own, so this module does not import it).
        overwrite: replace an existing folder.
        max_side: longest side the network sees in the page (None: `fcn-keras predict`'s
            default, `fcn_keras.conventions.DEFAULT_MAX_SIZE`; 0: full resolution).
        runtime: where the ONNX Runtime Web files are (see `find_runtime`).

    Returns:
        The ONNX `Exported`, with path = the folder, format = "web", files = every file written,
        and metadata = the ONNX metadata plus {"web": web.json}.

    Raises:
        ExportError: a bad argument, an existing folder, or runtime files that are missing and
            cannot be downloaded (`fcn_keras.export.ort_web.find_runtime`), before any conversion work.
        ParityError: the ONNX model missed the verification targets (nothing is written).
    """
    from .onnx import DEFAULT_OPSET

    path = os.fspath(path).rstrip("/\\")
    max_side = _check_arguments(path, max_side)
    dist = find_runtime(runtime)
    _common.check_target(path, overwrite)
    with _io.staged(path) as folder:  # killed exports' folders are removed by later ones
        os.mkdir(folder)
        result = write_artefact(model, os.path.join(folder, MODEL_NAME), WRAPS, quantize, verify=verify,
                                opset=DEFAULT_OPSET if opset is None else opset, **artefact_options)
        if result.report is not None:  # the report names the final file, not the staging one
            result.report.path = os.path.join(path, MODEL_NAME)
            _io.save_json(os.path.join(folder, MODEL_NAME + REPORT_SUFFIX), result.report.to_dict())
        web = settings(max_side, result.metadata)
        _write_page(folder, web, dist)
        _io.move_into_place(folder, path, overwrite)
    files = sorted(os.path.join(root, f) for root, _, fs in os.walk(path) for f in fs)
    result.path, result.files, result.format = path, files, NAME
    result.metadata = {**result.metadata, "web": web}
    return result


def _check_arguments(path, max_side):
    """`max_side` (None: the default) after checking it and `path`, or ExportError."""
    from fcn_keras.conventions import DEFAULT_MAX_SIZE

    if path.endswith((".onnx", ".tflite", ".keras", ".json", ".html")):
        raise ExportError(f"a web export is a folder; `path` must not end in a file suffix. Received: path={path!r}")
    if max_side is None:
        max_side = DEFAULT_MAX_SIZE
    if not isinstance(max_side, int) or isinstance(max_side, bool) or max_side < 0:
        raise ExportError(f"`max_side` must be a non-negative int (0: full resolution). Received: max_side={max_side!r}")
    return max_side


def _write_page(folder, web, dist):
    """Writes the page into `folder`: web.json (`web`), the assets, and the runtime files
    copied from the onnxruntime-web `dist` folder."""
    _io.save_json(os.path.join(folder, SETTINGS_NAME), web)
    for name in ASSETS:
        shutil.copyfile(os.path.join(_ASSET_DIR, name), os.path.join(folder, name))
    os.mkdir(os.path.join(folder, RUNTIME_DIR))
    for name in sorted({f for files in ORT_FILES.values() for f in files}):
        shutil.copyfile(os.path.join(dist, name), os.path.join(folder, RUNTIME_DIR, name))
