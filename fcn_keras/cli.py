"""The `fcn-keras` command line: demo, train, evaluate, predict, export, convert, zoo.

Each area registers its own subcommands (`register(subparsers)`); this file only collects
them, so `fcn-keras --help` lists what the installed package offers.
"""

import argparse
import importlib
import sys

from fcn_keras import __version__

AREAS = ("fcn_keras.demo", "fcn_keras.training.cli", "fcn_keras.export.cli", "fcn_keras.weights.cli", "fcn_keras.predict")


def make_parser():
    parser = argparse.ArgumentParser(
        prog="fcn-keras",
        description="Fully Convolutional Networks (Long, Shelhamer & Darrell) for Keras 3: "
                    "build, train, evaluate, export and convert FCN-32s/16s/8s models.")
    parser.add_argument("--version", action="version", version=f"fcn-keras {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as err:
            if err.name != area and not area.startswith(str(err.name) + "."):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"fcn-keras {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
