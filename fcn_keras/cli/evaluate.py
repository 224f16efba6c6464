"""`fcn-keras evaluate`: the paper's four metrics and per-class IoU of a model on a data set."""

from __future__ import annotations

import os

from fcn_keras.cli._args import architecture_args, data_args, refinement_args, source
from fcn_keras.cli.predict import check_out_folder
from fcn_keras.conventions import PRECISIONS


def _load_model(args, num_classes):
    """The model `evaluate` scores: `--model` (a .keras file, a zoo name, or a weights file with
    the architecture flags) or a model built with `--weights` (`fcn_keras.loading`)."""
    from fcn_keras import loading
    from fcn_keras.resolve import kind_of

    if not (args.model or args.weights):
        raise ValueError("Expected `--model PATH` (.keras) or `--weights` (a zoo name, "
                         ".caffemodel, ...). Received: neither")
    arch = dict(backbone=args.backbone, head=args.head, width=args.width)
    if args.weights or kind_of(args.model) in ("weights", "zoo"):
        arch["num_classes"] = num_classes  # the data's classes (a zoo name must agree)
    return loading.load_model(args.model, weights=args.weights, arg="--model", **arch)


def _check(args):
    """Refuses bad counts and an unwritable `--json` before any work."""
    for flag, value in (("--batch-size", args.batch_size), ("--steps", args.steps)):
        if value is not None and value < 1:
            raise ValueError(f"`{flag}` must be a positive count. Received: {flag} {value}")
    if args.json:
        if os.path.isdir(args.json):
            raise IsADirectoryError(f"--json {args.json!r} is a folder; expected a file name")
        check_out_folder(os.path.dirname(os.path.abspath(args.json)), flag="--json's folder")


def run(args):
    """Runs `fcn-keras evaluate`; returns the exit code.

    Whole images are batched by size (`fcn_keras.data.pipeline`'s `group_by_size`), so the
    scores do not depend on `--batch-size`.
    """
    from fcn_keras import data, training
    from fcn_keras.training.callbacks import write_json

    _check(args)
    src = source(args, args.split)
    model = _load_model(args, args.num_classes or src.num_classes)
    n_out = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    if n_out != src.num_classes:
        raise ValueError(f"Expected a model with {src.num_classes} classes (the classes of "
                         f"{args.data}). Received: a model with {n_out} classes")
    model = _with_precision(args, model)
    ds = data.pipeline(src, batch_size=args.batch_size)
    scores = training.evaluate(model, ds, src.num_classes, list(src.class_names),
                               steps=args.steps, progress=not args.quiet, labels_fn=_labels_fn(args, model))
    print(training.format_report(scores, f"{args.data}:{args.split}"))
    if args.json:
        write_json(scores, args.json)
        print(f"wrote {args.json}")
    return 0


def _with_precision(args, model):
    """`model` computing in `--precision` (auto: `fcn_keras.auto_precision.choose`), printing
    what auto chose and why, or on a CPU with native bfloat16 a float32 run's hint."""
    from fcn_keras.auto_precision import float32_hint, inference_precision
    from fcn_keras.models.fcn import with_precision

    precision, line = inference_precision(args.precision)
    if precision is not None and precision != model.dtype_policy.name:
        model = with_precision(model, precision)
    if line:
        print(line)
    elif model.dtype_policy.name == "float32" and not args.quiet and float32_hint():
        print(float32_hint())
    return model


def _labels_fn(args, model):
    """None (the model's own argmax), or with --tile / --tta / --refine a function of a batch
    that predicts each image through `fcn_keras.predict.Predictor` at its full size."""
    if not (args.tile or args.tta or args.refine):
        return None
    import numpy as np

    from fcn_keras.predict import Predictor

    predictor = Predictor(model, max_size=0, tile=args.tile, tta=args.tta, refine=args.refine)

    def labels(images):
        return np.stack([predictor.predict(np.asarray(np.round(image), np.uint8), return_scores=False)[0]
                         for image in np.asarray(images)])

    return labels


def register(subparsers):
    """Adds `fcn-keras evaluate` to an argparse `subparsers`."""
    p = subparsers.add_parser(
        "evaluate", help="score a model: the paper's four metrics and per-class IoU",
        description="Evaluate a model on a data set: pixel accuracy, mean accuracy, mean IU, "
                    "frequency weighted IU, and a per-class IoU table.")
    p.add_argument("--model", help="a trained model (.keras), a zoo name, or a weights file (.weights.h5, "
                                   ".caffemodel) with --backbone/--head/--width")
    architecture_args(p, backbone=None, head=None, width=None, num_classes=False,
                      note="with a weights file --model or --weights")
    p.add_argument("--weights", help="weights for a built model: a zoo name or a path")
    data_args(p, split_default="val")
    p.add_argument("--batch-size", type=int, default=1,
                   help="images per batch, each of one image size (the scores do not depend on "
                        "it; default: 1)")
    p.add_argument("--steps", type=int, help="evaluate only this many batches")
    refinement_args(p)
    p.add_argument("--precision", choices=PRECISIONS + ("auto",),
                   help="what the model computes in (default: its own, float32 unless saved in "
                        "bfloat16); auto: bfloat16 where the CPU (AVX-512 BF16, AMX) or GPU computes it "
                        "natively, else float32 (it prints what it chose and why)")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
