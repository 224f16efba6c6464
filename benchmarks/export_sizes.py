"""Measured file sizes of the full-width FCN-8s VGG16 (21 classes) exports: ONNX, TFLite and web,
each in float32, float16 and int8.

    python benchmarks/export_sizes.py                      # all nine, prints a Markdown table
    python benchmarks/export_sizes.py --formats tflite --quantize float16 --out /tmp/sizes.json

The model has random weights (seeded): a file's size depends on the number and type of the
weights, not on their values. Each export runs in a Python process of its own (one full-width
model in memory at a time), with `verify=False` (parity is what the tests check) and, for
int8, calibration on the synthetic shapes images (`representative_data="shapes"`). Sizes are
the bytes on disk: for ONNX the .onnx file (and .data if any), for TFLite the .tflite file,
for web the model.onnx inside the folder and the whole folder (page, web.json, the WASM and
WebGPU runtime files; a browser downloads the model, the page and one of the two runtimes).
Sidecar JSON files (a few KB) are not counted in the ONNX and TFLite columns.

Needs the ONNX Runtime Web files for the web exports (`npm ci --prefix web`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMATS = ("onnx", "tflite", "web")
QUANTIZE = ("float32", "float16", "int8")
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite", "web": ""}

_ONE = """
import json, sys
import keras
import fcn_keras
from fcn_keras.export import export

fmt, quantize, path = sys.argv[1:4]
keras.utils.set_random_seed(0)
model = fcn_keras.build("vgg16", "8s", num_classes=21)
data = "shapes" if quantize == "int8" else None
result = export(model, path, fmt, quantize, verify=False, representative_data=data)
print(json.dumps({"files": sorted(result.files), "params": int(model.count_params())}))
"""


def file_size(path):
    """Bytes of a file, or of every file under a folder."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def measure(fmt, quantize, work):
    """{"format", "quantize", "model_bytes", "total_bytes"} of one export written under `work`."""
    path = os.path.join(work, f"fcn8s_{quantize}{SUFFIX[fmt]}")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-c", _ONE, fmt, quantize, path], env=env, capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(f"{fmt} {quantize} failed:\n{run.stderr[-3000:]}")
    if fmt == "web":
        model = os.path.join(path, "model.onnx")
        model_bytes = file_size(model) + (file_size(model + ".data") if os.path.exists(model + ".data") else 0)
        total = file_size(path)
    else:
        extra = [path + s for s in (".data",) if os.path.exists(path + s)]
        model_bytes = total = file_size(path) + sum(file_size(p) for p in extra)
    return {"format": fmt, "quantize": quantize, "model_bytes": model_bytes, "total_bytes": total}


def table(rows):
    """A Markdown table: one row a format, one column a quantisation, sizes in MB (10^6 bytes)."""
    by = {(r["format"], r["quantize"]): r for r in rows}
    quantizations = [q for q in QUANTIZE if any(r["quantize"] == q for r in rows)]
    lines = ["| export | " + " | ".join(quantizations) + " |", "|---" * (len(quantizations) + 1) + "|"]
    for fmt in FORMATS:
        if not any(r["format"] == fmt for r in rows):
            continue
        cells = []
        for q in quantizations:
            r = by.get((fmt, q))
            if r is None:
                cells.append("")
            elif fmt == "web":
                cells.append(f"{r['total_bytes'] / 1e6:.1f} MB (model.onnx {r['model_bytes'] / 1e6:.1f} MB)")
            else:
                cells.append(f"{r['model_bytes'] / 1e6:.1f} MB")
        lines.append(f"| {fmt} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--quantize", nargs="+", choices=QUANTIZE, default=list(QUANTIZE))
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fcn_keras-sizes-") as work:
        for fmt in args.formats:
            for quantize in args.quantize:
                row = measure(fmt, quantize, work)
                for name in os.listdir(work):  # one export on disk at a time
                    p = os.path.join(work, name)
                    shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(table(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
