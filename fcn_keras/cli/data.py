"""`fcn-keras data check SPEC`: read every example once and report what training would meet.

Prints the examples per split, image sizes, each class's share of the labelled pixels per
split (and classes absent from a split), unpaired files, the class weights against imbalance,
and every file with a problem (exit 2 if there is any). `--plot FILE.png` draws the class
histogram.
"""

from __future__ import annotations

import sys

from fcn_keras.cli._args import data_args, source

MAX_PROBLEMS = 20  # problems listed (the total is always given)


def _splits(args):
    """(the splits to read, the unpaired files or None): `--split a,b`, else the folders'
    own splits, else train and val (TFDS: train)."""
    import warnings

    unpaired, splits = None, ["train"] if args.data.startswith("tfds:") else ["train", "val"]
    if args.data.startswith("folders:"):
        with warnings.catch_warnings():  # the unpaired files are printed below
            warnings.simplefilter("ignore")
            whole = source(args, "all")
        unpaired, splits = whole.unpaired, [s for s in whole.splits if s != "all"]
        if whole.outside:
            print(f"{len(whole.outside)} file(s) outside the split folders are not used: "
                  f"{', '.join(whole.outside[:5])}{', ...' if len(whole.outside) > 5 else ''}")
    if args.split:
        splits = [s for s in args.split.split(",") if s]
    return splits, unpaired


def _sizes_line(sizes):
    import numpy as np

    if not sizes:
        return "no readable images"
    area = np.array([h * w for h, w in sizes])
    order = np.argsort(area, kind="stable")
    pick = [sizes[order[0]], sizes[order[len(order) // 2]], sizes[order[-1]]]
    return "sizes (HxW) min {}x{}, median {}x{}, max {}x{}".format(*[v for hw in pick for v in hw])


def _share(pixels):
    total = pixels.sum()
    return pixels / total if total else pixels.astype(float)


def report(surveys, class_names, weights, method):
    """The check's text: counts, sizes, class shares per split, weights (a list of lines)."""
    lines = []
    for s in surveys:
        ignored = s.ignored / max(s.ignored + s.pixels.sum(), 1)
        lines.append(f"{s.name}: {s.examples} examples, {_sizes_line(s.sizes)}, "
                     f"{ignored:.1%} of pixels ignored (255)")
    width = max(len(n) for n in class_names)
    head = f"  {'class':<{width}}" + "".join(f"  {s.name.split(':')[-1]:>9}" for s in surveys)
    lines += ["", "share of labelled pixels per class:", head + f"  {method:>17}"]
    for c, name in enumerate(class_names):
        row = f"  {name:<{width}}"
        for s in surveys:
            row += f"  {_share(s.pixels)[c]:>9.2%}" if s.pixels[c] else f"  {'absent':>9}"
        row += f"  {weights[c]:>17.3g}" if weights is not None else ""
        lines.append(row)
    for s in surveys:
        absent = [n for c, n in enumerate(class_names) if s.examples and not s.pixels[c]]
        if absent:
            lines.append(f"classes absent from {s.name}: {', '.join(absent)}")
    return lines


def plot(surveys, class_names, path):
    """Draws the class share per split (log scale) to `path` (a PNG), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    from fcn_keras._io import atomic_write

    x = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(class_names) + 2), 3.6), dpi=100)
    step = 0.8 / max(len(surveys), 1)
    for i, s in enumerate(surveys):
        share = _share(s.pixels) * 100
        ax.bar(x + (i - (len(surveys) - 1) / 2) * step, np.maximum(share, 1e-4), step,
               label=f"{s.name} ({s.examples} images)")
    ax.set_yscale("log")
    ax.set_ylabel("% of labelled pixels")
    ax.set_xticks(x, class_names, rotation=45 if len(class_names) > 6 else 0, ha="right"
                  if len(class_names) > 6 else "center")
    ax.set_title("class histogram")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def run(args):
    """Runs `fcn-keras data check`; returns 0, or raises a DataError (exit 2) when a file has a
    problem."""""
    from fcn_keras import data
    from fcn_keras.data.folders import unpaired_summary

    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"`--plot` must name a .png file. Received: --plot {args.plot}")
    import warnings

    splits, unpaired = _splits(args)
    surveys, names = [], None
    for split in splits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = source(args, split)
        names = src.class_names
        surveys.append(data.survey(src, progress=False if args.quiet else None))
    train = next((s for s in surveys if s.name.endswith(":train")), surveys[0])
    weights = data.class_weights(train.pixels, args.weights) if train.pixels.sum() else None
    for line in report(surveys, names, weights, f"weight ({args.weights})"):
        print(line)
    if unpaired and (unpaired["images"] or unpaired["masks"]):
        print(unpaired_summary(unpaired["images"], unpaired["masks"]))
    if args.plot:
        print(f"class histogram: {plot(surveys, names, args.plot)}")
    problems = [p for s in surveys for p in s.problems]
    if not problems:
        print("no problems found")
        return 0
    print(f"\n{len(problems)} problem(s):")
    for where, message in problems[:MAX_PROBLEMS]:  # the message names its file; else add it
        named = not where or message.startswith(where)
        print(f"  {message}" if named else f"  {where}: {message}")
    if len(problems) > MAX_PROBLEMS:
        print(f"  ... and {len(problems) - MAX_PROBLEMS} more")
    total = sum(s.examples for s in surveys) + len(problems)
    sys.stdout.flush()
    raise data.DataError(f"{len(problems)} of {total} examples have problems (listed above); "
                         f"fix them, or train with --skip-invalid to leave them out")


def register(subparsers):
    """Adds `fcn-keras data check` to an argparse `subparsers`."""
    p = subparsers.add_parser("data", help="check a data set before training",
                              description="Data set tools.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = sub.add_parser(
        "check", help="read every example once: counts, sizes, class shares, class weights, "
                      "problems (exit 2 if any)",
        description="Read every example once and print the examples per split, image sizes, "
                    "each class's share of the labelled pixels per split, unpaired files, "
                    "class weights, and every file with a problem (exit 2 if any).")
    data_args(c, positional=True)
    c.add_argument("--split", help="splits to read, comma-separated (default: the data's own "
                                   "split folders, else train,val)")
    c.add_argument("--weights", default="median_frequency", choices=("median_frequency", "inverse_sqrt"),
                   help="class weights to print, from the train split (default: median_frequency)")
    c.add_argument("--plot", metavar="FILE.png", help="also draw the class histogram")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=run)
