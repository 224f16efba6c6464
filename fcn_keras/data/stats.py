"""Class statistics of a source, class weights against imbalance, and a full read-through.

    freq = fcn_keras.data.class_frequencies(source)          # pixels per class, 255 ignored
    weights = fcn_keras.data.class_weights(freq)             # median-frequency balancing
    model.compile(class_weights=weights)

`survey(source)` reads every example once and keeps going past bad files: what
`fcn-keras data check` prints.
"""

from __future__ import annotations

import warnings

import numpy as np

from fcn_keras import _progress
from fcn_keras.conventions import IGNORE_LABEL

METHODS = ("median_frequency", "inverse_sqrt")


class Survey:
    """What one pass over a source found.

    Attributes:
        name: `"<source name>:<split>"`.
        examples: good examples read.
        sizes: `[(height, width)]` of the good examples, pixels.
        pixels: int64 (num_classes,) labelled pixels per class (255 not counted).
        images_with: int64 (num_classes,) examples in which each class occurs.
        ignored: pixels labelled 255.
        problems: `[(file or example name, message)]` of the examples that failed.
    """

    def __init__(self, name, num_classes):
        self.name = name
        self.examples = 0
        self.sizes = []
        self.pixels = np.zeros(num_classes, np.int64)
        self.images_with = np.zeros(num_classes, np.int64)
        self.ignored = 0
        self.problems = []

    def add(self, mask):
        """Counts one good example's mask, uint8 (H, W)."""
        counts = np.bincount(mask.reshape(-1), minlength=256)
        n = len(self.pixels)
        self.examples += 1
        self.sizes.append(tuple(int(v) for v in mask.shape))
        self.pixels += counts[:n]
        self.images_with += counts[:n] > 0
        self.ignored += int(counts[IGNORE_LABEL])


def survey(source, progress=None):
    """Reads every example of `source` once, counting classes and collecting problems.

    Bad examples (unreadable files, size mismatches, labels out of range, unknown colours)
    do not stop it: each is recorded in `problems` (the source's own `skip_invalid` and
    `skipped` are left as they were).

    Args:
        source: a `fcn_keras.data.Source`.
        progress: draw a progress bar (None: only on a terminal).

    Returns:
        a `Survey`.
    """
    from .errors import DataError, reraise_data_errors

    result = Survey(f"{source.name}:{source.split}", source.num_classes)
    keep, source.skip_invalid = source.skip_invalid, True
    before = len(source.skipped)
    total = source._length
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _progress.bar(total, f"reading {result.name}", "image", progress) as bar:
                it = source.examples(num_parallel_calls=1).as_numpy_iterator()
                while True:
                    try:
                        with reraise_data_errors():
                            image, mask, where = next(it)
                    except StopIteration:
                        break
                    except DataError as e:  # a check in the graph (not a skippable file)
                        result.problems.append(("", str(e)))
                        break
                    result.add(mask)
                    bar.update(1)
    finally:
        source.skip_invalid = keep
        found, source.skipped = source.skipped[before:], source.skipped[:before]
    result.problems = list(found) + result.problems
    return result


def class_frequencies(source, progress=None):
    """Pixels per class over a whole source, label 255 not counted.

    Args:
        source: a `fcn_keras.data.Source` (each example is read once).
        progress: draw a progress bar (None: only on a terminal).

    Returns:
        int64 array (num_classes,): labelled pixels of each class.

    Raises:
        DataError: a bad example (as iterating the source does).
    """
    counts = np.zeros(source.num_classes, np.int64)
    with _progress.bar(source._length, f"counting {source.name}:{source.split}", "image",
                       progress) as bar:
        for _, mask in source:
            counts += np.bincount(mask.reshape(-1), minlength=256)[:source.num_classes]
            bar.update(1)
    return counts


def class_weights(frequencies, method="median_frequency"):
    """Per-class loss weights that balance rare and common classes.

    Args:
        frequencies: pixels (or shares) per class, shape (num_classes,), e.g. from
            `class_frequencies`.
        method: `"median_frequency"` (SegNet, Badrinarayanan et al.: median share / class
            share, so the median class weighs 1 and a class ten times rarer 10; the share here
            is of all labelled pixels) or `"inverse_sqrt"` (the square root of that: gentler).

    Returns:
        float32 array (num_classes,). A class with no pixels gets weight 0 (it never occurs
        as a label, so its weight changes nothing); the median is taken over the others.

    Raises:
        ValueError: an unknown method, negative or no counts.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    freq = np.asarray(frequencies, np.float64).reshape(-1)
    if freq.size == 0 or (freq < 0).any() or not np.isfinite(freq).all() or freq.sum() <= 0:
        raise ValueError(f"`frequencies` must be non-negative counts with a positive sum, one per "
                         f"class. Received: {freq.tolist()[:10]}")
    share = freq / freq.sum()
    present = share > 0
    weights = np.zeros_like(share)
    weights[present] = np.median(share[present]) / share[present]
    if method == "inverse_sqrt":
        weights = np.sqrt(weights)
    return weights.astype(np.float32)
