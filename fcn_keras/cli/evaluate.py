"""`fcn-keras evaluate`: the paper's four metrics and per-class IoU of a model on a data set."""

from __future__ import annotations

import os
import warnings

from fcn_keras.cli._args import architecture_args, data_args, source


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


def run(args):
    """Runs `fcn-keras evaluate`; returns the exit code."""
    from fcn_keras import data, training
    from fcn_keras.training.callbacks import write_json

    src = source(args, args.split)
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


def register(subparsers):
    """Adds `fcn-keras evaluate` to an argparse `subparsers`."""
    p = subparsers.add_parser(
        "evaluate", help="score a model: the paper's four metrics and per-class IoU",
        description="Evaluate a model on a data set: pixel accuracy, mean accuracy, mean IU, "
                    "frequency weighted IU, and a per-class IoU table.")
    p.add_argument("--model", help="a trained model (.keras), or .weights.h5 with --backbone/"
                                   "--head/--width")
    architecture_args(p, backbone=None, head=None, num_classes=False, note="with a .weights.h5 --model or --weights")
    p.add_argument("--weights", help="weights for a built model: a zoo name or a path")
    data_args(p, split_default="val")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, help="evaluate only this many batches")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
