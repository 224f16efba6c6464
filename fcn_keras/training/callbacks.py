"""The callbacks `train` uses: backups with resumption, history and curves files, progress."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time

import keras
import numpy as np

from fcn_keras._io import atomic_write, save_json
from fcn_keras._progress import bar as progress_bar
from fcn_keras._progress import interactive

from .defaults import BACKUP_EVERY
from .distribute import worker_info
from .saving import CHECKPOINTS, check_keep, without_optimizer


def write_json(obj, path):
    """Writes `obj` (NaN/inf as null) to `path` as JSON, atomically."""
    save_json(path, _jsonable(obj))


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
        """Saves the current state (used on Ctrl-C); returns the backup folder. A second
        Ctrl-C while it writes is ignored: the run is stopping already."""
        with _ctrl_c_after() as pending:
            self._save_model()
            pending.clear()
        return self.backup_dir

    def _save_model(self):
        with _ctrl_c_after():  # a backup is never left half-written, and weights and step agree
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


@contextlib.contextmanager
def _ctrl_c_after():
    """Within the block, Ctrl-C (SIGINT) is held; on leaving it, a held one is raised as the
    KeyboardInterrupt it would have been (unless the block cleared the list it yields).
    Only in the main thread with Python's own handler installed; elsewhere nothing changes."""
    pending = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield pending
        return
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt


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


def default_callbacks(out_dir, *, backup=True, backup_every=BACKUP_EVERY, checkpoint=True, csv=True,
                      history=True, tensorboard=False, terminate_on_nan=True,
                      monitor="val_mean_iou", verbose=True, keep=CHECKPOINTS):
    """The callbacks `train` uses, rooted at `out_dir`.

    - `TerminateOnNaN`.
    - `ModelCheckpoint`: `<out_dir>/checkpoints/last.weights.h5` every epoch and
      `best.weights.h5` by `monitor` (max) when it is logged (those named in `keep`);
      weights only, without the optimizer state (the backup alone keeps it).
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
        keep: the checkpoints to write, among ("last", "best").
        verbose: print where a resumed run continues.
        backup, checkpoint, csv, history, tensorboard, terminate_on_nan: include that
            callback.

    Returns:
        a list of Keras callbacks.

    Raises:
        ValueError: `backup_every` is not None or an int >= 0; `keep` names another file.
    """
    keep = check_keep(keep)
    if backup_every is not None and (isinstance(backup_every, bool) or not isinstance(backup_every, int)
                                     or backup_every < 0):
        raise ValueError("`backup_every` must be None or a number of steps >= 0 (0: at epoch ends "
                         f"only). Received: backup_every={backup_every!r}")
    _, index, n_workers, is_chief = worker_info()
    root = out_dir if is_chief else os.path.join(out_dir, "workers", f"worker_{index}")
    os.makedirs(root, exist_ok=True)
    cbs = []
    if terminate_on_nan:
        cbs.append(keras.callbacks.TerminateOnNaN())
    if checkpoint:
        ck = os.path.join(root, "checkpoints")
        os.makedirs(ck, exist_ok=True)
        if "last" in keep:
            cbs.append(_LastCheckpoint(os.path.join(ck, "last.weights.h5")))
        if "best" in keep:
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


class _LastCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint(save_weights_only) writing the weights without the optimizer state."""

    def __init__(self, path):
        super().__init__(path, save_weights_only=True)

    def _save_model(self, epoch, batch, logs):
        with without_optimizer(self.model):
            super()._save_model(epoch, batch, logs)


class _BestCheckpoint(_LastCheckpoint):
    """The best epoch's weights by `monitor` (max); quiet when `monitor` is not logged
    (e.g. training without validation data)."""

    def __init__(self, path, monitor):
        keras.callbacks.ModelCheckpoint.__init__(self, path, monitor=monitor, mode="max",
                                                 save_best_only=True, save_weights_only=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.monitor in logs:
            super().on_epoch_end(epoch, logs)


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
