"""`fcn-keras predict`: label PNGs and overlays for image files and folders, from any model.

The library side is `fcn_keras.predict.Predictor`; this module maps the command line onto it.
"""

import argparse
import os
import sys
import warnings

import numpy as np

from fcn_keras._io import atomic_write, exists_error
from fcn_keras.cli._args import architecture_args, max_pixels, max_pixels_arg, refinement_args
from fcn_keras.conventions import PRECISIONS, class_metadata
from fcn_keras.predict import DEFAULT_MAX_SIZE

OUTPUTS = {"labels": "_labels.png", "overlay": "_overlay.png", "scores": "_scores.npy"}
NAMED_CLASSES = ("voc", "shapes", "cityscapes")


def _outputs(out, rel, save_scores):
    keys = ("labels", "overlay", "scores") if save_scores else ("labels", "overlay")
    return {k: os.path.join(out, rel + OUTPUTS[k]) for k in keys}


def _named_classes(spec, num_classes):
    if spec is None:
        return None
    if spec in NAMED_CLASSES:
        from fcn_keras.conventions import VOC_CLASSES
        from fcn_keras.data import SHAPES_CLASSES
        from fcn_keras.data.tfds import CITYSCAPES_CLASSES

        return list({"voc": VOC_CLASSES, "shapes": SHAPES_CLASSES, "cityscapes": CITYSCAPES_CLASSES}[spec])
    if os.path.isfile(spec):
        with open(spec) as f:
            return [line.strip() for line in f if line.strip()]
    return [n.strip() for n in spec.split(",")]


def _predict_one(predictor, image, paths):
    if "scores" not in paths:
        return predictor.predict(image, return_scores=False)[0]
    labels = []

    def write(tmp):
        shape = image.shape[:2] + (predictor.num_classes,)
        scores = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        labels.append(predictor.predict(image, scores_out=scores)[0])
        scores.flush()
        del scores

    atomic_write(paths["scores"], write)
    return labels[0]


def check_out_folder(out, flag="--out"):
    """Raises before any work if `--out` cannot hold the outputs: a file, or a folder (or, when
    it is still to be made, its nearest existing parent) that cannot be written to. `flag`
    names the argument in the messages (demo, train, evaluate and export use it too).

    Raises:
        NotADirectoryError: `out` (or a parent) is an existing file.
        ValueError: nothing can be written there (read-only, no permission).
    """
    import tempfile

    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"{flag} {out!r} is an existing file; expected a folder (it is made if missing)")
    probe = os.path.abspath(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise NotADirectoryError(f"{flag} {out!r}: {probe!r} is a file, so no folder can be made below it")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        where = "" if probe == os.path.abspath(out) else f" (its existing parent {probe!r})"
        raise ValueError(f"{flag} {out!r}{where} is not writable: {e.strerror or e}") from None


def run(args):
    """`fcn-keras predict`: checks, plans the outputs, opens the model, predicts, reports.

    Returns:
        0, or 1 when some images failed (listed on stderr).
    """
    limit = _check(args)
    planned = _plan(args)
    predictor, precision_line = _open_predictor(args)
    if not args.quiet:
        _describe(predictor, args.max_size, precision_line)
    reduced, failures = _predict_all(predictor, planned, args, limit)
    return _summary(args, len(planned), reduced, failures, predictor.fixed_size)


def _check(args):
    """Refuses a bad combination of arguments or an unusable --out before any work; returns
    the image size limit of --max-pixels (`fcn_keras.images.read_image`'s `max_pixels`)."""
    if (args.model is None) == (args.weights is None):
        raise ValueError("give one of --model (a model file, SavedModel folder or zoo name) or --weights "
                         "(with --backbone/--head/--num-classes)")
    if not 0 <= args.alpha <= 1:
        raise ValueError(f"`--alpha` is the overlay's opacity, 0..1. Received: --alpha {args.alpha:g}")
    check_out_folder(args.out)
    return max_pixels(args)


def _plan(args):
    """[(image path, name under --out, {output kind: path})]; refuses existing outputs without
    --overwrite; prints a note for each thing left out."""
    from fcn_keras.cli._inputs import find_images

    left_out = []
    files = find_images(args.inputs, recursive=not args.no_recursive, skip=args.out, skipped=left_out)
    for line in left_out:
        print(f"note: {line}", file=sys.stderr)
    planned = [(path, rel, _outputs(args.out, rel, args.save_scores)) for path, rel in files]
    if not args.overwrite:
        existing = [p for _, _, outs in planned for p in outs.values() if os.path.exists(p)]
        if existing:
            raise exists_error(existing[0], note=f" ({len(existing)} of the outputs do)")
    return planned


def _open_predictor(args):
    """(the `Predictor` of --model, or of --weights on the architecture flags, with
    --class-names; the line saying what --precision auto chose, a float32 run's hint, or None)."""
    from fcn_keras.auto_precision import float32_hint, inference_precision
    from fcn_keras.loading import load_model
    from fcn_keras.predict import Predictor
    from fcn_keras.resolve import kind_of

    arch = dict(backbone=args.backbone, head=args.head, num_classes=args.num_classes, width=args.width)
    keras_model = bool(args.weights) or kind_of(args.model) in ("keras", "weights", "zoo")
    precision, auto_line = inference_precision(args.precision, keras_model)
    with warnings.catch_warnings():  # the bfloat16 note is printed below, with the model line
        warnings.filterwarnings("ignore", message=".* computes in bfloat16;")
        if args.weights:
            predictor = Predictor(load_model(weights=args.weights, **arch), max_size=args.max_size,
                                  precision=precision, tile=args.tile, tta=args.tta,
                                  refine=args.refine)
        else:
            predictor = Predictor(args.model, max_size=args.max_size, num_threads=args.threads,
                                  precision=precision, tile=args.tile, tta=args.tta,
                                  refine=args.refine, trust=args.trust_model, **arch)
    names = _named_classes(args.class_names, predictor.num_classes)
    if names is not None:
        predictor.class_names, _ = class_metadata(predictor.num_classes, names, predictor.palette)
    if auto_line is None and keras_model and predictor.precision == "float32":
        auto_line = float32_hint()  # a CPU with native bfloat16: the faster choice, or None
    return predictor, auto_line


def _describe(predictor, max_size, precision_line):
    """Prints what the model is and how it sees the images (size, tiles, TTA, refinement),
    and the precision line of `_open_predictor` (what --precision auto chose, or a hint)."""
    print(f"model: {predictor.source} ({predictor.format}, {predictor.num_classes} classes, "
          f"computes in {predictor.precision}); "
          + (f"fixed input {predictor.fixed_size[0]}x{predictor.fixed_size[1]}: every image is resized to it "
             "and its labels back" if predictor.fixed_size else
             f"images larger than {max_size} px are predicted at that size and their scores resized back"
             if max_size else "full resolution"))
    if predictor.tile:
        spec = predictor.tile_spec
        print(f"tiles of {predictor.tile}x{predictor.tile} px with a {spec.before} px margin "
              "(logits equal to the whole image's)")
    if predictor.tta:
        print(f"test-time augmentation: {predictor.tta} (probabilities averaged)")
    if predictor.refine:
        print(f"refinement: dense CRF ({predictor.refine})")
    if predictor._note:
        print(f"note: {predictor._note}")
    if precision_line:
        print(precision_line)


def _predict_all(predictor, planned, args, limit):
    """Writes each planned image's outputs; one bad file does not stop the batch.

    Returns:
        (how many images the network saw reduced, [one line per failed image]).
    """
    from fcn_keras._progress import bar
    from fcn_keras.images import read_image

    failures, reduced = [], 0
    with bar(len(planned), "predict", "image", enabled=False if args.quiet else None) as progress:
        for path, _, outs in planned:
            try:
                image = read_image(path, max_pixels=limit)
                reduced += predictor.network_size(*image.shape[:2]) != image.shape[:2]
                _write_outputs(predictor, image, outs, args)
            except Exception as e:  # noqa: BLE001  (one bad file does not stop the batch)
                msg = str(e) if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: {e}"
                failures.append(msg if path in msg else f"{path}: {msg}")
            progress.update(1)
    return reduced, failures


def _write_outputs(predictor, image, outs, args):
    """The label PNG, the overlay (with --legend, a legend) and with --save-scores the scores of one image."""
    from fcn_keras import viz

    labels = _predict_one(predictor, image, outs)
    viz.save_label_png(labels, outs["labels"], palette=predictor.palette)
    picture = viz.overlay(image, labels, alpha=args.alpha, palette=predictor.palette)
    if args.legend:
        picture = viz.add_legend(picture, predictor.class_names, labels, predictor.palette)
    viz.save_image(picture, outs["overlay"])


def _summary(args, total, reduced, failures, fixed_size):
    """Prints what was written and the failures; returns the exit status (1: some failed)."""
    done = total - len(failures)
    kinds = "label maps, overlays and scores" if args.save_scores else "label maps and overlays"
    print(f"wrote {kinds} for {done} of {total} images under {args.out}")
    if reduced and not fixed_size:
        print(f"{reduced} images were larger than --max-size {args.max_size}: predicted at that size, "
              "scores resized back (--max-size 0 for full resolution)")
    if failures:
        print(f"{len(failures)} of {total} images failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def register(subparsers):
    """Adds `fcn-keras predict` to the command line's subparsers."""
    p = subparsers.add_parser(
        "predict", help="label PNGs and overlays for images, from any model file or zoo name",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Predict per-pixel classes for image files and folders (subfolders too).\n\n"
            "--model takes a .keras file, a SavedModel folder, a .tflite (float32, float16, int8) or\n"
            ".onnx file, a zoo name (fcn-keras zoo), or a weights file (.weights.h5, .h5, .caffemodel)\n"
            "with --backbone, --head and --num-classes. Class names and colours come from the\n"
            "artefact's metadata where it has them. --precision bfloat16 computes a Keras model in\n"
            "bfloat16 (it can be fast only on CPUs with AVX-512 BF16 or AMX).\n\n"
            "For each input IMAGE (say sub/a.jpg in a folder given), writes under --out:\n"
            "  sub/a.jpg_labels.png   palette PNG, pixel value = class id\n"
            "  sub/a.jpg_overlay.png  the labels over the photo\n"
            "  sub/a.jpg_scores.npy   with --save-scores: float16 logits (H, W, classes)\n"
            "The folder structure is mirrored and the extension kept, so no two inputs collide.\n\n"
            "Large photos: the network sees at most --max-size pixels on the longest side; the scores\n"
            "are resized back (bilinear) before the argmax, so outputs have the photo's size. A\n"
            "fixed-size artefact (exported with input_size) takes every image resized to its size,\n"
            "and its labels are resized back the same way. --tile N (or auto) computes what the\n"
            "network sees in tiles whose logits equal the whole image's: with --max-size 0 a photo\n"
            "of any size at full resolution in one tile's memory.\n\n"
            "A SavedModel is a program that can read and write files: one holding an op that an\n"
            "fcn_keras export does not hold is refused (exit 2) unless --trust-model is given.\n\n"
            "An unreadable image does not stop the batch: the failures are listed at the end and\n"
            "the exit status is 1."))
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--model", help="a .keras, .tflite or .onnx file, a SavedModel folder, a zoo name, or a "
                                   "weights file (with --backbone/--head/--num-classes)")
    p.add_argument("--weights", help="weights for a model built from --backbone/--head/--num-classes "
                                     "(a zoo name, .caffemodel, .weights.h5, 'imagenet')")
    architecture_args(p, backbone=None, head=None, width=None, note="weights files only")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE,
                   help=f"longest side the network sees, in pixels (default {DEFAULT_MAX_SIZE}: a 4000x3000 "
                        "photo on FCN-8s VGG16 peaks at about 3.2 GB; 0 = full resolution, about 22 GB)")
    max_pixels_arg(p)
    refinement_args(p)
    p.add_argument("--save-scores", action="store_true",
                   help="also write <name>_scores.npy (float16 logits; log-probabilities with --tta "
                        "or --refine)")
    p.add_argument("--no-recursive", action="store_true", help="do not search subfolders")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0..1 (default: 0.5)")
    p.add_argument("--legend", action="store_true", help="add a legend to the overlays")
    p.add_argument("--class-names", help="names for the legend: 'voc', 'shapes', 'cityscapes', a file "
                                         "(one per line) or a,b,c (default: the artefact's)")
    p.add_argument("--threads", type=int, help="CPU threads of the TFLite / ONNX runtime")
    p.add_argument("--precision", choices=PRECISIONS + ("auto",),
                   help="what a Keras model (.keras, weights, zoo name) computes in (default: its own, "
                        "float32 unless saved in bfloat16); bfloat16 can be fast only on CPUs with AVX-512 BF16 "
                        "or AMX; auto: bfloat16 where the CPU or GPU computes it natively, else float32 "
                        "(it prints what it chose and why). An exported file's precision is fixed at export")
    p.add_argument("--trust-model", action="store_true",
                   help="load a SavedModel even if it holds ops an fcn_keras export does not (e.g. file "
                        "reads and writes): only for a model from a source you trust as a program")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="only the summary and the failures")
    p.set_defaults(func=run)
