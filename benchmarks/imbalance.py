"""The rare class's IoU under plain cross-entropy, median-frequency weights, Dice and Lovász.

Generates an imbalanced folder pair (RGB colour masks with a `class_dict.csv`, as a labelling
tool exports them) in a temporary folder, reads it with `fcn_keras.data.from_folders`, and
trains the same small FCN from the same initial weights once per loss, then prints the val
set's per-class IoU and mean IU (the paper's definitions). A printed figure, not a test.

Classes: background (grey noise), field (a large green-ish region, ~35% of pixels), car (a
blue-ish block, ~7%) and sign (a small red-ish square in half of the images, under 1%).

    python benchmarks/imbalance.py                 # defaults below
    python benchmarks/imbalance.py --steps 300 --train 256 --losses ce,ce-mf,dice,lovasz
"""

import argparse
import os
import tempfile
import time

import numpy as np

CLASSES = (("background", (0, 0, 0)), ("field", (0, 128, 0)), ("car", (0, 0, 192)),
           ("sign", (192, 0, 0)))


def _example(rng, size):
    """(image uint8 (S, S, 3), labels uint8 (S, S)): one synthetic street-like picture."""
    s = size
    labels = np.zeros((s, s), np.uint8)
    yy, xx = np.mgrid[0:s, 0:s]
    cy, cx, ry, rx = rng.uniform(0.5, 0.8) * s, rng.uniform(0.2, 0.8) * s, rng.uniform(0.25, 0.4) * s, \
        rng.uniform(0.3, 0.5) * s
    labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    h, w = int(rng.integers(s // 8, s // 5)), int(rng.integers(s // 6, s // 3))
    y, x = int(rng.integers(0, s - h)), int(rng.integers(0, s - w))
    labels[y:y + h, x:x + w] = 2
    if rng.random() < 0.5:
        k = max(3, s // 12)
        y, x = int(rng.integers(0, s - k)), int(rng.integers(0, s - k))
        labels[y:y + k, x:x + k] = 3
    base = np.array([[110, 110, 110], [70, 140, 60], [60, 70, 160], [170, 80, 70]], np.float64)
    image = base[labels] + rng.normal(0, 28, size=(s, s, 3)) + rng.uniform(-30, 30, size=3)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels


def write_folder_pair(root, n_train, n_val, size, seed=0):
    """images/{train,val}/*.png, masks/{train,val}/*.png (colour) and class_dict.csv in `root`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = np.array([c for _, c in CLASSES], np.uint8)
    for split, n in (("train", n_train), ("val", n_val)):
        for d in ("images", "masks"):
            os.makedirs(os.path.join(root, d, split), exist_ok=True)
        for i in range(n):
            image, labels = _example(rng, size)
            Image.fromarray(image).save(os.path.join(root, "images", split, f"{i:04d}.png"))
            Image.fromarray(colours[labels]).save(os.path.join(root, "masks", split, f"{i:04d}.png"))
    path = os.path.join(root, "class_dict.csv")
    with open(path, "w") as f:
        f.write("name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in CLASSES))
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=192, help="training images")
    p.add_argument("--val", type=int, default=64, help="validation images")
    p.add_argument("--size", type=int, default=64, help="image side, pixels")
    p.add_argument("--steps", type=int, default=240, help="training steps per loss")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--losses", default="ce,ce-mf,dice,lovasz",
                   help="comma-separated: ce, ce-mf (median-frequency weights), ce-isqrt, focal, "
                        "dice, lovasz, ce+dice")
    args = p.parse_args()

    import keras

    import fcn_keras
    from fcn_keras import data, losses, training

    root = tempfile.mkdtemp(prefix="fcn_imbalance_")
    colors = write_folder_pair(root, args.train, args.val, args.size)
    train_src = data.from_folders(f"{root}/images", f"{root}/masks", "train", colors=colors)
    val_src = data.from_folders(f"{root}/images", f"{root}/masks", "val", colors=colors)
    freq = data.class_frequencies(train_src, progress=False)
    share = freq / freq.sum()
    print(f"train pixel shares: " + ", ".join(f"{n} {s:.2%}" for (n, _), s in zip(CLASSES, share)))
    weights = {"ce-mf": data.class_weights(freq), "ce-isqrt": data.class_weights(freq, "inverse_sqrt")}
    print("median-frequency weights: " + ", ".join(f"{w:.3g}" for w in weights["ce-mf"]))

    val_ds = data.pipeline(val_src, batch_size=16, cache=True)
    rows = []
    for name in args.losses.split(","):
        keras.utils.set_random_seed(0)  # the same initial weights and batches for every loss
        model = fcn_keras.build("alexnet", "8s", num_classes=len(CLASSES), width=0.125)
        if name in weights:
            loss = losses.CrossEntropy(class_weights=weights[name])
        else:
            loss = losses.get(name)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=[])
        train_ds = data.pipeline(train_src, batch_size=args.batch, training=True, cache=True,
                                 repeat=True, seed=0)
        start = time.perf_counter()
        model.fit(train_ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
        seconds = time.perf_counter() - start
        scores = training.evaluate(model, val_ds, class_names=[n for n, _ in CLASSES], progress=False)
        iou = scores["per_class_iou"]
        rows.append((name, iou, scores["mean_iou"], scores["pixel_accuracy"], seconds))
        print(f"{name}: sign IoU {iou['sign'] or 0:.3f}, mean IU {scores['mean_iou']:.3f} "
              f"({seconds:.0f} s)", flush=True)

    print(f"\n{args.train} train / {args.val} val images of {args.size}x{args.size}, AlexNet FCN-8s "
          f"width 0.125 from scratch, Adam 1e-3, {args.steps} steps of batch {args.batch}; "
          f"val IoU per class:\n")
    names = [n for n, _ in CLASSES]
    print("| loss | " + " | ".join(names) + " | mean IU | pixel acc. | train s |")
    print("|---" * (len(names) + 4) + "|")
    for name, iou, miu, acc, seconds in rows:
        cells = " | ".join("-" if iou[n] is None else f"{iou[n]:.3f}" for n in names)
        print(f"| {name} | {cells} | {miu:.3f} | {acc:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
