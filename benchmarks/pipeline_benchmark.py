"""Input pipeline vs model: is the model, not the input, the bottleneck?

Writes a VOC-layout tree of 500x500 JPEG images with palette-PNG masks to a temporary
folder, then measures on this machine:

1. pipeline images/s: ``fcn_keras.data.pipeline(from_directory(...))`` alone (decode,
   checks, random flip, batching, prefetch), whole images batch 1 (the paper) and 4 crops;
2. model training images/s: ``FCN.fit`` steps on 500x500 batch 1 from constant tensors;
3. the same ``fit`` fed by the pipeline: if (3) ~= (2), the input is not the bottleneck.

    python benchmarks/pipeline_benchmark.py [--width 1.0] [--images 32] [--steps 4]

Prints figures (no assertions); ratios are only meaningful within one run.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_tree(root, n, size, seed=0):
    from PIL import Image

    from fcn_keras.conventions import IGNORE_LABEL
    from fcn_keras.viz import voc_palette

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "JPEGImages"))
    os.makedirs(os.path.join(root, "SegmentationClass"))
    os.makedirs(os.path.join(root, "ImageSets", "Segmentation"))
    pal = voc_palette().reshape(-1).tolist()
    ids = []
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        # photo-like content (smooth + noise) so JPEG sizes are realistic
        base = rng.uniform(0, 255, 3) + 60 * np.sin(xx[..., None] / rng.uniform(5, 40)
                                                     + rng.uniform(0, 6, 3))
        img = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        mask = ((xx // 50 + yy // 50 + i) % 21).astype(np.uint8)
        mask[::37] = IGNORE_LABEL
        name = f"img_{i:05d}"
        Image.fromarray(img).save(os.path.join(root, "JPEGImages", name + ".jpg"), quality=90)
        m = Image.fromarray(mask, mode="P")
        m.putpalette(pal)
        m.save(os.path.join(root, "SegmentationClass", name + ".png"))
        ids.append(name)
    with open(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")


def pipeline_rate(ds, n_batches, batch):
    it = iter(ds)
    next(it)  # warm-up (tracing, first decode)
    t = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return n_batches * batch / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=float, default=1.0, help="model width (1.0 = real FCN-8s)")
    ap.add_argument("--images", type=int, default=32, help="images in the generated tree")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--steps", type=int, default=4, help="timed training steps")
    ap.add_argument("--backbone", default="vgg16")
    ap.add_argument("--head", default="8s")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    import fcn_keras
    from fcn_keras import data

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, devices: {[d.name for d in tf.config.list_logical_devices()]}")
    with tempfile.TemporaryDirectory() as root:
        write_tree(root, args.images, args.size)
        src = data.from_directory(root, "train")
        n = 3 * args.images
        whole = data.pipeline(src, batch_size=1, training=True, repeat=True, seed=0)
        crops = data.pipeline(src, batch_size=4, crop_size=args.size - 100, training=True,
                              scale_range=(0.5, 2.0), repeat=True, seed=0)
        r_whole = pipeline_rate(whole, n, 1)
        r_crops = pipeline_rate(crops, n // 4, 4)
        print(f"pipeline, whole {args.size}x{args.size} images, batch 1, flip: "
              f"{r_whole:8.1f} images/s")
        print(f"pipeline, scale 0.5-2 + {args.size - 100} crops, batch 4:      "
              f"{r_crops:8.1f} images/s")

        model = fcn_keras.build(args.backbone, args.head, num_classes=21, width=args.width)
        model.compile()  # the paper's recipe: SGD 0.99, weight decay, 4 metrics
        x = tf.random.uniform((1, args.size, args.size, 3), 0, 255)
        y = tf.cast(tf.random.uniform((1, args.size, args.size), 0, 21, tf.int32), tf.int32)
        const = tf.data.Dataset.from_tensors((x, y)).repeat()
        model.fit(const, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)  # warm-up
        t = time.perf_counter()
        model.fit(const, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
        r_model = args.steps / (time.perf_counter() - t)
        square = data.pipeline(src, batch_size=1, crop_size=args.size, training=True,
                               repeat=True, seed=0)
        model.fit(square, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        t = time.perf_counter()
        model.fit(square, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
        r_fed = args.steps / (time.perf_counter() - t)
        name = f"{args.backbone} FCN-{args.head} width {args.width:g}"
        print(f"model training, {name}, {args.size}x{args.size} batch 1, constant input: "
              f"{r_model:8.2f} images/s")
        print(f"model training, same, fed by the pipeline:                        "
              f"{r_fed:8.2f} images/s")
        print(f"pipeline / model ratio: {r_whole / r_model:.0f}x (whole images); "
              f"fed / constant: {r_fed / r_model:.2f}")


if __name__ == "__main__":
    main()
