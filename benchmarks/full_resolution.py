"""Full-resolution prediction in exact tiles: peak memory and time of full-width FCN-8s VGG16
on 1, 4 and 12 megapixel photos, tiled (`Predictor(max_size=0, tile="auto")`: a Keras model
is tiled in stages, `fcn_keras.staged`) and, where it fits, whole.

Each measurement runs in its own process (21 classes, CPU) and loads the net as a user loads
a trained one, `fcn_keras.build("vgg16", "8s", num_classes=21, weights=<.weights.h5>)` (the
file, random weights with non-zero score layers, is written once by a process of its own);
one small warm-up prediction is made, then one photo is predicted and the process's peak RSS
(VmHWM: model, loading, runtime and all, not reset) and the time are printed. The tiled and whole runs of a size alternate, so the time ratio compares runs
made under the same load; the load average is recorded with the figures.

    python benchmarks/full_resolution.py                    # 1, 4, 12 MP tiled; 1, 4 MP whole
    python benchmarks/full_resolution.py --sizes 1 --whole-up-to 1
    python benchmarks/full_resolution.py --sizes 4 --cuts 16 8   # staged tiling cut at stride 16, then 8
    python benchmarks/full_resolution.py --sizes 4 --cuts 0      # 0: whole-net windows (tiling.plan)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from predict_memory import _status  # VmHWM / VmRSS of this process, in bytes (benchmarks/ is on the path)

SIZES = {1: (866, 1155), 4: (1732, 2309), 12: (3000, 4000)}  # megapixels -> (height, width), 4:3


def write_weights(path):
    """The benchmark's net: FCN-8s VGG16 as built (random), score layers N(0, 0.01), saved."""
    import numpy as np

    import fcn_keras

    model = fcn_keras.build("vgg16", "8s", num_classes=21)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # score layers start at zero: give the net something to say
        if layer.name.startswith("score_"):
            layer.set_weights([rng.normal(0, 0.01, w.shape).astype("float32") for w in layer.get_weights()])
    model.save_weights(path)


def child(weights, megapixels, tiled, cut=None):
    import numpy as np

    import fcn_keras
    from fcn_keras.predict import Predictor

    model = fcn_keras.build("vgg16", "8s", num_classes=21, weights=weights)
    rng = np.random.default_rng(0)
    predictor = Predictor(model, max_size=0, tile="auto" if tiled else None)
    if tiled and cut is not None:  # another cut stride than the derived one, or none (0)
        from fcn_keras import tiling
        from fcn_keras.staged import Staged

        predictor._staged = Staged(model, cut=cut) if cut else None
        predictor.tile_spec = predictor._staged.spec if cut else tiling.tile_spec(model)
        predictor._tile_budget = None  # this cut, at any size
        predictor.tile = (predictor._staged.tile_for(*SIZES[megapixels], 1 << 30) if cut
                          else predictor.tile_spec.tile_for_budget(1 << 30))
    predictor.predict(np.zeros((64, 64, 3), np.uint8), return_scores=False)  # warm-up
    shape = SIZES[megapixels]
    image = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    t = time.perf_counter()
    labels, _ = predictor.predict(image, return_scores=False)
    seconds = time.perf_counter() - t
    assert labels.shape == shape
    staged = predictor._staged
    if tiled and staged and cut is None:  # the staging tile="auto" took for this size
        staged = staged.for_image(*shape, 1 << 30)
    tile = staged.tile_for(*shape, 1 << 30) if tiled and staged else predictor.tile
    print(json.dumps({"megapixels": megapixels, "shape": shape, "tiled": tiled, "tile": tile,
                      "margin": (staged.spec if staged else predictor.tile_spec).before if tiled else None,
                      "cut": staged.cut if tiled and staged else None,
                      "peak_rss": _status("VmHWM"), "seconds": seconds}))


def measure(weights, megapixels, tiled, cut=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    run = subprocess.run([sys.executable, __file__, "--weights", weights, "--child", str(megapixels),
                          str(int(tiled)), str(-1 if cut is None else cut)],
                         env=env, capture_output=True, text=True)
    if run.returncode:
        return {"megapixels": megapixels, "tiled": tiled, "error": run.stderr.strip().splitlines()[-1:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 12], choices=sorted(SIZES))
    p.add_argument("--whole-up-to", type=int, default=4, help="measure whole images up to this many MP")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                 "full_resolution.json"))
    p.add_argument("--cuts", type=int, nargs="+", default=[None],
                   help="staged tiling's cut strides to measure (0: whole-net windows); default: the derived one")
    p.add_argument("--weights", help="the net's .weights.h5 (default: written once into a temporary folder)")
    p.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    p.add_argument("--write-weights", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.write_weights:
        return write_weights(args.write_weights)
    if args.child:
        return child(args.weights, args.child[0], bool(args.child[1]), None if args.child[2] < 0 else args.child[2])
    with tempfile.TemporaryDirectory(prefix="fcn_keras-fullres-") as tmp:
        weights = args.weights or os.path.join(tmp, "fcn8s.weights.h5")
        if not os.path.exists(weights):
            subprocess.run([sys.executable, __file__, "--write-weights", weights], check=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True)
        rows = run_all(args, weights)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "cpu_count": os.cpu_count()}, f, indent=1)
    print(f"wrote {args.out}")


def run_all(args, weights):
    """Measures every size (tiled and whole runs alternating); returns the rows."""
    rows = []
    print("| photo | tile (halo), cut | tiled: peak RSS, s | whole: peak RSS, s | tiled / whole time |")
    print("|---|---|---|---|---|")
    for mp in args.sizes:
        # tiled and whole runs alternate: the whole run sits between the first two tiled ones
        tiled_runs = [measure(weights, mp, True, args.cuts[0])]
        whole = measure(weights, mp, False) if mp <= args.whole_up_to else None
        tiled_runs += [measure(weights, mp, True, cut) for cut in args.cuts[1:]]
        for tiled in tiled_runs:
            print_row(mp, tiled, whole, rows)
    return rows


def print_row(mp, tiled, whole, rows):
    """One table row (and its record in `rows`) for a tiled run and the whole run of its size."""
    load = os.getloadavg()[0]
    rows.append({"tiled": tiled, "whole": whole, "load_average": load})
    gb = lambda r: f"{r['peak_rss'] / 2**30:.2f} GB, {r['seconds']:.1f} s" if r and "peak_rss" in r else (  # noqa: E731
        r.get("error") if r else "not run")
    ratio = (f"{tiled['seconds'] / whole['seconds']:.2f}"
             if whole and "seconds" in whole and "seconds" in tiled else "")
    tile = f"{tiled.get('tile')} ({tiled.get('margin')}), {tiled.get('cut') or 'none'}" if "tile" in tiled else ""
    h, w = SIZES[mp]
    print(f"| {w}x{h} ({mp} MP) | {tile} | {gb(tiled)} | {gb(whole)} | {ratio} |  load {load:.1f}", flush=True)


if __name__ == "__main__":
    main()
