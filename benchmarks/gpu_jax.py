"""FCNs on a GPU with the JAX backend and no TensorFlow, side by side with the PyTorch port.

For a machine with JAX, Keras and PyTorch but no TensorFlow (this script never imports it):

    KERAS_BACKEND=jax python benchmarks/gpu_jax.py --out $OUT/gpu_jax.json     # the GPU run, < 8 min
    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python benchmarks/gpu_jax.py --dry-run  # tiny, on a CPU

What it runs, in this order, each block written to the JSON as soon as it ends (a block
that would start after `--budget-s` seconds is skipped and listed as such):

1. full-width FCN-8s VGG16: its outputs and the PyTorch port's (`torch_fcn.py`, the same
   weights copied by layer name) are checked to agree in float32 (relative error <= 1e-4
   of the largest logit, TF32 off on both sides for the check only); then inference
   500x500 batch 1 and a training step 500x500 batch 1 (the paper's setting);
2. a few hundred training steps of FCN-8s VGG16 at a small width on the bundled synthetic
   shapes (the same examples as `fcn_keras.data.shapes`, drawn with numpy by
   `shapes_numpy.py` and fed through a `keras.utils.PyDataset`: no tf.data), float32 and
   mixed_bfloat16, Adam 3e-4 as `fcn-keras demo` trains from scratch: the mean loss of
   each epoch and the paper's four metrics on the validation split
   (`model.evaluate`, whole 64x64 images);
3. FCN-8s VGG16 inference 500x500 batch 8 and training on 8x 512x512 crops;
4. full-width FCN-32s AlexNet, the same four shapes (Keras only: pytorch-fcn has no AlexNet);
5. the port under `torch.compile` (float32), where it compiles, all four shapes.

Keras variants: inference float32 and bfloat16 (`fcn_keras.models.with_precision`:
bfloat16 weights and compute, float32 logits), training float32, mixed_bfloat16 and
mixed_float16 (loss scaling: `compile()` wraps the optimizer in a LossScaleOptimizer), the
paper's recipe (`model.compile()`: SGD momentum 0.99, weight decay, the four metrics). Each
is Keras' own step (`model.train_step` / `stateless_call`) under `jax.jit`, as `fit` and
`predict` compile it, called on batches already on the device. Port variants: float32,
a bfloat16 copy (inference) and autocast bfloat16 / float16 with a GradScaler (training).
Times: after warm-up calls (compilation, autotuning), `--rounds` rounds of `--steps` calls
per variant, the variants interleaved round by round, each section ended by waiting for the
device; images/s from the median round. Peak memory: PyTorch's `max_memory_allocated` over
the warm-up; JAX's from XLA's buffer assignment of the compiled step (arguments + outputs +
temporaries - aliased), plus the device's peak over the whole run.
"""

import argparse
import copy
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

NUM_CLASSES = 21
FULL = {"width": 1.0, "infer": [(500, 1), (500, 8)], "train": [(500, 1), (512, 8)], "steps": 10, "rounds": 3,
        "syn_width": 0.125, "syn_size": 64, "syn_epochs": 5, "syn_train": None, "syn_val": None}
DRY = {"width": 0.0625, "infer": [(48, 1), (48, 2)], "train": [(48, 1), (40, 2)], "steps": 2, "rounds": 1,
       "syn_width": 0.0625, "syn_size": 32, "syn_epochs": 1, "syn_train": 48, "syn_val": 16}
TRAIN_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
INFER_POLICIES = ("float32", "bfloat16")


def mib(n):
    return None if n is None else n / 2**20


def random_batch(n, size, seed):
    """(images float32 (n, size, size, 3), labels int32 (n, size, size) with a 255 band)."""
    import numpy as np

    from fcn_keras.conventions import IGNORE_LABEL

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 50, size=(n, size, size, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(n, size, size)).astype("int32")
    y[:, :8] = IGNORE_LABEL
    return x, y


# ------------------------------------------------------------------ Keras on JAX

def xla_memory(compiled):
    """Bytes XLA's buffer assignment needs for one call of `compiled` (None where unknown)."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                   - m.alias_size_in_bytes)
    except Exception:  # not every platform reports it
        return None


def keras_infer(model, x):
    """(call, info): one jitted forward pass of `model` on the device batch `x`."""
    import jax

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    fwd = jax.jit(lambda a, b, v: model.stateless_call(a, b, v, training=False)[0])
    t = time.perf_counter()
    compiled = fwd.lower(tv, ntv, x).compile()
    info = {"compile_s": time.perf_counter() - t, "xla_bytes": xla_memory(compiled)}
    return (lambda: compiled(tv, ntv, x)), info


def keras_train(model, x, y):
    """(call, info): Keras' own train step (loss, optimizer, the four metrics) under jax.jit,
    with the state donated and carried from call to call, as `fit` does."""
    import jax
    import jax.numpy as jnp

    data = (x, y, None)
    model._symbolic_build(data_batch=data)
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                 optimizer_variables=True, metrics_variables=True)
    state = [jax.tree.map(jnp.copy, state)]  # the model's own buffers stay valid
    step = jax.jit(model.train_step, donate_argnums=0)
    t = time.perf_counter()
    compiled = step.lower(state[0], data).compile()
    info = {"compile_s": time.perf_counter() - t, "xla_bytes": xla_memory(compiled)}

    def call():
        logs, state[0] = compiled(state[0], data)
        return logs

    return call, info


# ------------------------------------------------------------------ the PyTorch port

def port_infer(net, x, dtype, compiled=False):
    import torch

    if dtype == "bfloat16":
        net, x = copy.deepcopy(net).to(torch.bfloat16), x.to(torch.bfloat16)
    net = net.eval()
    fn = torch.compile(net, dynamic=False) if compiled else net

    def call():
        with torch.inference_mode():
            return fn(x)

    return call


def port_train(net, x, y, policy, compiled=False):
    import torch

    from fcn_keras.conventions import IGNORE_LABEL

    dtype = {"float32": None, "mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}[policy]
    net.train()
    fn = torch.compile(net, dynamic=False) if compiled else net
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD([{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
                           {"params": [p for p in params if p.ndim == 1], "weight_decay": 0.0}],
                          lr=1e-10, momentum=0.99)
    scaler = torch.amp.GradScaler(x.device.type, enabled=dtype == torch.float16)

    def call():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = fn(x)
        loss = torch.nn.functional.cross_entropy(out.float(), y, ignore_index=IGNORE_LABEL)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    return call


# ------------------------------------------------------------------ timing

class Timer:
    """Warm-up, memory and interleaved timing of named device calls."""

    def __init__(self, steps, rounds, torch_device):
        self.steps, self.rounds, self.tdev = steps, rounds, torch_device

    def sync(self, out):
        import jax

        jax.block_until_ready(out)
        if self.tdev is not None and self.tdev.type == "cuda":
            import torch

            torch.cuda.synchronize()

    def run(self, fns, images_per_call):
        """{name: {"images_per_s", "ms_per_call", "seconds_per_round", "warmup_s", "torch_peak_mib"}}."""
        out = {}
        for name, fn in fns.items():
            cuda = name.startswith("port") and self.tdev is not None and self.tdev.type == "cuda"
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            for _ in range(2):  # compilation / autotuning, then one plain call
                self.sync(fn())
            out[name] = {"warmup_s": time.perf_counter() - t, "rounds_s": []}
            if cuda:
                out[name]["torch_peak_mib"] = mib(torch.cuda.max_memory_allocated())
        for _ in range(self.rounds):
            for name, fn in fns.items():
                t = time.perf_counter()
                for _ in range(self.steps):
                    res = fn()
                self.sync(res)
                out[name]["rounds_s"].append(time.perf_counter() - t)
        for name, r in out.items():
            med = statistics.median(r["rounds_s"])
            r["images_per_s"] = images_per_call * self.steps / med
            r["ms_per_call"] = 1e3 * med / self.steps
        return out


def check_agreement(model, net, tdev, size):
    """Relative error of the port's float32 logits against Keras', TF32 off on both sides."""
    import jax
    import numpy as np
    import torch

    x = np.random.default_rng(3).normal(0, 50, size=(1, size + 1, size - 2, 3)).astype("float32")
    cudnn, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with jax.default_matmul_precision("highest"):
            want = np.asarray(model(x, training=False))
        with torch.inference_mode():
            got = net.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(tdev))
            got = got.float().cpu().numpy().transpose(0, 2, 3, 1)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, mm
    from torch_fcn import check_agreement

    return check_agreement(want, got, "the port")


# ------------------------------------------------------------------ blocks

class Bench:
    def __init__(self, args, cfg):
        import jax

        self.args, self.cfg = args, cfg
        self.device = jax.devices()[0]
        self.timer = None
        self.tdev = None
        if not args.no_torch:
            import torch

            self.tdev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            if self.tdev.type == "cpu" and args.dry_run:
                torch.set_num_threads(1)  # tiny tensors: 2 OpenMP threads on a loaded CPU wait on each other
        self.timer = Timer(cfg["steps"], cfg["rounds"], self.tdev)
        self.models = {}

    def pair(self, backbone, head):
        """(keras float32 model, port on the torch device or None), the same weights."""
        key = (backbone, head)
        if key not in self.models:
            import speed

            model, net = speed.build_pair(backbone, head, self.cfg["width"], with_torch=self.tdev is not None)
            if net is not None:
                net = net.to(self.tdev)
            self.models[key] = (model, net)
        return self.models[key]

    def check(self, backbone, head):
        model, net = self.pair(backbone, head)
        if net is None:
            return {"port": "none (pytorch-fcn has no such net)" if self.tdev is not None else "--no-torch"}
        return {"relative_error_port_vs_keras": check_agreement(model, net, self.tdev,
                                                                 123 if self.cfg["width"] == 1 else 37)}

    def inference(self, backbone, head, size, batch, compiled_only=False):
        import jax

        from fcn_keras.models import with_precision

        model, net = self.pair(backbone, head)
        x, _ = random_batch(batch, size, 4)
        fns, infos = {}, {}
        if not compiled_only:
            xd = jax.device_put(x)
            for policy in INFER_POLICIES:
                m = model if policy == "float32" else with_precision(model, policy)
                fns[f"keras_jax/{policy}"], infos[f"keras_jax/{policy}"] = keras_infer(m, xd)
        if net is not None:
            import torch

            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(self.tdev)
            if compiled_only:
                fns["port_compile/float32"] = port_infer(net, xt, "float32", compiled=True)
            else:
                for policy in INFER_POLICIES:
                    fns[f"port/{policy}"] = port_infer(net, xt, policy)
        return self.finish(fns, infos, batch)

    def training(self, backbone, head, size, batch, compiled_only=False):
        import jax

        from fcn_keras.models import with_precision

        model, net = self.pair(backbone, head)
        x, y = random_batch(batch, size, 5)
        fns, infos = {}, {}
        if not compiled_only:
            xd, yd = jax.device_put(x), jax.device_put(y)
            for policy in TRAIN_POLICIES:
                m = with_precision(model, policy)  # the same weights under that policy (float32: model)
                m.compile()
                fns[f"keras_jax/{policy}"], infos[f"keras_jax/{policy}"] = keras_train(m, xd, yd)
        if net is not None:
            import torch

            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(self.tdev)
            yt = torch.from_numpy(y.astype("int64")).to(self.tdev)
            policies = ("float32",) if compiled_only else TRAIN_POLICIES
            for policy in policies:
                name = f"port_compile/{policy}" if compiled_only else f"port/{policy}"
                fns[name] = port_train(copy.deepcopy(net), xt, yt, policy, compiled=compiled_only)
        return self.finish(fns, infos, batch)

    def finish(self, fns, infos, batch):
        res = self.timer.run(fns, batch)
        for name, info in infos.items():
            res[name].update(compile_s=info["compile_s"], xla_mib=mib(info["xla_bytes"]))
        return res

    def synthetic(self, policy):
        """Trains FCN-8s VGG16 at a small width on the shapes set (numpy feed), evaluates on val."""
        import keras
        import numpy as np

        import fcn_keras
        import shapes_numpy

        cfg = self.cfg
        keras.utils.set_random_seed(0)
        xtr, ytr = shapes_numpy.arrays("train", cfg["syn_train"], cfg["syn_size"])
        xva, yva = shapes_numpy.arrays("val", cfg["syn_val"], cfg["syn_size"])
        train = shapes_numpy.py_dataset(xtr, ytr, 8, shuffle_seed=0)
        val = shapes_numpy.py_dataset(xva, yva, 16)
        model = fcn_keras.build("vgg16", "8s", num_classes=len(shapes_numpy.SHAPES_CLASSES),
                                width=cfg["syn_width"], dtype=policy)
        model.compile(optimizer=keras.optimizers.Adam(3e-4))  # metrics: the paper's four

        t = time.perf_counter()
        hist = model.fit(train, epochs=cfg["syn_epochs"], verbose=0)
        fit_s = time.perf_counter() - t
        losses = [float(v) for v in hist.history["loss"]]  # the mean over each epoch's steps
        scores = model.evaluate(val, verbose=0, return_dict=True)
        return {"policy": policy, "width": cfg["syn_width"], "image_size": cfg["syn_size"],
                "steps": len(train) * cfg["syn_epochs"], "batch": 8, "fit_s": fit_s,
                "loss_per_epoch": losses, "loss_first_epoch": losses[0], "loss_last_epoch": losses[-1],
                "val": {m: float(scores[m]) for m in ("pixel_accuracy", "mean_accuracy", "mean_iou",
                                                      "frequency_weighted_iou") if m in scores},
                "val_examples": len(xva), "finite": bool(np.all(np.isfinite(losses)))}


def blocks(bench, cfg, args):
    """[(name, thunk)] in priority order."""
    (i1, i8), (t1, t8) = cfg["infer"], cfg["train"]
    out = [("vgg16_8s/check", lambda: bench.check("vgg16", "8s")),
           (f"vgg16_8s/inference/{i1[0]}/b{i1[1]}", lambda: bench.inference("vgg16", "8s", *i1)),
           (f"vgg16_8s/training/{t1[0]}/b{t1[1]}", lambda: bench.training("vgg16", "8s", *t1))]
    out += [(f"synthetic/{p}", lambda p=p: bench.synthetic(p)) for p in ("float32", "mixed_bfloat16")]
    out += [(f"vgg16_8s/inference/{i8[0]}/b{i8[1]}", lambda: bench.inference("vgg16", "8s", *i8)),
            (f"vgg16_8s/training/{t8[0]}/b{t8[1]}", lambda: bench.training("vgg16", "8s", *t8))]
    for s, b in cfg["infer"]:
        out.append((f"alexnet_32s/inference/{s}/b{b}", lambda s=s, b=b: bench.inference("alexnet", "32s", s, b)))
    for s, b in cfg["train"]:
        out.append((f"alexnet_32s/training/{s}/b{b}", lambda s=s, b=b: bench.training("alexnet", "32s", s, b)))
    if not args.no_torch and (args.torch_compile or not args.dry_run):
        for s, b in cfg["infer"]:
            out.append((f"vgg16_8s/inference_compiled/{s}/b{b}",
                        lambda s=s, b=b: bench.inference("vgg16", "8s", s, b, compiled_only=True)))
        for s, b in cfg["train"]:
            out.append((f"vgg16_8s/training_compiled/{s}/b{b}",
                        lambda s=s, b=b: bench.training("vgg16", "8s", s, b, compiled_only=True)))
    return out


def table(report):
    lines = [f"{report['jax_device']} | jax {report['versions'].get('jax')} keras {report['versions'].get('keras')} "
             f"torch {report['versions'].get('torch')} | {report['wall_s']:.0f} s | tensorflow imported: "
             f"{report['tensorflow_imported']}", "",
             f"{'block':<34} {'variant':<26} {'img/s':>9} {'ms/call':>9} {'MiB':>8} {'/port f32':>9} {'warm s':>7}"]
    for name, res in report["blocks"].items():
        if "error" in res or "skipped" in res:
            lines.append(f"{name:<34} {res.get('error') or res.get('skipped')}")
            continue
        if name.startswith("synthetic/"):
            v = res["val"]
            lines.append(f"{name:<34} {res['steps']} steps, loss (epoch means) {res['loss_first_epoch']:.3f} -> "
                         f"{res['loss_last_epoch']:.3f}, val mean IU {v.get('mean_iou', float('nan')):.3f} "
                         f"(pixel acc {v.get('pixel_accuracy', float('nan')):.3f}), fit {res['fit_s']:.0f} s")
            continue
        if name.endswith("/check"):
            lines.append(f"{name:<34} {res}")
            continue
        base = res.get("port/float32") or report["blocks"].get(name.replace("_compiled", ""), {}).get("port/float32")
        label = name
        for var, r in res.items():
            mem = r.get("torch_peak_mib") or r.get("xla_mib")
            ratio = r["images_per_s"] / base["images_per_s"] if base else None
            lines.append(f"{label:<34} {var:<26} {r['images_per_s']:>9.2f} {r['ms_per_call']:>9.1f} "
                         f"{'?' if mem is None else round(mem):>8} "
                         f"{'' if ratio is None else f'{ratio:.2f}x':>9} {r['warmup_s']:>7.1f}")
            label = ""
    peak = report.get("jax_device_peak_mib")
    lines.append("")
    lines.append(f"JAX device peak over the run: {'n/a' if peak is None else f'{peak:.0f} MiB'}; "
                 "MiB column: XLA buffer assignment of the compiled step (Keras) or torch max_memory_allocated")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true",
                   help="tiny width and sizes (a CPU check that the whole script runs, no TensorFlow)")
    p.add_argument("--budget-s", type=float,
                   help="no block starts after this many seconds (default 330: a block can take 2-3 min, "
                        "so that the run ends within 8 min on the GPU; none in a dry run)")
    p.add_argument("--steps", type=int, help="calls per timed round (default 10; dry run 2)")
    p.add_argument("--rounds", type=int, help="timed rounds per variant (default 3; dry run 1)")
    p.add_argument("--only", nargs="+", help="run only the blocks whose names start with one of these")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--torch-compile", action="store_true", help="in a dry run, also the torch.compile blocks")
    p.add_argument("--out", help="JSON path (default $OUT/gpu_jax.json where $OUT is set, else "
                                 "benchmarks/results/gpu_jax_<device>.json)")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    cfg = dict(DRY if args.dry_run else FULL)
    if args.budget_s is None:
        args.budget_s = float("inf") if args.dry_run else 330.0
    cfg.update({k: getattr(args, k) for k in ("steps", "rounds") if getattr(args, k)})

    import jax
    import keras

    bench = Bench(args, cfg)
    device = bench.device
    slug = re.sub(r"[^a-z0-9]+", "-", str(getattr(device, "device_kind", device.platform)).lower()).strip("-")
    out = args.out or (os.path.join(os.environ["OUT"], "gpu_jax.json") if os.environ.get("OUT")
                       else os.path.join(HERE, "results", f"gpu_jax_{slug}.json"))
    versions = {"jax": jax.__version__, "keras": keras.__version__}
    if bench.tdev is not None:
        import torch

        versions["torch"] = torch.__version__
        if bench.tdev.type == "cuda":
            versions["cuda_device"] = torch.cuda.get_device_name()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "jax_device": str(device),
              "jax_platform": device.platform, "torch_device": str(bench.tdev), "versions": versions,
              "dry_run": args.dry_run, "config": {k: v for k, v in cfg.items()},
              "tf32": "default on both sides for timing (JAX default precision, torch cudnn.allow_tf32); "
                      "off for the agreement check",
              "blocks": {}}

    def save():
        from fcn_keras._io import atomic_write

        stats = getattr(device, "memory_stats", lambda: None)() or {}
        report["jax_device_peak_mib"] = mib(stats.get("peak_bytes_in_use"))
        report["wall_s"] = time.perf_counter() - t_start
        report["tensorflow_imported"] = "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None

        def write(tmp):
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)

        atomic_write(out, write)

    for name, thunk in blocks(bench, cfg, args):
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        elapsed = time.perf_counter() - t_start
        if elapsed > args.budget_s:
            report["blocks"][name] = {"skipped": f"budget: {elapsed:.0f} s > --budget-s {args.budget_s:g}"}
            continue
        print(f"... {name} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
        try:
            report["blocks"][name] = thunk()
        except Exception as e:  # one block's failure is recorded; the others still run
            import traceback

            traceback.print_exc()
            report["blocks"][name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        save()
    save()
    print(table(report))
    print(f"written {out}")
    if args.dry_run:
        failed = [n for n, r in report["blocks"].items() if "error" in r or "skipped" in r]
        if failed or report["tensorflow_imported"]:
            sys.exit(f"dry run failed: blocks {failed}, tensorflow imported: {report['tensorflow_imported']}")
    return report


if __name__ == "__main__":
    main()
