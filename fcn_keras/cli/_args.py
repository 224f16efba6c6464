"""The flags several commands share, and their parsing (no TensorFlow imported here).

    architecture_args(p)    --backbone, --head, --num-classes, --width
    data_args(p)            --data, --split, --exclude, --image-size, --num-examples, ...
    max_pixels_arg(p)       --max-pixels (in data_args too); max_pixels(args) its value
    source(args, split)     the data source those flags name
"""

import argparse

from fcn_keras.models import registry

DEFAULT_BACKBONE, DEFAULT_HEAD = "vgg16", "8s"
DATA_HELP = ("'shapes' (the bundled synthetic set), 'folders:IMAGES,MASKS' (your own images "
             "and masks), a VOC or SBD folder (e.g. VOCdevkit/VOC2012, layout detected), "
             "'voc:PATH', 'sbd:PATH', 'dir:PATH' or 'tfds:NAME'")


def architecture_args(p, backbone=DEFAULT_BACKBONE, head=DEFAULT_HEAD, width=1.0, num_classes=True,
                      note=""):
    """Adds --backbone, --head, --width (and --num-classes) to parser `p`.

    Args:
        backbone, head, width: the defaults (None: no default, e.g. "only for weights files").
        num_classes: also add --num-classes (int, default None: the data's or the file's).
        note: text appended to each flag's help, e.g. "weights files only".
    """
    suffix = f" ({note})" if note else ""
    p.add_argument("--backbone", default=backbone, choices=registry.backbones(),
                   help=(f"default: {backbone}" if backbone else "the backbone") + suffix)
    p.add_argument("--head", default=head, choices=registry.heads(),
                   help=(f"default: {head}" if head else "the head") + suffix)
    p.add_argument("--width", type=float, default=width,
                   help=f"backbone width multiplier (default: {width if width else 1.0:g})" + suffix)
    if num_classes:
        p.add_argument("--num-classes", type=int,
                       help="classes (default: the data's, or the file's)" + suffix)


def data_args(p, split_default=None, num_classes=True, positional=False):
    """Adds the data flags to parser `p` (`--split` only when `split_default` is given;
    with `positional` the data is the positional argument SPEC instead of `--data`)."""
    if positional:
        p.add_argument("data", metavar="SPEC", help=f"the data: {DATA_HELP}")
    else:
        p.add_argument("--data", default="shapes", help=f"data: {DATA_HELP} (default: shapes)")
    if split_default:
        p.add_argument("--split", default=split_default, help=f"default: {split_default}")
    p.add_argument("--exclude", help="ids to leave out of folder splits, e.g. seg11valid")
    if num_classes:
        p.add_argument("--num-classes", type=int, help="classes of a folder data set (VOC: 21)")
    p.add_argument("--colors", metavar="FILE", help="folders: the colour table of RGB colour masks "
                   "(a class_dict.csv of name,r,g,b lines, a JSON file, or 'voc')")
    p.add_argument("--val-fraction", type=float, help="folders without train/val sub-folders: "
                   "share of examples in val, chosen by a hash of each name (default: 0.1)")
    p.add_argument("--unknown-color", choices=("error", "ignore"), help="folders: a mask "
                   "colour not in --colors fails naming the file (error, default) or is not "
                   "scored (ignore)")
    p.add_argument("--mask-suffix", help="folders: what mask names add to the image's name, "
                   "e.g. _mask (default: detected)")
    p.add_argument("--image-size", help="shapes only: size or 'min,max'")
    p.add_argument("--num-examples", type=int, help="shapes only: examples per split")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable/inconsistent files with a warning instead of failing")
    max_pixels_arg(p)


def max_pixels_arg(p):
    """Adds --max-pixels (None: the library default, `fcn_keras.images.MAX_PIXELS`; 0: no limit)."""
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse image files of more than N pixels (width x height), from their headers, "
                        "before decoding (default: 89478485, Pillow's decompression-bomb threshold; "
                        "0: no limit)")


def max_pixels(args):
    """The `max_pixels` argument --max-pixels gives: the library default when absent, None for 0."""
    from fcn_keras.images import MAX_PIXELS

    value = getattr(args, "max_pixels", None)
    if value is not None and value < 0:
        raise ValueError(f"`--max-pixels` must be >= 0 (0: no limit). Received: --max-pixels={value}")
    return MAX_PIXELS if value is None else (value or None)


def pair(text, name, cast=int):
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


FOLDER_FLAGS = (("colors", "--colors"), ("val_fraction", "--val-fraction"),
                ("unknown_color", "--unknown-color"), ("mask_suffix", "--mask-suffix"))


def source(args, split):
    """The data source of `--data` for `split` (parsing: `fcn_keras.data.from_spec`)."""
    from fcn_keras import data

    kw = {}
    folders = args.data.startswith("folders:")
    given = [flag for key, flag in FOLDER_FLAGS if getattr(args, key, None) is not None]
    if given and not folders:
        raise ValueError(f"`{given[0]}` applies to `--data folders:IMAGES,MASKS` only. "
                         f"Received: --data={args.data!r}")
    if args.data == "shapes":
        asked = getattr(args, "num_classes", None)
        if asked and asked != len(data.SHAPES_CLASSES):
            raise ValueError(f"`--num-classes` does not apply to --data shapes: it has "
                             f"{len(data.SHAPES_CLASSES)} classes ({', '.join(data.SHAPES_CLASSES)}). "
                             f"Received: --num-classes {asked}")
        if args.image_size:
            kw["image_size"] = pair(args.image_size, "--image-size")
        if args.num_examples:
            kw["num_examples"] = args.num_examples
    elif args.image_size or args.num_examples:
        raise ValueError(f"`--image-size` and `--num-examples` apply to `--data shapes` only. "
                         f"Received: --data={args.data!r}")
    elif folders:  # your own images and masks
        if args.exclude:
            raise ValueError(f"`--exclude` applies to VOC / SBD folders. Received: --data={args.data!r}")
        kw["skip_invalid"] = args.skip_invalid
        kw["max_pixels"] = max_pixels(args)
        kw.update({key: getattr(args, key) for key, _ in FOLDER_FLAGS
                   if getattr(args, key, None) is not None})
        if getattr(args, "num_classes", None):
            kw["num_classes"] = args.num_classes
    elif not args.data.startswith("tfds:"):  # a folder: VOC / SBD options
        kw["skip_invalid"] = args.skip_invalid
        kw["max_pixels"] = max_pixels(args)
        if args.exclude:
            kw["exclude"] = args.exclude
        if args.num_classes:
            kw["num_classes"] = args.num_classes
    return data.from_spec(args.data, split, **kw)


def refinement_args(p):
    """Adds --tile, --tta and --refine (`fcn_keras.predict.Predictor`'s tile, tta, refine)."""
    p.add_argument("--tile", type=tile_arg, metavar="N|auto",
                   help="compute in tiles of N x N pixels (a multiple of 32), or 'auto' (the largest "
                        "that fits 1 GiB of activations); logits equal to the whole image's")
    p.add_argument("--tta", metavar="SPEC",
                   help="test-time augmentation: 'flip', 'scales=0.5,0.75,1,1.25,1.5' or both "
                        "('flip,scales=...'): softmax probabilities averaged")
    p.add_argument("--refine", metavar="crf[:name=value,...]",
                   help="refine with a dense CRF over the probabilities and the photo (DeepLab's "
                        "defaults; e.g. crf:iterations=5); needs pip install \"fcn-keras[crf]\"")


def tile_arg(text):
    """`--tile`: 'auto' or a positive whole number of pixels (argparse type)."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive number of pixels, got {text!r}")
    return value
