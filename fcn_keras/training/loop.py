"""``train``, ``evaluate`` and ``predict``: thin, Keras-native loops around an FCN."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from fcn_keras import metrics as fcn_metrics
from fcn_keras._io import atomic_write

from .distribute import worker_info


def _atomic_save_model(model, path):
    atomic_write(path, model.save)


def default_callbacks(out_dir, *, backup=True, checkpoint=True, csv=True, tensorboard=False,
                      terminate_on_nan=True, monitor="val_mean_iou"):
    """The callbacks ``train`` uses, rooted at ``out_dir``:

    * ``BackupAndRestore`` (``<out_dir>/backup``): resume after an interruption, losing at
      most the epoch in progress (state is saved at the end of every epoch);
    * ``TerminateOnNaN``;
    * ``ModelCheckpoint``: ``<out_dir>/checkpoints/last.weights.h5`` every epoch and
      ``best.weights.h5`` by ``monitor`` (max) when it is logged;
    * ``CSVLogger`` (``<out_dir>/log.csv``, appended to on resume), ``TensorBoard``
      (``<out_dir>/tensorboard``) if asked.

    Under ``MultiWorkerMirroredStrategy`` only the chief writes to ``out_dir``; other
    workers write to ``<out_dir>/workers/worker_<i>``.
    """
    _, index, n_workers, is_chief = worker_info()
    root = out_dir if is_chief else os.path.join(out_dir, "workers", f"worker_{index}")
    os.makedirs(root, exist_ok=True)
    cbs = []
    if backup:
        # Keras 3's BackupAndRestore has no multi-worker protocol: each worker keeps its
        # own (identical, training is synchronous) backup so HDF5 files never collide.
        cbs.append(keras.callbacks.BackupAndRestore(os.path.join(root, "backup"),
                                                    save_freq="epoch", delete_checkpoint=True))
    if terminate_on_nan:
        cbs.append(keras.callbacks.TerminateOnNaN())
    if checkpoint:
        ck = os.path.join(root, "checkpoints")
        os.makedirs(ck, exist_ok=True)
        cbs.append(keras.callbacks.ModelCheckpoint(os.path.join(ck, "last.weights.h5"),
                                                   save_weights_only=True))
        cbs.append(_BestCheckpoint(os.path.join(ck, "best.weights.h5"), monitor))
    if csv:
        cbs.append(keras.callbacks.CSVLogger(os.path.join(root, "log.csv"), append=True))
    if tensorboard:
        cbs.append(keras.callbacks.TensorBoard(os.path.join(root, "tensorboard")))
    return cbs


class _BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint(save_best_only) that stays quiet when ``monitor`` is not logged
    (e.g. training without validation data)."""

    def __init__(self, path, monitor):
        super().__init__(path, monitor=monitor, mode="max", save_best_only=True,
                         save_weights_only=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.monitor in logs:
            super().on_epoch_end(epoch, logs)


def train(model, train_ds, val_ds=None, epochs=1, out_dir=None, *, steps_per_epoch=None,
          validation_steps=None, callbacks=None, backup=True, checkpoint=True, csv=True,
          tensorboard=False, terminate_on_nan=True, verbose="auto", save_model=True):
    """Fit ``model`` with checkpoints, resumption and logs; returns the Keras ``History``.

    Args:
        model: an :class:`fcn_keras.FCN` (or any Keras model); compiled with the paper's
            recipe (``model.compile()``) if not compiled yet.
        train_ds, val_ds: datasets of ``(images, masks)`` batches, e.g. from
            :func:`fcn_keras.data.pipeline`.
        epochs: total epochs. Re-running the same call with the same ``out_dir`` after an
            interruption continues where it stopped (``BackupAndRestore``).
        out_dir: folder for ``backup/``, ``checkpoints/``, ``log.csv``, ``tensorboard/``
            and the final ``model.keras``; ``None``: no files, no resumption.
        callbacks: extra callbacks, run after the default ones.
        save_model: write ``<out_dir>/model.keras`` at the end (chief only).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got epochs={epochs!r}")
    if not model.compiled:
        model.compile()
    cbs = []
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        cbs = default_callbacks(out_dir, backup=backup, checkpoint=checkpoint, csv=csv,
                                tensorboard=tensorboard, terminate_on_nan=terminate_on_nan)
    elif terminate_on_nan:
        cbs = [keras.callbacks.TerminateOnNaN()]
    cbs += list(callbacks or [])
    _multiworker_prebuild(model, train_ds)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                        steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                        callbacks=cbs, verbose=verbose, shuffle=False)  # pipelines shuffle
    if out_dir is not None and save_model and worker_info()[3]:
        if getattr(model, "stop_training", False) and _has_nan(history):
            raise FloatingPointError(
                f"training stopped on a NaN loss (TerminateOnNaN); model not saved to {out_dir}")
        _atomic_save_model(model, os.path.join(out_dir, "model.keras"))
        with open(os.path.join(out_dir, "history.json"), "w") as f:
            json.dump(_jsonable(history.history), f, indent=1)
    return history


def _multiworker_prebuild(model, train_ds):
    """Work around Keras 3 + MultiWorkerMirroredStrategy incompatibilities (Keras 3.15,
    TF 2.21; tensorflow/tensorflow#72388), without changing what is computed:

    1. ``fit`` first reduces a whole input batch with ``strategy.reduce`` to build the
       model symbolically, which fails for nested per-replica values under collective ops
       ("Attempt to convert a value (PerReplica...)"): build from a local batch instead.
    2. Each step's logs are reduced with ``strategy.reduce("MEAN", v, axis=0)``, which
       fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions"):
       the steps return their scalar logs as 1-element vectors, which that reduction
       averages over the workers back to scalars. Epoch logs are recomputed by Keras from
       the metric variables (summed over all workers), so they are exact.
    """
    strategy = getattr(model, "distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    if getattr(model, "_fcn_multiworker_patched", False):
        return
    if not hasattr(model, "_symbolic_build") or not hasattr(model, "_maybe_symbolic_build"):
        return  # a Keras without these internals: nothing to work around
    batch = next(iter(train_ds.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None

    def vector_logs(step):
        def wrapped(data):
            logs = step(data)
            if isinstance(logs, dict):
                logs = {k: (tf.reshape(v, [1]) if hasattr(v, "shape") and v.shape.rank == 0
                            else v) for k, v in logs.items()}
            return logs
        return wrapped

    model.train_step = vector_logs(model.train_step)
    model.test_step = vector_logs(model.test_step)
    model._fcn_multiworker_patched = True


def _has_nan(history):
    return any(not np.isfinite(v) for v in history.history.get("loss", []))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _progress(total, desc, enabled):
    if not enabled:
        return None
    return keras.utils.Progbar(total, unit_name="batch" if desc is None else desc)


def evaluate(model, ds, num_classes=None, class_names=None, *, steps=None, progress=True):
    """Score ``model`` on ``ds`` with the paper's definitions from one confusion matrix.

    Args:
        model: a Keras model producing ``(N, H, W, C)`` scores.
        ds: batches of ``(images, masks)`` (masks: 255 = ignore), e.g. from
            :func:`fcn_keras.data.pipeline`.
        num_classes: default: the model's ``num_classes`` (or its output channels).
        class_names: names for the per-class table (default ``class_0 ...``).
        steps: evaluate only this many batches.
        progress: show a Keras progress bar.

    Returns:
        ``{"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}``
        (floats), ``"per_class_iou"`` and ``"per_class_accuracy"`` (``{name: float or
        None}``, None where undefined), ``"confusion_matrix"`` (list of lists, rows =
        ground truth), ``"pixels"`` and ``"images"``.

    Raises:
        tf.errors.InvalidArgumentError: a label ``>= num_classes`` other than 255.
    """
    if num_classes is None:
        num_classes = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    num_classes = int(num_classes)
    if class_names is None:
        class_names = [f"class_{i}" for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
    cm = fcn_metrics.ConfusionMatrix(num_classes)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        logits = model(x, training=False)
        cm.update_state(y, logits)
        return tf.shape(x)[0]

    total = steps
    if total is None:
        card = int(ds.cardinality())
        total = card if card > 0 else None
    bar = _progress(total, "batch", progress)
    images = 0
    for i, (x, y) in enumerate(ds):
        if steps is not None and i >= steps:
            break
        images += int(step(x, y))
        if bar is not None:
            bar.update(i + 1)
    if images == 0:
        raise ValueError("evaluate(): the dataset yielded no batches")
    hist = cm.confusion_matrix()
    s = fcn_metrics.scores_from_confusion(hist)

    def named(values):
        return {str(n): (float(v) if np.isfinite(v) else None) for n, v in zip(class_names, values)}

    return {
        "pixel_accuracy": s["pixel_accuracy"],
        "mean_accuracy": s["mean_accuracy"],
        "mean_iou": s["mean_iou"],
        "frequency_weighted_iou": s["frequency_weighted_iou"],
        "per_class_iou": named(s["per_class_iou"]),
        "per_class_accuracy": named(s["per_class_accuracy"]),
        "confusion_matrix": hist.tolist(),
        "pixels": s["pixels"],
        "images": images,
    }


def format_report(scores, title=None):
    """A plain-text table of the four metrics and the per-class IoU."""
    lines = []
    if title:
        lines.append(title)
    for k, label in (("pixel_accuracy", "pixel accuracy"), ("mean_accuracy", "mean accuracy"),
                     ("mean_iou", "mean IU"), ("frequency_weighted_iou", "frequency weighted IU")):
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


def predict_labels(model, images, batch_size=1):
    """Class ids ``(N, H, W)`` uint8 (or ``(H, W)`` for one image) for RGB uint8 images."""
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    out = []
    for i in range(0, len(arr), batch_size):
        logits = model(tf.convert_to_tensor(arr[i:i + batch_size], tf.float32), training=False)
        out.append(np.asarray(tf.argmax(logits, -1), np.uint8))
    labels = np.concatenate(out, 0)
    return labels[0] if single else labels
