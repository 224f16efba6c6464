"""The `fcn-keras` command line: demo, train, evaluate, predict, export, convert, zoo, data, serve.

One module per command (`fcn_keras/cli/<command>.py`) adds its parser (`register(subparsers)`)
and maps the parsed arguments onto the library. Parsing comes first and imports no
TensorFlow or Keras (each command imports them when it runs), so `--help`, `--version` and
typos answer at once. This file collects the commands and gives them the same behaviour on
failure:

    exit 0     success
    exit 1     a runtime failure: a download that cannot be made, an export that fails its
               parity check, a loss that became NaN, a TensorFlow error while running
    exit 2     a usage or input error: a bad argument, a missing or malformed file, data
               that does not fit the model (argparse uses 2 for its own errors too)
    exit 130   interrupted (Ctrl-C); `train` says where its backup is

Every expected failure is one line on stderr, `fcn-keras <command>: error: <message>` (a
download that cannot be made says, on a few more lines, which URLs failed and where the file
goes); `--debug` shows the full traceback instead. The library's messages speak Python
(`overwrite=True`, `weights=PATH`); `in_flags` puts the flags' names in their place.
"""

import argparse
import importlib
import logging
import os
import re
import sys
import traceback
import warnings

import fcn_keras

COMMANDS = ("demo", "train", "evaluate", "predict", "export", "convert", "zoo", "data", "serve")
BACKENDS = ("tensorflow", "jax", "torch")
TENSORFLOW_ONLY = ("export",)  # commands that trace the model into TensorFlow graphs
EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
                IsADirectoryError)


def make_parser():
    """The `fcn-keras` argument parser, with the subcommands of every installed area."""
    parser = argparse.ArgumentParser(
        prog="fcn-keras",
        description="Fully Convolutional Networks (Long, Shelhamer & Darrell) for Keras 3: "
                    "build, train, evaluate, export and convert FCN-32s/16s/8s models.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 usage or input error, "
               "130 interrupted. --debug shows tracebacks.")
    parser.add_argument("--version", action="version", version=f"fcn-keras {fcn_keras.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and TensorFlow's log lines")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="the Keras backend for demo, train, evaluate and predict (default: "
                             "the KERAS_BACKEND environment variable, else tensorflow); export "
                             "always runs on tensorflow. Put it before the command: "
                             "fcn-keras --backend jax train ... On a CPU tensorflow is the fastest "
                             "(measured in benchmarks/README.md); jax and torch serve machines "
                             "without TensorFlow, e.g. a GPU with JAX")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        importlib.import_module(f"fcn_keras.cli.{command}").register(subparsers)
    return parser


def _quiet():
    """Keeps Python deprecation warnings and absl/TensorFlow log lines out of the output."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    # TensorFlow announces tf.lite.Interpreter's deprecation as a UserWarning.
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def _runtime_errors():
    """The failures a correct command can still meet (exit 1), as a tuple of classes.

    OSError covers `fcn_keras.weights.DownloadError`, a full disk and permissions (the
    input errors among OSErrors, e.g. FileNotFoundError, are sorted out before). Classes
    of modules not imported yet cannot have been raised and are left out.
    """
    errors = [OSError, FloatingPointError]
    export, tf = sys.modules.get("fcn_keras.export"), sys.modules.get("tensorflow")
    if export is not None and hasattr(export, "ParityError"):
        errors.append(export.ParityError)
    if tf is not None:
        errors.append(tf.errors.OpError)
    return tuple(errors)


FLAGS = {"trust": "--trust-model"}  # keyword arguments whose flag is not --<name with dashes>


def in_flags(err):
    """`err`'s message in the command line's words, or None when it names no keyword argument.

    A library error names the keyword arguments it asks for as `name=VALUE` or `name` in
    backquotes and lists them (`fcn_keras._io.naming_arguments`): `overwrite=True` becomes
    `--overwrite`, `weights=PATH` `--weights PATH`, `name=None` "no --name". An error that
    sets `cli_message` itself gives that.
    """
    if getattr(err, "cli_message", None):
        return err.cli_message
    names = getattr(err, "arguments", ())
    if not names:
        return None
    text = str(err)
    for name in names:
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        text = re.sub(rf"\b{name}=True\b", flag, text)
        text = re.sub(rf"\b{name}=(None|False)\b", "no " + flag, text)
        text = re.sub(rf"\b{name}=", flag + " ", text)
        text = text.replace(f"`{name}`", flag)
    return text


def _describe(err):
    """(exit code, one-line message) for an expected failure, or None for anything else.

    TensorFlow reports an error raised inside tf.data (e.g. a `DataError` naming a file) as
    an op error whose message holds that error's text among graph annotations: its last
    `SomeError: text` line is kept, and a data error counts as an input error.
    """
    cli_text = in_flags(err)
    text = str(cli_text or getattr(err, "message", None) or err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    code = EXIT_USAGE if isinstance(err, INPUT_ERRORS) else None
    if code is None and isinstance(err, _runtime_errors()):
        code = EXIT_RUNTIME
    if code is None:
        return None
    if type(err).__module__.startswith("tensorflow"):
        raised = [re.search(r"([\w.]*(?:Error|Exception)): (.*?)\]?$", line) for line in lines]
        raised = [m for m in raised if m]
        if raised and raised[-1].group(1).endswith("DataError"):
            return EXIT_USAGE, raised[-1].group(2)
        lines = ([f"{raised[-1].group(1)}: {raised[-1].group(2)}"] if raised
                 else [line for line in lines if not line.startswith("[[")][:1])
    if cli_text:  # worded for the command line, lines kept
        return code, "\n  ".join(line.rstrip() for line in text.splitlines() if line.strip())
    return code, " ".join(lines) or type(err).__name__


def _choose_backend(backend, command):
    """Sets KERAS_BACKEND for this run before anything imports Keras; returns an error
    message (a backend Keras is already running on, a missing package, a TensorFlow-only
    command on another backend asked for by name) or None."""
    import importlib.util

    if command in TENSORFLOW_ONLY:
        if backend not in (None, "tensorflow"):
            return (f"{command} runs on the TensorFlow backend (it traces the model into "
                    f"TensorFlow graphs). Received: --backend {backend}; a .keras file trained "
                    f"on any backend exports as it is: drop --backend")
        backend = "tensorflow"  # whatever KERAS_BACKEND says: the .keras file is the same
    if backend is None:
        backend = os.environ.get("KERAS_BACKEND") or None
        if backend is not None and backend not in BACKENDS:
            return f"KERAS_BACKEND must be one of {BACKENDS}. Received: KERAS_BACKEND={backend!r}"
    if backend is None:
        return None
    keras_mod = sys.modules.get("keras")
    if keras_mod is not None and keras_mod.backend.backend() != backend:
        return (f"Keras is already running on {keras_mod.backend.backend()!r} in this process. "
                f"Received: backend {backend!r}")
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        return (f"the {backend} backend needs the {module} package, which is not installed: "
                f"pip install -e \".[{backend if backend != 'tensorflow' else 'cuda'}]\"")
    os.environ["KERAS_BACKEND"] = backend
    return None


def main(argv=None):
    """Runs `fcn-keras`; returns the exit code (0, 1, 2 or 130, see the module docstring).

    As the program (`argv` None) a failed run ends the process as soon as its message is out
    (`_exit_now`): TensorFlow's data threads may still be decoding a file for an iterator the
    failure left behind, and finalising that iterator at interpreter exit can wait on them
    forever (a `train` that printed its data error and never exited).
    """
    if argv is not None:
        return _run(argv)
    try:
        code = _run(None)
    except SystemExit:
        raise
    except KeyboardInterrupt:  # --debug: the traceback, then the exit code of an interruption
        traceback.print_exc()
        _exit_now(EXIT_INTERRUPTED)
    except BaseException:  # noqa: BLE001 - a bug: its traceback, then out
        traceback.print_exc()
        _exit_now(EXIT_RUNTIME)
    if code:
        _exit_now(code)
    return code


def _exit_now(code):
    """Flushes stdout and stderr and ends the process with `code`, skipping finalisers."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run(argv):
    """`main`'s work: parses `argv` (None: sys.argv), runs the command; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else EXIT_USAGE
    # TensorFlow's C++ info and warning lines stay out of the user's terminal (a value set by
    # the user wins); read when TensorFlow is first imported, below.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    restore = None
    if not args.debug:
        _quiet()
        # Native libraries' info lines (TensorFlow's start-up notes, TFLite's XNNPACK line, the
        # converter's settings) are kept off stderr: `fcn_keras._progress.NATIVE_NOISE`.
        from fcn_keras._progress import filter_native_stderr

        restore = filter_native_stderr()
    action = getattr(args, "data_command", None)  # `data check`
    prefix = f"fcn-keras {args.command}" + (f" {action}" if action else "")
    problem = _choose_backend(args.backend, args.command)
    if problem:
        print(f"{prefix}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if getattr(args, "keras", True):  # `serve` needs no Keras
            # Keras, and the package's classes registered for load_model; imported directly, so
            # that TensorFlow's notes reach the filter above (or, with --debug, the terminal)
            importlib.import_module("fcn_keras.models.fcn")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is met below
        return code
    except BrokenPipeError:  # the reader went away (`fcn-keras zoo --json | head`): say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit writes nowhere
        os.close(devnull)
        return EXIT_RUNTIME
    except KeyboardInterrupt as err:
        if args.debug:
            raise
        backup = getattr(err, "backup_dir", None)
        where = (f"; the backup is in {backup}: run the same command again to resume"
                 if backup else "")
        print(f"{prefix}: interrupted{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - sorted below; anything else is a bug
        if args.debug:
            raise
        described = _describe(err)
        if described is None:
            raise
        print(f"{prefix}: error: {described[1]}", file=sys.stderr)
        return described[0]
    finally:
        if restore is not None:
            restore()
