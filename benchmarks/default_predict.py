"""The default `Predictor.predict` of one photo against the path it replaced and the PyTorch port.

    python benchmarks/default_predict.py                     # full-width FCN-8s VGG16, 500x500, 5 rounds
    python benchmarks/default_predict.py --width 0.0625 --size 45 --repeats 1   # smoke test

One process (TensorFlow and PyTorch, `--threads` each, like `speed.py`), one net with the same
weights in both (score layers random non-zero), one random 500x500 uint8 photo. Variants:

* `default`: `Predictor(model).predict(photo)`, the compiled call (`fcn_keras.inference`):
  the graph on a shape's first call, XLA from its second;
* `eager`: the same `Predictor` computing with the model's eager call (the path before the
  compiled call);
* `graph`: the compiled call with XLA off (`CompiledCall(model, xla_after=None)`);
* `bfloat16` and `bfloat16_graph` (with `--bf16`): the same two on `Predictor(...,
  precision="bfloat16")`;
* `port`: the PyTorch port (`torch_fcn.py`) on the same preprocessed photo, forward only
  under `torch.inference_mode` (the Keras variants also take the argmax: a few ms).

Before timing, each variant's scores are checked against the port's (relative 1e-4 of the
largest logit; bfloat16 reports its label agreement instead). The first two calls of each
variant are timed apart (trace, compilation), then `--repeats` interleaved rounds (A, B, C,
A, B, C, ...); each ratio is the median of the per-round ratios, so the variants share the
machine's load. Prints a table and writes benchmarks/results/default_predict_<cpu>_<threads>t.json.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def variants(model, args):
    """{name: Predictor}: every Keras variant, each its own Predictor (own compiled call)."""
    import keras
    import numpy as np

    from fcn_keras.inference import CompiledCall
    from fcn_keras.models.layers import Preprocess
    from fcn_keras.predict import Predictor

    out = {"default": Predictor(model, max_size=0)}
    eager = Predictor(model, max_size=0)
    step = Preprocess()  # build_pair's model takes preprocessed input; the compiled call adds it too
    eager._call = lambda x: np.asarray(keras.ops.convert_to_numpy(model(step(x), training=False)), np.float32)
    out["eager"] = eager
    graph = Predictor(model, max_size=0)
    graph._call = CompiledCall(model, xla_after=None)
    out["graph"] = graph
    if args.bf16:
        out["bfloat16"] = Predictor(model, max_size=0, precision="bfloat16")
        bf_graph = Predictor(model, max_size=0, precision="bfloat16")
        bf_graph._call = CompiledCall(bf_graph._model, xla_after=None)
        out["bfloat16_graph"] = bf_graph
    return out


def _slug(cpu):
    return "-".join(cpu.lower().split()[:2]) or "cpu"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="also the bfloat16 copy (graph and XLA)")
    p.add_argument("--out")
    args = p.parse_args()
    import speed

    speed.setup_threads(args.threads)
    import numpy as np
    import torch

    from fcn_keras.models.layers import Preprocess

    load_start = os.getloadavg()
    model, net = speed.build_pair("vgg16", "8s", args.width)
    photo = np.random.default_rng(3).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    xp = torch.from_numpy(np.asarray(Preprocess()(photo[None])).transpose(0, 3, 1, 2).copy())

    def port():
        with torch.inference_mode():
            return net(xp).numpy()

    predictors = variants(model, args)
    fns = {name: (lambda pr=pr: pr.predict(photo)) for name, pr in predictors.items()}
    fns["port"] = port
    first = {}
    for name, fn in fns.items():
        first[name] = []
        for _ in range(2):
            t = time.perf_counter()
            fn()
            first[name].append(time.perf_counter() - t)
    want = port()[0].transpose(1, 2, 0)
    checks = {}
    for name, pr in predictors.items():
        labels, scores = pr.predict(photo)
        rel = float(np.abs(scores - want).max() / np.abs(want).max())
        agree = float((labels == want.argmax(-1)).mean())
        checks[name] = {"relative_error": rel, "label_agreement": agree}
        if not name.startswith("bfloat16") and rel > 1e-4:
            raise SystemExit(f"{name} disagrees with the port: relative error {rel:.2e}")
    times = {name: [] for name in fns}
    for r in range(args.repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in times.items()), flush=True)
    load_end = os.getloadavg()
    rows = {}
    for name in fns:
        per_round = lambda base: [a / b for a, b in zip(times[name], times[base])]  # noqa: E731
        rows[name] = {"median_s": statistics.median(times[name]), "min_s": min(times[name]),
                      "max_s": max(times[name]), "first_two_calls_s": first[name],
                      "vs_port": statistics.median(per_round("port")), "vs_port_rounds": per_round("port"),
                      "vs_eager": statistics.median(per_round("eager")),
                      **checks.get(name, {})}
    print(f"\nFCN-8s VGG16 width {args.width:g}, {args.size}x{args.size} photo, {args.threads} threads, "
          f"load average {load_start[0]:.1f} -> {load_end[0]:.1f}")
    print("| variant | first two calls, s | median s (min..max) | / eager | / port (per round) "
          "| vs port: rel. error, labels |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        check = (f"{r['relative_error']:.1e}, {100 * r['label_agreement']:.2f}%"
                 if "relative_error" in r else "")
        print(f"| {name} | {r['first_two_calls_s'][0]:.2f}, {r['first_two_calls_s'][1]:.2f} | "
              f"{r['median_s']:.2f} ({r['min_s']:.2f}..{r['max_s']:.2f}) | {r['vs_eager']:.2f} | "
              f"{r['vs_port']:.2f} ({', '.join(f'{v:.2f}' for v in r['vs_port_rounds'])}) | {check} |")
    name = f"default_predict_{_slug(speed.cpu_name()[0])}_{args.threads}t.json"
    out = args.out or os.path.join(HERE, "results", name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"args": vars(args), "rows": rows, "load_average": [load_start, load_end],
                   "cpu_count": os.cpu_count()}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
