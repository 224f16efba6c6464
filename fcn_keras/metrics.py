"""The paper's four segmentation metrics, as Keras metrics over a confusion matrix.

Definitions (the reference `score.py`), with `hist` the confusion matrix of ground
truth (rows) against prediction (columns) over the scored pixels:

* pixel accuracy            `sum(diag) / sum(hist)`
* mean accuracy             `nanmean(diag / hist.sum(1))`
* mean IU                   `nanmean(diag / (hist.sum(1) + hist.sum(0) - diag))`
* frequency weighted IU     `sum_{freq > 0} freq * IU` with `freq = hist.sum(1) / sum(hist)`
  (0 for an empty matrix, as in `score.py`: there `freq` is all NaN, no class has
  `freq > 0`, and the empty sum is 0; the other three scores are NaN)

`nanmean` skips classes whose ratio is 0/0: a class absent from the ground truth does not
count towards mean accuracy; for mean IU it is skipped only if it is also never predicted
(if it is predicted, its IU is 0 and counts, exactly as in `score.py`).

Pixels labelled 255 (`IGNORE_LABEL`) are not scored. A label `>= num_classes` that
is not 255 is an error: with the TensorFlow backend `update_state` raises
`tf.errors.InvalidArgumentError` naming the value (never a silent miscount); on other
backends such pixels are counted in the `invalid` variable and `result()` is NaN.
(The data pipeline checks labels too, naming the file.)

`y_pred` may be logits / probabilities `(N, H, W, C)` (argmax is taken) or class ids
`(N, H, W)`. The confusion matrix is kept as two variables, a high and a low part whose
sum is the count (a compensated "double-word" sum, renormalised after every update), in
float64 where the backend has it and in float32 under JAX without `jax_enable_x64` (where a
single float32 would count exactly only to 2**24 ~ 16.7M pixels per cell, less than one VOC
val pass). Unweighted counts stay exact up to about 2**47 pixels per cell in float32 (2**100
in float64); a batch's own counts are exact integers up to 2**31 per cell. With
`sample_weight` a batch's weighted counts are summed in the accumulator dtype first. Both
parts are summed across replicas under `tf.distribute` (`aggregation="sum"`).
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from fcn_keras.conventions import IGNORE_LABEL


__all__ = [
    "ConfusionMatrix", "PixelAccuracy", "MeanAccuracy", "MeanIoU", "FrequencyWeightedIoU",
    "paper_metrics", "confusion_matrix", "scores_from_confusion", "IGNORE_LABEL",
    "boundary_f_scores", "BoundaryF",
]


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Base: accumulates a `num_classes x num_classes` confusion matrix."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_label=IGNORE_LABEL):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self._wide = _accumulator_dtype()
        shape = (self.num_classes, self.num_classes)
        self.confusion = self.add_variable(shape=shape, initializer="zeros", dtype=self._wide,
                                           aggregation="sum", name="confusion_matrix")
        self.confusion_low = self.add_variable(shape=shape, initializer="zeros", dtype=self._wide,
                                               aggregation="sum", name="confusion_matrix_low")
        self.invalid = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                         aggregation="sum", name="invalid_labels")

    def update_state(self, y_true, y_pred, sample_weight=None):
        c = self.num_classes
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if (len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1
                and y_pred.shape[-1] not in (None, 1)):
            y_true = ops.squeeze(y_true, -1)  # (N, H, W, 1) labels with (N, H, W, C) scores
        if len(y_pred.shape) == len(y_true.shape) + 1:
            if y_pred.shape[-1] == 1 and c > 1:
                raise ValueError(f"{self.name}: y_pred has 1 channel for num_classes={c}")
            y_pred = ops.argmax(y_pred, axis=-1)
        elif len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, -1)
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        scored = ops.not_equal(y_true, self.ignore_label)
        bad = ops.logical_and(scored, ops.logical_or(y_true >= c, y_true < 0))
        n_bad = ops.sum(ops.cast(bad, "float32"))
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            top = ops.max(ops.where(bad, y_true, ops.zeros_like(y_true)))
            low = ops.min(ops.where(bad, y_true, ops.zeros_like(y_true)))
            assert_op = tf.debugging.Assert(
                n_bad == 0,
                [f"fcn_keras.metrics.{type(self).__name__}: label values outside "
                 f"0..{c - 1} that are not the ignore label {self.ignore_label}; "
                 f"largest bad label", top, "smallest", low, "count", n_bad])
            with tf.control_dependencies([assert_op]):
                y_true = tf.identity(y_true)
        valid = ops.logical_and(scored, ops.logical_not(bad))
        y_pred = ops.clip(y_pred, 0, c - 1)
        # invalid pixels land in an extra cell, dropped
        cell = ops.where(valid, y_true * c + y_pred, c * c * ops.ones_like(y_true))
        if sample_weight is not None:
            w = ops.reshape(ops.cast(ops.convert_to_tensor(sample_weight), self._wide), (-1,))
            w = ops.broadcast_to(w, ops.shape(y_true)) if w.shape != y_true.shape else w
            parts = [_cell_sums(cell, c * c + 1, w)[:c * c]]
        else:
            counts = _cell_sums(cell, c * c + 1)[:c * c]
            # split so that each part is exact in float32 (< 2**24 significant bits)
            high = (counts // _SPLIT) * _SPLIT
            parts = [ops.cast(high, self._wide), ops.cast(counts - high, self._wide)]
        hi, lo = self.confusion, self.confusion_low
        for part in parts:
            hi, lo = _accumulate(hi, lo, ops.reshape(part, (c, c)))
        self.confusion.assign(hi)
        self.confusion_low.assign(lo)
        self.invalid.assign_add(n_bad)

    def reset_state(self):
        shape = (self.num_classes, self.num_classes)
        # one array each: JAX donates variable buffers to a jitted step, and refuses one twice
        self.confusion.assign(ops.zeros(shape, self._wide))
        self.confusion_low.assign(ops.zeros(shape, self._wide))
        self.invalid.assign(ops.zeros((), "float32"))

    def _hist(self):
        return self.confusion + self.confusion_low

    def _score(self, hist):  # pragma: no cover - abstract
        raise NotImplementedError

    def result(self):
        value = self._score(self._hist())
        value = ops.where(self.invalid > 0, np.nan, value)
        return ops.cast(value, "float32")

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name,
                "ignore_label": self.ignore_label}

    # reports -----------------------------------------------------------------------------
    def confusion_matrix(self):
        """The accumulated confusion matrix as a numpy int64 array (rows: ground truth)."""
        hi = np.asarray(ops.convert_to_numpy(self.confusion), dtype=np.float64)
        lo = np.asarray(ops.convert_to_numpy(self.confusion_low), dtype=np.float64)
        return (np.round(hi).astype(np.int64) + np.round(lo).astype(np.int64))

    def per_class_iou(self):
        """numpy array of per-class IU (NaN for classes neither present nor predicted)."""
        return scores_from_confusion(self.confusion_matrix())["per_class_iou"]


_SPLIT = 4096  # a batch's int32 counts are added as a multiple of 2**12 plus a rest < 2**12


def _cell_sums(cell, n, weights=None):
    """Per-cell pixel counts (int32) or weight sums (the weights' dtype), shape (n,).

    Args:
        cell: (P,) int32 cell ids 0 .. n - 1.
        n: number of cells.
        weights: None (count pixels) or (P,) weights.

    Keras' PyTorch `segment_sum` adds in float32 (a cell stops at 2**24) and its `bincount`
    returns float32 sums of float64 weights, so PyTorch counts with `torch.bincount` (exact
    integers, weights in their own dtype); JAX's `bincount` needs a static length under jit, and
    TensorFlow's and JAX's `segment_sum` add in the data's own dtype, so they keep `segment_sum`.
    """
    if keras.backend.backend() == "torch":
        import torch

        cell = ops.convert_to_tensor(cell).long()
        weights = None if weights is None else ops.convert_to_tensor(weights)
        counts = torch.bincount(cell, weights=weights, minlength=n)
        return counts if weights is not None else counts.int()
    data = ops.ones_like(cell) if weights is None else weights
    return ops.segment_sum(data, cell, num_segments=n, sorted=False)


def _accumulator_dtype():
    """float64, or float32 under JAX without x64 (where float64 variables are truncated)."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.read("jax_enable_x64"):
            return "float32"
    return "float64"


def _accumulate(hi, lo, x):
    """(hi, lo) + x as a renormalised pair, hi + lo holding the sum without rounding.

    TwoSum(hi, x) gives s and its exact rounding error e, then Fast2Sum(s, lo + e). For
    integer counts every step is exact while the total is below 2**(2p - 1), p the
    significand bits (2**47 in float32).
    """
    s = hi + x
    b = s - hi
    e = (hi - (s - b)) + (x - b)
    lo = lo + e
    hi = s + lo
    return hi, lo - (hi - s)


def _nanmean(num, den):
    ok = den > 0
    ratio = ops.where(ok, num / ops.where(ok, den, ops.ones_like(den)), ops.zeros_like(num))
    n = ops.sum(ops.cast(ok, num.dtype))
    return ops.where(n > 0, ops.sum(ratio) / ops.maximum(n, 1.0), np.nan)


def _diag(hist):
    return ops.diagonal(hist)


@keras.saving.register_keras_serializable(package="fcn_keras")
class ConfusionMatrix(_ConfusionMatrixMetric):
    """The raw confusion matrix (rows: ground truth, columns: prediction) as its result."""

    def __init__(self, num_classes, name="confusion_matrix", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def result(self):
        return self._hist()


@keras.saving.register_keras_serializable(package="fcn_keras")
class PixelAccuracy(_ConfusionMatrixMetric):
    """Fraction of scored pixels labelled correctly: `sum(diag) / sum(hist)`."""

    def __init__(self, num_classes, name="pixel_accuracy", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def _score(self, hist):
        total = ops.sum(hist)
        return ops.where(total > 0, ops.sum(_diag(hist)) / ops.maximum(total, 1.0), np.nan)


@keras.saving.register_keras_serializable(package="fcn_keras")
class MeanAccuracy(_ConfusionMatrixMetric):
    """Per-class accuracy averaged over classes present in the ground truth."""

    def __init__(self, num_classes, name="mean_accuracy", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def _score(self, hist):
        return _nanmean(_diag(hist), ops.sum(hist, axis=1))


@keras.saving.register_keras_serializable(package="fcn_keras")
class MeanIoU(_ConfusionMatrixMetric):
    """Mean intersection over union (the paper's "mean IU")."""

    def __init__(self, num_classes, name="mean_iou", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def _score(self, hist):
        d = _diag(hist)
        return _nanmean(d, ops.sum(hist, axis=1) + ops.sum(hist, axis=0) - d)


@keras.saving.register_keras_serializable(package="fcn_keras")
class FrequencyWeightedIoU(_ConfusionMatrixMetric):
    """IU of each class weighted by its share of the ground-truth pixels."""

    def __init__(self, num_classes, name="frequency_weighted_iou", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def _score(self, hist):
        d = _diag(hist)
        gt = ops.sum(hist, axis=1)
        total = ops.sum(hist)
        den = gt + ops.sum(hist, axis=0) - d
        iu = ops.where(den > 0, d / ops.where(den > 0, den, ops.ones_like(den)), ops.zeros_like(d))
        freq = gt / ops.maximum(total, 1.0)
        # an empty matrix scores 0, as score.py's (freq[freq > 0] * iu[freq > 0]).sum()
        return ops.sum(ops.where(freq > 0, freq * iu, ops.zeros_like(iu)))


def paper_metrics(num_classes):
    """The four metrics of the paper, fresh instances, for `compile(metrics=...)`:
    `[PixelAccuracy, MeanAccuracy, MeanIoU, FrequencyWeightedIoU]` (names
    `pixel_accuracy`, `mean_accuracy`, `mean_iou`, `frequency_weighted_iou`)."""
    return [PixelAccuracy(num_classes), MeanAccuracy(num_classes), MeanIoU(num_classes),
            FrequencyWeightedIoU(num_classes)]


def confusion_matrix(truth, prediction, num_classes, ignore_label=IGNORE_LABEL):
    """The confusion matrix of label maps, counted exactly in numpy (int64) on the host.

    The paper's `score.py` `fast_hist`, with this module's label policy (the one the Keras
    metrics above follow): `ignore_label` pixels are not scored, any other label outside
    0 .. num_classes - 1 is an error (never a silent miscount), and predicted ids are
    clipped to 0 .. num_classes - 1 (as the metrics clip theirs).

    Args:
        truth: integer class ids, (N, H, W), (H, W) or with a trailing channel of 1
            ((N, H, W, 1) labels for (N, H, W) predictions).
        prediction: integer class ids of the same shape (without the channel).
        num_classes: number of classes C.
        ignore_label: the label of pixels that are not scored (255).

    Returns:
        int64 (C, C): entry [i, j] counts the scored pixels of class i predicted as j.

    Raises:
        ValueError: the two shapes differ, or a label outside 0..C-1 that is not
            `ignore_label` (naming it and its pixel count).
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.ndim == prediction.ndim + 1 and truth.shape[-1] == 1:
        truth = truth[..., 0]
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in size")
    truth, prediction = truth.reshape(-1).astype(np.int64), prediction.reshape(-1).astype(np.int64)
    scored = truth != ignore_label
    bad = scored & ((truth < 0) | (truth >= num_classes))
    if bad.any():
        raise ValueError(f"Expected labels in 0..{num_classes - 1} or the ignore label "
                         f"{ignore_label}. Received: label {int(truth[bad][0])} "
                         f"({int(bad.sum())} pixels)")
    cells = truth[scored] * num_classes + np.clip(prediction[scored], 0, num_classes - 1)
    return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores_from_confusion(hist):
    """All scores from a confusion matrix in numpy (`score.py` semantics).

    Returns a dict: `pixel_accuracy`, `mean_accuracy`, `mean_iou`,
    `frequency_weighted_iou` (floats) and `per_class_iou`, `per_class_accuracy`
    (numpy arrays with NaN where undefined) and `pixels` (scored pixel count).
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[0] != hist.shape[1]:
        raise ValueError(f"Expected a square confusion matrix (C, C). Received: shape={hist.shape}")
    total = hist.sum()
    diag = np.diag(hist)
    gt, pred = hist.sum(1), hist.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag / gt
        iu = diag / (gt + pred - diag)
        freq = gt / total if total > 0 else np.zeros_like(gt)

    def nanmean(x):
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    return {
        "pixel_accuracy": float(diag.sum() / total) if total > 0 else float("nan"),
        "mean_accuracy": nanmean(acc),
        "mean_iou": nanmean(iu),
        "frequency_weighted_iou": float((freq[freq > 0] * iu[freq > 0]).sum()),
        "per_class_iou": iu,
        "per_class_accuracy": acc,
        "pixels": int(total),
    }


BOUNDARY_TOLERANCE = 0.0075  # of the image diagonal (Csurka et al. 2013)


def _boundary(mask):
    """bool (H, W): pixels of `mask` with a 4-neighbour outside it (the image edge is not one)."""
    edge = np.zeros_like(mask)
    edge[:-1] |= mask[:-1] & ~mask[1:]
    edge[1:] |= mask[1:] & ~mask[:-1]
    edge[:, :-1] |= mask[:, :-1] & ~mask[:, 1:]
    edge[:, 1:] |= mask[:, 1:] & ~mask[:, :-1]
    return edge


def boundary_f_scores(truth, prediction, num_classes, tolerance=BOUNDARY_TOLERANCE):
    """Per-class boundary F-scores of one image (Csurka, Larlus & Perronnin, BMVC 2013).

    For each class c, the boundary pixels of `truth == c` and of `prediction == c` (pixels of
    the class with a 4-neighbour of another label) are matched within `tolerance` x the image
    diagonal (Euclidean distance): precision is the share of predicted boundary pixels near a
    true one, recall the share of true boundary pixels near a predicted one, F = 2PR / (P + R).
    Pixels labelled 255 (or any id outside 0 .. C - 1) in `truth` are not scored: the true
    boundaries are those of the truth with each void pixel given its nearest labelled pixel's
    class (a VOC void band along an object's edge splits down its middle; a void region inside
    one class adds none), and a predicted boundary pixel inside a void region counts when it
    is within the tolerance of a true boundary (a match) and is otherwise left out.

    Args:
        truth, prediction: (H, W) integer class ids.
        num_classes: C.
        tolerance: the match distance as a fraction of the diagonal (default 0.75%).

    Returns:
        float64 (C,): F per class; NaN for a class with no boundary pixels in either map (all
        NaN when no pixel is scored), 0 for one with boundary pixels in only one of them.
    """
    from scipy.ndimage import distance_transform_edt

    truth, prediction = np.asarray(truth).astype(np.int64), np.asarray(prediction).astype(np.int64)
    if truth.shape != prediction.shape or truth.ndim != 2:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must be the same (H, W)")
    scored = (truth >= 0) & (truth < num_classes)
    reach = tolerance * float(np.hypot(*truth.shape))
    scores = np.full(num_classes, np.nan)
    if not scored.any():
        return scores
    filled = truth
    if not scored.all():
        _, (iy, ix) = distance_transform_edt(~scored, return_indices=True)
        filled = truth[iy, ix]
    for c in range(num_classes):
        bt, bp = _boundary(filled == c), _boundary(prediction == c)
        if bt.any():
            near_true = distance_transform_edt(~bt) <= reach
            bp &= scored | near_true
        nt, np_ = int(bt.sum()), int(bp.sum())
        if nt == 0 and np_ == 0:
            continue
        if nt == 0 or np_ == 0:
            scores[c] = 0.0
            continue
        precision = float(near_true[bp].mean())
        recall = float((distance_transform_edt(~bp)[bt] <= reach).mean())
        scores[c] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return scores


class BoundaryF:
    """The mean boundary F-score of a set of images: each image's mean over its classes
    (those with a boundary in its truth or prediction), averaged over the images; and per class,
    the mean over the images where the class has one. NumPy, any backend.

        bf = BoundaryF(num_classes)
        bf.update(truth, labels)          # one (H, W) image at a time
        bf.result()                       # {"boundary_f": float, "per_class_boundary_f": (C,)}
    """

    def __init__(self, num_classes, tolerance=BOUNDARY_TOLERANCE):
        self.num_classes, self.tolerance = int(num_classes), float(tolerance)
        self._images, self._sum, self._count = [], np.zeros(self.num_classes), np.zeros(self.num_classes)

    def update(self, truth, prediction):
        """Adds one image; returns its per-class scores (C,)."""
        f = boundary_f_scores(truth, prediction, self.num_classes, self.tolerance)
        seen = ~np.isnan(f)
        if seen.any():
            self._images.append(float(f[seen].mean()))
        self._sum[seen] += f[seen]
        self._count[seen] += 1
        return f

    def result(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        mean = float(np.mean(self._images)) if self._images else float("nan")
        return {"boundary_f": mean, "per_class_boundary_f": per_class}
