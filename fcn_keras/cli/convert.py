"""`fcn-keras convert`: a .caffemodel (or a zoo entry) -> a .keras model or .weights.h5 file.

    fcn-keras convert fcn8s-heavy-pascal.caffemodel --backbone vgg16 --head 8s -o fcn8s.keras
    fcn-keras convert voc-fcn8s -o fcn8s.keras          # a zoo name: downloads, converts
"""

import os

from fcn_keras._io import atomic_write, exists_error
from fcn_keras.models import registry


def register(subparsers):
    """Adds `fcn-keras convert` to an argparse `subparsers`."""
    convert = subparsers.add_parser(
        "convert", help="convert a .caffemodel (or a zoo entry) into a Keras file",
        description="Reads a Caffe .caffemodel without Caffe and writes a .keras model or .weights.h5 file.")
    convert.add_argument("source", help="a .caffemodel path, Keras' VGG16 .h5 path, or a zoo name (fcn-keras zoo)")
    convert.add_argument("--backbone", choices=registry.backbones(),
                         help="required for a file; a zoo name implies it")
    convert.add_argument("--head", choices=registry.heads(),
                         help="required for a file; a zoo name implies it")
    convert.add_argument("--num-classes", type=int, default=None,
                         help="default: read from the file's score_fr layer (21 for a backbone file)")
    convert.add_argument("-o", "--output", required=True, help="output path ending in .keras or .weights.h5")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.set_defaults(func=run)

    return subparsers


def run(args):
    from fcn_keras.cli.export import offline_hint
    from fcn_keras.resolve import kind_of
    from fcn_keras.weights import DownloadError

    out = args.output
    if not (out.endswith(".keras") or out.endswith(".weights.h5")):
        raise ValueError(f"--output must end in .keras or .weights.h5. Received: --output={out!r}")
    if os.path.exists(out) and not args.overwrite:
        raise exists_error(out)
    source = args.source
    kind = kind_of(source)
    if kind != "zoo" and not os.path.exists(source):
        raise FileNotFoundError(f"`source` {source!r} does not exist: expected a .caffemodel, Keras' "
                                f"VGG16 .h5 or a zoo name (fcn-keras zoo)")
    try:
        model = _load(args, source, kind)
    except DownloadError as err:
        raise offline_hint(err, "the source argument (fcn-keras convert PATH -o ...)") from None
    atomic_write(out, model.save if out.endswith(".keras") else model.save_weights)
    print(f"wrote {out}: {model.backbone_name} FCN-{model.head_name}, {model.num_classes} classes, "
          f"{model.count_params():,} parameters")
    return 0


def _load(args, source, kind):
    """The model `source` (a file or a zoo name) converts to."""
    from fcn_keras import loading
    from fcn_keras.conventions import DEFAULT_NUM_CLASSES
    from fcn_keras.weights import zoo

    arch = dict(backbone=args.backbone, head=args.head, num_classes=args.num_classes)
    if kind == "zoo" and zoo.get(source)["kind"] == "backbone":  # ImageNet weights under a new head
        arch = dict(backbone=zoo.get(source)["backbone"], head=args.head or "32s",
                    num_classes=args.num_classes or DEFAULT_NUM_CLASSES)
        model = loading.load_model(weights=source, **arch)
    elif kind == "zoo":
        model = loading.load_model(source, arg="source")
    else:
        if arch["num_classes"] is None and not source.lower().endswith(".caffemodel"):
            arch["num_classes"] = DEFAULT_NUM_CLASSES  # a backbone file (Keras' VGG16 .h5)
        model = loading.load_model(source, arg="source", **arch)
    return model
