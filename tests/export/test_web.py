"""The web export in a real browser: Debian's Chromium, driven by Playwright, through fcn.js.

Real photos (scikit-image's bundled samples), the model trained once per session on the
synthetic shapes (tests/conftest.py's `shapes_alexnet`), a real server on 127.0.0.1. No
browser is downloaded: Playwright launches /usr/bin/chromium (.ci/run installs it with apt-get);
without it these tests fail, they are not skipped.
"""

import base64
import io
import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras.data import SHAPES_CLASSES
from fcn_keras.export import ExportError, export
from fcn_keras.export import web as web_export
from fcn_keras.export.serve import make_server
from fcn_keras.predict import Predictor
from tests.conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = os.environ.get("FCN_KERAS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")  # 512x512, 300x451, 400x600
MAX_SIDE = 256  # below the photos' sizes, so the resize path of fcn.js is what is compared


def photo_path(name):
    import skimage.data

    return os.path.join(os.path.dirname(skimage.data.__file__), name)


def read_photo(name):
    return np.asarray(Image.open(photo_path(name)).convert("RGB"), np.uint8)


def agreement(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.mean(a == b))


@pytest.fixture(scope="module")
def browser():
    if not os.path.isfile(CHROMIUM):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM} (apt-get install -y chromium; "
                    ".ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Served:
    """A web export folder served on 127.0.0.1 in a background thread."""

    def __init__(self, folder):
        self.folder = folder
        self.server = make_server(folder, port=0, quiet=True)
        self.url = self.server.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exports(shapes_alexnet, tmp_path_factory):
    """{"fp32", "fp16", "int8", "other"}: web exports of the trained model (verified) and of an
    untrained one (a model whose labels differ), each served."""
    import keras

    root = tmp_path_factory.mktemp("web")
    model = shapes_alexnet.model
    names = list(SHAPES_CLASSES)
    fp32 = export(model, str(root / "fp32"), "web", class_names=names)
    int8 = export(model, str(root / "int8"), "web", "int8", representative_data="shapes", class_names=names)
    fp16 = export(model, str(root / "fp16"), "web", "float16", class_names=names)
    keras.utils.set_random_seed(1)
    other = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    export(other, str(root / "other"), "web", class_names=names, verify=False)
    shutil.copy(photo_path("coffee.png"), root / "fp32" / "test-photo.png")  # for <img src>
    served = {k: Served(str(root / k)) for k in ("fp32", "fp16", "int8", "other")}
    served["results"] = {"float32": fp32, "float16": fp16, "int8": int8}
    yield served
    for k in ("fp32", "fp16", "int8", "other"):
        served[k].close()


def browser_labels(page, rgb, max_side, threads=1):
    """fcn.js's labels for uint8 (H, W, 3) `rgb`, given to segment() as an ImageData."""
    h, w = rgb.shape[:2]
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=-1)
    out = page.evaluate(
        """async ([b64, w, h, maxSide, threads]) => {
             const { load } = await import("./fcn.js");
             const s = await load(undefined, { maxSide, threads, backend: "wasm" });
             const bytes = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
             const r = await s.segment(new ImageData(bytes, w, h));
             let text = ""; for (const v of r.labels) text += String.fromCharCode(v);
             return { labels: btoa(text), width: r.width, height: r.height, classNames: r.classNames,
                      backend: r.backend, ms: r.ms };
           }""", [base64.b64encode(rgba.tobytes()).decode(), w, h, max_side, threads])
    assert (out["width"], out["height"]) == (w, h)
    labels = np.frombuffer(base64.b64decode(out["labels"]), np.uint8).reshape(h, w)
    return labels, out


def open_page(browser, served):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(served.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]  # the page runs under it
    wait_for(page, "document.body.dataset.ready")
    assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#error")
    assert page.evaluate("crossOriginIsolated") is True  # the server's COOP / COEP headers
    return page, errors


@pytest.mark.slow  # the browser
@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
def test_fcn_js_labels_equal_keras_on_photos(browser, exports, shapes_alexnet, kind):
    served = exports[{"float32": "fp32", "float16": "fp16", "int8": "int8"}[kind]]
    keras_predict = Predictor(shapes_alexnet.model, max_size=MAX_SIDE)
    onnx_predict = Predictor(os.path.join(served.folder, "model.onnx"), max_size=MAX_SIDE)
    page, errors = open_page(browser, served)
    for i, name in enumerate(PHOTOS):
        rgb = read_photo(name)
        labels, out = browser_labels(page, rgb, MAX_SIDE, threads=1 + i % 2)
        assert out["classNames"] == list(SHAPES_CLASSES)
        assert out["backend"] == f"wasm ({1 + i % 2} thread{'s' if i % 2 else ''})"
        ref = keras_predict.predict(rgb, return_scores=False)[0]
        assert len(np.unique(ref)) > 1, f"{name}: the model labels the whole photo as one class"
        # float32 and float16 (the issue's target for the half-size page): 99.9%; int8: the int8 artefacts' 97%
        assert agreement(labels, ref) >= (0.97 if kind == "int8" else 0.999), name
        # the same ONNX model in Python onnxruntime, resized by predict: the browser's runtime
        # and fcn.js's resize against Python's
        assert agreement(labels, onnx_predict.predict(rgb, return_scores=False)[0]) >= 0.999, name
    full = read_photo(PHOTOS[1])  # no resize: the network at the photo's own size
    labels, _ = browser_labels(page, full, 0)
    assert agreement(labels, Predictor(shapes_alexnet.model, max_size=0).predict(full, return_scores=False)[0]) \
        >= (0.97 if kind == "int8" else 0.999)
    assert not errors
    page.close()


@pytest.mark.slow  # the browser
def test_fcn_js_takes_canvas_img_and_bitmap_like_image_data(browser, exports):
    page, errors = open_page(browser, exports["fp32"])
    same = page.evaluate("""async (url) => {
        const { load } = await import("./fcn.js");
        const s = await load(undefined, { maxSide: 128 });
        const img = new Image();
        img.src = url;
        await img.decode();
        const canvas = Object.assign(document.createElement("canvas"), { width: img.naturalWidth,
                                                                         height: img.naturalHeight });
        const ctx = canvas.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const ref = (await s.segment(data)).labels;
        const out = [];
        for (const source of [img, canvas, await createImageBitmap(canvas)]) {
          const r = await s.segment(source);
          out.push(r.width === canvas.width && r.height === canvas.height &&
                   r.labels.every((v, i) => v === ref[i]));
        }
        return out;
    }""", "./test-photo.png")
    assert same == [True, True, True]
    assert not errors
    page.close()


@pytest.mark.slow  # the browser
def test_fcn_js_fails_on_a_model_whose_labels_differ(browser, exports, shapes_alexnet):
    page, _ = open_page(browser, exports["other"])
    rgb = read_photo(PHOTOS[0])
    labels, _ = browser_labels(page, rgb, MAX_SIDE)
    ref = Predictor(shapes_alexnet.model, max_size=MAX_SIDE).predict(rgb, return_scores=False)[0]
    assert agreement(labels, ref) < 0.99  # the comparison above would catch this model
    page.close()


@pytest.mark.slow  # the browser
def test_page_with_a_photo_shows_overlay_and_legend(browser, exports, shapes_alexnet, tmp_path):
    served = exports["fp32"]
    page, errors = open_page(browser, served)
    page.set_viewport_size({"width": 900, "height": 1000})
    page.set_input_files("#file", photo_path("chelsea.png"))
    wait_for(page, "document.body.dataset.done")
    assert page.evaluate("document.body.dataset.done") == "1", page.inner_text("#error")
    legend = page.eval_on_selector_all(
        "#legend tr", "rows => rows.map((r) => [r.cells[1].textContent, r.cells[2].textContent])")
    names = [name for name, _ in legend]
    assert set(names) <= set(SHAPES_CLASSES) and len(names) >= 2, legend
    shares = [float(share.rstrip("%")) for _, share in legend]
    assert abs(sum(shares) - 100) < 0.5, legend
    assert "ms" in page.inner_text("#timing") and "wasm" in page.inner_text("#timing")
    # the overlay's colours are the labels: decoded by the browser, they equal predict's
    overlay = page.evaluate("""() => { const c = document.getElementById("overlay");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let s = ""; for (const v of d) s += String.fromCharCode(v); return [btoa(s), c.width, c.height]; }""")
    rgba = np.frombuffer(base64.b64decode(overlay[0]), np.uint8).reshape(overlay[2], overlay[1], 4)
    palette = np.asarray(json.load(open(os.path.join(served.folder, "model.onnx.json")))["palette"], np.uint8)
    matches = (rgba[:, :, None, :3] == palette[None, None]).all(-1)
    clear = rgba[..., 3] == 0  # the background class is left untinted, as predict's overlay
    assert (matches[..., 1:].any(-1) | clear).all(), "overlay pixels that are no class colour"
    page_labels = np.where(clear, 0, matches[..., 1:].argmax(-1) + 1)
    assert (rgba[~clear, 3] == 255).all() and 0.05 < clear.mean() < 1
    ref = Predictor(shapes_alexnet.model).predict(read_photo("chelsea.png"), return_scores=False)[0]
    assert agreement(page_labels, ref) >= 0.999
    with page.expect_download() as download:  # "Save label PNG": a palette PNG of the class ids
        page.click("#save")
    assert download.value.suggested_filename == "chelsea_labels.png"
    saved = Image.open(download.value.path())
    assert saved.mode == "P" and np.array_equal(np.asarray(saved), page_labels)
    assert np.array_equal(np.asarray(saved.convert("RGB"))[~clear], rgba[~clear][:, :3])
    # the screenshot: the overlay shows (changes the picture) and the slider fades it out
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    stage = page.locator("#stage")
    with_overlay = np.asarray(Image.open(io.BytesIO(stage.screenshot())).convert("RGB"), float)
    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    without = np.asarray(Image.open(io.BytesIO(stage.screenshot())).convert("RGB"), float)
    assert np.abs(with_overlay - without).mean() > 5, "the overlay changes nothing on screen"
    photo = Image.open(photo_path("chelsea.png")).convert("RGB")  # shown scaled to the page's width
    photo = np.asarray(photo.resize(without.shape[1::-1], Image.BILINEAR), float)
    assert np.abs(without - photo).mean() < 8  # opacity 0: the photo itself
    if os.environ.get("FCN_KERAS_KEEP_SCREENSHOTS"):
        shutil.copy(shot, os.environ["FCN_KERAS_KEEP_SCREENSHOTS"])
    assert not errors
    page.close()


@pytest.mark.slow  # the browser
def test_page_with_a_broken_image_shows_its_error(browser, exports, tmp_path):
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG at all" * 10)
    page, _ = open_page(browser, exports["fp32"])
    page.set_input_files("#file", str(broken))
    wait_for(page, "document.body.dataset.done")
    assert page.evaluate("document.body.dataset.done") == "error"
    assert page.is_visible("#error")
    assert "holiday.jpg" in page.inner_text("#error") and "not an image" in page.inner_text("#error")
    assert not page.is_visible("#result")
    page.close()


@pytest.mark.slow  # the browser
def test_page_with_a_model_that_fails_to_load_shows_its_error(browser, exports, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(exports["fp32"].folder, folder)
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    served = Served(str(folder))
    try:
        page = browser.new_page()
        page.goto(served.url)
        wait_for(page, "document.body.dataset.ready")
        assert page.evaluate("document.body.dataset.ready") == "error"
        assert "model failed to load" in page.inner_text("#error")
        page.close()
    finally:
        served.close()


@pytest.mark.slow  # four web exports (int8 calibrated) of a trained net
def test_folder_and_server(exports):
    served = exports["fp32"]
    result = exports["results"]["float32"]
    assert result.format == "web" and result.report.passed
    assert result.report.to_dict()["overall"]["label_agreement"] >= 0.999
    on_disk = json.load(open(os.path.join(served.folder, "model.onnx.verify.json")))
    assert on_disk["path"] == os.path.join(served.folder, "model.onnx") and on_disk["passed"]
    assert exports["results"]["int8"].quantize == "int8" and exports["results"]["int8"].report.passed
    half = exports["results"]["float16"]
    assert half.quantize == "float16" and half.report.passed
    sizes = [os.path.getsize(os.path.join(exports[k].folder, "model.onnx")) for k in ("fp32", "fp16")]
    assert 0.45 < sizes[1] / sizes[0] < 0.55  # float16 weights: half the download
    listing = sorted(os.path.relpath(f, served.folder) for f in result.files)  # as exported
    assert listing == sorted(["index.html", "fcn.js", "model.onnx", "model.onnx.json", "model.onnx.verify.json",
                              "web.json", *(f"ort/{f}" for fs in web_export.ORT_FILES.values() for f in fs)])
    settings = json.load(open(os.path.join(served.folder, "web.json")))
    from fcn_keras.predict import DEFAULT_MAX_SIZE

    assert settings["max_side"] == DEFAULT_MAX_SIZE and settings["class_names"] == list(SHAPES_CLASSES)
    for name, mime in [("index.html", "text/html"), ("fcn.js", "text/javascript"),
                       ("ort/ort.wasm.min.mjs", "text/javascript"),
                       ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                       ("model.onnx", "application/octet-stream"), ("web.json", "application/json")]:
        with urllib.request.urlopen(served.url + name) as r:
            assert r.headers["Content-Type"].startswith(mime), (name, r.headers["Content-Type"])
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(served.url + "missing.js")
    assert served.url.startswith("http://127.0.0.1:")


def test_runtime_pin_and_missing_runtime(tmp_path, monkeypatch, vgg8s):
    package = json.load(open(os.path.join(ROOT, "web", "package.json")))
    lock = json.load(open(os.path.join(ROOT, "web", "package-lock.json")))
    assert package["dependencies"]["onnxruntime-web"] == web_export.ORT_WEB_VERSION
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == web_export.ORT_WEB_VERSION
    monkeypatch.setenv(web_export.ORT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ExportError, match="npm ci --prefix web"):
        export(vgg8s, str(tmp_path / "site"), "web")
    assert not os.path.exists(tmp_path / "site")
    with pytest.raises(ExportError, match="folder"):
        export(vgg8s, str(tmp_path / "site.onnx"), "web")


def test_serve_refuses_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        make_server(tmp_path / "missing")
    with pytest.raises(ValueError, match="index.html"):
        make_server(tmp_path)
    (tmp_path / "index.html").write_text("<p>hi</p>")
    with pytest.raises(ValueError, match="port"):
        make_server(tmp_path, port=70000)
    taken = make_server(tmp_path, port=0, quiet=True)
    try:
        with pytest.raises(OSError, match="choose another `port`") as info:
            make_server(tmp_path, port=taken.server_address[1])
        from fcn_keras.cli import in_flags

        assert "choose another --port (0: any free one)" in in_flags(info.value)  # the command line's words
    finally:
        taken.server_close()


@pytest.mark.slow  # a demo run, then the browser
def test_demo_then_serve_then_a_photo_in_the_browser(demo_run, browser):
    """As a new user: `fcn-keras demo` (tests/conftest.py's `demo_run`), then `fcn-keras serve
    demo_output/web` (the line the demo printed), the printed URL in Chromium, a photo dropped:
    the overlay and a legend with the shapes' class names appear."""
    import subprocess
    import sys

    from tests.conftest import PROGRAM

    folder, _, run = demo_run
    assert run.returncode == 0, run.stderr[-3000:]
    line = run.stdout.strip().splitlines()[-1]
    command = line.split("or:")[1].split("(")[0].split()
    assert command[:2] == ["fcn-keras", "serve"], line
    argv = [PROGRAM] if os.path.exists(PROGRAM) else [sys.executable, "-m", "fcn_keras.cli"]
    server = subprocess.Popen([*argv, *command[1:], "--port", "0"], cwd=folder, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        printed = server.stdout.readline()
        assert "http://127.0.0.1:" in printed, printed + server.stderr.read()
        url = "http://" + printed.split("http://")[1].split()[0]
        page = browser.new_page()
        page.goto(url)
        wait_for(page, "document.body.dataset.ready")
        assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#error")
        with open(photo_path("coffee.png"), "rb") as f:  # dropped on the page, as a user drops a file
            photo = base64.b64encode(f.read()).decode()
        page.evaluate("""(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "coffee.png", { type: "image/png" }));
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
        }""", photo)
        wait_for(page, "document.body.dataset.done")
        assert page.evaluate("document.body.dataset.done") == "1", page.inner_text("#error")
        legend = page.eval_on_selector_all(
            "#legend tr", "rows => rows.map((r) => [r.cells[1].textContent, r.cells[2].textContent])")
        names = [name for name, _ in legend]
        assert names and set(names) <= set(SHAPES_CLASSES), names
        tinted = sum(float(share.rstrip("%")) for name, share in legend if name != "background")
        alpha = page.evaluate("""() => { const c = document.getElementById("overlay");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (d.length / 4); }""")
        # the shapes coloured by their class, the background left untinted (the photo itself)
        assert abs(100 * alpha - tinted) < 0.2, (alpha, legend)
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_export_web_options_are_checked(vgg8s_keras_file, tmp_path, capsys):
    from fcn_keras.cli import main

    assert main(["export", vgg8s_keras_file, "--format", "tflite", "--max-side", "256",
                 "-o", str(tmp_path / "m.tflite")]) == 2
    assert "--max-side applies to --format web only" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "nothing-here")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow  # the browser
def test_page_runs_wasm_unless_webgpu_is_asked_for(browser, exports):
    """With a WebGPU adapter offered (SwiftShader, --enable-unsafe-webgpu), the page still runs
    WASM (fcn.js's default: WebGPU there labels differently, see the xfail below); ?backend=webgpu
    in its address asks for WebGPU."""
    served = exports["fp32"]
    gpu_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--enable-unsafe-webgpu"])
    try:
        for query, backend in (("", "wasm"), ("?backend=webgpu", "webgpu")):
            page = gpu_browser.new_page()
            page.goto(served.url + query)
            assert page.evaluate("async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter())")
            wait_for(page, "document.body.dataset.ready", 120)
            assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#error")
            assert page.inner_text("#model").split(", ")[-1].split(" ")[0] == backend, page.inner_text("#model")
            page.close()
    finally:
        gpu_browser.close()


@pytest.mark.slow  # the browser
@pytest.mark.xfail(strict=True, raises=AssertionError, reason="ONNX Runtime Web 1.30's WebGPU EP on SwiftShader labels 68% of "
                   "astronaut.png's pixels as WASM does (2026-12-07): a known difference, not yet explained")
def test_webgpu_labels_equal_wasm_labels(browser, exports):
    """Headless Chromium offers a WebGPU adapter here only with --enable-unsafe-webgpu, and then it
    is SwiftShader's software Vulkan (no shader-f16): fcn.js on WebGPU should label the photos as
    on WASM. It does not (strict xfail: this test fails once they agree, to drop the mark)."""
    served = exports["fp32"]  # a second Chromium, from the same Playwright as `browser`
    gpu_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--enable-unsafe-webgpu"])
    try:
        page = gpu_browser.new_page()
        page.goto(served.url)
        adapter = page.evaluate("async () => { const a = navigator.gpu && await navigator.gpu.requestAdapter();"
                                " return a ? a.info.architecture : null; }")
        assert adapter == "swiftshader", adapter
        wait_for(page, "document.body.dataset.ready", 120)  # the page's own (WASM: the default) session
        assert page.evaluate("document.body.dataset.ready") == "1", page.inner_text("#error")
        backends = page.evaluate("""async (maxSide) => {
            const { load } = await import("./fcn.js");
            window.segmenters = [await load(undefined, { maxSide, backend: "webgpu" }),
                                 await load(undefined, { maxSide, backend: "wasm" })];
            return window.segmenters.map((s) => s.backend.split(" ")[0]); }""", MAX_SIDE)
        assert backends == ["webgpu", "wasm"]
        for name in PHOTOS:
            rgb = read_photo(name)
            h, w = rgb.shape[:2]
            rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=-1)
            out = page.evaluate("""async ([b64, w, h]) => {
                const bytes = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
                const labels = {};
                for (const s of window.segmenters) {
                  const r = await s.segment(new ImageData(bytes, w, h));
                  let text = ""; for (const v of r.labels) text += String.fromCharCode(v);
                  labels[r.backend.split(" ")[0]] = btoa(text);
                }
                return labels; }""", [base64.b64encode(rgba.tobytes()).decode(), w, h])
            gpu, cpu = (np.frombuffer(base64.b64decode(out[k]), np.uint8) for k in ("webgpu", "wasm"))
            assert len(np.unique(cpu)) > 1 and agreement(gpu, cpu) >= 0.999, name
    finally:
        gpu_browser.close()


@pytest.mark.slow  # the browser
def test_page_on_a_phone_viewport(browser, exports, tmp_path):
    """390x844, touch, a phone's user agent (as Playwright's "iPhone 13"): a photo from the camera
    input; the photo, its overlay and the legend fit the width (no sideways scrolling) and the
    legend's text is readable (>= 12 px). The screenshot is written for a person to look at."""
    ua = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                                  has_touch=True, user_agent=ua)
    try:
        page = context.new_page()
        page.goto(exports["fp32"].url)
        wait_for(page, "document.body.dataset.ready")
        assert page.evaluate("[innerWidth, navigator.maxTouchPoints > 0]") == [390, True]
        page.set_input_files("#camera", photo_path("chelsea.png"))
        wait_for(page, "document.body.dataset.done")
        assert page.evaluate("document.body.dataset.done") == "1", page.inner_text("#error")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for selector in ("#overlay", "#legend"):
            box = page.locator(selector).bounding_box()
            assert box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#legend td:last-child')).fontSize)")
        assert size >= 12, size
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        context.close()
    shutil.copy(tmp_path / "phone.png", os.environ.get("FCN_KERAS_SCREENSHOT", str(tmp_path / "phone-copy.png")))
