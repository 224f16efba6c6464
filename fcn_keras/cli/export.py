"""`fcn-keras export`: write a SavedModel / TFLite / ONNX file or a web folder, print its verification table.

    fcn-keras export MODEL.keras --format saved_model|tflite|onnx|web [--quantize float32|float16|dynamic-int8|int8|bfloat16]
                     [--input-size H W] [--representative-data shapes|DIR] -o PATH [--overwrite]
    fcn-keras export MODEL.keras --verify PATH        # verify an existing export, print the table
"""

import os

from fcn_keras.cli import in_flags
from fcn_keras.cli.predict import check_out_folder
from fcn_keras.export.formats import FORMATS, QUANTIZATIONS, folder_format, normalize_format, targets

# A zoo name that cannot be downloaded: export takes no weights file, a .keras file made from it
OFFLINE_HINT = ("the path of a .keras file made from it (fcn-keras convert PATH -o model.keras, "
                "then fcn-keras export model.keras ...)")


def offline_hint(err, hint):
    """`err` (a DownloadError) with its `--weights PATH` advice worded as `hint` for a command
    that has no --weights."""
    text = in_flags(err) or str(err)
    err.cli_message = text.replace("--weights PATH", hint)
    return err


def _check_output(args):
    """Refuses, before any work, an output the format cannot take (a SavedModel folder named
    like a file, e.g. m.pdf) or a folder that cannot be written to."""
    fmt = normalize_format(args.format, args.output)
    if fmt == folder_format():
        ext = os.path.splitext(os.path.basename(os.path.normpath(args.output)))[1]
        if ext:
            raise ValueError(f"-o {args.output!r} names a file ({ext}), but a SavedModel is a folder: "
                             f"give a folder name without an extension, or --format tflite / onnx "
                             f"(-o ending in .tflite / .onnx)")
    check_out_folder(os.path.dirname(os.path.abspath(args.output)), flag="-o's folder")


def register(subparsers):
    """Adds the `export` subcommand to an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "export", help="export a .keras model to SavedModel / TFLite / ONNX / a web page and verify it",
        description="Export a .keras FCN to a SavedModel (servers), TFLite (phones), ONNX, or a web folder "
                    "(a page that segments photos in the browser, offline: the ONNX model, fcn.js and "
                    "ONNX Runtime Web from `npm ci --prefix web`), verify the result against the Keras "
                    "model in its own runtime and print the parity table. The report is written next to "
                    "the file as <PATH>.verify.json (web: DIR/model.onnx.verify.json).")
    p.add_argument("model", help="the .keras model file (or a zoo name)")
    p.add_argument("--format", "-f", choices=FORMATS,
                   help="output format (default: from the -o suffix: .tflite, .onnx, else saved_model); "
                        "web: a folder to open with `fcn-keras serve DIR`")
    p.add_argument("--quantize", "-q", choices=sorted({q for qs in QUANTIZATIONS.values() for q in qs}),
                   help="TFLite quantisation: float16 weights, dynamic-range int8 weights (slow on x86), "
                        "or full-integer int8 calibrated on --representative-data; ONNX / web: int8 (QDQ, "
                        "calibrated on --representative-data); SavedModel: bfloat16 "
                        "weights and compute (can be fast only on CPUs with AVX-512 BF16 or AMX)")
    p.add_argument("--target", choices=sorted({t for f in FORMATS for t in targets(f)}),
                   help="the app platform the format is written for: --format tflite --target mediapipe "
                        "(with --input-size H W) gives a file MediaPipe's Image Segmenter loads")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="fix the input to (1, H, W, 3) (default: any batch, height and width)")
    p.add_argument("--io-type", choices=["uint8", "int8"], default="uint8",
                   help="full int8 only: input/scores type (default uint8 = raw pixels)")
    p.add_argument("--representative-data", metavar="shapes|DIR|SPEC",
                   help="int8 calibration data (train split): 'shapes' (bundled synthetic set), a VOC / "
                        "SBD folder or a data spec such as voc:PATH")
    p.add_argument("--num-calibration", type=int, default=32, help="calibration images (default 32)")
    p.add_argument("--class-names", nargs="+", metavar="NAME",
                   help="class names stored with the export (default: VOC for 21 classes, else class_i)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument("--max-side", type=int, default=None,
                   help="web only: longest side the page's network sees (default: predict's --max-size, "
                        "1024; 0: full resolution)")
    p.add_argument("-o", "--output", metavar="PATH", help="output path (required unless --verify)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-verify", action="store_true", help="skip the verification (not recommended)")
    p.add_argument("--verify-data", default="shapes", metavar="shapes|DIR|SPEC",
                   help="verification images with masks, val split (default: shapes)")
    p.add_argument("--verify", metavar="PATH", dest="verify_path",
                   help="verify an existing export against MODEL instead of exporting")
    p.set_defaults(func=run)
    return p


def run(args):
    """Runs `fcn-keras export` for parsed `args`; returns 0.

    Errors propagate to the one CLI convention (`fcn_keras.cli.main`): a bad argument or
    file (ExportError, FileNotFoundError, ValueError) exits 2, a failed parity check
    (ParityError, its table in the message) exits 1.
    """
    from fcn_keras.export import (DEFAULT_OPSET, ExportError, Verification, export,
                                  format_table, sample_images, verify)
    from fcn_keras.loading import load_model

    from fcn_keras.weights import DownloadError

    if args.output and not args.verify_path:
        _check_output(args)
    try:
        model = load_model(args.model, arg="MODEL")  # a .keras file or a zoo name
    except DownloadError as err:
        raise offline_hint(err, OFFLINE_HINT) from None
    verification = Verification(data=args.verify_data)
    if args.verify_path:
        if args.output:
            raise ExportError(f"--verify checks an existing export; -o must not be given with it. "
                              f"Received: -o {args.output}")
        report = verify(args.verify_path, model, verification)
        print(format_table(report))
        print(f"report: {args.verify_path.rstrip('/')}.verify.json")
        return 0
    if not args.output:
        raise ExportError("-o/--output PATH is required. Received: no -o")
    if args.opset is not None and args.format not in (None, "onnx", "web"):
        raise ExportError(f"--opset applies to --format onnx and web only. Received: --format {args.format}")
    if args.max_side is not None and args.format != "web":
        raise ExportError(f"--max-side applies to --format web only. Received: --format {args.format}")
    web = {"max_side": args.max_side} if args.format == "web" else {}
    representative = None
    if args.representative_data is not None:  # the same reader `export` uses for its own specs
        representative = sample_images(args.representative_data, "train", args.num_calibration,
                                       arg="--representative-data")
    result = export(
        model, args.output, args.format, args.quantize, representative_data=representative,
        verify=False if args.no_verify else verification, overwrite=args.overwrite,
        input_size=args.input_size, io_type=args.io_type, class_names=args.class_names,
        opset=args.opset or DEFAULT_OPSET, target=args.target, **web)
    if result.report is not None:
        print(format_table(result.report))
    if result.format == "web":
        print(f"wrote {result.path}/ (index.html, fcn.js, model.onnx, ONNX Runtime Web in ort/)")
        print(f"open it in a browser: fcn-keras serve {result.path}")
    else:
        print("wrote " + ", ".join(result.files))
    return 0
