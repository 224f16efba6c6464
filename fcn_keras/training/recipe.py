"""The paper's training schedules on top of `fcn_keras.training.train`.

* `"staged"` (the paper, PAMI 2016): train FCN-32s, then FCN-16s initialised from the
  trained 32s, then FCN-8s from the 16s. Every layer the finer net shares with the coarser
  one (backbone, `score_fr`, ...) starts from the coarser net's weights; the new score
  layers start at zero and the deconvolutions are fixed bilinear.
* `"at-once"`: FCN-8s at-once (VGG16: the `8s-atonce` head with its fixed 0.01 / 0.0001
  scaling of pool4 / pool3), trained in one go; other backbones use `8s`.
* a head name (`"32s"`, `"16s"`, `"8s"`, `"8s-atonce"`): that net alone.

Each stage writes to `<out_dir>/fcn<head>/` (checkpoints, backup, log.csv, model.keras,
model.weights.h5); only the backup holds the optimizer state (`fcn_keras.training.saving`),
and before the first stage trains the run says how much disk it needs. Re-running the same call resumes: finished stages are loaded from their
`model.weights.h5` and the interrupted one continues from its `BackupAndRestore` state.

The optimiser defaults to `FCN.compile()`'s (the paper's SGD, momentum 0.99, weight decay
5e-4, the per-head fixed rate); `optimizer="adam"` or any Keras optimiser (config is cloned
per stage) overrides it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os

import keras

from fcn_keras import weights as weight_sources
from fcn_keras._io import atomic_write
from fcn_keras.conventions import DEFAULT_NUM_CLASSES
from fcn_keras.models import FCN, registry
from fcn_keras.models.precision import precision
from fcn_keras.resolve import resolve

from .distribute import (get_distribution, get_strategy, require_backend_for_strategy,
                         worker_info)
from .fit import train
from .jit_choice import choose_jit
from .options import RunFiles, StageCompile, StageBuild, no_more_keywords, with_keywords
from .saving import check_keep, disk_line, save_weights

SCHEDULES = registry.SCHEDULES


def stages_for(backbone, schedule):
    """The heads trained, in order, by `schedule` for `backbone`.

    Args:
        backbone: a registry backbone name.
        schedule: "staged" (32s, 16s, 8s), "at-once" (8s-atonce where the backbone has that
            head, else 8s) or one of the backbone's head names.

    Returns:
        A list of head names.

    Raises:
        ValueError: an unknown schedule or backbone.
    """
    heads = registry.heads(backbone)
    if schedule == "staged":
        return registry.staged_heads()
    if schedule == "at-once":
        return [registry.at_once_head(backbone)]
    if schedule in heads:
        return [schedule]
    raise ValueError(f"schedule must be one of {list(SCHEDULES) + heads} for backbone {backbone!r}. "
                     f"Received: schedule={schedule!r}")


def transfer_weights(src, dst):
    """Copies weights from `src` to `dst` for every layer with the same name and weight shapes.

    This is the surgery that initialises FCN-16s from FCN-32s (and 8s from 16s).

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: no layer matches.
    """
    src_layers = {layer.name: layer for layer in src.layers}
    copied = []
    for layer in dst.layers:
        other = src_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        a, b = other.get_weights(), layer.get_weights()
        if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
            continue
        layer.set_weights(a)
        copied.append(layer.name)
    if not copied:
        raise ValueError(f"transfer_weights: expected a layer of {dst.name!r} that matches one of {src.name!r} "
                         "by name and weight shapes. Received: no layer matches")
    return copied


def make_optimizer(optimizer, learning_rate=None):
    """A fresh optimiser for one stage.

    Args:
        optimizer: None or "sgd" (the model's default, the paper's SGD), "adam", "adamw",
            "rmsprop", a Keras optimiser (its config is cloned) or a callable returning one.
        learning_rate: the rate of a named optimiser (default 1e-3 for adam / adamw / rmsprop).

    Returns:
        None (compile with the model's default), "sgd" (the default at `learning_rate`), or
        a Keras optimiser.
    """
    if optimizer is None:
        return None
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "sgd":
            return None if learning_rate is None else "sgd"
        if name in ("adam", "adamw", "rmsprop"):
            cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                   "rmsprop": keras.optimizers.RMSprop}[name]
            return cls(learning_rate=learning_rate or 1e-3)
        raise ValueError(f"optimizer must be 'sgd' (the paper's), 'adam', 'adamw', 'rmsprop' "
                         f"or a keras optimizer. Received: optimizer={optimizer!r}")
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.__class__.from_config(optimizer.get_config())
    if callable(optimizer):
        return optimizer()
    raise TypeError(f"optimizer must be a name, a keras optimizer or a callable. Received: optimizer={optimizer!r}")


@dataclasses.dataclass
class RecipeResult:
    """What `run_recipe` returns: the last stage's model, {head: History or None (loaded,
    already done)} and {head: its output folder or None}."""

    model: keras.Model
    histories: dict
    stage_dirs: dict


def run_recipe(backbone, train_ds, val_ds=None, *, schedule="staged", num_classes=DEFAULT_NUM_CLASSES,
               epochs=1, out_dir=None, weights=None, strategy=None, distribution=None,
               steps_per_epoch=None, validation_steps=None, callbacks=None, verbose="auto",
               build=None, compile_options=None, files=None, **keywords):
    """Train an FCN with the paper's schedule (or at once); returns a `RecipeResult`.

    Args:
        backbone: a registry backbone name ("vgg16", "alexnet", "googlenet").
        train_ds, val_ds: batches of `(images, masks)` (`fcn_keras.data.pipeline`).
        schedule: `"staged"` (32s -> 16s -> 8s), `"at-once"` or a head name.
        num_classes: classes of the data.
        epochs: epochs per stage: an int, or a list with one entry per stage.
        out_dir: where each stage writes (`<out_dir>/fcn32s` ...); `None`: nothing written.
        weights: initial weights of the first stage (`"imagenet"`, a path, a zoo name).
        strategy: a `tf.distribute` strategy or name (see
            `fcn_keras.training.get_strategy`); None: the default strategy. TensorFlow
            backend only (elsewhere a ValueError naming the backend and the alternative).
            "multiworker" must have been created before TensorFlow ran any op: call
            `get_strategy("multiworker")` first thing in the program (else a RuntimeError
            saying so).
        distribution: JAX backend only: a `keras.distribution` or a name for
            `fcn_keras.training.get_distribution` (`"data_parallel"`, `"model_parallel"`);
            every stage is built, trained and saved under it.
        steps_per_epoch, validation_steps, callbacks, verbose: passed to
            `fcn_keras.training.train`.
        build: a `StageBuild`: how each stage is built (width, mixed_precision,
            class_names, build_kwargs); None: the defaults.
        compile_options: a `StageCompile`: how each stage is compiled (optimizer, learning_rate,
            jit_compile, compile_kwargs); None: `FCN.compile()`'s, the paper's SGD.
        files: a `RunFiles`: what each stage writes (backup_every, keep, tensorboard, ...).
        **keywords: the fields of these three config objects, as keywords of their own
            (`run_recipe(..., width=0.5, optimizer="adam", keep=("best",))`).

    Returns:
        A `RecipeResult`.

    Raises:
        ValueError: an unknown schedule, or `epochs` that does not fit the stages.
        TypeError: an unknown keyword, or a field given both as a keyword and in its config.
    """
    build, keywords = with_keywords(build, StageBuild, keywords, "run_recipe")
    compile_options, keywords = with_keywords(compile_options, StageCompile, keywords, "run_recipe")
    files, keywords = with_keywords(files, RunFiles, keywords, "run_recipe")
    no_more_keywords(keywords, "run_recipe")
    heads = stages_for(backbone, schedule)
    resolve(weights, backbone=backbone, num_classes=num_classes, as_weights=True)  # a zoo misfit, refused first
    epochs = _stage_epochs(epochs, heads)
    files = dataclasses.replace(files, keep=check_keep(files.keep))
    dist, scope = _placement(strategy, distribution)
    jit, jit_line = choose_jit(compile_options.jit_compile, train_ds,
                               distributed="auto" if strategy == "auto" else strategy not in (None, "default"))
    compile_options = dataclasses.replace(compile_options, jit_compile=jit)
    if verbose and worker_info().is_chief:
        print(jit_line, flush=True)
    fit = dict(steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
               callbacks=callbacks, verbose=verbose, distribution=dist, files=files)
    histories, dirs = {}, {}
    prev = None
    for head, n_ep in zip(heads, epochs):
        stage_dir = None if out_dir is None else os.path.join(os.fspath(out_dir), f"fcn{head}")
        dirs[head] = stage_dir
        done = stage_dir is not None and os.path.exists(os.path.join(stage_dir, "model.weights.h5"))
        with precision(build.mixed_precision), scope():
            net = _build_stage(backbone, head, num_classes, build,
                               weights=None if done else weights, coarser=prev)
            if prev is not None:
                prev = None  # the coarser net and its optimizer state: no longer needed
                gc.collect()
            _compile_stage(net, compile_options)
        if done:
            _load_finished_stage(net, os.path.join(stage_dir, "model.weights.h5"))
            histories[head] = None
        else:
            if verbose and stage_dir is not None and not any(histories.values()):
                _say_disk_use(out_dir, net, len(heads), files.keep)
            histories[head] = _train_stage(net, train_ds, val_ds, n_ep, stage_dir, fit)
        prev = net
    return RecipeResult(model=prev, histories=histories, stage_dirs=dirs)


def _stage_epochs(epochs, heads):
    """Epochs per stage from `epochs` (an int, or one per stage)."""
    if isinstance(epochs, int):
        epochs = [epochs] * len(heads)
    epochs = list(epochs)
    if len(epochs) != len(heads) or any(not isinstance(e, int) or e < 1 for e in epochs):
        raise ValueError(f"epochs must be a positive int or one per stage {heads}. Received: epochs={epochs!r}")
    return epochs


def _placement(strategy, distribution):
    """(the `keras.distribution` or None, the scope every stage is built in) of a run."""
    require_backend_for_strategy(strategy)
    dist = get_distribution(distribution)
    if dist is not None and strategy not in (None, "default", "auto"):
        raise ValueError(f"Expected either a tf.distribute `strategy` or a keras `distribution`. "
                         f"Received: strategy={strategy!r} and distribution={distribution!r}")
    if keras.backend.backend() == "tensorflow":
        return dist, get_strategy(strategy or "default").scope
    return dist, (dist.scope if dist is not None else contextlib.nullcontext)


def _build_stage(backbone, head, num_classes, options, *, weights, coarser):
    """The FCN of one stage: from the `coarser` stage's trained net (`transfer_weights`), else
    with `weights` loaded (None: as built)."""
    model = FCN(backbone, head, num_classes, width=options.width, **(options.build_kwargs or {}),
                **({} if options.class_names is None else {"class_names": list(options.class_names)}))
    if coarser is not None:
        transfer_weights(coarser, model)
    else:
        weight_sources.load(model, weights)
    return model


def _compile_stage(model, options):
    """Compiles one stage with a fresh optimiser (`make_optimizer`)."""
    opt = make_optimizer(options.optimizer, options.learning_rate)
    extra = options.compile_kwargs or {}
    if opt is None or isinstance(opt, str):  # the paper's SGD, at `learning_rate` when given
        model.compile(learning_rate=options.learning_rate, jit_compile=options.jit_compile, **extra)
    else:
        model.compile(optimizer=opt, jit_compile=options.jit_compile, **extra)


def _say_disk_use(out_dir, model, stages, keep):
    """Prints (chief only) how much disk the run needs, before its first stage trains."""
    if worker_info().is_chief:
        print(disk_line(out_dir, model.count_params(), stages, keep,
                        getattr(model.optimizer, "name", "sgd")), flush=True)


def _train_stage(model, train_ds, val_ds, epochs, stage_dir, fit):
    """Trains one stage (`train`) and writes its `model.weights.h5` (chief only); returns
    its History."""
    history = train(model, train_ds, val_ds, epochs=epochs, out_dir=stage_dir, **fit)
    if stage_dir is not None and worker_info().is_chief:
        atomic_write(os.path.join(stage_dir, "model.weights.h5"),
                     lambda tmp: save_weights(model, tmp))
    return history


def _load_finished_stage(model, path):
    """Loads a finished stage's weights into the compiled `model`, its optimizer detached:
    the next stage starts a fresh optimizer, so a saved optimizer state (or an empty one) is
    not needed, and Keras then has none to skip with a warning."""
    optimizer = getattr(model, "optimizer", None)
    model.optimizer = None
    try:
        model.load_weights(path)
    finally:
        model.optimizer = optimizer
