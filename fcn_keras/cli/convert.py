"""`fcn-keras convert`: a .caffemodel (or a zoo entry) -> a .keras model or .weights.h5 file.

    fcn-keras convert fcn8s-heavy-pascal.caffemodel --backbone vgg16 --head 8s -o fcn8s.keras
    fcn-keras convert voc-fcn8s -o fcn8s.keras          # a zoo name: downloads, converts
"""

import os

from fcn_keras._io import atomic_write
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


def _classes_in_file(path):
    from fcn_keras.weights.caffemodel import read_caffemodel

    for layer in read_caffemodel(path).layers:
        if layer.name in ("score_fr", "score_fr_sem"):
            return int(layer.blobs[0].shape[0])
    return None


def run(args):
    import fcn_keras
    from fcn_keras.weights import zoo

    out = args.output
    if not (out.endswith(".keras") or out.endswith(".weights.h5")):
        raise ValueError(f"--output must end in .keras or .weights.h5. Received: --output={out!r}")
    if os.path.exists(out) and not args.overwrite:
        raise FileExistsError(f"{out} exists: pass --overwrite to replace it")
    source = args.source
    if source in zoo.ENTRIES and not os.path.exists(source):
        entry = zoo.get(source)
        backbone = entry["backbone"]
        head = entry["head"] or args.head or "32s"
        num_classes = entry["num_classes"] or args.num_classes or 21
        weights = "imagenet" if entry["kind"] == "backbone" else source
    else:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"Expected a .caffemodel / Keras weights file or a zoo name "
                                    f"(`fcn-keras zoo`). Received: {source!r} (no such file or entry)")
        if not (args.backbone and args.head):
            raise ValueError("A weights file needs --backbone and --head (e.g. --backbone vgg16 "
                             f"--head 8s). Received: --backbone={args.backbone}, --head={args.head}")
        backbone, head, weights = args.backbone, args.head, source
        num_classes = args.num_classes
        if num_classes is None and source.lower().endswith(".caffemodel"):
            num_classes = _classes_in_file(source)
        num_classes = num_classes or 21
    model = fcn_keras.build(backbone, head, num_classes=num_classes, weights=weights)
    atomic_write(out, model.save if out.endswith(".keras") else model.save_weights)
    print(f"wrote {out}: {backbone} FCN-{head}, {num_classes} classes, {model.count_params():,} parameters")
    return 0
