"""The one thing every data source produces: ordered (image, mask) pairs.

A :class:`Source` is a finite, ordered collection of examples. Each example is

* ``image``: ``uint8`` tensor ``(H, W, 3)``, RGB;
* ``mask``: ``uint8`` tensor ``(H, W)``, class indices ``0 .. num_classes-1`` and
  :data:`IGNORE_LABEL` (255) for pixels that are not scored (VOC's "void").

Sources check every example as it is loaded: a file that cannot be decoded, a mask whose
size differs from its image, or a label value ``>= num_classes`` other than 255 raises
:class:`DataError` naming the file (and the value). Inside a ``tf.data`` pipeline the error
surfaces as a ``tf.errors.InvalidArgumentError`` whose message carries the same text.
With ``skip_invalid=True`` such examples are skipped instead, each with a warning, and
:attr:`Source.skipped` lists them.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import tensorflow as tf

from fcn_keras.conventions import IGNORE_LABEL



class DataError(ValueError):
    """A data file is unreadable or inconsistent (names the file and what is wrong)."""


def check_example(image, mask, num_classes, where):
    """Validate one decoded example; raise :class:`DataError` naming ``where``.

    Returns ``(image, mask)`` as contiguous ``uint8`` arrays.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DataError(f"{where}: image must be HxWx3 (RGB), got shape {image.shape}")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise DataError(
            f"{where}: mask must be a single-channel HxW label image (palette or "
            f"grayscale), got shape {mask.shape}"
        )
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{where}: mask size {mask.shape[1]}x{mask.shape[0]} (WxH) differs from "
            f"image size {image.shape[1]}x{image.shape[0]}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"{where}: empty image (shape {image.shape})")
    if mask.dtype != np.uint8:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise DataError(
                f"{where}: mask values must be in 0..255, found {int(mask.min())}..{int(mask.max())}"
            )
        mask = mask.astype(np.uint8)
    if image.dtype != np.uint8:
        raise DataError(f"{where}: image must be uint8, got {image.dtype}")
    if num_classes is not None:
        bad = (mask >= num_classes) & (mask != IGNORE_LABEL)
        if bad.any():
            values = sorted(int(v) for v in np.unique(mask[bad]))
            raise DataError(
                f"{where}: label value {values[0]} is >= num_classes={num_classes} "
                f"and is not the ignore label {IGNORE_LABEL} (bad values: {values[:10]})"
            )
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


class Source:
    """A finite, ordered segmentation data set: (image uint8 HxWx3, mask uint8 HxW) pairs.

    Built by :func:`fcn_keras.data.from_directory`, :func:`fcn_keras.data.from_tfds` or
    :func:`fcn_keras.data.shapes`; consumed by :func:`fcn_keras.data.pipeline`.

    Attributes:
        name: the data set's name (e.g. ``"voc"``, ``"sbd"``, ``"shapes"``, ``"tfds:oxford_iiit_pet"``).
        split: the split it holds.
        num_classes: number of classes (labels ``0 .. num_classes-1``; 255 = ignore).
        class_names: tuple of ``num_classes`` names.
        skipped: ``[(file, reason), ...]`` of examples skipped so far (``skip_invalid=True``).
    """

    def __init__(self, *, name, split, num_classes, class_names, keys, load_fn,
                 length=None, skip_invalid=False, description=""):
        self.name = name
        self.split = split
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{name}: {len(self.class_names)} class names for num_classes={num_classes}"
            )
        self.description = description
        self.skip_invalid = bool(skip_invalid)
        self.skipped = []
        self._lock = threading.Lock()
        self._keys = keys          # a tf.data.Dataset-able structure (tuple of arrays) or a Dataset factory
        self._load_fn = load_fn    # tf function: key(s) -> (image, mask, ok)
        self._length = length

    # -- python side -------------------------------------------------------------------
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

    # -- tf.data side ------------------------------------------------------------------
    def dataset(self, shuffle=False, seed=None, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True):
        """A ``tf.data.Dataset`` of decoded, checked ``(image, mask)`` pairs.

        Args:
            shuffle: shuffle the (cheap) keys before decoding, reshuffled every epoch.
            seed: shuffle seed (``None``: random).
            num_parallel_calls: decoding parallelism (``AUTOTUNE`` by default).
            deterministic: keep the order of a parallel map.
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
            ds = ds.filter(lambda image, mask, ok: ok)
        ds = ds.map(lambda image, mask, ok: (image, mask))
        if not self.skip_invalid and self._length is not None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(self._length))
        return ds

    def __iter__(self):
        """Iterate numpy ``(image, mask)`` pairs in order."""
        for image, mask in self.dataset().as_numpy_iterator():
            yield image, mask

    def check(self, progress=False):
        """Decode and check every example now; raise :class:`DataError` on the first bad one
        (or, with ``skip_invalid``, return the number skipped). Returns the number of good
        examples."""
        n = 0
        it = self.dataset(num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator()
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=self._length, desc=f"checking {self.name}:{self.split}")
        try:
            for _ in it:
                n += 1
        except tf.errors.OpError as e:  # re-raise the python DataError text plainly
            raise DataError(_op_error_text(e)) from None
        return n


def _op_error_text(e):
    msg = getattr(e, "message", str(e))
    marker = "DataError: "
    if marker in msg:
        msg = msg.split(marker, 1)[1]
        msg = msg.split("\n", 1)[0]
    return msg


def python_loader(source_ref, fn, n_in, where_index=0):
    """Wrap ``fn(*keys) -> (image, mask)`` (numpy) as a tf function ``keys -> (image, mask, ok)``.

    ``fn`` raises :class:`DataError` (or anything else while reading a file); with
    ``source.skip_invalid`` the example is skipped with a warning instead.
    """

    def py(*keys):
        keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
        where = keys[where_index]
        try:
            image, mask = fn(*keys)
            return image, mask, np.bool_(True)
        except Exception as e:  # noqa: BLE001 - every failure is reported with the file
            err = e if isinstance(e, DataError) else DataError(f"{where}: {type(e).__name__}: {e}")
            src = source_ref()
            if src is not None and src.skip_invalid:
                src._record_skip(where, str(err))
                return (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8),
                        np.bool_(False))
            raise err from None

    def load(*keys):
        image, mask, ok = tf.numpy_function(py, list(keys)[:n_in],
                                            [tf.uint8, tf.uint8, tf.bool], stateful=False)
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        ok.set_shape([])
        return image, mask, ok

    return load
