"""Peak memory (RSS) of predicting one 4000x3000 photo with full-width FCN-8s VGG16.

Each measurement runs in its own process (random weights, 21 classes, CPU): the model is
built, the peak-RSS counter is reset (/proc/self/clear_refs), one photo is predicted through
`fcn_keras.predict.Predictor`, and the process's peak RSS (VmHWM) is printed. Full resolution
is measured only with --full (it needs far more memory than the default policy); otherwise it is
estimated from the measured network sizes, linear in the padded pixel count (the nets pad the
input by 100 pixels on each side), which is what activation memory follows.

    python benchmarks/predict_memory.py                     # default policy + full-res estimate
    python benchmarks/predict_memory.py --full              # also measure --max-size 0
"""

import argparse
import json
import os
import subprocess
import sys
import time

PHOTO = (3000, 4000)  # height, width


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(max_size):
    import numpy as np

    import fcn_keras
    from fcn_keras.predict import Predictor

    model = fcn_keras.build("vgg16", "8s", num_classes=21)
    predictor = Predictor(model, max_size=max_size)
    image = np.random.default_rng(0).integers(0, 256, size=PHOTO + (3,), dtype=np.uint8)
    after_setup = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    t = time.perf_counter()
    labels, _ = predictor.predict(image, return_scores=False)
    seconds = time.perf_counter() - t
    assert labels.shape == PHOTO
    print(json.dumps({"max_size": max_size, "network": predictor.network_size(*PHOTO),
                      "rss_after_setup": after_setup, "peak": _status("VmHWM"), "peak_reset": reset,
                      "seconds": seconds}))


def measure(max_size):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, __file__, "--child", str(max_size)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="1024,1448,2048", help="--max-size values to measure")
    parser.add_argument("--full", action="store_true", help="also measure full resolution (--max-size 0)")
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    gb = 1024 ** 3
    print(f"photo {PHOTO[1]}x{PHOTO[0]}, FCN-8s VGG16 width 1.0, 21 classes, CPU, one process per row")
    rows = [measure(int(s)) for s in args.sizes.split(",")] + ([measure(0)] if args.full else [])
    for r in rows:
        h, w = r["network"]
        print(f"--max-size {r['max_size']:>5}: network input {w}x{h}: RSS after model build "
              f"{r['rss_after_setup'] / gb:.2f} GB, peak while predicting {r['peak'] / gb:.2f} GB "
              f"({r['seconds']:.1f} s){'' if r['peak_reset'] else ' (peak includes the build)'}")
    measured = [r for r in rows if r["max_size"]]
    if len(measured) >= 2 and not args.full:
        import numpy as np

        x = np.array([(r["network"][0] + 200) * (r["network"][1] + 200) for r in measured], float)
        y = np.array([r["peak"] for r in measured], float)
        slope, icpt = np.polyfit(x, y, 1)
        full = slope * (PHOTO[0] + 200) * (PHOTO[1] + 200) + icpt
        print(f"--max-size     0: network input {PHOTO[1]}x{PHOTO[0]}: estimated peak {full / gb:.1f} GB "
              f"(linear fit of the rows above in padded pixels: {slope * 1e6 / gb:.3f} GB per "
              "megapixel)")


if __name__ == "__main__":
    main()
