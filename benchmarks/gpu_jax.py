"""FCN-8s VGG16 on a GPU with the JAX backend, side by side with the PyTorch port: images/s.

For a machine with JAX, Keras and PyTorch but no TensorFlow (this script never imports it):

    KERAS_BACKEND=jax python benchmarks/gpu_jax.py                      # 500x500, batch 8
    KERAS_BACKEND=jax python benchmarks/gpu_jax.py --size 64 --width 0.0625 --steps 2   # smoke test

For each precision (float32, mixed_bfloat16, mixed_float16: a Keras dtype policy; PyTorch:
float32 and torch.autocast to bfloat16 / float16 with a GradScaler for float16) it measures
training images/s (Keras `fit` with the paper's recipe and the paper's four metrics, XLA
compiled, as JAX always is; PyTorch: cross-entropy ignoring 255, SGD momentum 0.99 +
weight decay) and inference images/s (Keras `predict`; PyTorch `inference_mode`), the
frameworks interleaved round by round in this one process. Every timed section runs `--steps`
batches after a warm-up (compilation) and ends by fetching the results to the host.

The data are synthetic batches made here with numpy (random pixels 0..255 and masks of
random rectangles with a 255 border), not `fcn_keras.data.shapes`: the project's data
module is built on tf.data and needs TensorFlow.
Writes benchmarks/results/gpu_jax_<device>.json and prints a table.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
    sys.exit(f"gpu_jax.py needs KERAS_BACKEND=jax. Received: KERAS_BACKEND={os.environ['KERAS_BACKEND']}")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to PyTorch too

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
NUM_CLASSES = 21


def synthetic_batch(n, size, seed):
    """(images float32 (n, size, size, 3) 0..255, masks int32 (n, size, size), 255 = ignore)."""
    import numpy as np

    from fcn_keras.conventions import IGNORE_LABEL

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    y = np.zeros((n, size, size), "int32")
    for i in range(n):
        for _ in range(3):
            h, w = rng.integers(size // 8, size // 2, 2)
            top, left = rng.integers(0, size - h), rng.integers(0, size - w)
            y[i, top:top + h, left:left + w] = IGNORE_LABEL
            y[i, top + 1:top + h - 1, left + 1:left + w - 1] = rng.integers(1, NUM_CLASSES)
    return x, y


def keras_runners(policy, args, x, y):
    import keras

    import fcn_keras

    keras.config.set_dtype_policy(policy)
    try:
        model = fcn_keras.build("vgg16", "8s", num_classes=NUM_CLASSES, width=args.width)
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile()  # the paper's recipe and metrics; float16 gets a LossScaleOptimizer
    n = args.batch * args.steps

    def train():
        hist = model.fit(x[:n], y[:n], batch_size=args.batch, epochs=1, verbose=0, shuffle=False)
        return hist.history

    def infer():
        return model.predict(x[:n], batch_size=args.batch, verbose=0)

    return model, train, infer


def torch_runners(policy, args, x, y, device):
    import torch

    from fcn_keras.conventions import IGNORE_LABEL
    from torch_fcn import TorchFCN

    net = TorchFCN("8s", NUM_CLASSES, width=args.width).to(device)
    dtype = {"float32": None, "mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}[policy]
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD([{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
                           {"params": [p for p in params if p.ndim == 1], "weight_decay": 0.0}],
                          lr=1e-10, momentum=0.99)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    xs = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device) - 120.0
    ys = torch.from_numpy(y.astype("int64")).to(device)
    b, steps = args.batch, args.steps

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train():
        net.train()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast():
                out = net(xs[i * b:(i + 1) * b])
            loss = torch.nn.functional.cross_entropy(out.float(), ys[i * b:(i + 1) * b], ignore_index=IGNORE_LABEL)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        sync()
        return loss.item()

    def infer():
        net.eval()
        with torch.inference_mode(), autocast():
            outs = [net(xs[i * b:(i + 1) * b]).float().cpu() for i in range(steps)]
        sync()
        return outs

    return net, train, infer


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="batches per timed section")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", help="JSON path (default benchmarks/results/gpu_jax_<device>.json)")
    args = p.parse_args(argv)

    import jax
    import keras

    from fcn_keras._io import atomic_write

    device = jax.devices()[0]
    x, y = synthetic_batch(args.batch * args.steps, args.size, 0)
    runners = {}
    for policy in args.policies:
        _, train, infer = keras_runners(policy, args, x, y)
        runners[f"keras_jax/{policy}"] = (train, infer)
    tdev = None
    if not args.no_torch:
        import torch

        tdev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        for policy in args.policies:
            _, train, infer = torch_runners(policy, args, x, y, tdev)
            runners[f"torch/{policy}"] = (train, infer)
    times = {name: {"train": [], "infer": []} for name in runners}
    checks = {}
    for name, (train, infer) in runners.items():  # warm-up: compilation, cudnn autotuning
        logs = train()
        checks[name] = logs if isinstance(logs, float) else {k: v[-1] for k, v in logs.items()}
        infer()
    for _ in range(args.rounds):
        for name, (train, infer) in runners.items():
            for mode, fn in (("train", train), ("infer", infer)):
                times[name][mode].append(timed(fn)[0])
    n = args.batch * args.steps
    results = {}
    for name, t in times.items():
        results[name] = {mode: {"images_per_s": n / statistics.median(ts),
                                "images_per_s_min_max": [n / max(ts), n / min(ts)],
                                "seconds": ts} for mode, ts in t.items()}
        results[name]["warmup_logs"] = checks[name]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "jax_device": str(device), "jax_platform": device.platform,
              "torch_device": str(tdev) if tdev is not None else None,
              "versions": {"jax": jax.__version__, "keras": keras.__version__,
                           **({"torch": __import__("torch").__version__} if tdev is not None else {})},
              "size": args.size, "batch": args.batch, "steps": args.steps, "width": args.width,
              "results": results}
    slug = re.sub(r"[^a-z0-9]+", "-", str(getattr(device, "device_kind", device.platform)).lower()).strip("-")
    out = args.out or os.path.join(HERE, "results", f"gpu_jax_{slug}.json")

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)

    atomic_write(out, write)
    print(f"{'framework/precision':<26} {'train img/s':>12} {'infer img/s':>12}")
    for name, r in results.items():
        print(f"{name:<26} {r['train']['images_per_s']:>12.2f} {r['infer']['images_per_s']:>12.2f}")
    base = results.get("keras_jax/float32")
    for name in results:
        if base and name != "keras_jax/float32":
            print(f"{name} / keras_jax/float32: train "
                  f"{results[name]['train']['images_per_s'] / base['train']['images_per_s']:.2f}x, "
                  f"infer {results[name]['infer']['images_per_s'] / base['infer']['images_per_s']:.2f}x")
    print(f"written {out}")
    return report


if __name__ == "__main__":
    main()
