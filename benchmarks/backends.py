"""FCN-8s VGG16 on each Keras backend (TensorFlow, JAX, PyTorch) against the PyTorch port, on this CPU.

    python benchmarks/backends.py            # full width: inference 500x500 b1, training 256x256 b1
    python benchmarks/backends.py --train-batches 1 8    # + 8x 256x256 crops (about 20 min more)
    python benchmarks/backends.py --width 0.0625 --size 45 --train-size 32 --repeats 1   # smoke test

A Keras process has one backend, fixed at import, so each backend runs in its own worker
process (`KERAS_BACKEND=tensorflow`, `jax`, `torch`), next to a fourth worker with the
PyTorch port of pytorch-fcn (`torch_fcn.py`, no Keras). The workers stay up for the whole
run and are commanded one call at a time over pipes: per configuration, every worker builds
the net (the first one writes its weights to a file, the others load them: same weights
everywhere, score layers random non-zero), the outputs of every worker on one odd-sized
input are checked to agree with the port's (relative error <= 1e-4 of the largest logit),
then each variant runs `--warmup` untimed calls (compilation) and `--repeats` rounds, the
variants interleaved (A, B, C, D, A, B, C, D, ...) so that all of them share the same
minutes of a machine whose load moves. Each time is measured inside its worker around one
call (the pipe is not timed); the ratio to the port is the median of the per-round ratios.

Variants, all Keras calls with the paper's recipe (`compile(metrics=[])`: SGD momentum 0.99
and weight decay, cross-entropy ignoring 255): `predict_on_batch` and `train_on_batch`.

* tensorflow: the tf.function graph (Keras' default on a CPU) and XLA (`jit_compile=True`);
* jax: XLA (`jit_compile=True`, Keras' default on JAX; eager JAX is not a way to run it);
* torch: eager (Keras' default on PyTorch; `jit_compile=True` is torch.compile, not timed);
* port: `torch.inference_mode` / a training step with the same loss and SGD.

The same run measures the CPU's float32 peak (best of a 4096^2 matmul and a 3x3 256->256
convolution on 176x176, in TensorFlow, PyTorch and JAX) and reports GFLOP/s against it
(2 FLOP per MAC as computed; a training step as 3x the forward pass), each worker's peak
RSS (VmHWM, cumulative over the run), and the load average at the start and the end.
Writes benchmarks/results/backends_<cpu>_<threads>t.json and prints a table.
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
sys.path.insert(0, HERE)

NUM_CLASSES = 21
WORKERS = ("tensorflow", "jax", "torch", "port")
VARIANTS = {"inference": {"tensorflow": ("graph", "xla"), "jax": ("xla",), "torch": ("eager",),
                          "port": ("eager",)},
            "training": {"tensorflow": ("graph", "xla"), "jax": ("xla",), "torch": ("eager",),
                         "port": ("eager",)}}


# ---------------------------------------------------------------- worker side

class KerasRunner:
    """One Keras backend's FCN-8s VGG16 and its calls (this process's backend)."""

    def __init__(self, backend, threads):
        self.backend = backend
        if backend == "tensorflow":
            import speed

            speed.setup_threads(threads)
        elif backend == "torch":
            import torch

            torch.set_num_threads(threads)
            torch.set_num_interop_threads(threads)
        self.model = None

    def setup(self, cfg):
        import numpy as np

        import speed

        self.model, _ = speed.build_pair("vgg16", "8s", cfg["width"], with_torch=False)
        path = cfg["weights"]
        if os.path.exists(path):
            with np.load(path) as saved:
                for layer in self.model.layers:
                    if layer.weights:
                        layer.set_weights([saved[f"{layer.name}/{i}"] for i in range(len(layer.weights))])
            from fcn_keras.models.layers import refresh_upsampling

            refresh_upsampling(self.model)
        else:
            arrays = {f"{layer.name}/{i}": w for layer in self.model.layers
                      for i, w in enumerate(layer.get_weights())}
            np.savez(path + ".tmp.npz", **arrays)
            os.replace(path + ".tmp.npz", path)
        rng = np.random.default_rng(5)
        b, s = cfg["batch"], cfg["size"]
        self.x = rng.normal(0, 50, size=(b, s, s, 3)).astype("float32")
        self.y = rng.integers(0, NUM_CLASSES, size=(b, s, s)).astype("int32")
        self.y[:, :8] = cfg["ignore_label"]
        self.model.compile(metrics=[], jit_compile=False)
        self.fns = {}
        for variant in VARIANTS[cfg["mode"]][self.backend]:
            self.model.jit_compile = variant == "xla"
            if cfg["mode"] == "inference":
                self.model.make_predict_function(force=True)
                self.fns[variant] = self.model.predict_function
            else:
                self.model.make_train_function(force=True)
                self.fns[variant] = self.model.train_function
        self.mode = cfg["mode"]
        return list(self.fns)

    def output(self, x):
        import keras

        return keras.ops.convert_to_numpy(self.model(x, training=False))

    def call(self, variant):
        if self.mode == "inference":
            self.model.predict_function = self.fns[variant]
            return self.model.predict_on_batch(self.x)
        self.model.train_function = self.fns[variant]
        return self.model.train_on_batch(self.x, self.y)

    def peak(self, repeats):
        if self.backend == "tensorflow":
            import speed

            out = speed.measure_peak(repeats)  # TensorFlow and PyTorch
            out.pop("peak_gflops")
            return out
        if self.backend == "jax":
            return jax_peak(repeats)
        return {}

    def macs(self, size, width):
        import speed

        return speed.macs("vgg16", "8s", size, width)

    def free(self):
        import gc

        self.model = self.fns = None
        gc.collect()


def jax_peak(repeats):
    import jax
    import numpy as np

    import speed

    a = jax.device_put(np.random.default_rng(0).normal(size=(4096, 4096)).astype("float32"))
    x = jax.device_put(np.random.default_rng(1).normal(size=(1, 176, 176, 256)).astype("float32"))
    k = jax.device_put(np.random.default_rng(2).normal(size=(3, 3, 256, 256)).astype("float32"))
    # arguments, not closed-over constants (XLA would constant-fold them at compile time)
    mm = jax.jit(lambda u: u @ u)
    conv = jax.jit(lambda u, w: jax.lax.conv_general_dilated(u, w, (1, 1), "SAME",
                                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))
    fns = {"jax_matmul": lambda: mm(a).block_until_ready(), "jax_conv3x3": lambda: conv(x, k).block_until_ready()}
    flop = {"jax_matmul": 2 * 4096**3, "jax_conv3x3": 2 * 176 * 176 * 9 * 256 * 256}
    times = speed.interleave(fns, max(3, repeats), warmup=1)
    return {n: {**speed.summary(t), "gflops": flop[n] / statistics.median(t) / 1e9} for n, t in times.items()}


class PortRunner:
    """The PyTorch port (no Keras in this process)."""

    def __init__(self, threads):
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        self.net = None

    def setup(self, cfg):
        import numpy as np
        import torch

        from torch_fcn import TorchFCN

        class Saved:  # what TorchFCN.copy_from_keras reads: get_layer(name).get_weights()
            def __init__(self, arrays):
                self.arrays = arrays

            def get_layer(self, name):
                values = [self.arrays[f"{name}/{i}"] for i in range(2) if f"{name}/{i}" in self.arrays]
                return type("Layer", (), {"get_weights": lambda _: values})()

        net = TorchFCN("8s", NUM_CLASSES, width=cfg["width"])
        with np.load(cfg["weights"]) as saved:
            net.copy_from_keras(Saved(dict(saved)))
        self.net = net.eval()
        rng = np.random.default_rng(5)
        b, s = cfg["batch"], cfg["size"]
        x = rng.normal(0, 50, size=(b, s, s, 3)).astype("float32")
        y = rng.integers(0, NUM_CLASSES, size=(b, s, s)).astype("int64")
        y[:, :8] = self.ignore = cfg["ignore_label"]
        self.x, self.y = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)
        self.mode = cfg["mode"]
        if self.mode == "training":
            self.net.train()
            params = [p for p in net.parameters() if p.requires_grad]
            self.opt = torch.optim.SGD([{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
                                        {"params": [p for p in params if p.ndim == 1], "weight_decay": 0.0}],
                                       lr=1e-10, momentum=0.99)
        return ["eager"]

    def output(self, x):
        import torch

        self.net.eval()
        with torch.inference_mode():
            out = self.net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
        if self.mode == "training":
            self.net.train()
        return out

    def call(self, variant):
        import torch

        if self.mode == "inference":
            with torch.inference_mode():
                return self.net(self.x)
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.net(self.x), self.y, ignore_index=self.ignore)
        loss.backward()
        self.opt.step()
        return loss.item()

    def peak(self, repeats):
        return {}  # the TensorFlow worker times PyTorch's matmul and convolution

    def free(self):
        import gc

        self.net = self.opt = None
        gc.collect()


def worker(name, threads):
    """Serves JSON commands, one a line on stdin, one JSON answer a line on the original stdout
    (everything else printed, by Python or C code, goes to stderr)."""
    import numpy as np

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import speed

    runner = PortRunner(threads) if name == "port" else KerasRunner(name, threads)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "setup":
                t = time.perf_counter()
                reply = {"variants": runner.setup(cmd["cfg"]), "build_s": time.perf_counter() - t}
            elif op == "output":
                np.save(cmd["out"], runner.output(np.load(cmd["x"])))
                reply = {}
            elif op == "call":
                t = time.perf_counter()
                runner.call(cmd["variant"])
                reply = {"s": time.perf_counter() - t}
            elif op == "peak":
                reply = {"peak": runner.peak(cmd["repeats"])}
            elif op == "macs":
                reply = {"macs": runner.macs(cmd["size"], cmd["width"])}
            elif op == "free":
                runner.free()
                reply = {}
            elif op == "info":
                reply = {"hwm_mb": speed.hwm_mb(), "rss_mb": speed.rss_mb()}
                if name == "tensorflow":
                    reply["versions"] = speed.versions()
                elif name == "jax":
                    import jax

                    reply["versions"] = {"jax": jax.__version__}
            elif op == "quit":
                return
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as e:  # the orchestrator reports it, naming the worker
            import traceback

            traceback.print_exc()
            reply = {"error": f"{type(e).__name__}: {e}"}
        answers.write(json.dumps(reply) + "\n")
        answers.flush()


# ---------------------------------------------------------------- orchestrator side

class Worker:
    def __init__(self, name, threads, log):
        env = {**os.environ, "KERAS_BACKEND": "torch" if name == "port" else name,
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        if name == "jax":
            env.setdefault("JAX_PLATFORMS", "cpu")
        self.name = name
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", name,
                                      "--threads", str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, text=True, env=env)

    def ask(self, op, **kw):
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name!r} exited (code {self.proc.wait()}) during {op!r}; "
                               "its log is printed above / in the --log file")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"worker {self.name!r} failed on {op!r}: {reply['error']}")
        return reply

    def close(self):
        try:
            self.ask("quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=60)


def check_outputs(workers, tmp, width):
    """{worker: relative error of its output against the port's}, on one odd-sized input."""
    import numpy as np

    size = 37 if width < 1 else 123
    x = np.random.default_rng(3).normal(0, 50, size=(1, size + 1, size - 2, 3)).astype("float32")
    np.save(os.path.join(tmp, "check_x.npy"), x)
    outs = {}
    for w in workers:
        path = os.path.join(tmp, f"check_{w.name}.npy")
        w.ask("output", x=os.path.join(tmp, "check_x.npy"), out=path)
        outs[w.name] = np.load(path)
    ref = outs["port"]
    errs = {}
    for name, out in outs.items():
        if out.shape != ref.shape:
            raise AssertionError(f"output shapes differ: {name} {out.shape}, port {ref.shape}")
        errs[name] = float(np.abs(out - ref).max() / np.abs(ref).max())
        if not np.abs(ref).max() > 0 or errs[name] > 1e-4:
            raise AssertionError(f"{name} and the port disagree: relative error {errs[name]:.2e}")
    return errs


def run_config(workers, cfg, args, tmp, gmac):
    import speed
    from fcn_keras.conventions import IGNORE_LABEL

    cfg = dict(cfg, width=args.width, ignore_label=IGNORE_LABEL,
               weights=os.path.join(tmp, f"weights_{cfg['mode']}_{cfg['batch']}.npz"))
    fns, builds = {}, {}
    for w in workers:  # the first one (tensorflow) writes the weights, the others read them
        reply = w.ask("setup", cfg=cfg)
        builds[w.name] = reply["build_s"]
        for v in reply["variants"]:
            fns[f"{w.name}/{v}"] = (lambda w=w, v=v: w.ask("call", variant=v)["s"])
    result = {k: cfg[k] for k in ("mode", "size", "batch")}
    result["relative_error_vs_port"] = check_outputs(workers, tmp, args.width)
    result["build_s"] = builds
    t0 = time.perf_counter()
    for _ in range(args.warmup):  # compilation, first-call allocations
        for name, fn in fns.items():
            result.setdefault("warmup_s", {})[name] = fn()
    repeats = args.repeats if cfg["batch"] == 1 else args.repeats_batch
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(fn())
    result["timed_wall_s"] = time.perf_counter() - t0
    flop = 2 * gmac * 1e9 * cfg["batch"] * (1 if cfg["mode"] == "inference" else 3)
    result["variants"] = {}
    for name, ts in times.items():
        s = speed.summary(ts)
        per_round = [a / b for a, b in zip(ts, times["port/eager"])]
        s.update(images_per_s=cfg["batch"] / s["median_s"], gflops=flop / s["median_s"] / 1e9,
                 ratio_to_port=statistics.median(per_round), ratio_to_port_per_round=per_round)
        result["variants"][name] = s
    for w in workers:
        w.ask("free")
    return result


def table(report):
    peak = report["peak_gflops"]
    lines = [f"float32 peak measured in this run (best of matmul / 3x3 conv, TF, PyTorch, JAX): {peak:.1f} GFLOP/s",
             f"load average (1, 5, 15 min) at start {report['loadavg_start']}, at end {report['loadavg_end']}", "",
             f"{'FCN-8s VGG16':<26} {'backend/variant':<18} {'median s':>9} {'min..max s':>14} {'img/s':>7} "
             f"{'GFLOP/s':>8} {'%peak':>6} {'/ port':>7} {'per round':>18}"]
    for r in report["results"]:
        name = f"{r['mode']} {r['size']}x{r['size']} b{r['batch']}"
        for v, s in r["variants"].items():
            rounds = ",".join(f"{q:.2f}" for q in s["ratio_to_port_per_round"])
            lines.append(f"{name:<26} {v:<18} {s['median_s']:>9.3f} {s['min_s']:>6.2f}..{s['max_s']:<6.2f} "
                         f"{s['images_per_s']:>7.2f} {s['gflops']:>8.1f} {100 * s['gflops'] / peak:>5.0f}% "
                         f"{s['ratio_to_port']:>7.2f} {rounds:>18}")
            name = ""
        errs = ", ".join(f"{k} {v:.1e}" for k, v in r["relative_error_vs_port"].items() if k != "port")
        lines.append(f"{'':<26} outputs vs port before timing: {errs}")
    lines.append("")
    lines.append("fastest Keras backend / port (target <= 0.75):")
    for r in report["results"]:
        keras_only = {k: v for k, v in r["variants"].items() if not k.startswith("port")}
        best = min(keras_only, key=lambda k: keras_only[k]["ratio_to_port"])
        ratio = keras_only[best]["ratio_to_port"]
        lines.append(f"  {r['mode']} {r['size']}x{r['size']} b{r['batch']}: {best} {ratio:.2f} "
                     f"({'met' if ratio <= 0.75 else 'not met'})")
    mem = ", ".join(f"{k} {v['hwm_mb']:.0f} MB" for k, v in report["workers"].items())
    lines.append(f"peak RSS of each worker over the whole run (VmHWM): {mem}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=500, help="inference size (batch 1)")
    p.add_argument("--train-size", type=int, default=256, help="training crop size")
    p.add_argument("--train-batches", nargs="+", type=int, default=[1],
                   help="training batches (8: 8x crops; about 20 min more on 2 cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds at batch 1")
    p.add_argument("--repeats-batch", type=int, default=2, help="timed rounds at batch > 1")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per variant first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0, help="channel width (tests use a small one)")
    p.add_argument("--no-training", dest="training", action="store_false")
    p.add_argument("--no-inference", dest="inference", action="store_false")
    p.add_argument("--log", help="the workers' stderr goes here (default: this stderr)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/backends_<cpu>_<threads>t.json)")
    p.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.threads)

    import re

    import speed
    from fcn_keras._io import atomic_write

    model_name, flags = speed.cpu_name()
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    out = args.out or os.path.join(HERE, "results", f"backends_{slug}_{args.threads}t.json")
    log = open(args.log, "a") if args.log else None
    t_start = time.time()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": model_name,
              "cpu_flags": flags, "threads": args.threads, "width": args.width,
              "loadavg_start": [round(v, 2) for v in os.getloadavg()], "results": []}

    def save():
        report["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
        report["wall_s"] = time.time() - t_start

        def write(tmp):
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)

        atomic_write(out, write)

    workers = [Worker(name, args.threads, log) for name in WORKERS]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            peaks = {}
            for w in workers:
                peaks.update(w.ask("peak", repeats=args.repeats)["peak"])
            report["peak"] = peaks
            report["peak_gflops"] = max(v["gflops"] for v in peaks.values())
            grid = [{"mode": "inference", "size": args.size, "batch": 1}] if args.inference else []
            if args.training:
                grid += [{"mode": "training", "size": args.train_size, "batch": b} for b in args.train_batches]
            for cfg in grid:
                print(f"... {cfg}", file=sys.stderr, flush=True)
                gmac = workers[0].ask("macs", size=cfg["size"], width=args.width)["macs"][1] / 1e9
                report["results"].append(dict(run_config(workers, cfg, args, tmp, gmac), gmac_per_image=gmac))
                save()
            infos = {w.name: w.ask("info") for w in workers}
            report["workers"] = {k: {"hwm_mb": v["hwm_mb"], "rss_mb": v["rss_mb"]} for k, v in infos.items()}
            report["versions"] = {**infos["tensorflow"]["versions"], "jax": infos["jax"]["versions"].get("jax")}
            save()
    finally:
        for w in workers:
            w.close()
    print(table(report))
    print(f"\nwritten {out} ({report['wall_s'] / 60:.1f} min)")
    return report


if __name__ == "__main__":
    main()
