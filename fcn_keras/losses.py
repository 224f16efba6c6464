"""Segmentation losses that ignore label 255, for `model.compile(loss=...)` on every backend.

Keras' own `Dice` and focal losses have no ignore class, and its `class_weight` weighs whole
samples, not pixels. Each loss here takes logits `(N, H, W, C)` and labels `(N, H, W)` (or
`(N, H, W, 1)`) with 255 = not scored, and returns one number for the batch:

- `CrossEntropy(class_weights=None)`: softmax cross-entropy, each pixel weighted by its true
  class's weight, summed over labelled pixels and divided by their number (not by the sum of
  the weights), so with all weights 1 it is exactly the paper's default loss and the paper's
  learning-rate scaling stays right.
- `FocalLoss(gamma=2, class_weights=None)`: Lin et al.'s `-(1 - p)^gamma log p`, the same mean.
- `DiceLoss()`: soft multiclass Dice, `1 - mean_c 2 |P_c T_c| / (|P_c| + |T_c|)` over the
  labelled pixels of the batch, the mean over the classes present in the labels.
- `LovaszSoftmax()`: Berman et al.'s Lovász extension of the Jaccard loss over the batch's
  labelled pixels, the mean over the classes present in the labels.
- `get("ce+dice")`: a loss by its command-line name (`LOSSES`).
"""

import keras
from keras import ops

from fcn_keras.conventions import IGNORE_LABEL

LOSSES = ("ce", "dice", "focal", "lovasz", "ce+dice")


def _prepare(y_true, y_pred):
    """(labelled float (P,), one-hot float (P, C) zero on ignored pixels, log-softmax (P, C))
    for logits `y_pred` (..., C) and labels `y_true` (...,) or (..., 1), P pixels."""
    logits = ops.cast(y_pred, "float32")
    c = logits.shape[-1]
    logits = ops.reshape(logits, (-1, c))
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    valid = ops.not_equal(labels, IGNORE_LABEL)
    onehot = ops.one_hot(ops.where(valid, labels, 0), c) * ops.cast(valid, "float32")[:, None]
    return ops.cast(valid, "float32"), onehot, ops.log_softmax(logits, axis=-1)


def _weights(class_weights):
    if class_weights is None:
        return None
    return [float(w) for w in ops.convert_to_numpy(class_weights).reshape(-1)]


class _IgnoreLoss(keras.losses.Loss):
    """A loss whose `call` returns the batch's value (a scalar): Keras' reduction keeps it."""

    def __init__(self, name, class_weights=None, **kwargs):
        kwargs.setdefault("reduction", "sum_over_batch_size")
        super().__init__(name=name, **kwargs)
        self.class_weights = _weights(class_weights)

    def _pixel_weights(self, onehot):
        """(P,) the weight of each pixel's true class (1 without class weights; 0 ignored)."""
        if self.class_weights is None:
            return ops.sum(onehot, axis=-1)
        if len(self.class_weights) != onehot.shape[-1]:
            raise ValueError(f"`class_weights` must have one weight per class. Expected "
                             f"{onehot.shape[-1]}. Received: {len(self.class_weights)}")
        return ops.sum(onehot * ops.convert_to_tensor(self.class_weights, "float32"), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["class_weights"] = self.class_weights
        return config


@keras.saving.register_keras_serializable(package="fcn_keras")
class CrossEntropy(_IgnoreLoss):
    """Softmax cross-entropy over labelled pixels (255 ignored), optionally class-weighted.

    Args:
        class_weights: None or one weight per class (e.g. `fcn_keras.data.class_weights`).
    """

    def __init__(self, class_weights=None, name="cross_entropy", **kwargs):
        super().__init__(name, class_weights, **kwargs)

    def call(self, y_true, y_pred):
        valid, onehot, logp = _prepare(y_true, y_pred)
        nll = -ops.sum(onehot * logp, axis=-1)
        return ops.sum(nll * self._pixel_weights(onehot)) / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package="fcn_keras")
class FocalLoss(_IgnoreLoss):
    """Focal loss `-(1 - p_t)^gamma log p_t`, the mean over labelled pixels (255 ignored).

    Args:
        gamma: the focusing exponent (0: cross-entropy).
        class_weights: None or one weight per class (the alpha of Lin et al.).
    """

    def __init__(self, gamma=2.0, class_weights=None, name="focal", **kwargs):
        super().__init__(name, class_weights, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        valid, onehot, logp = _prepare(y_true, y_pred)
        logp_t = ops.sum(onehot * logp, axis=-1)
        focal = -((1.0 - ops.exp(logp_t)) ** self.gamma) * logp_t
        return ops.sum(focal * self._pixel_weights(onehot)) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="fcn_keras")
class DiceLoss(_IgnoreLoss):
    """Soft multiclass Dice loss over the batch's labelled pixels (255 ignored).

    `1 - mean_c (2 sum(p_c t_c) / (sum(p_c) + sum(t_c)))`, p the softmax, t the one-hot labels,
    sums over labelled pixels, the mean over classes that occur in the labels.
    """

    def __init__(self, name="dice", **kwargs):
        kwargs.pop("class_weights", None)
        super().__init__(name, None, **kwargs)

    def call(self, y_true, y_pred):
        valid, onehot, logp = _prepare(y_true, y_pred)
        prob = ops.exp(logp) * valid[:, None]
        inter = ops.sum(prob * onehot, axis=0)
        total = ops.sum(prob, axis=0) + ops.sum(onehot, axis=0)
        dice = 2.0 * inter / ops.maximum(total, 1e-7)
        present = ops.cast(ops.sum(onehot, axis=0) > 0, "float32")
        return 1.0 - ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="fcn_keras")
class LovaszSoftmax(_IgnoreLoss):
    """Lovász-softmax (Berman, Rannen Triki & Blaschko, 2018) over the batch (255 ignored).

    Per class present in the labels: the pixel errors `|t_c - p_c|` sorted in decreasing
    order, dotted with the gradient of the Lovász extension of the Jaccard loss; the mean over
    those classes. Ignored pixels get error 0 and sort last, where they change nothing.
    """

    def __init__(self, name="lovasz", **kwargs):
        kwargs.pop("class_weights", None)
        super().__init__(name, None, **kwargs)

    def call(self, y_true, y_pred):
        valid, onehot, logp = _prepare(y_true, y_pred)
        errors = ops.abs(onehot - ops.exp(logp)) * valid[:, None]
        order = ops.argsort(-errors, axis=0)
        errors = ops.take_along_axis(errors, order, axis=0)
        truth = ops.take_along_axis(onehot, order, axis=0)
        gts = ops.sum(truth, axis=0)
        intersection = gts - ops.cumsum(truth, axis=0)
        union = gts + ops.cumsum(1.0 - truth, axis=0)
        jaccard = 1.0 - intersection / union
        grad = ops.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)
        per_class = ops.sum(errors * ops.stop_gradient(grad), axis=0)
        present = ops.cast(gts > 0, "float32")
        return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="fcn_keras")
class CrossEntropyDice(_IgnoreLoss):
    """`CrossEntropy(class_weights) + DiceLoss()`."""

    def __init__(self, class_weights=None, name="ce_dice", **kwargs):
        super().__init__(name, class_weights, **kwargs)
        self._ce, self._dice = CrossEntropy(class_weights), DiceLoss()

    def call(self, y_true, y_pred):
        return self._ce.call(y_true, y_pred) + self._dice.call(y_true, y_pred)


def get(name, class_weights=None):
    """A loss by its command-line name.

    Args:
        name: one of `LOSSES`: "ce", "dice", "focal", "lovasz", "ce+dice".
        class_weights: None or one weight per class (ce, focal and ce+dice only).

    Returns:
        a `keras.losses.Loss`.

    Raises:
        ValueError: an unknown name, or class weights with a loss that takes none.
    """
    makers = {"ce": CrossEntropy, "focal": FocalLoss, "ce+dice": CrossEntropyDice,
              "dice": DiceLoss, "lovasz": LovaszSoftmax}
    if name not in makers:
        raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={name!r}")
    if class_weights is not None and name in ("dice", "lovasz"):
        raise ValueError(f"Class weights go with the ce, focal or ce+dice loss. Received: "
                         f"loss={name!r} with class weights")
    return makers[name]() if class_weights is None else makers[name](class_weights=class_weights)
