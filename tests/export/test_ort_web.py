"""ONNX Runtime Web for the web export without a checkout: the pinned tarball from an npm
registry (a real HTTP server on 127.0.0.1 serving a tarball made here), checked against the
lock's integrity, cached in KERAS_HOME; offline, an error that names what to fetch and where."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from fcn_keras.export import ExportError, export
from fcn_keras.export import ort_web
from tests.conftest import wait_for
from tests.weights.conftest import LocalServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKOUT_PACKAGE = os.path.join(ROOT, "web", "node_modules", "onnxruntime-web")
NAME = f"onnxruntime-web-{ort_web.ORT_WEB_VERSION}"
PAGE_FILES = sorted({f for files in ort_web.ORT_FILES.values() for f in files})


def make_tarball(path, leave_out=()):
    """An npm-style tarball ("package/...") of the checkout's onnxruntime-web: package.json,
    the page's files, a file the page does not load, and a member named outside the folder."""
    if not os.path.isdir(CHECKOUT_PACKAGE):
        pytest.fail("these tests build their tarball from `npm ci --prefix web`'s copy; run it first")
    with tarfile.open(path, "w:gz") as tar:
        for name in ["package.json", *(f"dist/{f}" for f in PAGE_FILES), "dist/ort.min.js"]:
            if name.split("/")[-1] not in leave_out:
                tar.add(os.path.join(CHECKOUT_PACKAGE, name), f"package/{name}")
        evil = tarfile.TarInfo("package/../../escaped.txt")
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    return "sha512-" + base64.b64encode(hashlib.sha512(open(path, "rb").read()).digest()).decode()


@pytest.fixture
def registry(tmp_path, monkeypatch, keras_home):
    """A registry on 127.0.0.1 (no checkout copy, no $FCN_KERAS_ORT_WEB): serve(tarball_path)."""
    root = tmp_path / "registry"
    (root / "onnxruntime-web" / "-").mkdir(parents=True)
    server = LocalServer(root)
    monkeypatch.setenv(ort_web.REGISTRY_ENV, f"http://127.0.0.1:{server.port}/")
    monkeypatch.delenv(ort_web.ORT_ENV, raising=False)
    monkeypatch.setattr(ort_web, "_CHECKOUT_PACKAGE", str(tmp_path / "no-checkout"))

    def serve(tarball=None):
        if tarball is not None:
            shutil.copyfile(tarball, root / "onnxruntime-web" / "-" / f"{NAME}.tgz")
        return server

    yield serve
    server.stop()


def test_pinned_copy_matches_the_lock():
    lock = json.load(open(os.path.join(ROOT, "web", "package-lock.json")))
    package = json.load(open(os.path.join(ROOT, "web", "package.json")))
    entry = lock["packages"]["node_modules/onnxruntime-web"]
    assert (entry["version"], entry["integrity"]) == (ort_web.PINNED["version"], ort_web.PINNED["integrity"])
    assert package["dependencies"]["onnxruntime-web"] == ort_web.PINNED["version"]


def test_runtime_downloaded_checked_cached_then_exported(registry, keras_home, tmp_path, monkeypatch, vgg8s):
    integrity = make_tarball(tmp_path / "made.tgz")
    monkeypatch.setitem(ort_web.PINNED, "integrity", integrity)  # the pin of the tarball made here
    server = registry(tmp_path / "made.tgz")
    dist = ort_web.find_runtime(progress=False)
    assert dist == os.path.join(keras_home, "models", NAME, "package", "dist")
    assert sorted(os.listdir(dist)) == PAGE_FILES  # only the page's files
    for f in PAGE_FILES:
        assert open(os.path.join(dist, f), "rb").read() == open(os.path.join(CHECKOUT_PACKAGE, "dist", f), "rb").read()
    assert os.path.isfile(os.path.join(keras_home, "models", NAME + ".tgz"))
    assert not os.path.exists(tmp_path / "escaped.txt") and not os.path.exists(keras_home / "escaped.txt")
    server.stop()  # from now on offline: the cache serves
    shutil.rmtree(os.path.join(keras_home, "models", NAME))  # unpacked again from the cached tarball
    result = export(vgg8s, str(tmp_path / "site"), "web", verify=False)
    for f in PAGE_FILES:
        assert open(tmp_path / "site" / "ort" / f, "rb").read() == open(os.path.join(dist, f), "rb").read()
    assert result.metadata["web"]["onnxruntime_web"] == ort_web.ORT_WEB_VERSION


def test_tarball_other_than_the_pinned_one_is_refused(registry, keras_home, tmp_path, vgg8s):
    make_tarball(tmp_path / "made.tgz")  # PINNED keeps the real integrity: this is not that package
    registry(tmp_path / "made.tgz")
    with pytest.raises(ExportError, match="Checksum mismatch"):
        export(vgg8s, str(tmp_path / "site"), "web")
    assert not os.path.exists(tmp_path / "site")
    assert os.listdir(keras_home / "models") == []


def test_tarball_without_a_page_file_is_refused(registry, keras_home, tmp_path, monkeypatch):
    integrity = make_tarball(tmp_path / "made.tgz", leave_out=("ort-wasm-simd-threaded.wasm",))
    monkeypatch.setitem(ort_web.PINNED, "integrity", integrity)
    registry(tmp_path / "made.tgz")
    with pytest.raises(ExportError, match=r"lacks \['package/dist/ort-wasm-simd-threaded.wasm'\]"):
        ort_web.find_runtime(progress=False)
    assert sorted(os.listdir(keras_home / "models")) == [NAME + ".tgz"]  # nothing unpacked


def test_offline_error_names_the_url_and_where_to_put_it(registry, keras_home, tmp_path, vgg8s):
    server = registry()  # no tarball: HTTP 404
    with pytest.raises(ExportError) as e:
        ort_web.find_runtime(progress=False)
    assert "HTTP 404" in str(e.value)
    server.stop()
    with pytest.raises(ExportError) as e:
        export(vgg8s, str(tmp_path / "site"), "web")
    text = str(e.value)
    url = f"http://127.0.0.1:{server.port}/onnxruntime-web/-/{NAME}.tgz"
    for needed in (url, os.path.join(keras_home, "models", NAME + ".tgz"), "npm ci --prefix web", ort_web.ORT_ENV):
        assert needed in text, text
    assert not os.path.exists(tmp_path / "site")


def test_the_real_pinned_tarball_passes(registry, keras_home, tmp_path):
    """npm's own copy of the pinned tarball (`npm pack --offline`: from npm's cache, which
    `npm ci --prefix web` filled) passes the integrity check with the pin as committed."""
    run = subprocess.run(["npm", "pack", "--offline", f"onnxruntime-web@{ort_web.ORT_WEB_VERSION}",
                          "--pack-destination", str(tmp_path)], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"npm's cache has no onnxruntime-web {ort_web.ORT_WEB_VERSION}: {run.stderr[-300:]}")
    registry(tmp_path / f"{NAME}.tgz")
    dist = ort_web.find_runtime(progress=False)
    for f in PAGE_FILES:
        assert open(os.path.join(dist, f), "rb").read() == open(os.path.join(CHECKOUT_PACKAGE, "dist", f), "rb").read()


def test_named_folders_still_win(tmp_path, monkeypatch, keras_home):
    monkeypatch.setenv(ort_web.REGISTRY_ENV, "http://127.0.0.1:9")
    monkeypatch.setenv(ort_web.ORT_ENV, CHECKOUT_PACKAGE)
    assert ort_web.find_runtime() == os.path.join(CHECKOUT_PACKAGE, "dist")
    monkeypatch.setenv(ort_web.ORT_ENV, str(tmp_path))  # named but empty: an error, not a download
    with pytest.raises(ExportError, match=ort_web.ORT_ENV):
        ort_web.find_runtime()
    monkeypatch.delenv(ort_web.ORT_ENV)
    assert ort_web.find_runtime() == os.path.join(CHECKOUT_PACKAGE, "dist")  # npm ci --prefix web


@pytest.mark.slow  # builds a wheel, installs it, exports and opens the page in the browser
def test_an_installed_wheel_writes_a_working_page(tmp_path, keras_home, vgg8s_keras_file):
    """A wheel of fcn_keras installed where no checkout is (so no web/node_modules): `fcn-keras
    export --format web` downloads the pinned runtime (npm's own tarball, served on 127.0.0.1)
    and the page it writes loads its model in Chromium and segments an image."""
    import sys
    import threading
    import zipfile

    from fcn_keras.export.serve import make_server

    pack = subprocess.run(["npm", "pack", "--offline", f"onnxruntime-web@{ort_web.ORT_WEB_VERSION}",
                           "--pack-destination", str(tmp_path)], capture_output=True, text=True)
    if pack.returncode != 0:
        pytest.skip(f"npm's cache has no onnxruntime-web {ort_web.ORT_WEB_VERSION}: {pack.stderr[-300:]}")
    registry_root = tmp_path / "registry" / "onnxruntime-web" / "-"
    registry_root.mkdir(parents=True)
    shutil.move(tmp_path / f"{NAME}.tgz", registry_root / f"{NAME}.tgz")
    server = LocalServer(tmp_path / "registry")
    source = tmp_path / "source"  # the package's files only, so the build writes nothing in the checkout
    shutil.copytree(os.path.join(ROOT, "fcn_keras"), source / "fcn_keras",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("setup.py", "README.md"):
        shutil.copyfile(os.path.join(ROOT, f), source / f)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = os.listdir(tmp_path / "wheel")
    with zipfile.ZipFile(tmp_path / "wheel" / wheel) as z:  # a pure-Python wheel installs by unzipping
        z.extractall(tmp_path / "site-packages")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site-packages"), KERAS_HOME=str(keras_home))
    env[ort_web.REGISTRY_ENV] = f"http://127.0.0.1:{server.port}"
    env.pop(ort_web.ORT_ENV, None)
    where = subprocess.run([sys.executable, "-c", "import fcn_keras; print(fcn_keras.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(tmp_path / "site-packages")), where  # the wheel's copy, not the checkout
    try:
        run = subprocess.run([sys.executable, "-m", "fcn_keras.cli", "export", vgg8s_keras_file, "--format", "web",
                              "--no-verify", "-o", str(tmp_path / "site")], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=600)
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert os.path.isfile(keras_home / "models" / f"{NAME}.tgz")
    site = make_server(str(tmp_path / "site"), port=0, quiet=True)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(site.url)
            wait_for(page, "document.body.dataset.ready")
            assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#error")
            out = page.evaluate("""async () => {
                const { load } = await import("./fcn.js");
                const s = await load(undefined, { backend: "wasm" });
                const r = await s.segment(new ImageData(new Uint8ClampedArray(40 * 30 * 4).fill(200), 40, 30));
                return [r.width, r.height, r.labels.length]; }""")
            assert out == [40, 30, 1200]
            browser.close()
    finally:
        site.shutdown()
        site.server_close()
