"""`fcn-keras demo`: the whole loop on the bundled synthetic data, on a CPU, in minutes.

Trains a small FCN-8s (AlexNet layout at width 0.125: its stride-4 conv1 makes a step ~3x
cheaper than VGG16's on a CPU) on `fcn_keras.data.shapes`, prints the
paper's four metrics on the validation split, exports the model (SavedModel, TFLite float32
and full-int8, ONNX, a web page; each verified against the Keras model) and writes coloured
predictions.
Everything lands in one folder:

    <out>/train/            model.keras, curves.png, history.json, log.csv, checkpoints/
    <out>/metrics.json      the four metrics and per-class IoU on the validation split
    <out>/export/           fcn8s_savedmodel/, fcn8s.tflite, fcn8s_int8.tflite, fcn8s.onnx
                            (+ .json metadata and .verify.json reports)
    <out>/predictions/      <i>_labels.png, <i>_overlay.png, <i>_panel.png for test images
    <out>/web/              the page that segments photos in a browser (fcn-keras serve <out>/web);
                            left out, with a note, when ONNX Runtime Web cannot be had
                            (offline and no copy: fcn_keras.export.ort_web)
"""

import os
import time

from fcn_keras._io import exists_error
from fcn_keras.cli.predict import check_out_folder

DEMO = {"backbone": "alexnet", "head": "8s", "width": 0.125}
EPOCHS = 10
QUICK_EPOCHS = 1
VAL_SIZE = 64  # the synthetic images' side, in pixels (train and validation)


def run(out_dir="demo_output", epochs=EPOCHS, steps_per_epoch=None, overwrite=False,
        formats=("saved_model", "tflite", "tflite-int8", "onnx", "web"), num_predictions=6, verbose=True):
    """Runs the demo: train, evaluate, export, predict, all under `out_dir`.

    Args:
        out_dir: the output folder (see the module docstring for its contents).
        epochs: training epochs over the 512 synthetic training images.
        steps_per_epoch: steps per epoch (None: one pass over the training images).
        overwrite: reuse a non-empty `out_dir`, replacing its files. Without it a folder
            holding an interrupted demo (its training backup, `<out>/train/backup/`) is
            reused too: the run resumes its training.
        formats: exports to write, a subset of ("saved_model", "tflite", "tflite-int8",
            "onnx", "web"); "web" is left out (and said so) when the ONNX Runtime Web files
            are not there (`fcn_keras.export.web.find_runtime`).
        num_predictions: test images to predict and draw.
        verbose: print progress, the scores and where everything is.

    Returns:
        {"metrics": the validation scores of `fcn_keras.training.evaluate`, "exports":
        {format: path}, "predictions": [PNG paths], "model": path, "curves": path}.

    Raises:
        FileExistsError: `out_dir` is not empty, holds no interrupted demo and `overwrite`
            is False.
        ValueError: `epochs` or `steps_per_epoch` is not a positive int.
    """
    _check_counts(epochs=epochs, steps_per_epoch=steps_per_epoch)
    from fcn_keras import training
    from fcn_keras.training.callbacks import write_json

    out_dir = os.fspath(out_dir)
    resuming = _open_folder(out_dir, overwrite)
    formats, web_missing = _web_runtime(formats)

    def say(msg):
        if verbose:
            print(msg, flush=True)

    if resuming:
        say(f"resuming the interrupted demo in {out_dir} (its training backup, {resuming})")
    t0 = time.time()
    model, val_ds, train_dir = _train(out_dir, epochs, steps_per_epoch, verbose, say)

    say("[2/4] evaluating on the validation split")
    classes = _classes()
    scores = training.evaluate(model, val_ds, len(classes), classes, progress=verbose)
    say(training.format_report(scores, title="validation (shapes)"))
    write_json(scores, os.path.join(out_dir, "metrics.json"))

    say("[3/4] exporting, each artefact verified against the Keras model")
    exports = _export(model, os.path.join(out_dir, "export"), formats, say)

    say("[4/4] writing coloured predictions for test images")
    pred_dir = os.path.join(out_dir, "predictions")
    written = _predictions(model, pred_dir, num_predictions)
    model_path = os.path.join(train_dir, "model.keras")
    curves = os.path.join(train_dir, "curves.png")
    say(f"done in {time.time() - t0:.0f} s: mean IU {scores['mean_iou']:.3f} on the validation split")
    _summary(say, out_dir, model_path, curves, exports, web_missing)
    return {"metrics": scores, "exports": exports, "predictions": written, "model": model_path,
            "curves": curves}


def _classes():
    """The class names of the demo's data (`fcn_keras.data.SHAPES_CLASSES`)."""
    from fcn_keras import data

    return list(data.SHAPES_CLASSES)


def _check_counts(**counts):
    """Raises a ValueError (with the command line's wording in `cli_message`) for a count
    that is not None or a positive int."""
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            err = ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
            err.cli_message = f"`--{name.replace('_', '-')}` must be at least 1. Received: {value!r}"
            raise err


def _open_folder(out_dir, overwrite):
    """Creates `out_dir`; returns the training backup folder of an interrupted demo there (the
    run resumes it), else None.

    Raises:
        FileExistsError: `out_dir` is not empty, holds no interrupted demo, and not `overwrite`.
    """
    from fcn_keras.training.callbacks import Backup

    backup = os.path.join(out_dir, "train", "backup")
    resuming = Backup.saved_state(backup) is not None
    if os.path.exists(out_dir) and os.listdir(out_dir) and not (overwrite or resuming):
        raise exists_error(out_dir, note=" and is not empty")
    os.makedirs(out_dir, exist_ok=True)
    return backup if resuming else None


def _web_runtime(formats):
    """(`formats`, None), or without "web" and the reason when the page's runtime (ONNX Runtime
    Web, downloaded once when missing) cannot be had: known before training."""
    if "web" not in formats:
        return formats, None
    from fcn_keras.export import ExportError
    from fcn_keras.export.web import find_runtime

    try:
        find_runtime()
    except ExportError as e:
        return tuple(f for f in formats if f != "web"), str(e)
    return formats, None


def _train(out_dir, epochs, steps_per_epoch, verbose, say):
    """Builds and trains the demo's FCN-8s on the shapes set into `<out_dir>/train`; returns
    (the model, the validation batches, the training folder)."""
    import keras

    import fcn_keras
    from fcn_keras import data, training
    from fcn_keras.training.defaults import SCRATCH_LR, SCRATCH_OPTIMIZER

    keras.utils.set_random_seed(0)
    classes = _classes()
    train_ds = data.pipeline(data.shapes("train", image_size=VAL_SIZE), batch_size=8, training=True,
                             seed=0, cache=True)
    val_ds = data.pipeline(data.shapes("val", image_size=VAL_SIZE), batch_size=16, cache=True)
    model = fcn_keras.build(DEMO["backbone"], DEMO["head"], num_classes=len(classes), width=DEMO["width"])
    # From scratch (no ImageNet weights on this machine) a small net learns fastest with Adam;
    # model.compile() with no arguments gives the paper's SGD recipe for fine-tuning.
    model.compile(optimizer=training.make_optimizer(SCRATCH_OPTIMIZER, SCRATCH_LR))
    say(f"[1/4] training {model.name} (width {DEMO['width']}, {model.count_params():,} parameters) "
        f"on the synthetic shapes set for {epochs} epochs")
    train_dir = os.path.join(out_dir, "train")
    training.train(model, train_ds, val_ds, epochs=epochs, out_dir=train_dir,
                   steps_per_epoch=steps_per_epoch, verbose=1 if verbose else 0, class_names=classes)
    return model, val_ds, train_dir


def _export(model, export_dir, formats, say):
    """Writes each of `formats` under `export_dir` (the web page beside it), each verified;
    prints their table and returns {format: path}."""
    from fcn_keras.export import export, format_table

    os.makedirs(export_dir, exist_ok=True)
    targets = {
        "saved_model": ("fcn8s_savedmodel", dict(format="saved_model")),
        "tflite": ("fcn8s.tflite", dict(format="tflite")),
        "tflite-int8": ("fcn8s_int8.tflite", dict(format="tflite", quantize="int8", representative_data="shapes")),
        "onnx": ("fcn8s.onnx", dict(format="onnx")),
        "web": (os.path.join(os.pardir, "web"), dict(format="web")),
    }
    exports, reports = {}, []
    for key in formats:
        name, kwargs = targets[key]
        result = export(model, os.path.normpath(os.path.join(export_dir, name)), overwrite=True,
                        class_names=_classes(), **kwargs)
        exports[key] = result.path
        reports.append(result.report)
    if reports:
        say(format_table(reports))
    return exports


def _predictions(model, pred_dir, num_predictions):
    """Writes `<i>_labels.png`, `<i>_overlay.png` and `<i>_panel.png` for the first
    `num_predictions` test images into `pred_dir`; returns their paths."""
    import numpy as np

    from fcn_keras import data, training, viz

    os.makedirs(pred_dir, exist_ok=True)
    classes = _classes()
    written = []
    for i, (image, mask) in enumerate(data.shapes("test", num_examples=num_predictions)):
        image, mask = np.asarray(image), np.asarray(mask)
        labels = training.predict_labels(model, image)
        for suffix, picture in (("labels", None), ("overlay", viz.overlay(image, labels)),
                                ("panel", viz.panel(image, mask, labels, class_names=classes))):
            path = os.path.join(pred_dir, f"{i}_{suffix}.png")
            if picture is None:
                viz.save_label_png(labels, path)
            else:
                viz.save_image(picture, path)
            written.append(path)
    return written


def _summary(say, out_dir, model_path, curves, exports, web_missing):
    """Says where everything is and what to run next."""
    export_dir, pred_dir = os.path.join(out_dir, "export"), os.path.join(out_dir, "predictions")
    say(f"  model        {model_path}")
    say(f"  curves       {curves}")
    say(f"  scores       {os.path.join(out_dir, 'metrics.json')}")
    if exports:
        files = [os.path.basename(p) for k, p in exports.items() if k != "web"]
        say(f"  exports      {export_dir}{os.sep} ({', '.join(files)})")
    say(f"  pictures     {pred_dir}{os.sep} (<i>_panel.png: image, truth, prediction)")
    web_dir = os.path.join(out_dir, "web")
    if "web" in exports:
        say(f"  web page     {web_dir}{os.sep} (index.html, fcn.js, model.onnx: segments photos in a browser, offline)")
    elif web_missing:
        say(f"  web page     not written: {web_missing}")
    say(f"  same score   {evaluate_command(model_path)}")
    say(f"next: fcn-keras predict --model {model_path} your_photo.jpg --out masks/")
    if "web" in exports:
        say(f"  or: fcn-keras serve {web_dir}    (open the URL it prints, drop a photo)")


def evaluate_command(model_path):
    """The `fcn-keras evaluate` command that scores `model_path` on the demo's validation data
    (shapes:val at 64 x 64 pixels) and prints the demo's mean IU."""
    return f"fcn-keras evaluate --model {model_path} --data shapes --split val --image-size {VAL_SIZE}"


def _main(args):
    check_out_folder(args.out)
    run(args.out, epochs=QUICK_EPOCHS if args.quick else args.epochs,
        steps_per_epoch=4 if args.quick else None, overwrite=args.overwrite,
        verbose=not args.quiet)
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "demo", help="train, evaluate, export and predict on the bundled synthetic data (CPU, minutes)",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default: {EPOCHS})")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 epoch of 4 steps")
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_main)
