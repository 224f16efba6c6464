"""Where a TensorFlow process's memory goes when it predicts one 500x500 photo with full-width
FCN-8s VGG16 through the default `Predictor` (and, for scale, the PyTorch port's process).

    python benchmarks/memory_stages.py                  # both, each in a fresh process
    python benchmarks/memory_stages.py --only keras

Each stage's peak is its own: the peak-RSS counter (VmHWM) is reset to the current RSS
(/proc/self/clear_refs) before the stage, and after it the RSS and that stage's peak are
printed. Keras stages: `import tensorflow`, `import keras, fcn_keras`, build the model (random
weights), make the `Predictor`, the first predict (a shape's first call: the graph is traced
and run), the second (XLA compiles the shape and runs), the third (XLA only). Port stages:
`import torch`, build, the first and the second forward pass (`torch.inference_mode`).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from predict_memory import _status  # noqa: E402  (VmHWM / VmRSS of this process, in bytes)

SIZE = 500


def _reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _stages(steps):
    """[(stage, RSS after, peak during)] of running each (name, fn) after a peak reset."""
    rows = []
    for name, fn in steps:
        _reset()
        fn()
        rows.append((name, _status("VmRSS"), _status("VmHWM")))
    return rows


def keras_child():
    state = {}

    def build():
        import speed

        speed.setup_threads(2)
        state["model"] = speed.build_pair("vgg16", "8s", 1.0, with_torch=False)[0]

    def predictor():
        import numpy as np

        from fcn_keras.predict import Predictor

        state["p"] = Predictor(state["model"], max_size=0)
        state["image"] = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)

    call = lambda: state["p"].predict(state["image"], return_scores=False)  # noqa: E731
    return _stages([("import tensorflow", lambda: __import__("tensorflow")),
                    ("import keras, fcn_keras", lambda: (__import__("keras"), __import__("fcn_keras"))),
                    ("build FCN-8s VGG16", build), ("Predictor", predictor),
                    ("predict 1 (graph: trace + run)", call), ("predict 2 (XLA: compile + run)", call),
                    ("predict 3 (XLA)", call)])


def port_child():
    state = {}

    def build():
        import torch

        from torch_fcn import TorchFCN

        torch.set_num_threads(2)
        state["net"] = TorchFCN("8s", 21).eval()
        state["x"] = torch.zeros(1, 3, SIZE, SIZE)

    def call():
        import torch

        with torch.inference_mode():
            state["net"](state["x"])

    return _stages([("import torch", lambda: __import__("torch")), ("build the port", build),
                    ("forward 1", call), ("forward 2", call)])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("keras", "port"))
    p.add_argument("--child", choices=("keras", "port"), help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(HERE, "results", "memory_stages.json"))
    args = p.parse_args()
    if args.child:
        print(json.dumps((keras_child if args.child == "keras" else port_child)()))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    results = {}
    for kind in [args.only] if args.only else ["keras", "port"]:
        out = subprocess.run([sys.executable, __file__, "--child", kind], env=env, check=True,
                             capture_output=True, text=True).stdout
        results[kind] = json.loads(out.strip().splitlines()[-1])
        print(f"{kind}: stage | RSS after | peak during (MB)")
        for name, rss, peak in results[kind]:
            print(f"  {name} | {rss / 2**20:.0f} | {peak / 2**20:.0f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"size": SIZE, "stages": results, "load_average": os.getloadavg()}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
