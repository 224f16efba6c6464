"""`train`, `evaluate` and `predict_labels`: thin, Keras-native loops around an FCN."""

from __future__ import annotations

import contextlib
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from fcn_keras import metrics as fcn_metrics
from fcn_keras._io import atomic_write
from fcn_keras._progress import bar as progress_bar
from fcn_keras.data import reraise_data_errors

from .callbacks import Backup, HistoryFile, Progress, TrainingInterrupted, default_callbacks
from .cluster import reraise_cluster_errors, use_chief_backup
from .distribute import check_model_placement, get_distribution, worker_info
from .saving import CHECKPOINTS, save_model


def _atomic_save_model(model, path):
    atomic_write(path, lambda tmp: save_model(model, tmp))


def train(model, train_ds, val_ds=None, epochs=1, out_dir=None, *, steps_per_epoch=None,
          validation_steps=None, callbacks=None, backup=True, backup_every=500,
          checkpoint=True, csv=True, tensorboard=False, terminate_on_nan=True, verbose="auto",
          save_model=True, class_names=None, distribution=None, keep=CHECKPOINTS):
    """Fits `model` with backups, checkpoints, logs and curves; returns the Keras `History`.

    Args:
        model: an `fcn_keras.FCN` (or any Keras model); compiled with the paper's recipe
            (`model.compile()`) if not compiled yet.
        train_ds: batches of `(images, masks)`, e.g. from `fcn_keras.data.pipeline`; with
            `steps_per_epoch` it is repeated, so an epoch may be longer than the data.
        val_ds: validation batches, or None.
        epochs: total epochs. Re-running the same call with the same `out_dir` after an
            interruption (a crash or Ctrl-C) continues from the backup.
        out_dir: folder for `backup/`, `checkpoints/`, `log.csv`, `history.json`,
            `curves.png`, `tensorboard/` and the final `model.keras`; None: no files, no
            resumption.
        steps_per_epoch: steps per epoch (None: one pass over `train_ds`).
        validation_steps: batches of `val_ds` per validation (None: all).
        callbacks: extra callbacks, run after the default ones.
        backup_every: steps between backups within an epoch (None or 0: epoch ends only).
        verbose: 0 prints nothing; 1 or "auto" one line per epoch and, on a terminal, a
            progress bar within each epoch; 2 one line per epoch only.
        save_model: write `<out_dir>/model.keras` at the end (chief only): the architecture
            and weights, without the optimizer state (it loads uncompiled: `compile()` it to
            train on; the backup keeps the state while a run can still resume).
        keep: the checkpoints `<out_dir>/checkpoints/` keeps, among ("last", "best")
            (`default_callbacks`).
        class_names: the training data's class names (e.g. `source.class_names`), set on an
            `fcn_keras.FCN` before training, so its `.keras` files carry them (None: keep the
            model's own).
        distribution: JAX backend: a `keras.distribution` (e.g. `DataParallel`) or a name
            for `fcn_keras.training.get_distribution` ("data_parallel", "model_parallel");
            `fit` runs inside its scope, each global batch split between its devices (the
            metrics count every device's pixels). The model must have been built inside
            `distribution.scope()` (`run_recipe` does this). None: no distribution.
        backup, checkpoint, csv, tensorboard, terminate_on_nan: see `default_callbacks`.

    Returns:
        the `History` of `model.fit`; with `out_dir`, its `history` holds every epoch of
        the run, those of an interrupted earlier process included.

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving the backup (a `KeyboardInterrupt`).
        fcn_keras.data.DataError: a data file is unreadable or inconsistent (named).
        FloatingPointError: the loss became NaN (nothing is saved).
        fcn_keras.training.WorkerLost: a machine of a multi-worker cluster was lost (named,
            with the backup to resume from).
        ValueError: `epochs` is not a positive int; a `distribution` on a backend other
            than JAX, or a model not built in its scope.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive int. Received: epochs={epochs!r}")
    if class_names is not None:
        if not hasattr(model, "class_names"):
            raise ValueError(f"`class_names` is kept by fcn_keras FCN models only. Received: a "
                             f"{type(model).__name__} with class_names={list(class_names)[:3]}...")
        model.class_names = list(class_names)
    distribution = get_distribution(distribution)
    if distribution is not None:
        check_model_placement(model, distribution)
    if not model.compiled:
        model.compile()
    if steps_per_epoch is not None and hasattr(train_ds, "repeat"):
        train_ds = train_ds.repeat()
    cbs = []
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        cbs = default_callbacks(out_dir, backup=backup, backup_every=backup_every,
                                checkpoint=checkpoint, csv=csv, tensorboard=tensorboard,
                                terminate_on_nan=terminate_on_nan, verbose=bool(verbose),
                                keep=keep)
    elif terminate_on_nan:
        cbs = [keras.callbacks.TerminateOnNaN()]
    if verbose:
        cbs.append(Progress(bar=False if verbose == 2 else None))
    cbs += list(callbacks or [])
    _multiworker_prebuild(model, train_ds)
    if out_dir is not None and backup:
        use_chief_backup(out_dir)  # a cluster resumes from one state: the chief's
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    backups = [cb.backup_dir for cb in cbs if isinstance(cb, Backup)]
    try:
        with reraise_data_errors(), scope, warnings.catch_warnings(), \
                reraise_cluster_errors(out_dir, backups[0] if backups else None):
            # Keras warns when a data set of unknown length ends; a validation set batched by
            # image size has one (train_ds repeats whenever steps_per_epoch is given).
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                                steps_per_epoch=steps_per_epoch,
                                validation_steps=validation_steps, callbacks=cbs, verbose=0,
                                shuffle=False)  # pipelines shuffle
    except KeyboardInterrupt:
        saved = [cb.save_now() for cb in cbs if isinstance(cb, Backup) and cb.model is not None]
        raise TrainingInterrupted(saved[0] if saved else None) from None
    files = [cb for cb in cbs if isinstance(cb, HistoryFile)]
    if files:
        history.history = files[0].history
    if out_dir is not None and save_model and worker_info()[3]:
        if getattr(model, "stop_training", False) and _has_nan(history):
            raise FloatingPointError(
                f"training stopped on a NaN loss (TerminateOnNaN); model not saved to {out_dir}")
        _atomic_save_model(model, os.path.join(out_dir, "model.keras"))
    return history


def _multiworker_prebuild(model, train_ds):
    """Work around Keras 3 + MultiWorkerMirroredStrategy incompatibilities (Keras 3.15,
    TF 2.21; tensorflow/tensorflow#72388), without changing what is computed:

    1. `fit` first reduces a whole input batch with `strategy.reduce` to build the
       model symbolically, which fails for nested per-replica values under collective ops
       ("Attempt to convert a value (PerReplica...)"): build from a local batch of zeros
       instead.
    2. Each step's logs are reduced with `strategy.reduce("MEAN", v, axis=0)`, which
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
    # zeros of the data's shapes (unknown sizes: 32): reading a batch would start an
    # iteration, and a seeded pipeline that reshuffles per iteration would then train on
    # another order than the same run on one machine
    batch = tf.nest.map_structure(
        lambda spec: tf.zeros([d if d is not None else 32 for d in spec.shape], spec.dtype),
        train_ds.element_spec)
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
    confusion matrix is counted on the host in int64, exactly at any pixel count.

    Raises:
        ValueError: `class_names` does not have `num_classes` entries, `ds` is empty, or a
            label outside 0..num_classes-1 that is not 255 (a plain dataset's; the
            pipeline's own check names the file).
        fcn_keras.data.DataError: a data file is unreadable or inconsistent, e.g. a label
            >= `num_classes` other than 255 (the message names the file).
    """
    if num_classes is None:
        num_classes = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    num_classes = int(num_classes)
    if class_names is None:
        own = getattr(model, "class_names", None)
        class_names = list(own) if own and len(own) == num_classes else [f"class_{i}" for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"Expected one class name per class ({num_classes}). Received: "
                         f"{len(class_names)} class_names={list(class_names)!r}")
    labels_of = labels_fn or label_function(model)
    edges = fcn_metrics.BoundaryF(num_classes) if boundary else None
    hist = np.zeros((num_classes, num_classes), np.int64)
    total = steps
    if total is None:
        card = int(ds.cardinality()) if hasattr(ds, "cardinality") else -1
        total = card if card > 0 else None
    batches = ds.as_numpy_iterator() if hasattr(ds, "as_numpy_iterator") else iter(ds)
    images = 0
    with reraise_data_errors(), \
            progress_bar(total, "evaluating", unit="batch", enabled=None if progress else False) as bar:
        for i, (x, y) in enumerate(batches):
            if steps is not None and i >= steps:
                break
            y, labels = np.asarray(y), np.asarray(labels_of(x))
            hist += confusion_counts(y, labels, num_classes)
            if edges is not None:
                for truth, predicted in zip(y, labels):
                    edges.update(truth, predicted)
            images += len(x)
            bar.update(1)
    if images == 0:
        raise ValueError(f"Expected a dataset with at least one batch. Received: ds={ds!r} "
                         f"(no batches)")
    s = fcn_metrics.scores_from_confusion(hist)

    def named(values):
        return {str(n): (float(v) if np.isfinite(v) else None) for n, v in zip(class_names, values)}

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


def predict_labels(model, images, batch_size=1):
    """Class ids per pixel for RGB images.

    Args:
        model: a Keras model producing (N, H, W, C) scores from RGB pixel values 0..255.
        images: one (H, W, 3) image or a batch (N, H, W, 3), uint8 or float.
        batch_size: images per model call.

    Returns:
        uint8 labels, (N, H, W), or (H, W) for one image.
    """
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    labels_of = label_function(model)
    out = [labels_of(arr[i:i + batch_size].astype(np.float32)).astype(np.uint8)
           for i in range(0, len(arr), batch_size)]
    labels = np.concatenate(out, 0)
    return labels[0] if single else labels


def label_function(model):
    """A function `images (N, H, W, 3) numpy -> int32 class ids (N, H, W) numpy` for `model`.

    The argmax is taken where the model runs (in a `tf.function` on TensorFlow, under
    `jax.jit` on JAX, without autograd on PyTorch), so only the labels travel back to the host.
    Under a `keras.distribution` the JAX function computes on the distribution's devices.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        @tf.function(reduce_retracing=True)
        def labels(x):
            return tf.argmax(model(x, training=False), -1, output_type=tf.int32)

        return lambda x: labels(tf.convert_to_tensor(x, tf.float32)).numpy()
    if backend == "jax":
        import jax

        @jax.jit
        def labels_jax(trainable, non_trainable, x):
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return jax.numpy.argmax(logits, -1).astype("int32")

        def run(x):
            return np.asarray(labels_jax([v.value for v in model.trainable_variables],
                                         [v.value for v in model.non_trainable_variables],
                                         np.asarray(x, np.float32)))

        return run
    if backend == "torch":
        import torch

        def run_torch(x):
            with torch.no_grad():
                logits = model(np.asarray(x, np.float32), training=False)
                return keras.ops.convert_to_numpy(keras.ops.argmax(logits, -1)).astype(np.int32)

        return run_torch

    def run_other(x):
        logits = model(np.asarray(x, np.float32), training=False)
        return keras.ops.convert_to_numpy(keras.ops.argmax(logits, -1)).astype(np.int32)

    return run_other


def confusion_counts(y_true, y_pred, num_classes, ignore_label=fcn_metrics.IGNORE_LABEL):
    """The confusion matrix of one batch, counted exactly on the host (int64).

    Args:
        y_true: labels (N, H, W) or (N, H, W, 1); `ignore_label` pixels are not counted.
        y_pred: class ids (N, H, W).
        num_classes: C.

    Returns:
        int64 (C, C), rows = ground truth.

    Raises:
        ValueError: a label outside 0..C-1 that is not `ignore_label` (naming it).
    """
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"Expected one label per predicted pixel. Received: {y_true.size} labels "
                         f"for {y_pred.size} predictions")
    scored = y_true != ignore_label
    bad = scored & ((y_true < 0) | (y_true >= num_classes))
    if bad.any():
        raise ValueError(f"Expected labels in 0..{num_classes - 1} or the ignore label "
                         f"{ignore_label}. Received: label {int(y_true[bad][0])} "
                         f"({int(bad.sum())} pixels)")
    idx = y_true[scored] * num_classes + np.clip(y_pred[scored], 0, num_classes - 1)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
