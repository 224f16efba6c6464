"""Speed of the fcn_keras nets on this CPU, side by side with a PyTorch port (pytorch-fcn's).

    python benchmarks/speed.py                 # default grid (about 15 min on 2 loaded cores)
    python benchmarks/speed.py --all           # every backbone x head, 500 and 256, batch 1 and 8
    python benchmarks/speed.py --backbones vgg16 --heads 8s --sizes 500 --batches 1 --repeats 3
    python benchmarks/speed.py --bf16 --backbones vgg16 --heads 8s --no-training --no-memory --no-torch

Prints a table; `--out PATH` also writes the JSON report (the published ones:
`--out benchmarks/results/speed_<cpu>_<threads>t.json`), so a plain run never rewrites a
tracked results file. Per configuration
(backbone, head, size, batch), every variant runs in this one process, interleaved
(A, B, C, A, B, C, ...) after two warm-up calls each; the figures are medians with the
min..max spread:

* inference: Keras `predict`, a `tf.function`, the same with XLA (`jit_compile=True`), the
  tf.function with the upsampling computed as a dense C x C transposed convolution (what
  fcn_keras did before), and the PyTorch port (`torch.inference_mode`, VGG16 heads only:
  pytorch-fcn has no AlexNet / GoogLeNet nets); with `--bf16`, also the tf.function of the
  bfloat16 copy (`fcn_keras.models.with_precision`), with its time over float32's per round and
  its label agreement with float32 (all pixels, and those whose float32 top-two margin exceeds
  5% of the largest logit), and the port under `torch.autocast` bfloat16;
* a training step (`train_on_batch` with the paper's recipe, SGD momentum 0.99 + weight
  decay, no metrics), with and without XLA, and PyTorch's (cross-entropy ignoring 255,
  SGD momentum 0.99, weight decay 5e-4, upsampling frozen); with `--bf16`, also the step of a
  `mixed_bfloat16` copy (same weights; graph and XLA) and the port's under `torch.autocast`;
* the MAC count of the architecture (from the layer shapes; the upsampling counted dense, as
  defined, and per channel, as computed) and the achieved GFLOP/s (2 FLOP per MAC, the work
  done) against this machine's float32 peak, measured in the same run as the best of a
  4096^2 matmul and a 3x3 256->256 convolution on 176x176, in TensorFlow and PyTorch;
* peak memory: each (framework, configuration, inference/training) runs once more in a
  fresh subprocess (unless `--no-memory`), which reports its peak RSS (VmHWM, Linux) and the
  rise over its RSS after building the model (before the first call).

The models have random weights (speed does not depend on them); before timing, the Keras
and PyTorch outputs are checked to agree (relative error <= 1e-4 of the largest logit,
with random non-zero score layers). Both run on --threads threads (TF intra- and inter-op,
torch.set_num_threads). Other work on the machine shows up as spread: compare ratios.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DEFAULT = {"backbones": ["vgg16", "alexnet"], "heads": ["8s", "32s"], "sizes": [500], "batches": [1],
           "train_sizes": [256]}
NUM_CLASSES = 21


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    except (OSError, AttributeError):
        return platform.processor() or "cpu", []
    keep = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"]
    return model, [f for f in keep if f in flags]


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def hwm_mb():
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over from the
    parent through fork and exec, so a child would report at least its parent's size."""
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s*(\d+) kB", f.read()).group(1)) / 1024


def setup_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    except ImportError:
        pass


def macs(backbone, head, size, width=1.0):
    """(dense MACs, MACs as computed) per image, from a fixed-shape model's layer shapes."""
    import keras

    import fcn_keras
    from fcn_keras.models.layers import GroupConv2D

    model = fcn_keras.build(backbone, head, num_classes=NUM_CLASSES, input_shape=(size, size, 3),
                            include_preprocessing=False, width=width)
    dense = computed = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            k = layer.kernel.shape
            dense += h * w * k[0] * k[1] * c_in * k[2]
            computed += h * w * k[0] * k[1] * c_in  # one filter per channel
        elif isinstance(layer, (keras.layers.Conv2D, GroupConv2D)):
            _, h, w, _ = layer.output.shape
            k = layer.kernel.shape  # (kh, kw, in / groups, out)
            n = h * w * k[0] * k[1] * k[2] * k[3]
            dense += n
            computed += n
    return dense, computed


def interleave(fns, repeats, warmup=1):
    """{name: [seconds]}: `warmup` untimed calls each, then `repeats` rounds of one call each."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def summary(ts):
    return {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "n": len(ts)}


def measure_peak(repeats):
    import numpy as np
    import tensorflow as tf

    a = tf.constant(np.random.default_rng(0).normal(size=(4096, 4096)).astype("float32"))
    x = tf.constant(np.random.default_rng(1).normal(size=(1, 176, 176, 256)).astype("float32"))
    kern = tf.constant(np.random.default_rng(2).normal(size=(3, 3, 256, 256)).astype("float32"))
    mm = tf.function(lambda: tf.matmul(a, a))
    conv = tf.function(lambda: tf.nn.conv2d(x, kern, 1, "SAME"))
    fns = {"tf_matmul": lambda: mm().numpy(), "tf_conv3x3": lambda: conv().numpy()}
    flop = {"tf_matmul": 2 * 4096**3, "tf_conv3x3": 2 * 176 * 176 * 9 * 256 * 256}
    try:
        import torch

        ta, tx = torch.from_numpy(a.numpy()), torch.from_numpy(x.numpy().transpose(0, 3, 1, 2).copy())
        tk = torch.from_numpy(kern.numpy().transpose(3, 2, 0, 1).copy())
        fns["torch_matmul"] = lambda: torch.mm(ta, ta)
        fns["torch_conv3x3"] = lambda: torch.nn.functional.conv2d(tx, tk, padding=1)
        flop["torch_matmul"], flop["torch_conv3x3"] = flop["tf_matmul"], flop["tf_conv3x3"]
    except ImportError:
        pass
    times = interleave(fns, repeats, warmup=1)
    out = {n: {**summary(t), "gflops": flop[n] / statistics.median(t) / 1e9} for n, t in times.items()}
    out["peak_gflops"] = max(v["gflops"] for v in out.values())
    return out


def build_pair(backbone, head, width, with_torch=True):
    """(keras model, torch model or None), same weights, score layers random non-zero."""
    import numpy as np

    import fcn_keras

    model = fcn_keras.build(backbone, head, num_classes=NUM_CLASSES, include_preprocessing=False,
                            width=width)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.name.startswith("score_") and layer.weights:
            fan_in = layer.kernel.shape[2]
            layer.set_weights([rng.normal(0, 1 / np.sqrt(fan_in), layer.kernel.shape).astype("float32"),
                               np.zeros(layer.bias.shape, "float32")])
    net = None
    if with_torch and backbone == "vgg16" and head in ("32s", "16s", "8s"):
        from torch_fcn import TorchFCN

        net = TorchFCN(head, NUM_CLASSES, width=width).eval()
        net.copy_from_keras(model)
    return model, net


def check_agreement(model, net, size):
    import numpy as np
    import torch

    x = np.random.default_rng(3).normal(0, 50, size=(1, size + 1, size - 2, 3)).astype("float32")
    want = np.asarray(model(x, training=False))
    with torch.inference_mode():
        got = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    from torch_fcn import check_agreement

    return check_agreement(want, got, "torch")


def bfloat16_agreement(model, fast, x):
    """{"label_agreement", "label_agreement_wide_margin", "relative_error"} of `fast` against
    `model` on the float32 batch `x` (wide margin: top-two gap > 5% of the largest |logit|)."""
    import numpy as np

    ref = np.asarray(model(x, training=False))
    got = np.asarray(fast(x, training=False))
    top2 = np.sort(ref, -1)[..., -2:]
    wide = top2[..., 1] - top2[..., 0] > 0.05 * np.abs(ref).max()
    same = ref.argmax(-1) == got.argmax(-1)
    return {"label_agreement": float(same.mean()), "label_agreement_wide_margin": float(same[wide].mean()),
            "wide_margin_fraction": float(wide.mean()),
            "relative_error": float(np.abs(got - ref).max() / np.abs(ref).max())}


def inference_fns(model, net, size, batch, fast=None):
    """{variant: call} for one batch of `size`; `fast`: the bfloat16 copy (`--bf16`) or None."""
    import numpy as np
    import tensorflow as tf

    from fcn_keras.models.layers import Conv2DTranspose

    x = np.random.default_rng(4).normal(0, 50, size=(batch, size, size, 3)).astype("float32")
    xt = tf.constant(x)
    plain = tf.function(lambda v: model(v, training=False))
    xla = tf.function(lambda v: model(v, training=False), jit_compile=True)
    dense = tf.function(lambda v: model(v, training=False))
    ups = [layer for layer in model.layers if isinstance(layer, Conv2DTranspose)]
    for layer in ups:  # trace the "before" graph with the dense transposed convolutions
        layer.force_dense = True
    dense(xt)
    for layer in ups:
        layer.force_dense = False
    fns = {
        "keras_predict": lambda: model.predict(x, batch_size=batch, verbose=0),
        "tf_function": lambda: plain(xt).numpy(),
        "tf_function_xla": lambda: xla(xt).numpy(),
        "tf_function_dense_upsampling": lambda: dense(xt).numpy(),
    }
    if fast is not None:
        bf16 = tf.function(lambda v: fast(v, training=False))
        fns["tf_function_bfloat16"] = lambda: bf16(xt).numpy()
    if net is not None:
        import torch

        xp = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

        def torch_fn():
            with torch.inference_mode():
                return net(xp)

        fns["torch"] = torch_fn
        if fast is not None:
            def torch_autocast():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    return net(xp)

            fns["torch_autocast_bfloat16"] = torch_autocast
    return fns


def training_fns(model, net, size, batch, mixed=None):
    """{variant: step} for one batch of `size`; `mixed`: a mixed_bfloat16 copy (`--bf16`) or None."""
    import numpy as np

    from fcn_keras.conventions import IGNORE_LABEL

    rng = np.random.default_rng(5)
    x = rng.normal(0, 50, size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(batch, size, size)).astype("int32")
    y[:, :8] = IGNORE_LABEL
    def graph_and_xla(m):
        m.compile(metrics=[], jit_compile=False)
        m.make_train_function()
        graph = m.train_function
        m.jit_compile = True
        m.make_train_function(force=True)
        return graph, m.train_function

    def keras_step(m, fn):
        def step():
            m.train_function = fn
            return m.train_on_batch(x, y)
        return step

    graph, xla = graph_and_xla(model)
    fns = {"keras_train_step": keras_step(model, graph), "keras_train_step_xla": keras_step(model, xla)}
    if mixed is not None:
        graph, xla = graph_and_xla(mixed)
        fns["keras_train_step_mixed_bfloat16"] = keras_step(mixed, graph)
        fns["keras_train_step_mixed_bfloat16_xla"] = keras_step(mixed, xla)
    if net is not None:
        import torch

        net.train()
        params = [p for p in net.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim == 1]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                               {"params": no_decay, "weight_decay": 0.0}], lr=1e-10, momentum=0.99)
        xp = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        yp = torch.from_numpy(y.astype("int64"))

        def torch_step(autocast=False):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = net(xp)
            loss = torch.nn.functional.cross_entropy(logits.float(), yp, ignore_index=IGNORE_LABEL)
            loss.backward()
            opt.step()
            return loss.item()

        fns["torch_train_step"] = torch_step
        if mixed is not None:
            fns["torch_train_step_autocast_bfloat16"] = lambda: torch_step(autocast=True)
    return fns


def child_memory(framework, backbone, head, size, batch, mode, threads, width):
    """Runs one configuration once in this (fresh) process; prints its memory as JSON."""
    import numpy as np

    if framework == "torch":
        import torch

        from torch_fcn import TorchFCN

        torch.set_num_threads(threads)
        net = TorchFCN(head, NUM_CLASSES, width=width)
        x = torch.from_numpy(np.zeros((batch, 3, size, size), "float32"))
        before = rss_mb()
        if mode == "inference":
            with torch.inference_mode():
                net.eval()(x)
        else:
            opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-10, momentum=0.99)
            y = torch.zeros((batch, size, size), dtype=torch.int64)  # no pixel ignored: this child
            loss = torch.nn.functional.cross_entropy(net.train()(x), y)  # imports no fcn_keras (TF) to stay torch-only
            loss.backward()
            opt.step()
    else:
        setup_threads(threads)
        import tensorflow as tf

        import fcn_keras

        model = fcn_keras.build(backbone, head, num_classes=NUM_CLASSES, include_preprocessing=False,
                                width=width)
        x = np.zeros((batch, size, size, 3), "float32")
        before = rss_mb()
        if mode == "inference":
            tf.function(lambda v: model(v, training=False))(tf.constant(x)).numpy()
        else:
            model.compile(metrics=[], jit_compile=False)
            model.train_on_batch(x, np.zeros((batch, size, size), "int32"))
    peak = hwm_mb()
    print(json.dumps({"peak_rss_mb": peak, "rise_mb": peak - before, "after_build_mb": before}))


def memory(framework, cfg, mode, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, cfg["backbone"], cfg["head"],
           str(cfg["size"]), str(cfg["batch"]), mode, "--threads", str(args.threads),
           "--width", str(args.width)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_config(cfg, mode, args, peak):
    import gc

    model, net = build_pair(cfg["backbone"], cfg["head"], args.width, with_torch=not args.no_torch)
    result = dict(cfg, mode=mode)
    if net is not None:
        result["keras_torch_relative_error"] = check_agreement(model, net, 37 if args.width < 1 else 123)
    dense, computed = macs(cfg["backbone"], cfg["head"], cfg["size"], args.width)
    result["gmac_per_image"] = dense / 1e9
    result["gmac_per_image_computed"] = computed / 1e9
    if mode == "inference":
        fast = None
        if args.bf16:
            import numpy as np

            from fcn_keras.models import with_precision

            fast = with_precision(model, "bfloat16")
            x = np.random.default_rng(7).normal(0, 50, size=(1, cfg["size"], cfg["size"], 3)).astype("float32")
            result["bfloat16"] = bfloat16_agreement(model, fast, x)
        fns = inference_fns(model, net, cfg["size"], cfg["batch"], fast)
    else:
        mixed = None
        if args.bf16:
            import fcn_keras

            mixed = fcn_keras.build(cfg["backbone"], cfg["head"], num_classes=NUM_CLASSES,
                                    include_preprocessing=False, width=args.width, dtype="mixed_bfloat16")
            mixed.set_weights(model.get_weights())
        fns = training_fns(model, net, cfg["size"], cfg["batch"], mixed)
    times = interleave(fns, args.repeats, args.warmup)
    if "tf_function_bfloat16" in times:
        per_round = [a / b for a, b in zip(times["tf_function_bfloat16"], times["tf_function"])]
        result["bfloat16"]["ratio_over_float32"] = {"median": statistics.median(per_round), "per_round": per_round}
    flop = 2 * computed * cfg["batch"] * (1 if mode == "inference" else 3)  # backward ~ 2x forward
    result["variants"] = {}
    for name, ts in times.items():
        s = summary(ts)
        s["images_per_s"] = cfg["batch"] / s["median_s"]
        s["gflops"] = flop / s["median_s"] / 1e9
        s["fraction_of_peak"] = s["gflops"] / peak
        result["variants"][name] = s
    ref = "torch" if mode == "inference" else "torch_train_step"
    if ref in times:
        mine = "tf_function" if mode == "inference" else "keras_train_step"
        result["ratio_keras_over_torch"] = {
            "median": statistics.median(a / b for a, b in zip(times[mine], times[ref])),
            "per_round": [a / b for a, b in zip(times[mine], times[ref])]}
    if args.memory:
        result["memory"] = {"keras": memory("keras", cfg, mode, args)}
        if net is not None:
            result["memory"]["torch"] = memory("torch", cfg, mode, args)
    del model, net, fns
    gc.collect()
    return result


def configs(args, training):
    import fcn_keras.models.registry as registry

    grid = []
    sizes = args.train_sizes if training else args.sizes
    for backbone in args.backbones:
        for head in args.heads:
            if head not in registry.BACKBONES[backbone]["heads"]:
                continue
            for size in sizes:
                for batch in args.batches:
                    grid.append({"backbone": backbone, "head": head, "size": size, "batch": batch})
    return grid


def band_experiment(args):
    """The pad-100 band: time blocks 1-3 of VGG16 on the padded 700x700 image against the same
    blocks on the picture plus the margin their receptive field needs (an upper bound on what
    computing the picture-independent band once could save), next to the whole net."""
    import keras
    import numpy as np
    import tensorflow as tf

    import fcn_keras

    model = fcn_keras.build("vgg16", "8s", num_classes=NUM_CLASSES, include_preprocessing=False,
                            width=args.width)
    pool3 = keras.Model(model.input, model.get_layer("pool3").output)
    # pool3's receptive field is 44 px; 48 keeps the 8-pixel grid: picture + 2*48 instead of + 2*100
    full = tf.constant(np.random.default_rng(6).normal(0, 50, (1, 500, 500, 3)).astype("float32"))
    small = tf.constant(np.random.default_rng(6).normal(0, 50, (1, 396, 396, 3)).astype("float32"))
    f_net = tf.function(lambda v: model(v, training=False))
    f_p3 = tf.function(lambda v: pool3(v, training=False))
    times = interleave({"whole_net_500": lambda: f_net(full).numpy(),
                        "blocks1to3_padded_700": lambda: f_p3(full).numpy(),
                        "blocks1to3_picture_plus_48_596": lambda: f_p3(small).numpy()}, args.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    saving = (med["blocks1to3_padded_700"] - med["blocks1to3_picture_plus_48_596"]) / med["whole_net_500"]
    return {"times": {k: summary(v) for k, v in times.items()}, "upper_bound_saving_fraction": saving}


def upsampling_experiment(args):
    """The four upsampling layers of FCN-8s / 32s VGG16 at 500x500 alone (21 classes, bilinear
    kernels): per channel (as computed) against the dense C x C transposed convolution."""
    import numpy as np
    import tensorflow as tf

    from fcn_keras.models.layers import Conv2DTranspose, bilinear_kernel

    out = {}
    for name, k, s, n in (("upscore2", 4, 2, 16), ("upscore_pool4", 4, 2, 34),
                          ("upscore8", 16, 8, 70), ("upscore (32s)", 64, 32, 16)):
        layer = Conv2DTranspose(NUM_CLASSES, k, strides=s, use_bias=False)
        layer.build((None, None, None, NUM_CLASSES))
        layer.set_weights([bilinear_kernel(k, NUM_CLASSES)])
        x = tf.constant(np.random.default_rng(0).normal(size=(1, n, n, NUM_CLASSES)).astype("float32"))
        fast = tf.function(layer)
        fast(x)
        layer.force_dense = True
        dense = tf.function(layer)
        dense(x)
        layer.force_dense = False
        times = interleave({"channelwise": lambda: fast(x).numpy(), "dense": lambda: dense(x).numpy()},
                           max(15, args.repeats))
        a, b = fast(x).numpy(), dense(x).numpy()
        out[name] = {"kernel": k, "stride": s, "input": n, **{key: summary(t) for key, t in times.items()},
                     "relative_error": float(np.abs(a - b).max() / np.abs(b).max())}
    return out


def table(results, peak):
    lines = [f"float32 peak (best of matmul / 3x3 conv, TF and torch): {peak:.1f} GFLOP/s", ""]
    head = f"{'config':<28} {'variant':<30} {'median ms':>10} {'spread ms':>17} {'img/s':>7} {'GFLOP/s':>8} {'%peak':>6}"
    lines.append(head)
    for r in results:
        name = f"{r['backbone']} {r['head']} {r['size']} b{r['batch']} {r['mode'][:5]}"
        for v, s in r["variants"].items():
            lines.append(f"{name:<28} {v:<30} {s['median_s'] * 1e3:>10.0f} "
                         f"{s['min_s'] * 1e3:>8.0f}..{s['max_s'] * 1e3:<7.0f} {s['images_per_s']:>7.2f} "
                         f"{s['gflops']:>8.1f} {100 * s['fraction_of_peak']:>5.0f}%")
            name = ""
        extra = [f"GMAC/img {r['gmac_per_image']:.1f} (computed {r['gmac_per_image_computed']:.1f})"]
        if "ratio_keras_over_torch" in r:
            extra.append(f"keras/torch {r['ratio_keras_over_torch']['median']:.2f}")
        if "bfloat16" in r:
            b = r["bfloat16"]
            extra.append(f"bfloat16/float32 time {b['ratio_over_float32']['median']:.2f}, labels agree "
                         f"{100 * b['label_agreement']:.2f}% ({100 * b['label_agreement_wide_margin']:.2f}% "
                         "where the float32 margin is wide)")
        for fw, m in r.get("memory", {}).items():
            if "peak_rss_mb" in m:
                extra.append(f"{fw} peak RSS {m['peak_rss_mb']:.0f} MB (+{m['rise_mb']:.0f})")
        lines.append(f"{'':<28} " + "; ".join(extra))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--all", action="store_true", help="every backbone x head, 500 and 256, batch 1 and 8")
    p.add_argument("--backbones", nargs="+", default=DEFAULT["backbones"])
    p.add_argument("--heads", nargs="+", default=DEFAULT["heads"])
    p.add_argument("--sizes", nargs="+", type=int, default=DEFAULT["sizes"], help="inference sizes")
    p.add_argument("--train-sizes", nargs="+", type=int, default=DEFAULT["train_sizes"])
    p.add_argument("--batches", nargs="+", type=int, default=DEFAULT["batches"])
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per configuration")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per variant first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0, help="channel width (tests use a small one)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--no-training", dest="training", action="store_false")
    p.add_argument("--band", action="store_true", help="also time the pad-100 band experiment")
    p.add_argument("--bf16", action="store_true",
                   help="also time the bfloat16 copy's tf.function (inference), with its label agreement, "
                        "a mixed_bfloat16 training step (graph and XLA), and the port under "
                        "torch.autocast bfloat16")
    p.add_argument("--upsampling", action="store_true",
                   help="also time the upsampling layers alone, per channel against dense")
    p.add_argument("--out", help="also write the JSON report there (default: print only; the "
                                 "published: benchmarks/results/speed_<cpu>_<threads>t.json)")
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        fw, backbone, head, size, batch, mode = args.child
        return child_memory(fw, backbone, head, int(size), int(batch), mode, args.threads, args.width)
    if args.all:
        from fcn_keras.models import registry

        args.backbones = list(registry.BACKBONES)
        args.heads = sorted({h for s in registry.BACKBONES.values() for h in s["heads"]})
        args.sizes, args.train_sizes, args.batches = [500, 256], [500, 256], [1, 8]
    setup_threads(args.threads)
    if not args.no_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed (pip install -e .[bench]): PyTorch columns skipped", file=sys.stderr)
            args.no_torch = True
    from fcn_keras._io import atomic_write

    model_name, flags = cpu_name()
    out = args.out
    load_start = os.getloadavg()
    results = []
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": model_name, "cpu_flags": flags, "threads": args.threads, "width": args.width,
        "versions": versions(), "results": results,
        "memory_method": "peak RSS (VmHWM) of a fresh subprocess that builds the model and runs "
                         "one call (inference: a tf.function / torch.inference_mode; training: one "
                         "train step); rise = peak minus RSS after building, before the call",
    }

    def save():  # after every configuration, so an interrupted run keeps what it measured
        if not out:
            return
        report["loadavg_1_5_15min_at_start_and_now"] = [load_start, os.getloadavg()]

        def write(tmp):
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)

        atomic_write(out, write)

    report["peak"] = peak = measure_peak(max(3, args.repeats))
    if args.band:
        report["band"] = band_experiment(args)
        save()
    if args.upsampling:
        report["upsampling"] = upsampling_experiment(args)
        save()
    for mode, on in (("inference", True), ("training", args.training)):
        for cfg in configs(args, mode == "training") if on else []:
            print(f"... {mode} {cfg}", file=sys.stderr, flush=True)
            results.append(run_config(cfg, mode, args, peak["peak_gflops"]))
            save()
    print(table(results, peak["peak_gflops"]))
    if "band" in report:
        b = report["band"]
        print(f"\npad-100 band: blocks 1-3 on 700 vs 596 px save at most "
              f"{100 * b['upper_bound_saving_fraction']:.1f}% of the whole net's time")
    for name, u in report.get("upsampling", {}).items():
        print(f"{name} k{u['kernel']} s{u['stride']} on {u['input']}x{u['input']}: per channel "
              f"{u['channelwise']['median_s'] * 1e3:.1f} ms, dense {u['dense']['median_s'] * 1e3:.1f} ms")
    if out:
        print(f"\nwritten {out}")
    return report


def versions():
    out = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "torch", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


if __name__ == "__main__":
    main()
