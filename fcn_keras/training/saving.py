"""What a training run writes, and how much disk that takes.

Only the backup (`Backup`, for resuming) keeps the optimizer state: Adam holds two more
copies of every weight, SGD with momentum one, so a full-width FCN-8s VGG16 file grows
from 0.54 GB to 1.6 GB with it. Checkpoints, a stage's `model.weights.h5` and the final
`model.keras` hold the architecture and the weights only (`without_optimizer`).
"""

from __future__ import annotations

import contextlib
import os
import shutil

CHECKPOINTS = ("last", "best")
# optimizer slots per weight in the backup (Adam and AdamW: m and v; RMSprop: one, or two
# with momentum; SGD: the momentum)
_SLOTS = {"adam": 2, "adamw": 2, "rmsprop": 2, "sgd": 1}


@contextlib.contextmanager
def without_optimizer(model):
    """While inside, `model.save` / `save_weights` write no optimizer state and no compile
    config (a `.keras` file loads uncompiled: `compile()` it again to train more)."""
    optimizer, compiled = getattr(model, "optimizer", None), getattr(model, "compiled", False)
    if optimizer is None:
        yield model
        return
    model.optimizer, model.compiled = None, False
    try:
        yield model
    finally:
        model.optimizer, model.compiled = optimizer, compiled


def save_model(model, path):
    """Writes `model` to a `.keras` file, architecture and weights only."""
    with without_optimizer(model):
        model.save(path)


def save_weights(model, path):
    """Writes `model`'s weights to a `.weights.h5` file, without the optimizer state."""
    with without_optimizer(model):
        model.save_weights(path)


def load_weights(model, path):
    """Loads a file of `save_weights` into `model`, leaving its optimizer as it is."""
    with without_optimizer(model):
        model.load_weights(path)


def check_keep(keep):
    """`keep` as a tuple of checkpoint names (a subset of "last", "best"), or a ValueError."""
    keep = (keep,) if isinstance(keep, str) else tuple(keep or ())
    unknown = [k for k in keep if k not in CHECKPOINTS]
    if unknown:
        raise ValueError(f"`keep` must name checkpoints among {CHECKPOINTS}. Received: keep={keep!r}")
    return keep


def disk_needed(num_weights, stages, keep=CHECKPOINTS, optimizer="adam"):
    """Bytes a run writes, (at the end, at the peak), for `num_weights` float32 weights.

    Each stage keeps its `model.keras` and `model.weights.h5` and the `keep` checkpoints; the
    run's final `model.keras` is one more copy; while a stage trains its backup holds the
    weights and `optimizer`'s slots (deleted when the stage ends). Logs and curves are small.
    """
    copy = 4 * int(num_weights)
    end = copy * (stages * (2 + len(keep)) + 1)
    backup = copy * (1 + _SLOTS.get(str(optimizer).lower(), 2))
    return end, end + backup


def disk_line(out_dir, num_weights, stages, keep=CHECKPOINTS, optimizer="adam"):
    """One line for the user: the disk a run needs under `out_dir`, and how much is free."""
    end, peak = disk_needed(num_weights, stages, keep, optimizer)
    probe = os.path.abspath(out_dir)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    line = (f"disk: this run writes about {_size(end)} to {out_dir} ({_size(peak)} at the peak, "
            f"while a backup with the optimizer state exists); {_size(free)} free")
    return line if free >= peak else "warning: " + line + ": not enough"


def _size(n):
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
