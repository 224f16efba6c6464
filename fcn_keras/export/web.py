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

import json
import os
import shutil

from fcn_keras import _io

from . import _common
from ._common import REPORT_SUFFIX, SIDECAR_SUFFIX, ExportError
from .ort_web import ORT_ENV, ORT_FILES, ORT_WEB_VERSION, find_runtime  # noqa: F401 (this module's API too)

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


def export_web(model, path, quantize=None, *, export_onnx, verify=True, overwrite=False,
               input_size=None, class_names=None, palette=None, opset=None, max_side=None,
               runtime=None, **onnx_options):
    """Writes the web folder `path` (see the module docstring); `export(..., format="web")` calls this.

    Args:
        model, quantize, verify, input_size, class_names, palette, opset, onnx_options: as for
            `export(..., format="onnx")`, which writes and verifies the folder's model.onnx.
        export_onnx: the function that writes and verifies the folder's model.onnx:
            `fcn_keras.export.export`, which passes itself (so this module does not import it).
        path: the folder to write (must not end in a file suffix).
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
    from fcn_keras.conventions import DEFAULT_MAX_SIZE

    from .onnx import DEFAULT_OPSET

    path = os.fspath(path).rstrip("/\\")
    if path.endswith((".onnx", ".tflite", ".keras", ".json", ".html")):
        raise ExportError(f"a web export is a folder; `path` must not end in a file suffix. Received: path={path!r}")
    if max_side is None:
        max_side = DEFAULT_MAX_SIZE
    if not isinstance(max_side, int) or isinstance(max_side, bool) or max_side < 0:
        raise ExportError(f"`max_side` must be a non-negative int (0: full resolution). Received: max_side={max_side!r}")
    dist = find_runtime(runtime)
    _common.check_target(path, overwrite)
    with _io.staging_folder(path) as staging:  # killed exports' folders are removed by later ones
        folder = os.path.join(staging, os.path.basename(path))
        os.mkdir(folder)
        result = export_onnx(model, os.path.join(folder, MODEL_NAME), "onnx", quantize, verify=verify,
                        input_size=input_size, class_names=class_names, palette=palette,
                        opset=DEFAULT_OPSET if opset is None else opset, **onnx_options)
        report_file = os.path.join(folder, MODEL_NAME + REPORT_SUFFIX)
        if result.report is not None:  # the report names the final file, not the staging one
            result.report.path = os.path.join(path, MODEL_NAME)
            with open(report_file, "w") as f:
                f.write(_common.to_json(result.report.to_dict()))
        web = settings(max_side, result.metadata)
        with open(os.path.join(folder, SETTINGS_NAME), "w") as f:
            f.write(_common.to_json(web))
        for name in ASSETS:
            shutil.copyfile(os.path.join(_ASSET_DIR, name), os.path.join(folder, name))
        os.mkdir(os.path.join(folder, RUNTIME_DIR))
        for name in sorted({f for files in ORT_FILES.values() for f in files}):
            shutil.copyfile(os.path.join(dist, name), os.path.join(folder, RUNTIME_DIR, name))
        _io.move_into_place(folder, path, overwrite)
    files = sorted(os.path.join(root, f) for root, _, fs in os.walk(path) for f in fs)
    result.path, result.files, result.format = path, files, "web"
    result.metadata = {**result.metadata, "web": web}
    return result


def folder_sizes(path):
    """Bytes of a web folder by part: {"model": model.onnx (+ .data), "wasm": the WASM runtime
    files, "webgpu": the WebGPU ones, "page": index.html + fcn.js + the JSON files}."""
    def size(*names):
        return sum(os.path.getsize(os.path.join(path, n)) for n in names if os.path.exists(os.path.join(path, n)))

    return {
        "model": size(MODEL_NAME, MODEL_NAME + ".data"),
        **{b: size(*(f"{RUNTIME_DIR}/{f}" for f in files)) for b, files in ORT_FILES.items()},
        "page": size(*ASSETS, SETTINGS_NAME, MODEL_NAME + SIDECAR_SUFFIX, MODEL_NAME + REPORT_SUFFIX),
    }
