"""ONNX Runtime Web, the web export's browser runtime: its pinned version, and where its files come from.

The version is pinned in the checkout's `web/package.json` and `web/package-lock.json`; `PINNED`
is a copy of the lock's entry (a test checks that they agree), so that an installed fcn_keras,
a wheel without the checkout, knows it too. `find_runtime` takes the files from the first of:

    1. the `runtime` argument, an `onnxruntime-web` package folder or its `dist/`
    2. $FCN_KERAS_ORT_WEB, the same
    3. the checkout's `web/node_modules/onnxruntime-web` (`npm ci --prefix web`)
    4. the npm registry: the pinned package's tarball, downloaded once into the Keras cache
       (`$KERAS_HOME/models/onnxruntime-web-<version>.tgz`, as weights are), checked against
       the lock's sha512 integrity, and the files the page loads unpacked beside it
       (`$KERAS_HOME/models/onnxruntime-web-<version>/package/`)

$FCN_KERAS_NPM_REGISTRY names another registry (a mirror; default https://registry.npmjs.org).
Offline, the error names the tarball's URL and the path to put it at.
"""

import base64
import json
import os
import shutil
import tarfile
import uuid

from ._common import ExportError

PINNED = {  # web/package-lock.json's "node_modules/onnxruntime-web" entry
    "name": "onnxruntime-web",
    "version": "1.30.0",
    "integrity": "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
}
ORT_WEB_VERSION = PINNED["version"]
ORT_ENV = "FCN_KERAS_ORT_WEB"
REGISTRY_ENV = "FCN_KERAS_NPM_REGISTRY"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
NPM_COMMAND = "npm ci --prefix web"
# The files the page loads: the WASM backend (ES module + its threaded SIMD WebAssembly) and
# the WebGPU bundle (which brings its own asyncify WebAssembly, WASM kernels included).
# A browser downloads only the set of the backend it uses.
ORT_FILES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs",
               "ort-wasm-simd-threaded.asyncify.wasm"),
}
_CHECKOUT_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "web", "node_modules", "onnxruntime-web")


def find_runtime(runtime=None, backends=("wasm", "webgpu"), progress=None):
    """The `dist/` folder of the pinned onnxruntime-web package, holding every file the page needs.

    Args:
        runtime: None, or an `onnxruntime-web` package folder or its `dist/`.
        backends: the ORT_FILES sets that must be there.
        progress: the download's progress bar (None: when stderr is a terminal).

    Returns:
        The path of the `dist/` folder (see the module docstring for where it is looked for).

    Raises:
        ExportError: a folder named by `runtime` or $FCN_KERAS_ORT_WEB (or the checkout's) lacks
            the files or holds another version; the registry's tarball cannot be downloaded
            (the message names its URL and where to put it) or is not the pinned one.
    """
    where = "the `runtime` argument" if runtime is not None else None
    if runtime is None and os.environ.get(ORT_ENV):
        runtime, where = os.environ[ORT_ENV], f"${ORT_ENV}"
    if runtime is None and os.path.isdir(_CHECKOUT_PACKAGE):
        runtime, where = _CHECKOUT_PACKAGE, "this checkout's web/ (npm ci --prefix web)"
    if runtime is None:
        return fetch_runtime(backends, progress)
    runtime = os.fspath(runtime)
    dist = os.path.join(runtime, "dist") if os.path.isdir(os.path.join(runtime, "dist")) else runtime
    problem = _check(dist, backends)
    if problem:
        raise ExportError(f"{problem} (from {where}). Fetch them once with `{NPM_COMMAND}` in the fcn_keras "
                          f"checkout (web/package.json pins onnxruntime-web {ORT_WEB_VERSION}), point "
                          f"${ORT_ENV} at an onnxruntime-web {ORT_WEB_VERSION} package folder, or unset "
                          f"${ORT_ENV} to download it from the npm registry.")
    return dist


def _check(dist, backends):
    """None when `dist` holds the `backends`' files of the pinned version, else what is wrong."""
    missing = [f for b in backends for f in ORT_FILES[b] if not os.path.isfile(os.path.join(dist, f))]
    if missing:
        return f"The web export needs the ONNX Runtime Web files {missing} and found none in {dist!r}"
    package = os.path.join(os.path.dirname(dist), "package.json")
    try:
        with open(package) as f:
            version = json.load(f).get("version")
    except (OSError, ValueError, AttributeError):
        version = None
    if version != ORT_WEB_VERSION:
        return f"The web export needs onnxruntime-web {ORT_WEB_VERSION}; {package!r} says version {version!r}"
    return None


def tarball_url():
    """The pinned package's tarball in the npm registry ($FCN_KERAS_NPM_REGISTRY or npmjs.org)."""
    registry = (os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY).rstrip("/")
    name, version = PINNED["name"], PINNED["version"]
    return f"{registry}/{name}/-/{name}-{version}.tgz"


def integrity_hash(integrity):
    """npm's Subresource Integrity string ("sha512-<base64>") as fcn_keras' "sha512:<hex>"."""
    algorithm, _, digest = integrity.partition("-")
    return f"{algorithm}:{base64.b64decode(digest).hex()}"


def fetch_runtime(backends=("wasm", "webgpu"), progress=None):
    """The `dist/` folder of the pinned package unpacked in the Keras cache, downloaded when missing.

    The tarball is downloaded once (`fcn_keras.weights.download.download`: streamed, its sha512
    checked against PINNED's integrity, never half-written) and the page's files with its
    package.json unpacked into a temporary folder that is then renamed into place.

    Returns:
        `$KERAS_HOME/models/onnxruntime-web-<version>/package/dist`.

    Raises:
        ExportError: the download failed (offline: the URL and where to put the file), the
            tarball is not the pinned one, or it lacks a file the page loads.
    """
    from fcn_keras._io import DownloadError
    from fcn_keras.weights.download import models_dir

    name = f"{PINNED['name']}-{PINNED['version']}"
    folder = os.path.join(models_dir(), name)
    dist = os.path.join(folder, "package", "dist")
    if _check(dist, backends) is None:
        return dist
    url = tarball_url()
    try:
        tarball = _download(url, name + ".tgz", progress)
    except DownloadError as e:
        first = str(e).splitlines()[0]
        raise ExportError(
            f"The web export needs ONNX Runtime Web {ORT_WEB_VERSION} and could not download it: {first}\n"
            f"Without network access, download {url} elsewhere and put it at "
            f"{os.path.join(models_dir(), name + '.tgz')} (npm's integrity of it: {PINNED['integrity']}); "
            f"or run `{NPM_COMMAND}` in the fcn_keras checkout; or point "
            f"${ORT_ENV} at an onnxruntime-web {ORT_WEB_VERSION} package folder.") from None
    _unpack(tarball, folder, backends)
    return dist


def _download(url, fname, progress):
    """The cached, sha512-checked tarball (`fcn_keras.weights.download.download`)."""
    from fcn_keras.weights.download import download

    return download(url, fname, integrity_hash(PINNED["integrity"]), progress=progress)


def _unpack(tarball, folder, backends):
    """Unpacks the page's files and package.json of `tarball` (read, never executed) into `folder`."""
    from fcn_keras._io import move_into_place

    wanted = {"package/package.json"} | {f"package/dist/{f}" for b in backends for f in ORT_FILES[b]}
    tmp = os.path.join(os.path.dirname(folder), f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{os.path.basename(folder)}")
    try:
        found = set()
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():  # names chosen here: no path from the archive
                    out = os.path.join(tmp, *member.name.split("/"))
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    with tar.extractfile(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    found.add(member.name)
        if found != wanted:
            raise ExportError(f"{tarball!r} is not an onnxruntime-web {ORT_WEB_VERSION} package: it lacks "
                              f"{sorted(wanted - found)}")
        if _check(os.path.join(folder, "package", "dist"), backends) is not None:  # else another process's
            move_into_place(tmp, folder, overwrite=True)  # replaces an incomplete one whole
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ExportError(f"Could not unpack the ONNX Runtime Web files of {tarball!r} into {folder!r}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
