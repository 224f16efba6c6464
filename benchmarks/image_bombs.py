"""Peak memory (RSS) of image files that declare huge sizes: `fcn-keras predict`,
`fcn_keras.data.pipeline` (one batch) and `from_directory`, each in its own process.

Each child first runs the same path on a small image (TensorFlow, the model and the pipeline
set up), then resets the peak-RSS counter (/proc/self/clear_refs) and reads the hostile file;
the figure is the peak above the RSS at that moment. The files (tests/bombs.py) are all-black
PNGs under 1 MB: 13000 x 13000 (169 MP, refused by default) and 9459 x 9459 (89.47 MP, just
under the default limit `fcn_keras.images.MAX_PIXELS`, so decoded), 8-bit RGB and 16-bit grey.

    python benchmarks/image_bombs.py                       # this checkout
    python benchmarks/image_bombs.py --code OLD --sizes 6000   # another checkout (e.g. git archive)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from predict_memory import _status  # VmHWM / VmRSS of this process, in bytes (benchmarks/ is on the path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = {"rgb8": dict(channels=3, bits=8), "grey16": dict(channels=1, bits=16)}


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    return _status("VmRSS")


def _voc(root, image_file, size):
    """A one-example VOC tree whose image is `image_file` and whose mask is black, `size`."""
    import shutil

    from PIL import Image

    from tests.bombs import write_png

    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(image_file, os.path.join(root, "JPEGImages", "x.jpg"))
    if size[0] * size[1] > 4096:
        write_png(os.path.join(root, "SegmentationClass", "x.png"), *size, channels=1)
    else:
        Image.new("L", size).save(os.path.join(root, "SegmentationClass", "x.png"))
    with open(os.path.join(root, "ImageSets", "Segmentation", "val.txt"), "w") as f:
        f.write("x\n")
    return root


def child(case, path, size, work):
    """Runs `case` on a small file, resets the peak, runs it on `path`; prints JSON."""
    from PIL import Image

    small = os.path.join(work, "small.png")
    Image.new("RGB", (64, 48), (90, 120, 30)).save(small)
    if case == "predict":
        import fcn_keras
        from fcn_keras.cli import main

        model = os.path.join(work, "m.keras")
        fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625).save(model)

        def run(f, out):
            return main(["predict", f, "--model", model, "--out", os.path.join(work, out), "--quiet"])
    else:
        from fcn_keras import data

        def run(f, out):
            src = data.from_directory(_voc(os.path.join(work, out), f, size if f == path else (64, 48)), "val")
            try:
                with data.reraise_data_errors():
                    if case == "pipeline":
                        return [b[0].shape for b in data.pipeline(src, batch_size=1).take(1)]
                    return [x[0].shape for x in src]
            except data.DataError as e:
                return f"DataError: {str(e)[-120:]}"

    run(small, "warm")
    base = _reset_peak()
    result = run(path, "bomb")
    print(json.dumps({"case": case, "base": base, "peak": _status("VmHWM"), "result": str(result)}))


def measure(case, path, size, code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([code, ROOT]))
    with tempfile.TemporaryDirectory() as work:
        run = subprocess.run([sys.executable, __file__, "--child", case, path, f"{size[0]}x{size[1]}", work],
                             env=env, capture_output=True, text=True)
    if run.returncode != 0:
        return {"case": case, "failed": run.stderr.strip().splitlines()[-1:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--code", default=ROOT, help="the checkout whose fcn_keras is measured")
    parser.add_argument("--sizes", default="13000,9459", help="square sides to measure")
    parser.add_argument("--cases", default="predict,pipeline,from_directory")
    args = parser.parse_args()
    if args.child:
        case, path, size, work = args.child
        return child(case, path, tuple(int(v) for v in size.split("x")), work)
    sys.path.insert(0, ROOT)
    from tests.bombs import write_png

    gb = 1024 ** 3
    print(f"fcn_keras from {args.code}; peak RSS above the RSS after a small image, one process each")
    with tempfile.TemporaryDirectory() as files:
        for side in (int(s) for s in args.sizes.split(",")):
            for kind, spec in KINDS.items():
                path = write_png(os.path.join(files, f"{kind}_{side}.png"), side, side, **spec)
                mb = os.path.getsize(path) / 2 ** 20
                for case in args.cases.split(","):
                    r = measure(case, path, (side, side), args.code)
                    if "failed" in r:
                        print(f"{side}x{side} {kind:6} ({mb:.2f} MB) {case:14}: failed {r['failed']}")
                        continue
                    print(f"{side}x{side} {kind:6} ({mb:.2f} MB) {case:14}: peak +{(r['peak'] - r['base']) / gb:.2f} GB"
                          f" (base {r['base'] / gb:.2f} GB): {r['result'][:110]}", flush=True)


if __name__ == "__main__":
    main()
