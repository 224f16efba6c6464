"""The one thing every data source produces: ordered (image, mask) pairs.

A `Source` is a finite, ordered collection of examples. Each example is an
`image`, uint8 `(H, W, 3)` RGB, and a `mask`, uint8 `(H, W)` holding class indices
`0 .. num_classes - 1` and `IGNORE_LABEL` (255) for pixels that are not scored (VOC's
"void").

Sources check every example as it is loaded: a file that cannot be decoded, a mask whose size
differs from its image, or a label `>= num_classes` other than 255 is a `DataError`
naming the file and the value. Iterating a source raises it directly; inside a `tf.data`
pipeline (`model.fit` included) it surfaces as a `tf.errors.InvalidArgumentError` that
`fcn_keras.data.reraise_data_errors` turns back into the `DataError`. With
`skip_invalid=True` such examples are skipped instead, each with a warning, and
:attr:`Source.skipped` lists them.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import tensorflow as tf

from fcn_keras import _progress
from fcn_keras.conventions import IGNORE_LABEL

from .errors import DataError, assert_valid, reraise_data_errors


def check_example(image, mask, num_classes, where):
    """Validate one decoded example.

    Args:
        image: array `(H, W, 3)`, uint8 RGB.
        mask: array `(H, W)` or `(H, W, 1)` of class indices (255 = ignore).
        num_classes: labels must be `< num_classes` or 255; None skips this check.
        where: the name used in messages (a file name or `"shapes:train[3]"`).

    Returns:
        `(image, mask)` as contiguous uint8 arrays, the mask `(H, W)`.

    Raises:
        DataError: the example is malformed; the message names `where` and the value.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DataError(f"{where}: the image must be H x W x 3 (RGB). "
                        f"Received: image shape={image.shape}")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise DataError(f"{where}: the mask must be a single-channel H x W label image "
                        f"(palette or grayscale). Received: mask shape={mask.shape}")
    if image.shape[:2] != mask.shape:
        raise DataError(f"{where}: the mask must be the size of its image. Expected "
                        f"{image.shape[1]}x{image.shape[0]} (WxH). "
                        f"Received: mask size={mask.shape[1]}x{mask.shape[0]}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"{where}: the image is empty. Received: image shape={image.shape}")
    if mask.dtype != np.uint8:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise DataError(f"{where}: mask values must be within 0..255. Received: mask "
                            f"values={int(mask.min())}..{int(mask.max())}")
        mask = mask.astype(np.uint8)
    if image.dtype != np.uint8:
        raise DataError(f"{where}: the image must be uint8. Received: dtype={image.dtype}")
    if num_classes is not None:
        bad = (mask >= num_classes) & (mask != IGNORE_LABEL)
        if bad.any():
            values = sorted(int(v) for v in np.unique(mask[bad]))
            raise DataError(
                f"{where}: label {values[0]} is not a class. Expected labels "
                f"0..{num_classes - 1} or {IGNORE_LABEL} (ignore) for num_classes="
                f"{num_classes}. Received: label={values[0]} (all invalid labels: {values[:10]})")
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


class Source:
    """A finite, ordered segmentation data set: (image uint8 HxWx3, mask uint8 HxW) pairs.

    Built by `fcn_keras.data.from_directory`, `fcn_keras.data.from_tfds` or
    `fcn_keras.data.shapes`; consumed by `fcn_keras.data.pipeline`.

    Args:
        name: the data set's name (`"voc"`, `"sbd"`, `"shapes"`, `"tfds:NAME"`).
        split: the split it holds.
        num_classes: number of classes (labels `0 .. num_classes - 1`; 255 = ignore).
        class_names: `num_classes` names.
        keys: what is shuffled before decoding: a tuple of arrays, or a callable
            `(shuffle, seed) -> tf.data.Dataset`.
        load_fn: a TensorFlow function `keys -> (image, mask, ok, where, error)`: `ok`
            a bool, `where` the example's name, `error` the message when not `ok`.
        length: number of examples, None if unknown.
        skip_invalid: skip examples that are not `ok` instead of raising.
        description: one line for `repr` and logs.

    Attributes:
        skipped: `[(where, reason), ...]` of examples skipped so far.
    """

    def __init__(self, *, name, split, num_classes, class_names, keys, load_fn,
                 length=None, skip_invalid=False, description=""):
        self.name = name
        self.split = split
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{name}: there must be one class name per class. Expected "
                             f"{num_classes} names. Received: {len(self.class_names)} names")
        self.description = description
        self.skip_invalid = bool(skip_invalid)
        self.skipped = []
        self._lock = threading.Lock()
        self._keys = keys
        self._load_fn = load_fn
        self._length = length

    def __len__(self):
        if self._length is None:
            raise TypeError(f"{self!r} has no known length")
        return self._length

    def __repr__(self):
        n = "?" if self._length is None else self._length
        return (f"<fcn_keras Source {self.name}:{self.split}, {n} examples, "
                f"{self.num_classes} classes>")

    def _record_skip(self, where, reason):
        with self._lock:
            self.skipped.append((where, reason))
            n = len(self.skipped)
        warnings.warn(f"fcn_keras.data: skipped {where}: {reason} ({n} skipped so far "
                      f"in {self.name}:{self.split})", stacklevel=2)

    def examples(self, shuffle=False, seed=None, num_parallel_calls=tf.data.AUTOTUNE,
                 deterministic=True):
        """The checked examples with their names, for pipelines that report them.

        Args:
            shuffle, seed, num_parallel_calls, deterministic: as for `dataset`.

        Returns:
            a dataset of `(image uint8 (H, W, 3), mask uint8 (H, W), where string)`.
        """
        if callable(self._keys):
            ds = self._keys(shuffle=shuffle, seed=seed)
        else:
            ds = tf.data.Dataset.from_tensor_slices(self._keys)
            if shuffle:
                ds = ds.shuffle(self._length, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(self._load_fn, num_parallel_calls=num_parallel_calls,
                    deterministic=deterministic)
        if self.skip_invalid:
            ds = ds.filter(lambda image, mask, ok, where, error: ok)
        ds = ds.map(lambda image, mask, ok, where, error:
                    assert_valid(ok, error, image, mask, where))
        if not self.skip_invalid and self._length is not None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(self._length))
        return ds

    def dataset(self, shuffle=False, seed=None, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True):
        """A `tf.data.Dataset` of decoded, checked `(image, mask)` pairs.

        Iterate it inside `fcn_keras.data.reraise_data_errors` to get a bad example
        as a `DataError`.

        Args:
            shuffle: shuffle the (cheap) keys before decoding, reshuffled every epoch.
            seed: shuffle seed (None: random).
            num_parallel_calls: decoding parallelism (`AUTOTUNE` by default).
            deterministic: keep the order of a parallel map.

        Returns:
            a dataset of `(uint8 (H, W, 3), uint8 (H, W))` pairs.
        """
        ds = self.examples(shuffle, seed, num_parallel_calls, deterministic)
        return ds.map(lambda image, mask, where: (image, mask))

    def __iter__(self):
        """Iterate numpy `(image, mask)` pairs in order; a bad example is a DataError."""
        with reraise_data_errors():
            yield from self.dataset().as_numpy_iterator()

    def check(self, progress=None):
        """Decode and check every example now.

        Args:
            progress: draw a progress bar (None: only on a terminal).

        Returns:
            the number of good examples (with `skip_invalid`, `skipped` lists the rest).

        Raises:
            DataError: the first bad example (without `skip_invalid`).
        """
        n = 0
        with _progress.bar(self._length, f"checking {self.name}:{self.split}", "image",
                           progress) as bar, reraise_data_errors():
            for _ in self.dataset().as_numpy_iterator():
                n += 1
                bar.update(1)
        return n


    def class_weights(self, method="median_frequency", progress=None):
        """Per-class loss weights from this source's pixel counts (every example read once):
        `fcn_keras.data.class_weights(fcn_keras.data.class_frequencies(self), method)`, for
        `FCN.compile(class_weights="median_frequency", source=...)`.

        Returns:
            float32 array (num_classes,).
        """
        from .stats import class_frequencies, class_weights

        return class_weights(class_frequencies(self, progress), method)


def python_loader(source_ref, fn, name_fn):
    """Wrap a Python loader as a `Source` `load_fn`.

    Args:
        source_ref: a weak reference to the source (for `skip_invalid` and `skipped`).
        fn: `fn(*keys) -> (image, mask)` numpy arrays; it raises (a `DataError`
            naming the file, or anything else while reading one) on a bad example.
        name_fn: `name_fn(*keys) -> str`, the example's name in messages.

    Returns:
        a TensorFlow function `keys -> (image, mask, ok, where, error)`.
    """

    def py(*keys):
        keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
        where = name_fn(*keys)
        try:
            image, mask = fn(*keys)
            return image, mask, np.bool_(True), where.encode(), b""
        except Exception as e:  # noqa: BLE001 - every failure is reported with the file
            message = str(e) if isinstance(e, DataError) else f"{where}: {type(e).__name__}: {e}"
            message = " ".join(message.split("\n"))
            src = source_ref()
            if src is not None and src.skip_invalid:
                src._record_skip(where, message)
            return (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), np.bool_(False),
                    where.encode(), message.encode())

    def load(*keys):
        image, mask, ok, where, error = tf.numpy_function(
            py, list(keys), [tf.uint8, tf.uint8, tf.bool, tf.string, tf.string], stateful=False)
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        ok.set_shape([])
        where.set_shape([])
        error.set_shape([])
        return image, mask, ok, where, error

    return load
