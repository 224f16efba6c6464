"""Does the demo's net converge as well in mixed_bfloat16 as in float32?

    python benchmarks/mixed_bfloat16_convergence.py                 # seed 0, the demo's 10 epochs
    python benchmarks/mixed_bfloat16_convergence.py --seeds 0 1 --epochs 10

For each seed, the demo's recipe (`fcn_keras.cli.demo`: FCN-8s with the AlexNet layout at
width 0.125, Adam at the scratch learning rate, the bundled synthetic set at 64x64 pixels,
batch 8) is trained twice, each in a fresh process: float32, and `dtype="mixed_bfloat16"`
(float32 weights, bfloat16 compute, float32 logits). Same seed, same data order, same epochs.
Both are scored on the validation split with `fcn_keras.training.evaluate` (the paper's four
metrics); the report gives the mean IU of each, their difference, and the seconds per epoch.
The issue's bar: the mixed_bfloat16 mean IU within 0.01 of float32's. Results:
benchmarks/results/mixed_bfloat16_convergence.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(precision, seed, epochs):
    """Trains and scores one run; prints one JSON line."""
    import keras

    import fcn_keras
    from fcn_keras import data, training
    from fcn_keras.cli.demo import DEMO, VAL_SIZE
    from fcn_keras.training.defaults import SCRATCH_LR, SCRATCH_OPTIMIZER

    keras.utils.set_random_seed(seed)
    classes = list(data.SHAPES_CLASSES)
    train_ds = data.pipeline(data.shapes("train", image_size=VAL_SIZE), batch_size=8, training=True,
                             seed=seed, cache=True)
    val_ds = data.pipeline(data.shapes("val", image_size=VAL_SIZE), batch_size=16, cache=True)
    model = fcn_keras.build(DEMO["backbone"], DEMO["head"], num_classes=len(classes), width=DEMO["width"],
                            dtype=None if precision == "float32" else precision)
    model.compile(optimizer=training.make_optimizer(SCRATCH_OPTIMIZER, SCRATCH_LR))
    t = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - t
    scores = training.evaluate(model, val_ds, progress=False, boundary=False)
    print(json.dumps({"precision": precision, "seed": seed, "epochs": epochs,
                      "seconds_per_epoch": seconds / epochs,
                      **{k: scores[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iou",
                                                "frequency_weighted_iou")}}))


def run(precision, seed, epochs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", precision, str(seed), str(epochs)],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{precision} seed {seed} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=10, help="the demo's 10 by default")
    p.add_argument("--out", default=os.path.join(HERE, "results", "mixed_bfloat16_convergence.json"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), int(args.child[2]))
    rows = []
    print("| seed | float32 mean IU | mixed_bfloat16 mean IU | difference | s/epoch float32 | s/epoch mixed_bfloat16 |")
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        f32, bf16 = run("float32", seed, args.epochs), run("mixed_bfloat16", seed, args.epochs)
        rows.append({"float32": f32, "mixed_bfloat16": bf16, "load_average": os.getloadavg()[0]})
        print(f"| {seed} | {f32['mean_iou']:.4f} | {bf16['mean_iou']:.4f} | "
              f"{bf16['mean_iou'] - f32['mean_iou']:+.4f} | {f32['seconds_per_epoch']:.1f} | "
              f"{bf16['seconds_per_epoch']:.1f} |", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "epochs": args.epochs, "cpu_count": os.cpu_count()}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
