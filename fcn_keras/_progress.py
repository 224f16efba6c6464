"""The package's one progress bar: tqdm on stderr, drawn only where a person watches.

Every long loop outside `model.fit` (downloads, weight conversion, evaluation, prediction,
export verification, data checks) uses `bar`; training uses `fcn_keras.training`'s callback,
which draws the same tqdm bar inside each epoch.
"""

import sys

from tqdm import tqdm


def interactive(stream=None):
    """True when `stream` (default stderr) is a terminal: bars are drawn, else plain lines."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def bar(total=None, desc=None, unit="it", enabled=None, **kwargs):
    """A tqdm progress bar on stderr.

    Args:
        total: number of steps (None: unknown), in `unit`s.
        desc: the label before the bar.
        unit: what one step is ("B" with `unit_scale=True` for bytes, "image", "layer").
        enabled: True draws it, False never, None (default) only when stderr is a terminal,
            so redirected output holds no carriage returns or ANSI codes.
    Returns:
        a `tqdm` object (`update(n)`, `close()`, usable as a context manager); disabled, it
        is a no-op.
    """
    if enabled is None:
        enabled = interactive()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kwargs)
