"""The small config objects `train` and `run_recipe` take, each a group of their keywords.

* `RunFiles`: what a run writes under its `out_dir` (`train`, every stage of `run_recipe`).
* `StageBuild`: how `run_recipe` builds each stage's FCN.
* `StageCompile`: how `run_recipe` compiles each stage.

Each field is also accepted as a keyword of its own by `train` / `run_recipe` (the older
calls, e.g. `train(..., keep=("last",))`); a keyword and its config object together are an
error.
"""

from __future__ import annotations

import dataclasses

from .defaults import BACKUP_EVERY
from .saving import CHECKPOINTS


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """What a training run writes under its `out_dir` (`default_callbacks`).

    Attributes:
        backup: keep `<out_dir>/backup/` (resume after a crash or Ctrl-C).
        backup_every: steps between backups within an epoch (None or 0: epoch ends only).
        checkpoint: write `<out_dir>/checkpoints/` (those named in `keep`).
        keep: the checkpoints kept, among ("last", "best").
        csv: write `<out_dir>/log.csv`.
        tensorboard: write `<out_dir>/tensorboard/`.
        save_model: write `<out_dir>/model.keras` at the end (chief only; architecture and
            weights, without the optimizer state).
    """

    backup: bool = True
    backup_every: int | None = BACKUP_EVERY
    checkpoint: bool = True
    keep: tuple = CHECKPOINTS
    csv: bool = True
    tensorboard: bool = False
    save_model: bool = True


@dataclasses.dataclass(frozen=True)
class StageBuild:
    """How `run_recipe` builds each stage's `fcn_keras.FCN`.

    Attributes:
        width: backbone width multiplier (`fcn_keras.build`).
        mixed_precision: False, True (`mixed_float16`, with loss scaling) or a policy name
            (`"mixed_bfloat16"`); the logits stay float32. Every backend.
        class_names: the data's class names, kept in every stage's model and `.keras` file.
        build_kwargs: more arguments of `fcn_keras.FCN` (input_shape, include_preprocessing,
            palette).
    """

    width: float = 1.0
    mixed_precision: bool | str = False
    class_names: list | None = None
    build_kwargs: dict | None = None


@dataclasses.dataclass(frozen=True)
class StageCompile:
    """How `run_recipe` compiles each stage (`FCN.compile`).

    Attributes:
        optimizer: None (the paper's SGD from `FCN.compile()`), "sgd", "adam", "adamw",
            "rmsprop", a Keras optimiser (its config is cloned for every stage) or a callable
            returning one (`make_optimizer`).
        learning_rate: the rate of the chosen optimiser (paper SGD: replaces the per-head rate).
        jit_compile: XLA: True, False or "auto" (`fcn_keras.training.jit_choice`: a graph on
            TensorFlow CPUs, where XLA measured slower for training; XLA on JAX).
        compile_kwargs: more arguments for `FCN.compile` (e.g. `loss=`, `class_weights=`).
    """

    optimizer: object = None
    learning_rate: float | None = None
    jit_compile: bool | str = "auto"
    compile_kwargs: dict | None = None


def with_keywords(config, cls, keywords, where):
    """`config` (an instance of `cls`, or None: the defaults) with the fields named in
    `keywords` replaced; returns (that config, the keywords left over).

    Raises:
        TypeError: a keyword given together with `config` (say it once).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    mine = {k: keywords.pop(k) for k in list(keywords) if k in names}
    if config is None:
        return cls(**mine), keywords
    if not isinstance(config, cls):
        raise TypeError(f"{where}: expected a {cls.__name__}. Received: {config!r}")
    if mine:
        raise TypeError(f"{where}: pass {sorted(mine)} either as keywords or in the "
                        f"{cls.__name__}, not both. Received: both")
    return config, keywords


def no_more_keywords(keywords, where):
    """Raises the TypeError Python raises for an unknown keyword, if any is left."""
    if keywords:
        name = next(iter(keywords))
        raise TypeError(f"{where}() got an unexpected keyword argument {name!r}")
