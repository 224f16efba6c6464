"""Export benchmark: every deployment target of fcn_keras.export on a full-width FCN.

    python benchmarks/export_benchmark.py --backbone vgg16 --head 8s --size 500
    python benchmarks/export_benchmark.py --backbone alexnet --head 32s --size 500

Each target (server SavedModel, TFLite float32 / float16 / full int8, ONNX) is exported in its
own child process (a fresh Python, `subprocess`), which builds the full-width model (21 classes,
random weights: He-normal convolutions and random score layers, seed 0, drawn by
`random_weights.random_fcn` - the zero-initialised score layers of a fresh FCN would output
all zeros), calls `fcn_keras.export.export(...)` with verification on, and reports its peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, which
covers the build, the conversion and the verification) and the model-build baseline.
Verification: `fcn_keras.data.shapes("val", image_size=SIZE)` images at SIZE x SIZE and their
83 x 117 centre crops (scored on labelled pixels); latency at SIZE x SIZE, one image, interleaved with the Keras model
called as `tf.function(lambda x: model(x, training=False))`, min over rounds.
Results: benchmarks/results/export_<backbone>_<head>_<size>.json and a markdown table on stdout.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CALIBRATION = 16
TARGETS = {
    "server": dict(format="saved_model", suffix=""),
    "mobile-fp32": dict(format="tflite", suffix=".tflite"),
    "mobile-fp16": dict(format="tflite", suffix=".tflite", quantize="float16"),
    "mobile-int8": dict(format="tflite", suffix=".tflite", quantize="int8", representative_data="shapes"),
    "onnx": dict(format="onnx", suffix=".onnx"),
}


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(backbone, head, seed=0):
    """The full-width FCN (21 classes) with seeded random weights (`random_weights.random_fcn`)."""
    from random_weights import random_fcn  # benchmarks/ is on the path

    return random_fcn(backbone, head, seed)


def child(args):
    t0 = time.time()
    import fcn_keras.data as fd
    from fcn_keras.export import ParityError, Verification, export, sample_images

    model = build(args.backbone, args.head)
    base = rss_mb()
    spec = dict(TARGETS[args.target])
    out = os.path.join(args.workdir, args.target + spec.pop("suffix"))
    if "representative_data" in spec:
        spec["representative_data"] = sample_images(spec["representative_data"], "train", args.calibration)
    verification = Verification(data=fd.shapes("val", num_examples=args.images, image_size=args.size),
                                sizes=(None, (83, 117)), num_images=args.images, latency_rounds=args.rounds)
    t = time.time()
    try:
        res = export(model, out, verify=verification, **spec)
        report, ok, err = res.report.to_dict(), True, None
    except ParityError as e:
        report, ok, err = e.report.to_dict(), False, str(e).splitlines()[0]
    secs = time.time() - t
    result = {"target": args.target, "export_with_verify_s": secs, "peak_rss_mb": rss_mb(),
              "model_rss_mb": base, "passed": ok, "error": err, "report": report,
              "child_total_s": time.time() - t0}
    with open(args.result, "w") as f:
        json.dump(result, f, indent=1, default=str)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="vgg16")
    ap.add_argument("--head", default="8s")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION)
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds (min is reported)")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--target")
    ap.add_argument("--workdir")
    ap.add_argument("--result")
    args = ap.parse_args()
    if args.child:
        return child(args)

    results = []
    name = f"export_{args.backbone}_{args.head}_{args.size}"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as work:
        for target in args.targets:
            res_path = os.path.join(work, target + ".result.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--target", target,
                   "--backbone", args.backbone, "--head", args.head, "--size", str(args.size),
                   "--images", str(args.images), "--calibration", str(args.calibration),
                   "--rounds", str(args.rounds),
                   "--workdir", work, "--result", res_path]
            t = time.time()
            proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not os.path.exists(res_path):
                r = {"target": target, "passed": False, "error": f"child rc={proc.returncode}: "
                     + proc.stderr[-2000:], "peak_rss_mb": None}
            else:
                with open(res_path) as f:
                    r = json.load(f)
            r["wall_s"] = time.time() - t
            results.append(r)
            print(summary_line(r), flush=True)
    out = {"backbone": args.backbone, "head": args.head, "size": args.size, "images": args.images,
           "calibration_images": args.calibration, "cpu_count": os.cpu_count(), "results": results}
    path = os.path.join(HERE, "results", name + ".json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(markdown(out))
    print(f"wrote {path}")


def summary_line(r):
    rep = r.get("report") or {}
    o = rep.get("overall") or {}
    return (f"{r['target']}: passed={r['passed']} peak_rss={r.get('peak_rss_mb')} MB "
            f"labels={o.get('label_agreement')} rel={o.get('rel')} err={r.get('error')}")


def markdown(out):
    lines = [f"FCN-{out['head']} {out['backbone']} (full width, 21 classes, random weights), "
             f"{out['size']}x{out['size']}, {out['cpu_count']} CPU threads",
             "",
             "| target | size MB (x Keras weights) | latency ms (x Keras tf.function) | labels | labels, wide margin "
             "| max rel score err | mIU diff (pts) | export peak RSS GB | export+verify s | passed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["results"]:
        rep = r.get("report") or {}
        o = rep.get("overall") or {}
        sz, lat, mi = rep.get("size") or {}, rep.get("latency") or {}, rep.get("mean_iou") or {}
        def f(v, fmt):
            return "-" if v is None else format(v, fmt)
        lines.append(
            f"| {r['target']} | {f(sz.get('bytes', 0) / 1e6 if sz else None, '.1f')} ({f(sz.get('ratio'), '.3f')}) "
            f"| {f(lat.get('export_s', 0) * 1e3 if lat else None, '.0f')} ({f(lat.get('ratio'), '.2f')}) "
            f"| {f(100 * o['label_agreement'] if o else None, '.3f')}% "
            f"| {f(100 * o['label_agreement_margin'] if o.get('label_agreement_margin') is not None else None, '.3f')}% "
            f"| {f(o.get('rel'), '.2e')} | {f(-mi['loss_points'] if mi else None, '+.2f')} "
            f"| {f(r['peak_rss_mb'] / 1024 if r.get('peak_rss_mb') else None, '.2f')} "
            f"| {f(r.get('export_with_verify_s'), '.0f')} | {r['passed']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
