"""`evaluate` (the paper's scores of a model on a data set, from one confusion matrix) and
`format_report` (those scores as a plain-text table)."""

from __future__ import annotations

import numpy as np

from fcn_keras import metrics as fcn_metrics
from fcn_keras._progress import bar as progress_bar
from fcn_keras.data import reraise_data_errors

from .inference import label_function


def evaluate(model, ds, num_classes=None, class_names=None, *, steps=None, progress=True,
             labels_fn=None, boundary=True):
    """Scores `model` on `ds` with the paper's definitions, from one confusion matrix.

    Args:
        model: a Keras model producing (N, H, W, C) scores.
        ds: batches of (images, masks) (masks: 255 = ignore), e.g. from
            `fcn_keras.data.pipeline`.
        num_classes: default: the model's `num_classes` (or its output channels).
        class_names: names for the per-class table (default: the model's own `class_names`,
            else `class_0 ...`).
        steps: evaluate only this many batches.
        progress: draw a progress bar on stderr when it is a terminal
            (`fcn_keras._progress.bar`); False never.
        labels_fn: how a batch of images (N, H, W, 3) becomes labels (N, H, W); default: the
            model's argmax where it runs. E.g. a `fcn_keras.predict.Predictor` with tiles,
            TTA or CRF refinement, image by image (`fcn-keras evaluate --tile/--tta/--refine`).
        boundary: also score the boundary F-score (`fcn_keras.metrics.BoundaryF`, per image on
            the host).

    Returns:
        {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"} (fractions
        in [0, 1]), "boundary_f" (with `boundary`; None where no image has a boundary),
        "per_class_iou" and "per_class_accuracy" ({name: float or None}, None where
        undefined), "confusion_matrix" (list of lists, rows = ground truth), "pixels" and
        "images".

    Every backend: the labels are computed where the model runs (`label_function`) and the
    confusion matrix is counted on the host in int64 (`fcn_keras.metrics.confusion_matrix`),
    exactly at any pixel count.

    Raises:
        ValueError: `class_names` does not have `num_classes` entries, `ds` is empty, or a
            label outside 0..num_classes-1 that is not 255 (a plain dataset's; the
            pipeline's own check names the file).
        fcn_keras.data.DataError: a data file is unreadable or inconsistent, e.g. a label
            >= `num_classes` other than 255 (the message names the file).
    """
    num_classes, class_names = _classes(model, num_classes, class_names)
    edges = fcn_metrics.BoundaryF(num_classes) if boundary else None
    hist, images = _count(labels_fn or label_function(model), ds, num_classes, edges,
                          steps=steps, progress=progress)
    if images == 0:
        raise ValueError(f"Expected a dataset with at least one batch. Received: ds={ds!r} "
                         f"(no batches)")
    return _scores(hist, class_names, images, edges)


def _classes(model, num_classes, class_names):
    """(num_classes, class_names) of an evaluation: the given ones, else the model's own
    (`num_classes` or its output channels; `class_names`, else `class_0 ...`)."""
    if num_classes is None:
        num_classes = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    num_classes = int(num_classes)
    if class_names is None:
        own = getattr(model, "class_names", None)
        class_names = (list(own) if own and len(own) == num_classes
                       else [f"class_{i}" for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise ValueError(f"Expected one class name per class ({num_classes}). Received: "
                         f"{len(class_names)} class_names={list(class_names)!r}")
    return num_classes, class_names


def _count(labels_of, ds, num_classes, edges, *, steps, progress):
    """Runs `labels_of` over the batches of `ds` (the first `steps`); returns (the int64
    confusion matrix (C, C), the number of images), updating `edges` (a `BoundaryF` or None)
    image by image."""
    hist = np.zeros((num_classes, num_classes), np.int64)
    total = steps
    if total is None:
        card = int(ds.cardinality()) if hasattr(ds, "cardinality") else -1
        total = card if card > 0 else None
    batches = ds.as_numpy_iterator() if hasattr(ds, "as_numpy_iterator") else iter(ds)
    images = 0
    with reraise_data_errors(), progress_bar(total, "evaluating", unit="batch",
                                             enabled=None if progress else False) as bar:
        for i, (x, y) in enumerate(batches):
            if steps is not None and i >= steps:
                break
            y, labels = np.asarray(y), np.asarray(labels_of(x))
            hist += fcn_metrics.confusion_matrix(y, labels, num_classes)
            if edges is not None:
                for truth, predicted in zip(y, labels):
                    edges.update(truth, predicted)
            images += len(x)
            bar.update(1)
    return hist, images


def _scores(hist, class_names, images, edges):
    """The dict `evaluate` returns, from its confusion matrix and boundary F-score."""
    s = fcn_metrics.scores_from_confusion(hist)

    def named(values):
        return {str(n): _finite(v) for n, v in zip(class_names, values)}

    return {
        "pixel_accuracy": s["pixel_accuracy"],
        "mean_accuracy": s["mean_accuracy"],
        "mean_iou": s["mean_iou"],
        "frequency_weighted_iou": s["frequency_weighted_iou"],
        **({} if edges is None else {"boundary_f": _finite(edges.result()["boundary_f"])}),
        "per_class_iou": named(s["per_class_iou"]),
        "per_class_accuracy": named(s["per_class_accuracy"]),
        "confusion_matrix": hist.tolist(),
        "pixels": s["pixels"],
        "images": images,
    }


def _finite(value):
    return float(value) if np.isfinite(value) else None


def format_report(scores, title=None):
    """A plain-text table of the four metrics and the per-class IoU.

    Args:
        scores: what `evaluate` returns.
        title: a first line (e.g. the data set and split), or None.

    Returns:
        the table as one string (percentages, two decimals).
    """
    lines = []
    if title:
        lines.append(title)
    for k, label in (("pixel_accuracy", "pixel accuracy"), ("mean_accuracy", "mean accuracy"),
                     ("mean_iou", "mean IU"), ("frequency_weighted_iou", "frequency weighted IU"),
                     ("boundary_f", "boundary F")):
        if k == "boundary_f" and k not in scores:
            continue
        v = scores.get(k)
        lines.append(f"  {label:<24}{'n/a' if v is None or not np.isfinite(v) else f'{100 * v:6.2f}'}")
    per = scores.get("per_class_iou") or {}
    acc = scores.get("per_class_accuracy") or {}
    if per:
        w = max(12, max(len(n) for n in per) + 2)
        lines.append(f"  {'class':<{w}}{'IoU':>8}{'acc':>8}")
        for name, v in per.items():
            a = acc.get(name)
            fv = "     n/a" if v is None else f"{100 * v:8.2f}"
            fa = "     n/a" if a is None else f"{100 * a:8.2f}"
            lines.append(f"  {name:<{w}}{fv}{fa}")
    if "images" in scores:
        lines.append(f"  ({scores['images']} images, {scores['pixels']} scored pixels)")
    return "\n".join(lines)
