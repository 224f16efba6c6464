"""Label agreement of a trained model's bfloat16 copy with its float32 self, on the synthetic
set's validation split (what `--precision auto` gives up where it picks bfloat16).

    fcn-keras demo --out demo_output
    python benchmarks/bfloat16_labels.py --model demo_output/train/model.keras
    python benchmarks/bfloat16_labels.py --model random-vgg16 --num-examples 32 --size 256 \
        --out benchmarks/results/bfloat16_labels_vgg16.json

Each image is predicted at its own size by `Predictor(model)` and `Predictor(model,
precision="bfloat16")`. Reports the share of pixels with equal labels, among them the
wide-margin pixels (float32 top-two logit gap over 5% of the image's largest |logit|, as
`speed.py --bf16` counts them) and the rest, and the mean IU of both against the truth.

`--model random-vgg16` is the full-width FCN-8s VGG16 (21 classes) with seeded random weights,
score layers included (`random_weights.random_fcn`): no ImageNet or VOC
weights reach this machine, and a full-width net's bfloat16 rounding differs from a small one's
(longer sums). Its mean IU against the 4-class truth means nothing and is not reported.
`--size` resizes every validation image to that square size (default: their own 64..128 px).
"""

import argparse
import json
import os

from random_weights import random_fcn  # benchmarks/ is on the path

RANDOM = "random-vgg16"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained model on the synthetic set (.keras), or random-vgg16")
    p.add_argument("--size", type=int, help="resize the validation images to this square size")
    p.add_argument("--num-examples", type=int, default=128, help="validation images (default: all 128)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                 "bfloat16_labels.json"))
    args = p.parse_args()

    import numpy as np

    from fcn_keras import data
    from fcn_keras.loading import load_model
    from fcn_keras.metrics import confusion_matrix, scores_from_confusion
    from fcn_keras.predict import Predictor

    model = random_fcn("vgg16", "8s") if args.model == RANDOM else load_model(args.model)
    src = data.shapes("val", num_examples=args.num_examples, **({"image_size": args.size} if args.size else {}))
    f32, bf16 = Predictor(model, max_size=0), Predictor(model, max_size=0, precision="bfloat16")
    n = src.num_classes
    counts = {"pixels": 0, "equal": 0, "wide": 0, "wide_equal": 0}
    conf = {"float32": np.zeros((n, n), np.int64), "bfloat16": np.zeros((n, n), np.int64)}
    for image, mask in src:
        image, mask = np.asarray(image).astype(np.uint8), np.asarray(mask)
        labels, scores = f32.predict(image)
        fast, _ = bf16.predict(image, return_scores=False)
        top2 = np.sort(scores, -1)[..., -2:]
        wide = top2[..., 1] - top2[..., 0] > 0.05 * np.abs(scores).max()
        same = labels == fast
        counts["pixels"] += same.size
        counts["equal"] += int(same.sum())
        counts["wide"] += int(wide.sum())
        counts["wide_equal"] += int(same[wide].sum())
        for name, got in (("float32", labels), ("bfloat16", fast)):
            if args.model != RANDOM:
                conf[name] += np.asarray(confusion_matrix(mask, got, n))
    rest = counts["pixels"] - counts["wide"]
    result = {**counts, "agreement": counts["equal"] / counts["pixels"],
              "wide_margin_fraction": counts["wide"] / counts["pixels"],
              "wide_margin_agreement": counts["wide_equal"] / max(counts["wide"], 1),
              "rest_agreement": (counts["equal"] - counts["wide_equal"]) / max(rest, 1),
              "mean_iou": None if args.model == RANDOM else
              {k: float(scores_from_confusion(c)["mean_iou"]) for k, c in conf.items()}}
    print(f"{args.model}: {args.num_examples} validation images, {counts['pixels']} pixels")
    print(f"labels equal: {100 * result['agreement']:.3f}% of all pixels; wide-margin pixels "
          f"({100 * result['wide_margin_fraction']:.1f}%): {100 * result['wide_margin_agreement']:.3f}%; "
          f"the rest: {100 * result['rest_agreement']:.3f}%")
    if result["mean_iou"]:
        print(f"mean IU float32 {result['mean_iou']['float32']:.4f}, bfloat16 {result['mean_iou']['bfloat16']:.4f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "num_examples": args.num_examples, "size": args.size, **result}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
