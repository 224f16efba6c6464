"""`fcn-keras zoo`: the table of pretrained entries (or their full records as JSON)."""

import json


def register(subparsers):
    """Adds `fcn-keras zoo` to an argparse `subparsers`."""
    zoo_parser = subparsers.add_parser("zoo", help="list the pretrained models (the zoo)")
    zoo_parser.add_argument("--json", action="store_true", help="print the full entries as JSON")
    zoo_parser.set_defaults(func=run)


def run(args):
    from fcn_keras.weights import zoo

    if args.json:
        print(json.dumps(zoo.list_models(), indent=2, default=list))
        return 0
    headers = ("name", "architecture", "classes", "params", "metrics", "checksum")
    cells = [[f"{r[h]:,}" if h == "params" else str(r[h]) for h in headers] for r in zoo.rows()]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0
