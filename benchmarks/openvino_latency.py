"""CPU latency of the same FCN in OpenVINO, onnxruntime and TensorFlow (SavedModel), interleaved.

    python benchmarks/openvino_latency.py                       # FCN-8s VGG16 width 0.5, 500x375
    python benchmarks/openvino_latency.py --width 1.0 --rounds 5

The model (random weights seeded as in benchmarks/export_benchmark.py, 21 classes) is exported
with `fcn_keras.export.export` to each format (verification off: the tests verify every route),
each runs through `fcn_keras.export.runner` with the same thread count, one uint8 image at a
time; rounds are interleaved (A B C A B C ...) and the minimum per runtime is printed, with the
labels' agreement against TensorFlow's.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMATS = {"openvino": "fcn_ov", "onnx": "fcn.onnx", "saved_model": "fcn_sm"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--size", type=int, nargs=2, default=(375, 500), metavar=("H", "W"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    import fcn_keras
    from fcn_keras.export import export, runner

    spec = importlib.util.spec_from_file_location("export_helpers", os.path.join(ROOT, "tests", "export",
                                                                                 "export_helpers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    model = helpers.randomize(fcn_keras.build("vgg16", "8s", num_classes=21, width=args.width), seed=0)
    image = np.random.default_rng(0).integers(0, 256, (1, *args.size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for fmt, name in FORMATS.items():
            export(model, os.path.join(folder, name), fmt, verify=False)
            runs[fmt] = runner(os.path.join(folder, name), num_threads=args.threads)
        labels = {fmt: run(image)[0] for fmt, run in runs.items()}  # also the warm-up
        times = {fmt: [] for fmt in runs}
        for _ in range(args.rounds):
            for fmt, run in runs.items():
                t = time.perf_counter()
                run(image)
                times[fmt].append(time.perf_counter() - t)
    import openvino
    import onnxruntime
    import tensorflow as tf

    result = {
        "model": f"FCN-8s VGG16 width {args.width}, 21 classes", "image": f"{args.size[1]}x{args.size[0]}",
        "threads": args.threads, "rounds": args.rounds,
        "versions": {"openvino": openvino.__version__.split("-")[0], "onnxruntime": onnxruntime.__version__,
                     "tensorflow": tf.__version__},
        "min_ms": {fmt: round(min(t) * 1e3, 1) for fmt, t in times.items()},
        "labels_equal_tensorflow": {fmt: float(np.mean(labels[fmt] == labels["saved_model"])) for fmt in runs},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
