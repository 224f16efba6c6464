"""`train`: `model.fit` with backups, checkpoints, logs, curves, resumption and clear errors."""

from __future__ import annotations

import contextlib
import os
import warnings

import keras
import numpy as np

from fcn_keras._io import atomic_write
from fcn_keras.data import reraise_data_errors

from .callbacks import Backup, HistoryFile, Progress, TrainingInterrupted, default_callbacks
from .cluster import reraise_cluster_errors, use_chief_backup
from .distribute import check_model_placement, get_distribution, worker_info
from .keras_patches import prebuild_for_multiworker
from .options import RunFiles, no_more_keywords, with_keywords
from .saving import save_model as save_model_file


def train(model, train_ds, val_ds=None, epochs=1, out_dir=None, *, steps_per_epoch=None,
          validation_steps=None, callbacks=None, files=None, terminate_on_nan=True,
          verbose="auto", class_names=None, distribution=None, **file_keywords):
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
        files: a `RunFiles`: what is written under `out_dir` (backup, `backup_every`,
            checkpoint, `keep`, csv, tensorboard, save_model); None: the defaults. Its
            fields are also accepted as keywords (`train(..., keep=("last",))`).
        terminate_on_nan: stop at a NaN loss (`keras.callbacks.TerminateOnNaN`).
        verbose: 0 prints nothing; 1 or "auto" one line per epoch and, on a terminal, a
            progress bar within each epoch; 2 one line per epoch only.
        class_names: the training data's class names (e.g. `source.class_names`), set on an
            `fcn_keras.FCN` before training, so its `.keras` files carry them (None: keep the
            model's own).
        distribution: JAX backend: a `keras.distribution` (e.g. `DataParallel`) or a name
            for `fcn_keras.training.get_distribution` ("data_parallel", "model_parallel");
            `fit` runs inside its scope, each global batch split between its devices (the
            metrics count every device's pixels). The model must have been built inside
            `distribution.scope()` (`run_recipe` does this). None: no distribution.
        **file_keywords: `RunFiles` fields. `save_model`: `<out_dir>/model.keras` (chief
            only) holds the architecture and weights without the optimizer state (it loads
            uncompiled: `compile()` it to train on; the backup keeps the state while a run
            can still resume).

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
        TypeError: an unknown keyword, or a `RunFiles` field given both ways.
    """
    files, rest = with_keywords(files, RunFiles, file_keywords, "train")
    no_more_keywords(rest, "train")
    distribution = _prepare(model, epochs, class_names, distribution)
    if steps_per_epoch is not None and hasattr(train_ds, "repeat"):
        train_ds = train_ds.repeat()
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
    cbs = _callbacks(out_dir, files, terminate_on_nan, verbose) + list(callbacks or [])
    prebuild_for_multiworker(model, train_ds)
    if out_dir is not None and files.backup:
        use_chief_backup(out_dir)  # a cluster resumes from one state: the chief's
    history = _fit(model, train_ds, val_ds, cbs, out_dir, distribution, epochs=epochs,
                   steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)
    history_files = [cb for cb in cbs if isinstance(cb, HistoryFile)]
    if history_files:
        history.history = history_files[0].history
    if out_dir is not None and files.save_model and worker_info().is_chief:
        _save_final(model, history, out_dir)
    return history


def _prepare(model, epochs, class_names, distribution):
    """Checks `epochs`, sets `class_names` on the model, checks its placement under
    `distribution` and compiles it (the paper's recipe) if it is not; returns the
    `keras.distribution` or None."""
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
    return distribution


def _callbacks(out_dir, files, terminate_on_nan, verbose):
    """The default callbacks of a run: those of `default_callbacks` under `out_dir` (None: only
    `TerminateOnNaN`), then the progress lines."""
    cbs = []
    if out_dir is not None:
        cbs = default_callbacks(out_dir, backup=files.backup, backup_every=files.backup_every,
                                checkpoint=files.checkpoint, csv=files.csv,
                                tensorboard=files.tensorboard, terminate_on_nan=terminate_on_nan,
                                verbose=bool(verbose), keep=files.keep)
    elif terminate_on_nan:
        cbs = [keras.callbacks.TerminateOnNaN()]
    if verbose:
        cbs.append(Progress(bar=False if verbose == 2 else None))
    return cbs


def _fit(model, train_ds, val_ds, cbs, out_dir, distribution, **fit_kwargs):
    """`model.fit` inside `distribution`'s scope, its errors made clear (data files, lost
    workers); a Ctrl-C saves the backup and raises `TrainingInterrupted`."""
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    backups = [cb.backup_dir for cb in cbs if isinstance(cb, Backup)]
    try:
        with reraise_data_errors(), scope, warnings.catch_warnings(), \
                reraise_cluster_errors(out_dir, backups[0] if backups else None):
            # Keras warns when a data set of unknown length ends; a validation set batched by
            # image size has one (train_ds repeats whenever steps_per_epoch is given).
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            return model.fit(train_ds, validation_data=val_ds, callbacks=cbs, verbose=0,
                             shuffle=False, **fit_kwargs)  # pipelines shuffle
    except KeyboardInterrupt:
        saved = [cb.save_now() for cb in cbs if isinstance(cb, Backup) and cb.model is not None]
        raise TrainingInterrupted(saved[0] if saved else None) from None


def _save_final(model, history, out_dir):
    """Writes `<out_dir>/model.keras`, unless training stopped on a NaN loss (then a
    FloatingPointError)."""
    if getattr(model, "stop_training", False) and _has_nan(history):
        raise FloatingPointError(
            f"training stopped on a NaN loss (TerminateOnNaN); model not saved to {out_dir}")
    atomic_write(os.path.join(out_dir, "model.keras"), lambda tmp: save_model_file(model, tmp))


def _has_nan(history):
    return any(not np.isfinite(v) for v in history.history.get("loss", []))
