"""`fcn-keras train` and `fcn-keras evaluate`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings

from fcn_keras._io import atomic_write
from fcn_keras.models import registry

# From scratch the paper's SGD recipe (fixed rates made for fine-tuning ImageNet weights
# with an unnormalised loss) leaves the loss at ln(num_classes): Adam at this rate learns.
SCRATCH_OPTIMIZER, SCRATCH_LR = "adam", 3e-4
DATA_HELP = ("'shapes' (the bundled synthetic set), a VOC or SBD folder (e.g. "
             "VOCdevkit/VOC2012, layout detected), 'voc:PATH', 'sbd:PATH', 'dir:PATH' or "
             "'tfds:NAME'")


def _pair(text, name, cast=int):
    """Parses `N` or `a,b` (or `AxB`) into an int (or, with `cast=float`, a pair) or a pair;
    None stays None."""
    if text is None:
        return None
    parts = [p for p in str(text).replace("x", ",").split(",") if p]
    try:
        vals = [cast(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2):
        raise ValueError(f"`{name}` must be a number or two numbers 'a,b'. "
                         f"Received: {name}={text!r}")
    if len(vals) == 1:
        return vals[0] if cast is int else (vals[0], vals[0])
    return tuple(vals)


def _source(args, split):
    """The data source of `--data` for `split` (parsing: `fcn_keras.data.from_spec`)."""
    from fcn_keras import data

    kw = {}
    if args.data == "shapes":
        if args.image_size:
            kw["image_size"] = _pair(args.image_size, "--image-size")
        if args.num_examples:
            kw["num_examples"] = args.num_examples
    elif args.image_size or args.num_examples:
        raise ValueError(f"`--image-size` and `--num-examples` apply to `--data shapes` only. "
                         f"Received: --data={args.data!r}")
    elif not args.data.startswith("tfds:"):  # a folder: VOC / SBD options
        kw["skip_invalid"] = args.skip_invalid
        if args.exclude:
            kw["exclude"] = args.exclude
        if args.num_classes:
            kw["num_classes"] = args.num_classes
    return data.from_spec(args.data, split, **kw)


def _load_model(args, num_classes):
    """The model `evaluate` scores: `--model` (.keras, or .weights.h5 with the
    architecture flags) or a model built with `--weights`."""
    import keras

    import fcn_keras

    path = args.model
    if not path:
        if not args.weights:
            raise ValueError("Expected `--model PATH` (.keras) or `--weights` (a zoo name, "
                             ".caffemodel, ...). Received: neither")
        return fcn_keras.build(args.backbone, args.head, num_classes=num_classes,
                               weights=args.weights, width=args.width)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`--model` file not found. Received: --model={path!r}")
    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    if path.endswith(".weights.h5"):
        return _load_weights_file(args, path, num_classes)
    raise ValueError(f"`--model` must be a .keras file, or a .weights.h5 file with "
                     f"--backbone/--head/--width. Received: --model={path!r}")


def _load_weights_file(args, path, num_classes):
    """An FCN of the architecture flags with the weights of `path` (.weights.h5)."""
    import fcn_keras

    if not (args.backbone and args.head):
        raise ValueError(f"Expected --backbone and --head (and --width, --num-classes if not "
                         f"the defaults) with a .weights.h5 file. Received: --model={path!r}, "
                         f"--backbone={args.backbone}, --head={args.head}")
    model = fcn_keras.build(args.backbone, args.head, num_classes=num_classes, width=args.width)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except ValueError:
            caught.append(None)
    # Keras warns, layer by layer, about what it skipped, then (mostly) raises.
    if any(w is None or issubclass(w.category, UserWarning) for w in caught):
        raise ValueError(f"`--model` does not fit FCN-{args.head} {args.backbone} at width "
                         f"{args.width:g} with {num_classes} classes: give the --backbone, "
                         f"--head, --width and --num-classes it was trained with. Received: "
                         f"--model={path!r}")
    return model


def _architecture_args(p, backbone="vgg16", head="8s"):
    heads = list(dict.fromkeys(h for _, h in registry.architectures()))
    p.add_argument("--backbone", default=backbone, choices=list(registry.BACKBONES),
                   help=f"default: {backbone}")
    p.add_argument("--head", default=head, choices=heads, help=f"default: {head}")
    p.add_argument("--width", type=float, default=1.0, help="backbone width multiplier")


def _data_args(p, split_default=None):
    p.add_argument("--data", default="shapes", help=f"data: {DATA_HELP} (default: shapes)")
    if split_default:
        p.add_argument("--split", default=split_default)
    p.add_argument("--exclude", help="ids to leave out of folder splits, e.g. seg11valid")
    p.add_argument("--num-classes", type=int, help="classes of a folder data set (VOC: 21)")
    p.add_argument("--image-size", help="shapes only: size or 'min,max'")
    p.add_argument("--num-examples", type=int, help="shapes only: examples per split")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable/inconsistent files with a warning instead of failing")


# --------------------------------------------------------------------------- train
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


def cmd_train(args):
    """Runs `fcn-keras train`; returns the exit code."""
    from fcn_keras import data, training

    train_src = _source(args, args.train_split)
    val_src = None if args.val_split in ("", "none") else _source(args, args.val_split)
    num_classes = train_src.num_classes
    if args.num_classes and args.num_classes != num_classes:
        raise ValueError(f"`--num-classes` must match the data ({num_classes} classes in "
                         f"{args.data}). Received: --num-classes={args.num_classes}")
    crop = _pair(args.crop_size, "--crop-size")
    scale = _pair(args.scale_range, "--scale-range", float) if args.scale_range else None
    train_ds = data.pipeline(train_src, batch_size=args.batch_size, crop_size=crop,
                             training=True, scale_range=scale, flip=not args.no_flip,
                             cache=args.cache, seed=args.seed)
    val_ds = None if val_src is None else data.pipeline(
        val_src, batch_size=args.val_batch_size, cache=args.cache)
    schedule = args.schedule or args.head
    heads = training.stages_for(args.backbone, schedule)
    epochs = _epochs(args.epochs, heads)
    optimizer, lr, note = _optimizer(args)
    if note:
        print(note, file=sys.stderr if note.startswith("warning") else sys.stdout, flush=True)
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)
    start = f"from {args.weights}" if args.weights else "from scratch"
    callbacks = [_stage_callback(heads, args.out, start)] if len(heads) > 1 else []
    result = training.run_recipe(
        args.backbone, train_ds, val_ds, schedule=schedule, num_classes=num_classes,
        epochs=epochs, out_dir=args.out, weights=args.weights, width=args.width,
        optimizer=optimizer, learning_rate=lr, mixed_precision=args.mixed_precision,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit],
        strategy=args.strategy, steps_per_epoch=args.steps_per_epoch, callbacks=callbacks,
        tensorboard=args.tensorboard, backup_every=args.backup_every,
        verbose=2 if args.quiet else "auto")
    if training.worker_info()[3]:  # the chief writes the run's summary
        _finish(args, heads, result, val_src)
    return 0


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
    if val_src is not None:
        scores = training.evaluate(result.model, data.pipeline(val_src), val_src.num_classes,
                                   list(val_src.class_names), progress=not args.quiet)
        print(training.format_report(scores, f"{args.data}:{args.val_split}"))
        write_json(scores, os.path.join(args.out, "scores.json"))
    print(f"model: {model_path}")
    if curves:
        print(f"curves: {curves}")


# --------------------------------------------------------------------------- evaluate
def cmd_evaluate(args):
    """Runs `fcn-keras evaluate`; returns the exit code."""
    from fcn_keras import data, training
    from fcn_keras.training.callbacks import write_json

    src = _source(args, args.split)
    model = _load_model(args, args.num_classes or src.num_classes)
    n_out = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    if n_out != src.num_classes:
        raise ValueError(f"Expected a model with {src.num_classes} classes (the classes of "
                         f"{args.data}). Received: a model with {n_out} classes")
    ds = data.pipeline(src, batch_size=args.batch_size)
    scores = training.evaluate(model, ds, src.num_classes, list(src.class_names),
                               steps=args.steps, progress=not args.quiet)
    print(training.format_report(scores, f"{args.data}:{args.split}"))
    if args.json:
        write_json(scores, args.json)
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- register
def register(subparsers):
    """Adds the `train` and `evaluate` subcommands to an argparse `subparsers`."""
    from fcn_keras.training.recipe import SCHEDULES

    p = subparsers.add_parser(
        "train", help="train an FCN (the paper's staged schedule, at once, or one net)",
        description="Train an FCN. Writes <out>/model.keras (the final net), history.json, "
                    "curves.png and scores.json, and per stage <out>/fcn32s/ ... (checkpoints, "
                    "log.csv, backup). Ctrl-C saves a backup; re-running the same command "
                    "with the same --out resumes. Without --weights the default optimiser is "
                    f"Adam {SCRATCH_LR:g} (the paper's SGD recipe is for fine-tuning "
                    "ImageNet weights); with --weights it is the paper's SGD.")
    _architecture_args(p)
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="staged: 32s -> 16s -> 8s, each from the previous (the paper); "
                        "at-once: FCN-8s at-once")
    _data_args(p)
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val", help="'none' to skip validation")
    p.add_argument("--weights", help="initial weights: 'imagenet', a zoo name or a path")
    p.add_argument("--epochs", default="1", help="epochs per stage: N or 'N32,N16,N8'")
    p.add_argument("--steps-per-epoch", type=int,
                   help="steps per epoch (the data repeats when it is shorter)")
    p.add_argument("--batch-size", type=int, default=1, help="1 = the paper's whole images")
    p.add_argument("--val-batch-size", type=int, default=1)
    p.add_argument("--crop-size", help="random crops 'H,W' or N (needed for batch > 1 "
                                       "to have equal sizes; otherwise batches are padded)")
    p.add_argument("--scale-range", help="random rescaling 'lo,hi', e.g. 0.5,2.0")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw", "rmsprop"),
                   help=f"default: with --weights the paper's SGD (momentum 0.99, weight decay "
                        f"5e-4, fixed rate); without, Adam {SCRATCH_LR:g}")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16")
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA: 'on' compiles once per batch shape (pays with --crop-size); "
                        "'auto' is Keras' choice (off on CPU)")
    p.add_argument("--backup-every", type=int, default=500, metavar="STEPS",
                   help="steps between backups within an epoch (0: epoch ends only; default 500)")
    p.add_argument("--strategy", default="auto",
                   choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                   help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    p.add_argument("--cache", action="store_true", help="cache decoded examples in memory")
    p.add_argument("--seed", type=int)
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no bars")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="score a model: the paper's four metrics and per-class IoU",
        description="Evaluate a model on a data set: pixel accuracy, mean accuracy, mean IU, "
                    "frequency weighted IU, and a per-class IoU table.")
    p.add_argument("--model", help="a trained model (.keras), or .weights.h5 with --backbone/"
                                   "--head/--width")
    _architecture_args(p, backbone=None, head=None)
    p.add_argument("--weights", help="weights for a built model: a zoo name or a path")
    _data_args(p, split_default="val")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, help="evaluate only this many batches")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)
