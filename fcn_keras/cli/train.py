"""`fcn-keras train`: train an FCN (the paper's staged schedule, at once, or one net)."""

from __future__ import annotations

import json
import os
import shutil
import sys

from fcn_keras._io import atomic_write
from fcn_keras.cli._args import architecture_args, data_args, pair, source
from fcn_keras.cli.predict import check_out_folder
from fcn_keras.models import registry
from fcn_keras.training.defaults import BACKUP_EVERY, SCRATCH_LR, SCRATCH_OPTIMIZER
from fcn_keras.training.distribute import DISTRIBUTIONS, STRATEGIES


def _stage_callback(heads, out_dir, start):
    """A callback that names each stage of a schedule as it begins."""
    import keras

    class StageLine(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.announced = 0

        def on_train_begin(self, logs=None):
            i = heads.index(self.model.head_name)
            for k in range(self.announced, i):
                print(f"stage {k + 1}/{len(heads)}: FCN-{heads[k]} already trained "
                      f"({os.path.join(out_dir, 'fcn' + heads[k])})", flush=True)
            origin = start if i == 0 else f"from FCN-{heads[i - 1]}"
            print(f"stage {i + 1}/{len(heads)}: FCN-{heads[i]} {origin}", flush=True)
            self.announced = i + 1

    return StageLine()


def _optimizer(args):
    """(optimizer, learning rate, a line for the user or None) for the first stage."""
    if args.optimizer is None and not args.weights:
        lr = args.lr or SCRATCH_LR
        return SCRATCH_OPTIMIZER, lr, (
            f"training from scratch (no --weights): Adam, learning rate {lr:g}; the paper's "
            f"SGD recipe is for fine-tuning ImageNet weights and does not learn from scratch")
    if args.optimizer in (None, "sgd") and not args.weights:
        return args.optimizer, args.lr, (
            "warning: the paper's SGD recipe from scratch (no --weights) stays at the initial "
            "loss; give --weights imagenet, or --optimizer adam")
    return args.optimizer, args.lr, None


def _combine_histories(heads, stage_dirs):
    """The stages' history.json files end to end, and [(label, first epoch)] per stage."""
    combined, stages = {}, []
    for head in heads:
        path = os.path.join(stage_dirs[head], "history.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            hist = json.load(f)
        n = len(hist.get("loss", []))
        start = len(combined.get("loss", []))
        stages.append((f"FCN-{head}", start))
        for key, values in hist.items():
            col = combined.setdefault(key, [])
            col.extend([None] * (start - len(col)))
            col.extend(values[:n])
    return combined, stages


def _check(args):
    """Refuses bad numbers before any work (the data, the model); returns (heads, epochs)."""
    import math

    from fcn_keras import training

    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"`--lr` must be a positive learning rate. Received: --lr {args.lr:g}")
    for flag, value in (("--batch-size", args.batch_size), ("--val-batch-size", args.val_batch_size),
                        ("--steps-per-epoch", args.steps_per_epoch)):
        if value is not None and value < 1:
            raise ValueError(f"`{flag}` must be a positive count. Received: {flag} {value}")
    if args.backup_every < 0:
        raise ValueError(f"`--backup-every` must be a number of steps >= 0 (0: at epoch ends "
                         f"only). Received: --backup-every {args.backup_every}")
    if args.mesh and args.distribute != "model_parallel":
        raise ValueError(f"`--mesh` goes with --distribute model_parallel. Received: --mesh "
                         f"{args.mesh} with --distribute {args.distribute}")
    heads = training.stages_for(args.backbone, args.schedule or args.head)
    return heads, _epochs(args.epochs, heads)


def run(args):
    """Runs `fcn-keras train`; returns the exit code."""
    from fcn_keras import training
    from fcn_keras.training.distribute import start_cluster

    heads, epochs = _check(args)
    keep = _keep(args.keep)
    start_cluster(args.strategy, program="fcn-keras train", coordinator=args.coordinator,
                  num_processes=args.num_processes, process_id=args.process_id)  # before any op
    check_out_folder(args.out)
    # Seeded before the data pipeline, whose shuffles draw on TensorFlow's global seed: a JAX
    # process of a cluster (keras.distribution.initialize seeds TensorFlow) then shuffles as
    # one process does, and trains on the same global batches
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)
    train_src, val_src = _sources(args)
    compile_kwargs = _loss_kwargs(args, train_src)
    train_ds, val_ds = _pipelines(args, train_src, val_src)
    optimizer, lr, note = _optimizer(args)
    if note:
        print(note, file=sys.stderr if note.startswith("warning") else sys.stdout, flush=True)
    start = f"from {args.weights}" if args.weights else "from scratch"
    result = training.run_recipe(
        args.backbone, train_ds, val_ds, schedule=args.schedule or args.head,
        num_classes=train_src.num_classes, epochs=epochs, out_dir=args.out, weights=args.weights,
        strategy=args.strategy, distribution=_distribution(args, val_ds is not None),
        steps_per_epoch=args.steps_per_epoch,
        callbacks=[_stage_callback(heads, args.out, start)] if len(heads) > 1 else [],
        verbose=2 if args.quiet else "auto",
        build=training.StageBuild(
            width=args.width, mixed_precision=_mixed_precision(args),
            class_names=train_src.class_names,
            build_kwargs=None if getattr(train_src, "palette", None) is None  # a colour table's
            else {"palette": train_src.palette}),
        compile_options=training.StageCompile(
            optimizer=optimizer, learning_rate=lr, compile_kwargs=compile_kwargs,
            jit_compile={"auto": "auto", "on": True, "off": False}[args.jit]),
        files=training.RunFiles(backup_every=args.backup_every, keep=keep,
                                tensorboard=args.tensorboard))
    if training.worker_info().is_chief:  # the chief writes the run's summary
        _finish(args, heads, result, val_src)
    return 0


def _sources(args):
    """(the training source, the validation source or None for --val-split none), checked
    against --num-classes."""
    train_src = source(args, args.train_split)
    val_src = None if args.val_split in ("", "none") else source(args, args.val_split)
    num_classes = train_src.num_classes
    if args.num_classes and args.num_classes != num_classes:
        raise ValueError(f"`--num-classes` must match the data ({num_classes} classes in "
                         f"{args.data}). Received: --num-classes={args.num_classes}")
    return train_src, val_src


def _pipelines(args, train_src, val_src):
    """(training batches: crops, rescaling, flips, shuffled; validation batches or None)."""
    from fcn_keras import data

    crop = pair(args.crop_size, "--crop-size")
    scale = pair(args.scale_range, "--scale-range", float) if args.scale_range else None
    train_ds = data.pipeline(train_src, batch_size=args.batch_size, crop_size=crop,
                             training=True, scale_range=scale, flip=not args.no_flip,
                             cache=args.cache, seed=args.seed)
    val_ds = None if val_src is None else data.pipeline(
        val_src, batch_size=args.val_batch_size, cache=args.cache)
    return train_ds, val_ds


def _distribution(args, validates):
    """The `keras.distribution` of --distribute (None without), once the batch sizes are
    known to split evenly between its devices (--val-batch-size only when `validates`)."""
    from fcn_keras import training

    distribution = training.get_distribution(
        args.distribute, mesh_shape=pair(args.mesh, "--mesh") if args.mesh else None)
    if distribution is None:
        return None
    split = distribution.device_mesh.shape[0]  # devices each batch is split between
    for flag, size in (("--batch-size", args.batch_size),
                       ("--val-batch-size", args.val_batch_size if validates else split)):
        if size % split:
            raise ValueError(f"`{flag}` must be a multiple of the {split} devices that "
                             f"--distribute {args.distribute} splits each batch between. "
                             f"Received: {flag} {size}")
    return distribution


def _mixed_precision(args):
    """The `mixed_precision` of `run_recipe` for `--mixed-precision` (auto:
    `fcn_keras.auto_precision.choose`), printing what auto chose and why, or on a CPU with
    native bfloat16 a float32 run's hint."""
    from fcn_keras.auto_precision import choose, describe, float32_hint

    if args.mixed_precision == "auto":
        choice, reason = choose(mixed=True)
        print(describe(choice, reason, flag="--mixed-precision"), flush=True)
        return choice or False
    if not args.mixed_precision and not args.quiet and float32_hint():
        print(float32_hint(flag="--mixed-precision mixed_bfloat16", task="training"), flush=True)
    return args.mixed_precision or False


def _loss_kwargs(args, train_src):
    """`FCN.compile` arguments for `--loss` and `--class-weights` (a method computed on the
    training split, or one weight per class), with a line saying which weights."""
    from fcn_keras import data, losses

    weights = None
    if args.class_weights in data.stats.METHODS:
        freq = data.class_frequencies(train_src, progress=False if args.quiet else None)
        weights = data.class_weights(freq, args.class_weights).tolist()
    elif args.class_weights:
        weights = _floats(args.class_weights)
        if len(weights) != train_src.num_classes:
            raise ValueError(f"`--class-weights` must give one weight per class ({train_src.num_classes} "
                             f"in {args.data}). Received: {len(weights)} weights")
    if weights is not None:
        names = ", ".join(f"{n} {w:.3g}" for n, w in zip(train_src.class_names, weights))
        how = args.class_weights if args.class_weights in data.stats.METHODS else "given"
        print(f"class weights ({how}): {names}", flush=True)
    if args.loss in (None, "ce"):
        return {} if weights is None else {"class_weights": weights}
    return {"loss": losses.get(args.loss, weights)}


def _floats(text):
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"`--class-weights` must be median_frequency, inverse_sqrt or one weight "
                         f"per class 'w0,w1,...'. Received: --class-weights {text!r}") from None


def _keep(text):
    """The checkpoint names of `--keep` ('last,best', 'best', 'none', ...)."""
    names = tuple(n for n in str(text).split(",") if n and n != "none")
    if any(n not in ("last", "best") for n in names):
        raise ValueError(f"`--keep` must be 'last,best', 'last', 'best' or 'none'. "
                         f"Received: --keep {text!r}")
    return names


def _epochs(text, heads):
    """Epochs per stage from `--epochs` (N, or one count per stage)."""
    try:
        epochs = [int(e) for e in str(text).split(",")]
    except ValueError:
        epochs = []
    if len(epochs) == 1:
        epochs = epochs * len(heads)
    if len(epochs) != len(heads) or min(epochs) < 1:
        raise ValueError(f"`--epochs` must be N or one positive count per stage "
                         f"({','.join(heads)}). Received: --epochs={text!r}")
    return epochs


def _finish(args, heads, result, val_src):
    """Writes <out>/model.keras (the final stage's), history.json, curves.png and
    scores.json, and prints the scores and where the files are."""
    from fcn_keras import data, training
    from fcn_keras.training.callbacks import write_json
    from fcn_keras.training.plots import plot_history

    model_path = os.path.join(args.out, "model.keras")
    final = os.path.join(result.stage_dirs[heads[-1]], "model.keras")
    atomic_write(model_path, lambda tmp: shutil.copyfile(final, tmp))
    history, stages = _combine_histories(heads, result.stage_dirs)
    curves = None
    if history.get("loss"):
        write_json(history, os.path.join(args.out, "history.json"))
        curves = plot_history(history, os.path.join(args.out, "curves.png"),
                              stages=stages if len(heads) > 1 else None,
                              title=f"{result.model.name}: {args.data}")
    if val_src is not None and training.worker_info().num_workers > 1 and args.distribute:
        print("scores: the validation lines above (a multi-process JAX run validates during "
              f"training only); fcn-keras evaluate --model {model_path} scores it on one machine")
    elif val_src is not None:
        scores = training.evaluate(result.model, data.pipeline(val_src), val_src.num_classes,
                                   list(val_src.class_names), progress=not args.quiet)
        print(training.format_report(scores, f"{args.data}:{args.val_split}"))
        write_json(scores, os.path.join(args.out, "scores.json"))
    print(f"model: {model_path}")
    if curves:
        print(f"curves: {curves}")


def register(subparsers):
    """Adds `fcn-keras train` to an argparse `subparsers`."""
    p = subparsers.add_parser(
        "train", help="train an FCN (the paper's staged schedule, at once, or one net)",
        description="Train an FCN. Writes <out>/model.keras (the final net), history.json, "
                    "curves.png and scores.json, and per stage <out>/fcn32s/ ... (checkpoints, "
                    "log.csv, backup). Ctrl-C saves a backup; re-running the same command "
                    "with the same --out resumes. Without --weights the default optimiser is "
                    f"Adam {SCRATCH_LR:g} (the paper's SGD recipe is for fine-tuning "
                    "ImageNet weights); with --weights it is the paper's SGD.")
    architecture_args(p, num_classes=False)
    p.add_argument("--schedule", choices=registry.SCHEDULES,
                   help="staged: 32s -> 16s -> 8s, each from the previous (the paper); "
                        "at-once: FCN-8s at-once")
    _data_and_schedule_args(p)
    _optimizer_args(p)
    _speed_args(p)
    _checkpoint_args(p)
    _scaling_args(p)
    _output_args(p)
    p.set_defaults(func=run)


def _data_and_schedule_args(p):
    """The data, its splits and augmentation, the initial weights and the epochs."""
    data_args(p)
    p.add_argument("--train-split", default="train", help="split to train on (default: train)")
    p.add_argument("--val-split", default="val", help="split to validate on after each epoch, 'none' to "
                                                      "skip validation (default: val)")
    p.add_argument("--weights", help="initial weights: 'imagenet', a zoo name or a path")
    p.add_argument("--epochs", default="1", help="epochs per stage: N or 'N32,N16,N8' (default: 1)")
    p.add_argument("--steps-per-epoch", type=int,
                   help="steps per epoch (the data repeats when it is shorter)")
    p.add_argument("--batch-size", type=int, default=1, help="images per step (default: 1, the paper's "
                                                             "whole images)")
    p.add_argument("--val-batch-size", type=int, default=1, help="images per validation batch (default: 1)")
    p.add_argument("--crop-size", help="random crops 'H,W' or N (needed for batch > 1 "
                                       "to have equal sizes; otherwise batches are padded)")
    p.add_argument("--scale-range", help="random rescaling 'lo,hi', e.g. 0.5,2.0")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")


def _optimizer_args(p):
    """The optimiser, its rate, the loss and its class weights."""
    p.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw", "rmsprop"),
                   help=f"default: with --weights the paper's SGD (momentum 0.99, weight decay "
                        f"5e-4, fixed rate); without, Adam {SCRATCH_LR:g}")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--loss", choices=("ce", "dice", "focal", "lovasz", "ce+dice"),  # losses.LOSSES
                   help="ce: cross-entropy (the paper's, default); dice, focal, lovasz "
                        "(Lovasz-softmax) or ce+dice; label 255 is ignored by each")
    p.add_argument("--class-weights", metavar="METHOD|W0,W1,...",
                   help="weigh each pixel's loss by its class against imbalance: "
                        "median_frequency or inverse_sqrt (computed on the training split) or "
                        "one weight per class (with --loss ce, focal or ce+dice)")


def _speed_args(p):
    """Mixed precision and XLA."""
    p.add_argument("--mixed-precision", nargs="?", const="mixed_float16", default=None,
                   choices=("mixed_float16", "mixed_bfloat16", "auto"),
                   help="mixed precision: mixed_float16 (with loss scaling; the default when "
                        "the flag has no value) or mixed_bfloat16; logits stay float32; auto: "
                        "mixed_bfloat16 on CPUs with AVX-512 BF16 or AMX and GPUs with bfloat16, "
                        "mixed_float16 on other GPUs, float32 elsewhere (it prints what it chose and why)")
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA: 'on' compiles once per batch shape (pays with --crop-size); 'auto' "
                        "(default) picks from measurement and prints its pick: a TensorFlow graph on "
                        "CPUs (XLA trained slower there), XLA on a GPU with fixed-size batches, "
                        "always on JAX")


def _checkpoint_args(p):
    """The checkpoints each stage keeps and how often the backup is saved."""
    p.add_argument("--keep", default="last,best", metavar="last,best",
                   help="the checkpoints each stage keeps in <stage>/checkpoints/: 'last,best' "
                        "(default), 'last', 'best' or 'none'; weights only (the backup alone "
                        "holds the optimizer state)")
    p.add_argument("--backup-every", type=int, default=BACKUP_EVERY, metavar="STEPS",
                   help=f"steps between backups within an epoch (0: epoch ends only; default "
                        f"{BACKUP_EVERY})")


def _scaling_args(p):
    """Several devices or machines: tf.distribute (TensorFlow); keras.distribution and its
    processes (JAX)."""
    p.add_argument("--strategy", default="auto",
                   choices=STRATEGIES,
                   help="tf.distribute strategy, TensorFlow backend (multiworker reads "
                        "TF_CONFIG; default: auto); on JAX use --distribute")
    p.add_argument("--distribute", choices=DISTRIBUTIONS,
                   help="JAX backend (fcn-keras --backend jax train ...): keras.distribution "
                        "over every device; data_parallel: weights replicated, each batch split "
                        "between the devices (--batch-size and --val-batch-size: multiples of "
                        "their number); model_parallel: fc6/fc7 also sharded over --mesh's "
                        "model axis")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="JAX, several processes (machines): process 0's address; with "
                        "--num-processes and --process-id (or KERAS_DISTRIBUTION_JOB_ADDRESSES, "
                        "_NUM_PROCESSES, _PROCESS_ID); --distribute then spans every process's "
                        "devices and --batch-size is the global batch (docs/many-machines.md)")
    p.add_argument("--num-processes", type=int, metavar="N", help="JAX: processes in the run")
    p.add_argument("--process-id", type=int, metavar="I", help="JAX: this process, 0..N-1 "
                                                               "(0 writes the run's files)")
    p.add_argument("--mesh", metavar="BATCH,MODEL",
                   help="device mesh of --distribute model_parallel (default 1,N for N devices)")


def _output_args(p):
    """The output folder, and the run's cache, seed and verbosity."""
    p.add_argument("--cache", action="store_true", help="cache decoded examples in memory")
    p.add_argument("--seed", type=int, help="random seed of weights, crops, flips and shuffling "
                                            "(default: none, a different run each time)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs to "
                                                              "<out>/<stage>/tensorboard")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no bars")
