"""Which artefact serves fastest on this CPU: the Keras model in float32 or bfloat16, or the int8
TFLite and ONNX exports?

    python benchmarks/cpu_serving.py                       # full-width FCN-8s VGG16, 500x500, 5 rounds
    python benchmarks/cpu_serving.py --rounds 9 --keep /tmp/serving

The model is the full-width FCN-8s VGG16 (21 classes) with seeded random weights (He-normal
kernels, small random biases: `random_weights.random_fcn`; the score layers of a fresh FCN
are zero). Its int8 TFLite and int8 ONNX exports (`fcn_keras.export.export(...,
quantize="int8")`, calibrated on 16 images of the bundled synthetic set, no verification) are
written first, each in a process of its own. Then one process times `fcn_keras.predict.Predictor`
(what `fcn-keras predict` runs: labels of one 500x500 photo, after two warm-up calls) on

* the Keras model, float32 (the default compiled call),
* the Keras model's bfloat16 copy (`precision="bfloat16"`, `--precision auto` on a CPU with
  AVX-512 BF16 or AMX),
* the int8 TFLite file (LiteRT, all CPU threads) and the int8 ONNX file (onnxruntime),

interleaved round by round, and reports medians, each one's time over float32's per round, and
the share of its labels equal to float32's on the timed photo (a random net: its top two logits
are often close, so this is a lower bound of what a trained net gives). The CPU's flags
(avx512_bf16, amx, avx512_vnni) and the load average are recorded with the figures
(benchmarks/results/cpu_serving_<cpu>.json).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZE = 500
ARTEFACTS = {"tflite_int8": ("tflite", ".tflite"), "onnx_int8": ("onnx", ".onnx")}

_EXPORT = """
import sys
sys.path.insert(0, sys.argv[4])
from random_weights import random_fcn
from fcn_keras.export import export, sample_images
fmt, path, weights = sys.argv[1:4]
model = random_fcn("vgg16", "8s")
if not __import__("os").path.exists(weights):
    model.save_weights(weights)
export(model, path, fmt, "int8", verify=False, representative_data=sample_images("shapes", "train", 16))
"""


def export_all(work):
    """Writes the weights and the int8 artefacts under `work`; returns {name: path}."""
    weights = os.path.join(work, "model.weights.h5")
    paths = {}
    for name, (fmt, suffix) in ARTEFACTS.items():
        path = os.path.join(work, name + suffix)
        t = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", _EXPORT, fmt, path, weights,
                              HERE],
                             env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
                             capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(f"exporting {name} failed:\n{run.stderr[-3000:]}")
        print(f"exported {name} in {time.perf_counter() - t:.0f} s", flush=True)
        paths[name] = path
    return weights, paths


def predictors(weights, paths):
    """{name: Predictor} at full resolution."""
    import fcn_keras
    from fcn_keras.predict import Predictor

    model = fcn_keras.build("vgg16", "8s", num_classes=21)
    model.load_weights(weights)
    out = {"keras_float32": Predictor(model, max_size=0),
           "keras_bfloat16": Predictor(model, max_size=0, precision="bfloat16")}
    for name, path in paths.items():
        out[name] = Predictor(path, max_size=0)
    return out


def photo():
    """A 500x500 uint8 photo with structure (a synthetic validation image, resized)."""
    import numpy as np
    from PIL import Image

    from fcn_keras import data

    image, _ = next(iter(data.shapes("val", num_examples=1, image_size=128)))
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((SIZE, SIZE), Image.BILINEAR))


def cpu_facts():
    from fcn_keras.models.cpu_flags import native_bfloat16

    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "cpu_count": os.cpu_count(), "native_bfloat16": native_bfloat16(),
            "avx512_vnni": "avx512_vnni" in flags, "amx_int8": "amx_int8" in flags}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--keep", help="write the artefacts here (and reuse them if present) instead of a temporary folder")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/cpu_serving_<cpu>.json)")
    args = p.parse_args()
    import numpy as np

    facts = cpu_facts()
    with tempfile.TemporaryDirectory(prefix="fcn_keras-serving-") as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        weights = os.path.join(work, "model.weights.h5")
        paths = {n: os.path.join(work, n + s) for n, (_, s) in ARTEFACTS.items()}
        if not (os.path.exists(weights) and all(map(os.path.exists, paths.values()))):
            weights, paths = export_all(work)
        runs = predictors(weights, paths)
        image = photo()
        labels = {}
        for name, pr in runs.items():  # two untimed warm-up calls each (compilation, allocation)
            for _ in range(2):
                labels[name], _ = pr.predict(image, return_scores=False)
        times = {name: [] for name in runs}
        for r in range(args.rounds):
            for name, pr in runs.items():
                t = time.perf_counter()
                pr.predict(image, return_scores=False)
                times[name].append(time.perf_counter() - t)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {ts[-1]:.2f} s" for n, ts in times.items()),
                  flush=True)
    base = times["keras_float32"]
    rows = {}
    for name, ts in times.items():
        ratios = [a / b for a, b in zip(ts, base)]
        rows[name] = {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts),
                      "over_float32": statistics.median(ratios), "per_round": ratios,
                      "labels_equal_float32": float(np.mean(labels[name] == labels["keras_float32"]))}
    result = {**facts, "size": SIZE, "rounds": args.rounds, "load_average": os.getloadavg(), "rows": rows}
    print(f"\n{facts['cpu']}, {facts['cpu_count']} threads; native bfloat16: {facts['native_bfloat16']}; "
          f"VNNI: {facts['avx512_vnni']}; load {os.getloadavg()[0]:.1f}")
    print("| FCN-8s VGG16, 500x500 | median s (min..max) | / float32 (median of rounds) | labels = float32 |")
    print("|---|---|---|---|")
    for name, r in sorted(rows.items(), key=lambda kv: kv[1]["median_s"]):
        print(f"| {name} | {r['median_s']:.2f} ({r['min_s']:.2f}..{r['max_s']:.2f}) | {r['over_float32']:.2f} | "
              f"{100 * r['labels_equal_float32']:.2f}% |")
    slug = "".join(c if c.isalnum() else "-" for c in facts["cpu"].lower()).strip("-")[:24] or "cpu"
    out = args.out or os.path.join(HERE, "results", f"cpu_serving_{slug}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
