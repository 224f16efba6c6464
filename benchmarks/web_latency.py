"""Browser latency of the web export: ONNX Runtime Web (WASM, 1 and 2 threads) in Chromium
against onnxruntime in Python, on the same ONNX files and the same photo, float32, float16 and int8.

    python benchmarks/web_latency.py                              # demo model + FCN-8s VGG16
    python benchmarks/web_latency.py --models demo --rounds 3 --out /tmp/web.json

Models: "demo" is the `fcn-keras demo` architecture (FCN-8s AlexNet, width 0.125, 4 classes;
--demo-model PATH takes a trained demo's model.keras, else random weights), "vgg16" is the
full-width FCN-8s VGG16 (21 classes, 134 M parameters) with random weights: latency does
not depend on the weights' values. Each model is exported with `export(..., format="web")`
(float32, float16, and int8 calibrated on 8 shapes images; verify=False here: parity is what the
tests check), then every engine runs the photo (scikit-image's chelsea.png, 451 x 300, at its
own size, so no resize) once per round, interleaved (py-1t, py-2t, web-1t, web-2t for fp32,
fp16 then int8, each round), after one untimed warm-up call each. Browser time is
`segmenter.segment(ImageData)` in the page (session.run plus fcn.js's copies); Python time is
`session.run(["labels"])`. Figures: median and min over the rounds, in ms. The machine's
`uptime` load is recorded before and after: other work on the CPUs inflates every figure.

Needs Debian's chromium at /usr/bin/chromium and `npm ci --prefix web`.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def photo():
    import skimage.data
    from PIL import Image

    path = os.path.join(os.path.dirname(skimage.data.__file__), "chelsea.png")
    return np.asarray(Image.open(path).convert("RGB"), np.uint8)


def build(name, demo_model=None):
    import keras

    import fcn_keras
    from fcn_keras import FCN  # noqa: F401 - registers the classes keras.models.load_model needs

    keras.utils.set_random_seed(0)
    if name == "demo":
        if demo_model:
            return keras.models.load_model(demo_model, compile=False), "trained (" + demo_model + ")"
        return fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125), "random"
    if name == "vgg16":
        return fcn_keras.build("vgg16", "8s", num_classes=21), "random"
    raise SystemExit(f"--models: 'demo' or 'vgg16'. Received: {name!r}")


def python_session(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


PAGE_LOAD = """async ([threads]) => {
  const { load } = await import("./fcn.js");
  window.segmenters = {};
  for (const kind of ["float32", "float16", "int8"]) {
    window.segmenters[kind] = await load(`./${kind}/model.onnx`, { backend: "wasm", threads, maxSide: 0 });
  }
  return window.segmenters.float32.backend;
}"""
PAGE_RUN = """async ([kind, b64, w, h]) => {
  if (!window.image) {
    const bytes = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
    window.image = new ImageData(bytes, w, h);
  }
  const t0 = performance.now();
  const r = await window.segmenters[kind].segment(window.image);
  return performance.now() - t0;
}"""


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def measure(name, rounds, demo_model, workdir):
    import base64

    from playwright.sync_api import sync_playwright

    from fcn_keras.export import export
    from fcn_keras.export.serve import make_server

    model, weights = build(name, demo_model)
    site = os.path.join(workdir, name)
    os.makedirs(site)
    sizes = {}
    for kind, quantize in (("float32", None), ("float16", "float16"), ("int8", "int8")):
        t0 = time.time()
        kw = dict(representative_data="shapes" if quantize == "int8" else None)
        if quantize == "int8":
            from fcn_keras.export import sample_images

            kw["representative_data"] = [im for im, _ in sample_images("shapes", "train", 8)]
        export(model, os.path.join(site, kind), "web", quantize, verify=False, **kw)
        sizes[kind] = os.path.getsize(os.path.join(site, kind, "model.onnx"))
        print(f"{name}: exported {kind} ({sizes[kind] / 1e6:.1f} MB) in {time.time() - t0:.0f} s", flush=True)
    # one page root serving both exports; fcn.js and ort/ from the float32 folder
    for f in ("index.html", "fcn.js", "web.json"):
        shutil.copy(os.path.join(site, "float32", f), site)
    shutil.copytree(os.path.join(site, "float32", "ort"), os.path.join(site, "ort"))
    del model
    image = photo()
    h, w = image.shape[:2]
    rgba = np.concatenate([image, np.full((h, w, 1), 255, np.uint8)], -1)
    b64 = base64.b64encode(rgba.tobytes()).decode()
    x = image[None]
    server = make_server(site, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    engines = {}
    times = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {}
        for threads in (1, 2):
            page = browser.new_page()
            page.goto(server.url)
            backend = page.evaluate(PAGE_LOAD, [threads])
            pages[threads] = page
            print(f"{name}: page loaded, {backend}", flush=True)
        for kind in ("float32", "float16", "int8"):
            for threads in (1, 2):
                sess = python_session(os.path.join(site, kind, "model.onnx"), threads)
                engines[f"python onnxruntime, {threads} thread{'s' * (threads > 1)}", kind] = (
                    lambda s=sess: _timed(lambda: s.run(["labels"], {"image": x})))
            for threads in (1, 2):
                engines[f"Chromium WASM, {threads} thread{'s' * (threads > 1)}", kind] = (
                    lambda pg=pages[threads], k=kind: pg.evaluate(PAGE_RUN, [k, b64, w, h]) / 1000)
        for key, run in engines.items():  # warm-up
            run()
        for r in range(rounds):
            for key, run in engines.items():
                times.setdefault(key, []).append(run())
            print(f"{name}: round {r + 1}/{rounds} done", flush=True)
        browser.close()
    server.shutdown()
    server.server_close()
    rows = []
    for (engine, kind), ts in times.items():
        rows.append({"engine": engine, "precision": kind, "median_ms": 1000 * statistics.median(ts),
                     "min_ms": 1000 * min(ts), "rounds": len(ts)})
    for row in rows:
        py = next(r for r in rows if r["precision"] == row["precision"] and r["engine"].startswith("python")
                  and r["engine"].endswith(row["engine"].split(", ")[1]))
        row["vs_python_same_threads"] = row["median_ms"] / py["median_ms"]
    return {"model": name, "weights": weights, "image": f"chelsea.png {w}x{h}", "onnx_bytes": sizes, "rows": rows}


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def table(result):
    lines = [f"{result['model']} ({result['weights']} weights), {result['image']}; model.onnx "
             f"{result['onnx_bytes']['float32'] / 1e6:.1f} MB float32, {result['onnx_bytes']['float16'] / 1e6:.1f} MB "
             f"float16, {result['onnx_bytes']['int8'] / 1e6:.1f} MB int8",
             "", "| engine | precision | median ms | min ms | vs Python, same threads |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['engine']} | {r['precision']} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | "
                     f"{r['vs_python_same_threads']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="demo,vgg16", help="comma-separated: demo, vgg16 (default both)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--demo-model", help="a trained demo's model.keras (default: random weights)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                 "web_latency.json"))
    args = p.parse_args(argv)
    if not os.path.isfile(CHROMIUM):
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    import onnxruntime

    from fcn_keras.export.web import ORT_WEB_VERSION

    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(),
              "cpus": os.cpu_count(), "uptime_before": uptime(),
              "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip(),
              "onnxruntime_web": ORT_WEB_VERSION, "onnxruntime": onnxruntime.__version__, "results": []}
    with tempfile.TemporaryDirectory(prefix="web_latency_") as workdir:
        for name in args.models.split(","):
            report["results"].append(measure(name.strip(), args.rounds, args.demo_model, workdir))
            print(table(report["results"][-1]), flush=True)
    report["uptime_after"] = uptime()
    print(f"load: before {report['uptime_before']}\n      after  {report['uptime_after']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
