"""`fcn-keras serve DIR`: serve a web export on 127.0.0.1 (cross-origin isolated, right MIME types)."""

from fcn_keras.export.serve import DEFAULT_PORT


def register(subparsers):
    """Adds `fcn-keras serve` to an argparse `subparsers`."""
    p = subparsers.add_parser(
        "serve", help="serve a web export (fcn-keras export --format web) on 127.0.0.1",
        description="Serve a web export folder on 127.0.0.1 with the cross-origin isolation headers "
                    "(COOP/COEP, for WebAssembly threads) and the right MIME types, and print its URL. "
                    "Open the URL in a browser: the page segments photos there, offline. Ctrl-C stops.")
    p.add_argument("directory", metavar="DIR", help="the web export folder (holding index.html)")
    p.add_argument("--port", "-p", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.set_defaults(func=run, keras=False)


def run(args):
    from fcn_keras.export.serve import serve

    serve(args.directory, args.port, quiet=args.quiet)
    return 0
