"""What test-time augmentation and dense CRF refinement add: mean IU and boundary F-score of a
trained model on the synthetic set's validation split, as drawn (hard, aliased edges plus
noise) and with soft edges (each image blurred, the masks as they are).

    fcn-keras demo --out demo_output                       # a trained model, if none yet
    python benchmarks/refinement.py --model demo_output/train/model.keras

Variants: plain, flip, flip + scales 0.75/1/1.25, CRF (DeepLab's defaults), flip + CRF. Each
image is predicted at its own size through `fcn_keras.predict.Predictor`; the scores are the
paper's mean IU over the split's confusion matrix and the mean boundary F-score (0.75% of the
diagonal, `fcn_keras.metrics.BoundaryF`).
"""

import argparse
import json
import os
import time

VARIANTS = {
    "plain": {},
    "flip": {"tta": "flip"},
    "flip + scales 0.75,1,1.25": {"tta": "flip,scales=0.75,1,1.25"},
    "CRF": {"refine": "crf"},
    "flip + CRF": {"tta": "flip", "refine": "crf"},
}


def soft(image, radius=1.5):
    """The image blurred (Gaussian, `radius` pixels): soft, anti-aliased object edges."""
    import numpy as np
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def score(predictor, examples, num_classes):
    """{"mean_iou", "boundary_f", "seconds"} of `predictor` over [(image, mask)]."""
    import numpy as np

    from fcn_keras.metrics import BoundaryF, confusion_matrix, scores_from_confusion

    hist, bf = np.zeros((num_classes, num_classes), np.int64), BoundaryF(num_classes)
    t = time.perf_counter()
    for image, mask in examples:
        labels, _ = predictor.predict(image, return_scores=False)
        hist += confusion_matrix(mask, labels, num_classes)
        bf.update(mask, labels)
    return {"mean_iou": scores_from_confusion(hist)["mean_iou"], "boundary_f": bf.result()["boundary_f"],
            "seconds": time.perf_counter() - t}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained model on the synthetic set (.keras)")
    p.add_argument("--num-examples", type=int, default=128, help="validation images (default: all 128)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                 "refinement.json"))
    args = p.parse_args()

    import numpy as np

    from fcn_keras import data
    from fcn_keras.loading import load_model
    from fcn_keras.predict import Predictor

    model = load_model(args.model)
    src = data.shapes("val", num_examples=args.num_examples)
    sets = {"as drawn": [(np.asarray(i), np.asarray(m)) for i, m in src]}
    sets["soft edges"] = [(soft(i), m) for i, m in sets["as drawn"]]
    results = {}
    print("| variant | " + " | ".join(f"{s}: mean IU, boundary F" for s in sets) + " | s / image |")
    print("|---|" + "---|" * (len(sets) + 1))
    for name, options in VARIANTS.items():
        predictor = Predictor(model, max_size=0, **options)
        row = {s: score(predictor, ex, src.num_classes) for s, ex in sets.items()}
        results[name] = row
        per_image = sum(r["seconds"] for r in row.values()) / sum(len(ex) for ex in sets.values())
        cells = " | ".join(f"{r['mean_iou']:.4f}, {r['boundary_f']:.4f}" for r in row.values())
        print(f"| {name} | {cells} | {per_image:.3f} |", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "num_examples": args.num_examples, "results": results}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
