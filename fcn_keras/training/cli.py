"""``fcn-keras train | evaluate | predict``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from fcn_keras._io import atomic_write


def _names_for(num_classes, spec=None):
    """Class names: from ``spec`` ('voc', 'shapes', 'cityscapes', a file, or a comma list)
    or guessed from the class count."""
    from fcn_keras.data import SHAPES_CLASSES, VOC_CLASSES
    from fcn_keras.data.tfds import CITYSCAPES_CLASSES

    known = {"voc": VOC_CLASSES, "shapes": SHAPES_CLASSES, "cityscapes": CITYSCAPES_CLASSES,
             "pet": ("background", "pet")}
    if spec:
        if spec in known:
            names = list(known[spec])
        elif os.path.isfile(spec):
            with open(spec) as f:
                names = [line.strip() for line in f if line.strip()]
        else:
            names = [n.strip() for n in spec.split(",")]
        if len(names) != num_classes:
            raise ValueError(f"--class-names gives {len(names)} names for {num_classes} classes")
        return names
    for names in known.values():
        if len(names) == num_classes:
            return list(names)
    return [f"class_{i}" for i in range(num_classes)]


def _pair(text, name, cast=int):
    if text is None:
        return None
    parts = [p for p in str(text).replace("x", ",").split(",") if p]
    try:
        vals = [cast(p) for p in parts]
    except ValueError:
        raise ValueError(f"{name} must be a number or two numbers 'a,b', got {text!r}") from None
    if len(vals) == 1:
        return vals[0] if cast is int else (vals[0], vals[0])
    if len(vals) != 2:
        raise ValueError(f"{name} must be a number or two numbers 'a,b', got {text!r}")
    return tuple(vals)


def _source(spec, split, args, **kw):
    from fcn_keras import data

    if spec.startswith(("voc:", "sbd:", "dir:")):
        kw.setdefault("skip_invalid", getattr(args, "skip_invalid", False))
        if getattr(args, "num_classes", None):
            kw.setdefault("num_classes", args.num_classes)
        if getattr(args, "exclude", None):
            kw.setdefault("exclude", args.exclude)
    return data.from_spec(spec, split, **kw)


def _load_model(args, num_classes=None):
    import keras

    import fcn_keras

    path = getattr(args, "model", None)
    if path:
        if not os.path.exists(path):
            raise FileNotFoundError(f"--model {path!r} does not exist")
        if path.endswith(".keras"):
            return keras.saving.load_model(path, compile=False)
        if path.endswith(".weights.h5"):
            model = fcn_keras.build(args.backbone, args.head,
                                    num_classes=args.num_classes or num_classes or 21,
                                    width=args.width)
            model.load_weights(path)
            return model
        raise ValueError(f"--model must be a .keras file or a .weights.h5 file (with "
                         f"--backbone/--head/--width), got {path!r}")
    if not getattr(args, "weights", None):
        raise ValueError("give --model PATH (.keras) or --weights (a zoo name, .caffemodel, ...)")
    return fcn_keras.build(args.backbone, args.head,
                           num_classes=args.num_classes or num_classes or 21,
                           weights=args.weights, width=args.width)


def _model_args(p, need_head=True):
    p.add_argument("--model", help="a trained model (.keras), or .weights.h5 with --backbone/"
                                   "--head/--width/--num-classes")
    p.add_argument("--backbone", default="vgg16", choices=("vgg16", "alexnet", "googlenet"))
    p.add_argument("--head", default="8s", choices=("32s", "16s", "8s", "8s-atonce"))
    p.add_argument("--width", type=float, default=1.0, help="backbone width multiplier")
    p.add_argument("--weights", help="weights for a built model: a zoo name, a path, 'imagenet'")
    p.add_argument("--num-classes", type=int, help="classes (default: from the data)")


# --------------------------------------------------------------------------- train
def cmd_train(args):
    from fcn_keras import data, training

    if not args.out:
        raise ValueError("--out DIR is required")
    train_src = _source(args.data, args.train_split, args, **_shapes_kw(args))
    val_src = None if args.val_split in (None, "", "none") else _source(
        args.data, args.val_split, args, **_shapes_kw(args))
    num_classes = train_src.num_classes
    if args.num_classes and args.num_classes != num_classes:
        raise ValueError(f"--num-classes {args.num_classes} but {args.data} has {num_classes}")
    crop = _pair(args.crop_size, "--crop-size")
    scale = _pair(args.scale_range, "--scale-range", float) if args.scale_range else None
    train_ds = data.pipeline(train_src, batch_size=args.batch_size, crop_size=crop,
                             training=True, scale_range=scale, flip=not args.no_flip,
                             cache=args.cache, seed=args.seed)
    val_ds = None if val_src is None else data.pipeline(
        val_src, batch_size=args.val_batch_size, cache=args.cache)
    schedule = args.schedule or args.head
    epochs = [int(e) for e in str(args.epochs).split(",")]
    n_stages = len(training.stages_for(args.backbone, schedule))
    if len(epochs) == 1:
        epochs = epochs * n_stages
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)
    result = training.run_recipe(
        args.backbone, train_ds, val_ds, schedule=schedule, num_classes=num_classes,
        epochs=epochs, out_dir=args.out, weights=args.weights, width=args.width,
        optimizer=args.optimizer, learning_rate=args.lr, mixed_precision=args.mixed_precision,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit],
        strategy=args.strategy, steps_per_epoch=args.steps_per_epoch,
        tensorboard=args.tensorboard, verbose=2 if args.quiet else "auto")
    if val_src is not None and training.worker_info()[3]:
        scores = training.evaluate(result.model, data.pipeline(val_src), num_classes,
                                   list(val_src.class_names), progress=not args.quiet)
        print(training.format_report(scores, f"{args.data}:{args.val_split}"))
        _write_json(scores, os.path.join(args.out, "scores.json"))
    print(f"model: {os.path.join(result.stage_dirs[list(result.stage_dirs)[-1]], 'model.keras')}")
    return 0


def _shapes_kw(args):
    kw = {}
    if args.data == "shapes":
        if args.image_size:
            kw["image_size"] = _pair(args.image_size, "--image-size")
        if getattr(args, "num_examples", None):
            kw["num_examples"] = args.num_examples
    elif args.image_size or getattr(args, "num_examples", None):
        raise ValueError("--image-size and --num-examples apply to --data shapes only")
    return kw


def _write_json(obj, path):
    from fcn_keras.training.loop import _jsonable

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(_jsonable(obj), f, indent=1)

    atomic_write(path, write)


# --------------------------------------------------------------------------- evaluate
def cmd_evaluate(args):
    from fcn_keras import data, training

    src = _source(args.data, args.split, args, **_shapes_kw(args))
    model = _load_model(args, src.num_classes)
    n_out = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    if n_out != src.num_classes:
        raise ValueError(f"the model predicts {n_out} classes but {args.data} has "
                         f"{src.num_classes}")
    ds = data.pipeline(src, batch_size=args.batch_size)
    scores = training.evaluate(model, ds, src.num_classes, list(src.class_names),
                               steps=args.steps, progress=not args.quiet)
    print(training.format_report(scores, f"{args.data}:{args.split}"))
    if args.json:
        _write_json(scores, args.json)
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- predict
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _inputs(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p)
                            if f.lower().endswith(IMAGE_EXTS))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"input {p!r} is neither a file nor a folder")
    if not files:
        raise ValueError(f"no images found in {paths}")
    return files


def cmd_predict(args):
    import keras
    import numpy as np

    from fcn_keras import viz
    from fcn_keras.data import read_image
    from fcn_keras.training import predict_labels

    files = _inputs(args.inputs)
    model = _load_model(args)
    n = getattr(model, "num_classes", None) or int(model.output_shape[-1])
    names = _names_for(n, args.class_names)
    os.makedirs(args.out, exist_ok=True)
    bar = None if args.quiet else keras.utils.Progbar(len(files), unit_name="image")
    seen = set()
    for i, path in enumerate(files):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in seen:
            stem = f"{stem}_{i}"
        seen.add(stem)
        lab_path = os.path.join(args.out, f"{stem}_labels.png")
        ov_path = os.path.join(args.out, f"{stem}_overlay.png")
        for p in (lab_path, ov_path):
            if os.path.exists(p) and not args.overwrite:
                raise FileExistsError(f"{p} exists (pass --overwrite to replace it)")
        image = read_image(path)
        labels = predict_labels(model, image)
        viz.save_label_png(labels, lab_path)
        ov = viz.overlay(image, labels, alpha=args.alpha)
        if args.legend:
            ov = viz.add_legend(ov, names, labels)
        viz.save_image(ov, ov_path)
        if bar is not None:
            bar.update(i + 1)
        if args.quiet:
            counts = np.bincount(labels.ravel(), minlength=n)
            top = [names[c] for c in np.argsort(-counts)[:3] if counts[c]]
            print(f"{path}: {', '.join(top)}")
    print(f"wrote {2 * len(files)} files to {args.out}")
    return 0


# --------------------------------------------------------------------------- register
def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train an FCN (paper schedule or at once)",
        description="Train an FCN. Data: 'shapes' (bundled synthetic set), 'voc:PATH', "
                    "'sbd:PATH', 'dir:PATH' or 'tfds:NAME'. Re-running the same command "
                    "with the same --out resumes an interrupted run.")
    p.add_argument("--backbone", default="vgg16", choices=("vgg16", "alexnet", "googlenet"))
    p.add_argument("--head", default="8s", choices=("32s", "16s", "8s", "8s-atonce"),
                   help="the net to train when --schedule is not given")
    p.add_argument("--schedule", choices=("staged", "at-once"),
                   help="staged: 32s -> 16s -> 8s (the paper); at-once: 8s-atonce")
    p.add_argument("--data", default="shapes", help="data source spec (default: shapes)")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val", help="'none' to skip validation")
    p.add_argument("--exclude", help="ids to leave out of directory splits, e.g. seg11valid")
    p.add_argument("--num-classes", type=int, help="classes of a directory data set (VOC: 21)")
    p.add_argument("--image-size", help="shapes only: size or 'min,max'")
    p.add_argument("--num-examples", type=int, help="shapes only: examples per split")
    p.add_argument("--width", type=float, default=1.0, help="backbone width multiplier")
    p.add_argument("--weights", help="initial weights: 'imagenet', a zoo name or a path")
    p.add_argument("--epochs", default="1", help="epochs per stage: N or 'N32,N16,N8'")
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--batch-size", type=int, default=1, help="1 = the paper's whole images")
    p.add_argument("--val-batch-size", type=int, default=1)
    p.add_argument("--crop-size", help="random crops 'H,W' or N (needed for batch > 1 "
                                       "to have equal sizes; otherwise batches are padded)")
    p.add_argument("--scale-range", help="random rescaling 'lo,hi', e.g. 0.5,2.0")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw", "rmsprop"),
                   help="default: the paper's SGD (momentum 0.99, wd 5e-4, fixed rate)")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16")
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="XLA")
    p.add_argument("--strategy", default="auto",
                   choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                   help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    p.add_argument("--cache", action="store_true", help="cache decoded examples in memory")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable/inconsistent files with a warning instead of failing")
    p.add_argument("--seed", type=int)
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--out", required=True, help="output folder (checkpoints, logs, model)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="score a model: the paper's four metrics and per-class IoU",
        description="Evaluate a model on a data set: pixel accuracy, mean accuracy, mean IU, "
                    "frequency weighted IU, and a per-class IoU table.")
    _model_args(p)
    p.add_argument("--data", default="shapes")
    p.add_argument("--split", default="val")
    p.add_argument("--exclude")
    p.add_argument("--image-size", help="shapes only")
    p.add_argument("--num-examples", type=int, help="shapes only")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, help="evaluate only this many batches")
    p.add_argument("--skip-invalid", action="store_true")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict", help="coloured label PNGs and overlays for images",
        description="Predict labels for image files or folders; writes <name>_labels.png "
                    "(VOC-palette PNG, pixel value = class id) and <name>_overlay.png.")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    _model_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    p.add_argument("--legend", action="store_true", help="add a legend to overlays")
    p.add_argument("--class-names", help="'voc', 'shapes', 'cityscapes', a file, or a,b,c")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)


def main(argv=None):  # pragma: no cover - convenience for python -m
    parser = argparse.ArgumentParser(prog="fcn-keras")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
