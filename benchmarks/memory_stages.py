"""Where a TensorFlow process's memory goes when it predicts one 500x500 photo with full-width
FCN-8s VGG16 through the default `Predictor`, or takes training steps at 256x256 (and, for
scale, the PyTorch port's process doing the same).

    python benchmarks/memory_stages.py                  # inference, both, each in a fresh process
    python benchmarks/memory_stages.py --only keras
    python benchmarks/memory_stages.py --weights        # + the model built from a .weights.h5
    python benchmarks/memory_stages.py --train          # + a training step at 256x256, both

Each stage's peak is its own: the peak-RSS counter (VmHWM) is reset to the current RSS
(/proc/self/clear_refs) before the stage, and after it the RSS and that stage's peak are
printed. Keras stages: `import tensorflow`, `import keras, fcn_keras`, build the model
(`fcn_keras.build`, random weights; with --weights also a fresh process that builds it with
`weights=` a `.weights.h5` of the same net, as users load one), make the `Predictor`, the
first predict (a shape's first call: the graph is traced and run), the second (XLA compiles
the shape and runs), the third (XLA only). Training (--train): build, `compile` (the paper's
SGD, no metrics, graph), the first `train_on_batch` (trace + run), the second. Port stages:
`import torch`, build, the first and the second forward pass (`torch.inference_mode`) or
training step (SGD momentum 0.99). Threads: 2 per framework. The Keras processes never import
torch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from predict_memory import _status  # noqa: E402  (VmHWM / VmRSS of this process, in bytes)

SIZE = 500
TRAIN_SIZE = 256
THREADS = 2
NUM_CLASSES = 21


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


def _imports():
    def tensorflow():
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)

    return [("import tensorflow", tensorflow),
            ("import keras, fcn_keras", lambda: (__import__("keras"), __import__("fcn_keras")))]


def _build(state, weights=None):
    def build():
        import fcn_keras

        state["model"] = fcn_keras.build("vgg16", "8s", num_classes=NUM_CLASSES, weights=weights,
                                         include_preprocessing=False)

    return ("build FCN-8s VGG16" + (" + load .weights.h5" if weights else ""), build)


def keras_child(weights=None):
    state = {}

    def predictor():
        import numpy as np

        from fcn_keras.predict import Predictor

        state["p"] = Predictor(state["model"], max_size=0)
        state["image"] = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)

    call = lambda: state["p"].predict(state["image"], return_scores=False)  # noqa: E731
    return _stages(_imports() + [_build(state, weights), ("Predictor", predictor),
                                 ("predict 1 (graph: trace + run)", call),
                                 ("predict 2 (XLA: compile + run)", call), ("predict 3 (XLA)", call)])


def keras_train_child():
    state = {}

    def compile_():
        import numpy as np

        state["model"].compile(metrics=[], jit_compile=False)
        rng = np.random.default_rng(5)
        state["x"] = rng.normal(0, 50, (1, TRAIN_SIZE, TRAIN_SIZE, 3)).astype("float32")
        state["y"] = rng.integers(0, NUM_CLASSES, (1, TRAIN_SIZE, TRAIN_SIZE)).astype("int32")

    step = lambda: state["model"].train_on_batch(state["x"], state["y"])  # noqa: E731
    return _stages(_imports() + [_build(state), ("compile (SGD, graph)", compile_),
                                 ("train step 1 (trace + run)", step), ("train step 2", step),
                                 ("train step 3", step)])


def save_weights_child(path):
    """Writes a random full-width FCN-8s VGG16's `.weights.h5` to `path` (for --weights)."""
    import fcn_keras

    fcn_keras.build("vgg16", "8s", num_classes=NUM_CLASSES, include_preprocessing=False).save_weights(path)
    return []


def _port(state):
    def build():
        import torch

        from torch_fcn import TorchFCN

        torch.set_num_threads(THREADS)
        state["net"] = TorchFCN("8s", NUM_CLASSES)

    return [("import torch", lambda: __import__("torch")), ("build the port", build)]


def port_child():
    state = {}

    def call():
        import torch

        with torch.inference_mode():
            state["net"].eval()(state.setdefault("x", torch.zeros(1, 3, SIZE, SIZE)))

    return _stages(_port(state) + [("forward 1", call), ("forward 2", call)])


def port_train_child():
    state = {}

    def step():
        import torch

        if "opt" not in state:
            state["opt"] = torch.optim.SGD([p for p in state["net"].parameters() if p.requires_grad],
                                           lr=1e-10, momentum=0.99, weight_decay=5e-4)
            g = torch.Generator().manual_seed(5)
            state["x"] = torch.randn(1, 3, TRAIN_SIZE, TRAIN_SIZE, generator=g) * 50
            state["y"] = torch.randint(0, NUM_CLASSES, (1, TRAIN_SIZE, TRAIN_SIZE), generator=g)
        state["opt"].zero_grad()
        torch.nn.functional.cross_entropy(state["net"].train()(state["x"]), state["y"]).backward()
        state["opt"].step()

    return _stages(_port(state) + [("train step 1", step), ("train step 2", step), ("train step 3", step)])


CHILDREN = {"keras": keras_child, "port": port_child, "keras_train": keras_train_child,
            "port_train": port_train_child}


def _run(env, *args):
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("keras", "port"))
    p.add_argument("--weights", action="store_true", help="also build the Keras model from a .weights.h5")
    p.add_argument("--train", action="store_true", help="also a training step at 256x256")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(HERE, "results", "memory_stages.json"))
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = save_weights_child if kind == "save_weights" else CHILDREN[kind]
        print(json.dumps(fn(*rest)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    frameworks = [args.only] if args.only else ["keras", "port"]
    runs = [(k, (k,)) for k in frameworks]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.weights and "keras" in frameworks:
            path = os.path.join(tmp, "fcn8s_vgg16.weights.h5")
            _run(env, "save_weights", path)
            runs.insert(1, ("keras_weights", ("keras", path)))
        if args.train:
            runs += [(k + "_train", (k + "_train",)) for k in frameworks]
        for name, child_args in runs:
            results[name] = _run(env, *child_args)
            print(f"{name}: stage | RSS after | peak during (MB)")
            for stage, rss, peak in results[name]:
                print(f"  {stage} | {rss / 2**20:.0f} | {peak / 2**20:.0f}")
    for kind in ("keras", "keras_weights", "keras_train"):
        base = "port_train" if kind == "keras_train" else "port"
        if kind in results and base in results:
            mine, theirs = (max(r[2] for r in results[k]) for k in (kind, base))
            print(f"{kind} peak {mine / 2**20:.0f} MB / {base} {theirs / 2**20:.0f} MB = {mine / theirs:.2f}x")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"size": SIZE, "train_size": TRAIN_SIZE, "stages": results, "load_average": os.getloadavg()},
                  f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
