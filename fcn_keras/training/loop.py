"""`train`, `evaluate` and `predict_labels`: thin, Keras-native loops around an FCN."""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from fcn_keras import metrics as fcn_metrics
from fcn_keras._io import atomic_write
from fcn_keras._progress import bar as progress_bar
from fcn_keras._progress import interactive

from .distribute import worker_info


def _atomic_save_model(model, path):
    atomic_write(path, model.save)


def write_json(obj, path):
    """Writes `obj` (NaN/inf as null) to `path` as JSON, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(_jsonable(obj), f, indent=1)

    atomic_write(path, write)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `train`: the state was saved to `backup_dir` (None: nothing saved).

    Re-running the same training with the same `out_dir` resumes from it.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir)
        self.backup_dir = backup_dir


class Backup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that also saves every `save_every` steps and at every epoch end,
    writes atomically, and says where a run resumes.

    The backup (`<backup_dir>/latest.weights.h5`: weights and optimizer state, and
    `training_metadata.json`: {"epoch": 0-based epoch, "step": steps done in it}) is
    deleted when training finishes. Resuming restores the saved weights and optimizer state
    and continues with the saved epoch; Keras restarts that epoch at its first batch, so
    after an interruption at step S the epoch's first S batches are seen a second time.

    Args:
        backup_dir: the folder of the backup.
        save_every: steps between saves within an epoch (None: only at epoch ends).
        verbose: print the resume line.
    """

    def __init__(self, backup_dir, save_every=None, verbose=True):
        super().__init__(backup_dir, save_freq=save_every or "epoch", delete_checkpoint=True)
        self.verbose = verbose
        self._step = 0

    def on_train_begin(self, logs=None):
        state = self.saved_state(self.backup_dir)
        super().on_train_begin(logs)
        if state and self.verbose:
            print(f"resuming from epoch {state['epoch'] + 1}, step {state['step']} of "
                  f"{self.backup_dir} (its weights and optimizer state; the epoch restarts "
                  f"at its first batch)", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch, self._step = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        self._step = batch + 1
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch, self._step, self._last_batch_seen = epoch + 1, 0, 0
        self._save_model()

    def save_now(self):
        """Saves the current state (used on Ctrl-C); returns the backup folder."""
        self._save_model()
        return self.backup_dir

    def _save_model(self):
        atomic_write(self._weights_path, self.model.save_weights)
        write_json({"epoch": self._current_epoch, "step": self._step,
                     "batch": self._last_batch_seen}, self._training_metadata_path)

    @staticmethod
    def saved_state(backup_dir):
        """{"epoch", "step"} of the backup in `backup_dir`, or None when there is none."""
        path = os.path.join(backup_dir, "training_metadata.json")
        if not os.path.exists(os.path.join(backup_dir, "latest.weights.h5")):
            return None
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        return {"epoch": int(meta.get("epoch", 0)), "step": int(meta.get("step", 0))}


class HistoryFile(keras.callbacks.Callback):
    """Keeps `history.json` (and `curves.png`) complete across resumed runs.

    At the first epoch of a run, the epochs from an earlier (interrupted) run that come
    before it are kept from the existing file; after every epoch the file is rewritten
    atomically and, if `curves_path` is given, the curves are redrawn.

    Args:
        path: the JSON file, {name: [one value per epoch]}.
        curves_path: the PNG of `fcn_keras.training.plots.plot_history` (None: no plot).
    """

    def __init__(self, path, curves_path=None):
        super().__init__()
        self.path, self.curves_path = path, curves_path
        self.history, self._fresh = {}, True

    def on_train_begin(self, logs=None):
        self.history, self._fresh = {}, True
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.history = json.load(f)

    def on_epoch_begin(self, epoch, logs=None):
        if self._fresh:  # keep only the epochs before the one this run starts with
            self.history = {k: list(v[:epoch]) for k, v in self.history.items()}
            self._fresh = False

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            values = self.history.setdefault(key, [])
            values.extend([None] * (epoch - len(values)))
            values.append(float(value))
        write_json(self.history, self.path)
        if self.curves_path:
            from .plots import plot_history

            plot_history(self.history, self.curves_path, title=self.model.name)


class Progress(keras.callbacks.Callback):
    """What `train` shows: one short line per epoch, and on a terminal a bar within it.

    The line (stdout) reads `epoch 3/10  loss 0.412  mean_iou 0.630  val_loss 0.450
    val_mean_iou 0.600  12.3s`. The bar (stderr, `fcn_keras._progress.bar`) is drawn only
    when stderr is a terminal, so redirected output holds no carriage returns or ANSI codes.

    Args:
        bar: True draws the bar, False never, None (default) only on a terminal.
    """

    KEYS = ("loss", "mean_iou", "val_loss", "val_mean_iou")

    def __init__(self, bar=None):
        super().__init__()
        self.draw = interactive() if bar is None else bool(bar)
        self._bar, self._steps = None, None

    def on_train_begin(self, logs=None):
        self._steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._seen = time.time(), 0
        self._desc = f"epoch {epoch + 1}/{self.params['epochs']}"
        self._bar = progress_bar(self._steps, self._desc, unit="step", enabled=self.draw)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self.draw:
            self._bar.update(1)
            if logs and "loss" in logs:
                self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_test_begin(self, logs=None):
        if self._bar is not None and self.draw:
            self._bar.set_description(f"{self._desc} validating", refresh=True)

    def on_epoch_end(self, epoch, logs=None):
        self._close()
        self._steps = self._steps or self._seen
        parts = [f"epoch {epoch + 1}/{self.params['epochs']}"]
        parts += [f"{k} {float(logs[k]):.4f}" for k in self.KEYS if logs and k in logs]
        parts.append(f"{time.time() - self._t0:.1f}s")
        print("  ".join(parts), flush=True)

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def default_callbacks(out_dir, *, backup=True, backup_every=500, checkpoint=True, csv=True,
                      history=True, tensorboard=False, terminate_on_nan=True,
                      monitor="val_mean_iou", verbose=True):
    """The callbacks `train` uses, rooted at `out_dir`.

    - `TerminateOnNaN`.
    - `ModelCheckpoint`: `<out_dir>/checkpoints/last.weights.h5` every epoch and
      `best.weights.h5` by `monitor` (max) when it is logged.
    - `CSVLogger` (`<out_dir>/log.csv`, appended to on resume).
    - `HistoryFile`: `<out_dir>/history.json` and `<out_dir>/curves.png` every epoch,
      complete across resumes.
    - `TensorBoard` (`<out_dir>/tensorboard`) if asked.
    - `Backup` (`<out_dir>/backup`): resume after an interruption; the state is saved every
      `backup_every` steps, at every epoch end, and on Ctrl-C (by `train`).

    Under `MultiWorkerMirroredStrategy` only the chief writes to `out_dir`; other workers
    write to `<out_dir>/workers/worker_<i>`.

    Args:
        out_dir: the run folder.
        backup_every: steps between backups within an epoch (None or 0: epoch ends only).
        monitor: the logged metric that picks `best.weights.h5`.
        verbose: print where a resumed run continues.
        backup, checkpoint, csv, history, tensorboard, terminate_on_nan: include that
            callback.

    Returns:
        a list of Keras callbacks.
    """
    _, index, n_workers, is_chief = worker_info()
    root = out_dir if is_chief else os.path.join(out_dir, "workers", f"worker_{index}")
    os.makedirs(root, exist_ok=True)
    cbs = []
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
    if history:
        cbs.append(HistoryFile(os.path.join(root, "history.json"),
                               os.path.join(root, "curves.png") if is_chief else None))
    if tensorboard:
        cbs.append(keras.callbacks.TensorBoard(os.path.join(root, "tensorboard")))
    if backup:
        # Last, so that an epoch counts as done in the backup only once its logs are
        # written. Keras 3's BackupAndRestore has no multi-worker protocol: each worker
        # keeps its own (identical, training is synchronous) backup, so files never collide.
        cbs.append(Backup(os.path.join(root, "backup"), backup_every, verbose=verbose))
    return cbs


class _BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint(save_best_only) that stays quiet when `monitor` is not logged
    (e.g. training without validation data)."""

    def __init__(self, path, monitor):
        super().__init__(path, monitor=monitor, mode="max", save_best_only=True,
                         save_weights_only=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.monitor in logs:
            super().on_epoch_end(epoch, logs)


def train(model, train_ds, val_ds=None, epochs=1, out_dir=None, *, steps_per_epoch=None,
          validation_steps=None, callbacks=None, backup=True, backup_every=500,
          checkpoint=True, csv=True, tensorboard=False, terminate_on_nan=True, verbose="auto",
          save_model=True):
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
        save_model: write `<out_dir>/model.keras` at the end (chief only).
        backup, checkpoint, csv, tensorboard, terminate_on_nan: see `default_callbacks`.

    Returns:
        the `History` of `model.fit`; with `out_dir`, its `history` holds every epoch of
        the run, those of an interrupted earlier process included.

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving the backup (a `KeyboardInterrupt`).
        FloatingPointError: the loss became NaN (nothing is saved).
        ValueError: `epochs` is not a positive int.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive int. Received: epochs={epochs!r}")
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
                                terminate_on_nan=terminate_on_nan, verbose=bool(verbose))
    elif terminate_on_nan:
        cbs = [keras.callbacks.TerminateOnNaN()]
    if verbose:
        cbs.append(Progress(bar=False if verbose == 2 else None))
    cbs += list(callbacks or [])
    _multiworker_prebuild(model, train_ds)
    try:
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                            callbacks=cbs, verbose=0, shuffle=False)  # pipelines shuffle
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
       ("Attempt to convert a value (PerReplica...)"): build from a local batch instead.
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


def evaluate(model, ds, num_classes=None, class_names=None, *, steps=None, progress=True):
    """Scores `model` on `ds` with the paper's definitions, from one confusion matrix.

    Args:
        model: a Keras model producing (N, H, W, C) scores.
        ds: batches of (images, masks) (masks: 255 = ignore), e.g. from
            `fcn_keras.data.pipeline`.
        num_classes: default: the model's `num_classes` (or its output channels).
        class_names: names for the per-class table (default `class_0 ...`).
        steps: evaluate only this many batches.
        progress: draw a progress bar on stderr when it is a terminal
            (`fcn_keras._progress.bar`); False never.

    Returns:
        {"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"} (fractions
        in [0, 1]), "per_class_iou" and "per_class_accuracy" ({name: float or None}, None
        where undefined), "confusion_matrix" (list of lists, rows = ground truth), "pixels"
        and "images".

    Raises:
        ValueError: `class_names` does not have `num_classes` entries, or `ds` is empty.
        tf.errors.InvalidArgumentError: a label >= `num_classes` other than 255.
    """
    if num_classes is None:
        num_classes = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    num_classes = int(num_classes)
    if class_names is None:
        class_names = [f"class_{i}" for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"Expected one class name per class ({num_classes}). Received: "
                         f"{len(class_names)} class_names={list(class_names)!r}")
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
    images = 0
    with progress_bar(total, "evaluating", unit="batch", enabled=None if progress else False) as bar:
        for i, (x, y) in enumerate(ds):
            if steps is not None and i >= steps:
                break
            images += int(step(x, y))
            bar.update(1)
    if images == 0:
        raise ValueError(f"Expected a dataset with at least one batch. Received: ds={ds!r} "
                         f"(no batches)")
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
    out = []
    for i in range(0, len(arr), batch_size):
        logits = model(tf.convert_to_tensor(arr[i:i + batch_size], tf.float32), training=False)
        out.append(np.asarray(tf.argmax(logits, -1), np.uint8))
    labels = np.concatenate(out, 0)
    return labels[0] if single else labels
