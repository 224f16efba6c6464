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
`web/package.json` / `web/package-lock.json`, fetched once with `npm ci --prefix web`. The
export looks for them in, in order: the `runtime` argument, the FCN_KERAS_ORT_WEB environment
variable (either an `onnxruntime-web` package folder or its `dist/`), then the checkout's
`web/node_modules/onnxruntime-web`.
"""

import json
import os
import shutil

from fcn_keras import _io

from . import _common
from ._common import REPORT_SUFFIX, SIDECAR_SUFFIX, ExportError

ORT_WEB_VERSION = "1.30.0"  # the version web/package.json pins (a test checks they agree)
ORT_ENV = "FCN_KERAS_ORT_WEB"
NPM_COMMAND = "npm ci --prefix web"
MODEL_NAME = "model.onnx"
SETTINGS_NAME = "web.json"
RUNTIME_DIR = "ort"
# The files the page loads: the WASM backend (ES module + its threaded SIMD WebAssembly) and
# the WebGPU bundle (which brings its own asyncify WebAssembly, WASM kernels included).
# A browser downloads only the set of the backend it uses.
ORT_FILES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs",
               "ort-wasm-simd-threaded.asyncify.wasm"),
}
ASSETS = ("index.html", "fcn.js")
_ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web_assets")
_CHECKOUT_WEB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "web")


def find_runtime(runtime=None, backends=("wasm", "webgpu")):
    """The `dist/` folder of the pinned onnxruntime-web package, holding every file the page needs.

    Args:
        runtime: None, or an `onnxruntime-web` package folder or its `dist/`.
        backends: the ORT_FILES sets that must be there.

    Returns:
        The path of the `dist/` folder.

    Raises:
        ExportError: the files are missing or of another version; the message names the
            command that fetches them.
    """
    where = "the `runtime` argument" if runtime is not None else None
    if runtime is None and os.environ.get(ORT_ENV):
        runtime, where = os.environ[ORT_ENV], f"${ORT_ENV}"
    if runtime is None:
        runtime, where = os.path.join(_CHECKOUT_WEB, "node_modules", "onnxruntime-web"), "this checkout's web/"
    runtime = os.fspath(runtime)
    dist = os.path.join(runtime, "dist") if os.path.isdir(os.path.join(runtime, "dist")) else runtime
    fetch = (f"Fetch them once with `{NPM_COMMAND}` in the fcn_keras checkout (web/package.json pins "
             f"onnxruntime-web {ORT_WEB_VERSION}), or point ${ORT_ENV} at an onnxruntime-web "
             f"{ORT_WEB_VERSION} package folder")
    missing = [f for b in backends for f in ORT_FILES[b] if not os.path.isfile(os.path.join(dist, f))]
    if missing:
        raise ExportError(f"The web export needs the ONNX Runtime Web files {missing} and found none in "
                          f"{dist!r} (from {where}). {fetch}.")
    package = os.path.join(os.path.dirname(dist), "package.json")
    try:
        with open(package) as f:
            version = json.load(f).get("version")
    except (OSError, ValueError):
        version = None
    if version != ORT_WEB_VERSION:
        raise ExportError(f"The web export needs onnxruntime-web {ORT_WEB_VERSION}; {package!r} (from {where}) "
                          f"says version {version!r}. {fetch}.")
    return dist


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
        ExportError: a bad argument, an existing folder, or missing runtime files (naming
            `npm ci --prefix web`), before any conversion work.
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
