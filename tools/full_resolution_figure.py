"""Makes the README's full-resolution picture from a real run: docs/full_resolution.png.

    fcn-keras demo --out demo_output                     # a trained model, if none yet
    python tools/full_resolution_figure.py --model demo_output/train/model.keras

Four panels of validation images of the synthetic set with soft (blurred) edges: the photo,
the plain prediction, the prediction with flip TTA and dense CRF refinement, and the truth,
each label map over the photo; the per-image mean IU and boundary F-score under each.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def _caption(image, text, scale):
    """`image` enlarged `scale` times (nearest), with `text` under it."""
    import numpy as np
    from PIL import Image, ImageDraw

    from fcn_keras.viz import _font

    image = np.asarray(Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale),
                                                     Image.NEAREST))
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + 22), "white")
    canvas.paste(Image.fromarray(image), (0, 0))
    ImageDraw.Draw(canvas).text((4, h + 3), text, fill="black", font=_font(13))
    return np.asarray(canvas)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--images", type=int, nargs="+", default=[3, 11], help="validation image indices")
    p.add_argument("--scale", type=int, default=3, help="enlarge the small images (nearest) for viewing")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "full_resolution.png"))
    args = p.parse_args()

    import numpy as np
    from PIL import Image

    from fcn_keras import data, viz
    from fcn_keras._io import atomic_write
    from fcn_keras.loading import load_model
    from fcn_keras.metrics import BoundaryF, confusion_matrix, scores_from_confusion
    from fcn_keras.predict import Predictor
    from refinement import soft

    model = load_model(args.model)
    plain = Predictor(model, max_size=0)
    refined = Predictor(model, max_size=0, tta="flip", refine="crf")
    examples = list(data.shapes("val", num_examples=max(args.images) + 1))
    rows = []
    for i in args.images:
        image, truth = (np.asarray(a) for a in examples[i])
        image = soft(image)
        cells = [_caption(image, "photo (soft edges)", args.scale)]
        for name, predictor in (("plain", plain), ("flip + CRF", refined)):
            labels, _ = predictor.predict(image, return_scores=False)
            miou = scores_from_confusion(confusion_matrix(truth, labels, 4))["mean_iou"]
            bf = BoundaryF(4)
            bf.update(truth, labels)
            cells.append(_caption(viz.overlay(image, labels, alpha=0.6),
                                  f"{name}: IU {miou:.2f}, BF {bf.result()['boundary_f']:.2f}", args.scale))
        cells.append(_caption(viz.overlay(image, np.where(truth == 255, 0, truth), alpha=0.6), "truth",
                              args.scale))
        big = cells
        gap = np.full((big[0].shape[0], 8, 3), 255, np.uint8)
        rows.append(np.concatenate(sum(([c, gap] for c in big), [])[:-1], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    figure = Image.fromarray(np.concatenate(rows, 0))
    atomic_write(args.out, lambda tmp: figure.save(tmp, format="PNG", optimize=True))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
