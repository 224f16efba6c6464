"""The flags several commands share, and their parsing (no TensorFlow imported here).

    architecture_args(p)    --backbone, --head, --num-classes, --width
    data_args(p)            --data, --split, --exclude, --image-size, --num-examples, ...
    source(args, split)     the data source those flags name
"""

from fcn_keras.models import registry

DEFAULT_BACKBONE, DEFAULT_HEAD = "vgg16", "8s"
DATA_HELP = ("'shapes' (the bundled synthetic set), a VOC or SBD folder (e.g. "
             "VOCdevkit/VOC2012, layout detected), 'voc:PATH', 'sbd:PATH', 'dir:PATH' or "
             "'tfds:NAME'")


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


def data_args(p, split_default=None, num_classes=True):
    """Adds the data flags to parser `p` (`--split` only when `split_default` is given)."""
    p.add_argument("--data", default="shapes", help=f"data: {DATA_HELP} (default: shapes)")
    if split_default:
        p.add_argument("--split", default=split_default, help=f"default: {split_default}")
    p.add_argument("--exclude", help="ids to leave out of folder splits, e.g. seg11valid")
    if num_classes:
        p.add_argument("--num-classes", type=int, help="classes of a folder data set (VOC: 21)")
    p.add_argument("--image-size", help="shapes only: size or 'min,max'")
    p.add_argument("--num-examples", type=int, help="shapes only: examples per split")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable/inconsistent files with a warning instead of failing")


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


def source(args, split):
    """The data source of `--data` for `split` (parsing: `fcn_keras.data.from_spec`)."""
    from fcn_keras import data

    kw = {}
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
    elif not args.data.startswith("tfds:"):  # a folder: VOC / SBD options
        kw["skip_invalid"] = args.skip_invalid
        if args.exclude:
            kw["exclude"] = args.exclude
        if args.num_classes:
            kw["num_classes"] = args.num_classes
    return data.from_spec(args.data, split, **kw)
