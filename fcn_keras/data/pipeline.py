"""One pipeline from (image, mask) pairs to training / evaluation batches.

Data errors met while the pipeline runs (an undecodable file, a mask of the wrong size, a label
that is not a class) stop it with a `tf.errors.InvalidArgumentError` naming the file (or
`example N` for a plain `tf.data.Dataset`) and the value; run the code that iterates it
(`model.fit` included) inside `fcn_keras.data.reraise_data_errors` to get them as
`fcn_keras.data.DataError`.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from fcn_keras.conventions import CAFFE_RGB_MEAN as MEAN_RGB  # images are padded with the
from fcn_keras.conventions import IGNORE_LABEL  # mean: "zero" after the model's own subtraction

from .errors import assert_valid
from .source import Source


def _pair(size, name):
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be an int or (height, width). "
                         f"Received: {name}={size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={size!r}")
    return h, w


def _as_pairs(ds):
    spec = ds.element_spec
    if isinstance(spec, dict):
        ikey = next((k for k in ("image", "image_left") if k in spec), None)
        mkey = next((k for k in ("mask", "segmentation_mask", "label") if k in spec), None)
        if ikey is None or mkey is None:
            raise ValueError(f"Dataset elements must be (image, mask) pairs or dicts with "
                             f"'image' and 'mask' keys. Received: keys {sorted(spec)}")
        ds = ds.map(lambda d: (d[ikey], d[mkey]))
        spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(f"The dataset must yield (image, mask) pairs. Received: element_spec={spec}")
    ispec, mspec = spec
    if ispec.shape.rank not in (None, 3):
        raise ValueError(f"Images must be unbatched H x W x 3 tensors (pass an unbatched "
                         f"dataset). Received: image shape={ispec.shape}")

    def fix(image, mask):
        if mask.shape.rank == 3:
            mask = tf.squeeze(mask, -1)
        return tf.cast(image, tf.uint8), tf.cast(mask, tf.uint8)

    return ds.map(fix)


def _check_labels(num_classes):
    """(image, mask, where) -> (image, mask), failing with a DataError naming `where`."""

    def check(image, mask, where):
        size_ok = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(mask)))
        valid = tf.not_equal(mask, IGNORE_LABEL)
        top = tf.reduce_max(tf.where(valid, tf.cast(mask, tf.int32), -1))
        top_text = tf.strings.as_string(top)
        shape = tf.strings.as_string(tf.shape(mask))
        error = tf.where(
            size_ok,
            tf.strings.join([where, ": label ", top_text, " is not a class. Expected labels "
                             f"0..{num_classes - 1} or {IGNORE_LABEL} (ignore) for num_classes="
                             f"{num_classes}. Received: label=", top_text]),
            tf.strings.join([where, ": the mask must be the size of its image. Expected ",
                             tf.strings.reduce_join(tf.strings.as_string(tf.shape(image)[:2]),
                                                    separator="x"),
                             " (HxW). Received: mask shape=",
                             tf.strings.reduce_join(shape, separator="x")]))
        return assert_valid(tf.logical_and(size_ok, top < num_classes), error, image, mask)

    return check


def pad_to(image, mask, height, width, mean=MEAN_RGB):
    """Pad at the bottom and right to at least `height x width`.

    Args:
        image: `(H, W, 3)` tensor, RGB 0..255.
        mask: `(H, W)` uint8 tensor.
        height, width: the minimum size, pixels.
        mean: RGB value the image is padded with (the mask is padded with 255, ignored).

    Returns:
        `(image float32 (H', W', 3), mask uint8 (H', W'))`, `H' = max(H, height)`,
        `W' = max(W, width)`.
    """
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    ph, pw = tf.maximum(height - h, 0), tf.maximum(width - w, 0)
    mean = tf.constant(mean, tf.float32)
    image = tf.pad(tf.cast(image, tf.float32) - mean, [[0, ph], [0, pw], [0, 0]]) + mean
    mask = tf.pad(mask, [[0, ph], [0, pw]], constant_values=IGNORE_LABEL)
    return image, mask


@dataclasses.dataclass(frozen=True)
class _Augmentation:
    """What happens to each example before batching: a random rescale and flip, and a crop
    (random or centred) after padding to at least the crop size.

    Attributes:
        scale_range: `(lo, hi)` rescale factors, or None (no rescaling).
        flip: a random horizontal flip, half of the time.
        crop: `(height, width)` in pixels, or None (whole images).
        mean: RGB pad value.
        random_crop: a random crop position (else centred).
    """

    scale_range: tuple | None = None
    flip: bool = False
    crop: tuple | None = None
    mean: tuple = MEAN_RGB
    random_crop: bool = True

    def __call__(self, image, mask, seed):
        """(image uint8 (H, W, 3), mask uint8 (H, W), seed int64) -> (image float32 (h, w, 3),
        mask uint8 (h, w)): (h, w) the crop, else the rescaled size."""
        seeds = tf.random.experimental.stateless_split(tf.stack([seed, seed // 7 + 1]), 4)
        image = tf.cast(image, tf.float32)
        if self.scale_range is not None:
            lo, hi = self.scale_range
            s = tf.random.stateless_uniform([], seeds[0], lo, hi)
            hw = tf.cast(tf.shape(image)[:2], tf.float32)
            new = tf.maximum(tf.cast(tf.round(hw * s), tf.int32), 1)
            image = tf.image.resize(image, new, method="bilinear")
            mask = tf.image.resize(mask[..., None], new, method="nearest")[..., 0]
        if self.flip:
            do = tf.random.stateless_uniform([], seeds[1]) < 0.5
            image = tf.cond(do, lambda: tf.reverse(image, [1]), lambda: image)
            mask = tf.cond(do, lambda: tf.reverse(mask, [1]), lambda: mask)
        if self.crop is not None:
            image, mask = self._cropped(image, mask, seeds)
        return image, mask

    def _cropped(self, image, mask, seeds):
        """The crop of the padded example: at `seeds[2:4]`'s random position, else centred."""
        ch, cw = self.crop
        image, mask = pad_to(image, mask, ch, cw, self.mean)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        if self.random_crop:
            y = tf.random.stateless_uniform([], seeds[2], 0, h - ch + 1, dtype=tf.int32)
            x = tf.random.stateless_uniform([], seeds[3], 0, w - cw + 1, dtype=tf.int32)
        else:
            y, x = (h - ch) // 2, (w - cw) // 2
        image = image[y:y + ch, x:x + cw]
        mask = mask[y:y + ch, x:x + cw]
        image.set_shape([ch, cw, 3])
        mask.set_shape([ch, cw])
        return image, mask


@dataclasses.dataclass(frozen=True)
class _Parallel:
    """How the pipeline's per-example maps run: `calls` at a time (`tf.data.AUTOTUNE`), in
    order when `deterministic`."""

    calls: int = tf.data.AUTOTUNE
    deterministic: bool = True

    def map(self, ds, fn):
        return ds.map(fn, num_parallel_calls=self.calls, deterministic=self.deterministic)


def pipeline(source, batch_size=1, crop_size=None, training=False, *, shuffle=None,
             scale_range=None, flip=None, mean=MEAN_RGB, cache=False, repeat=False,
             seed=None, num_classes=None, drop_remainder=None, deterministic=None,
             shuffle_buffer=None, num_parallel_calls=tf.data.AUTOTUNE, prefetch=True,
             group_by_size=None):
    """Turn a source into batches for `model.fit` / `evaluate` / `predict`.

    Args:
        source: a `fcn_keras.data.Source` (from `from_directory`, `from_tfds`,
            `shapes`) or an unbatched `tf.data.Dataset` of `(image, mask)` pairs
            (or dicts with `"image"` and `"mask"`).
        batch_size: images per batch. The paper's recipe is `batch_size=1` whole images
            of any size. With `crop_size=None` and `batch_size > 1` each batch is padded
            to its largest image (image with `mean`, mask with 255 = ignored), or with
            `group_by_size` holds images of one size only.
        crop_size: `None` (whole images) or an int / `(height, width)`: images smaller
            than it are padded (mean / 255), then cropped - at random when `training`,
            centred otherwise.
        training: enables shuffling and random flips (and random crops, scaling) and
            defaults `drop_remainder` to True for fixed crops.
        shuffle: shuffle every epoch (default: `training`). Keys (file names, indices)
            are shuffled before decoding, so the whole set is permuted cheaply.
        scale_range: `(lo, hi)` random rescale factor for training (e.g. `(0.5, 2.0)`);
            `None` (default, as in the paper): no rescaling.
        flip: random horizontal flip (default: `training`).
        mean: RGB pad value (the paper's mean by default).
        cache: `False`; `True` caches decoded examples in memory; a string caches them
            to that file prefix (`tf.data.Dataset.cache`). Augmentation runs after it.
        repeat: repeat forever (then give `steps_per_epoch` to `fit`).
        seed: makes shuffling and augmentation reproducible (still different per epoch).
        num_classes: check labels against it (default: the source's, which the source
            checks itself); a label `>= num_classes` other than 255 stops the pipeline
            with a data error naming the example and the label.
        drop_remainder: drop a last partial batch (default: `training and crop_size`).
        deterministic: keep element order in parallel maps (default: True; False can be
            a little faster for training).
        shuffle_buffer: buffer for shuffling decoded (cached) examples (default: all).
        num_parallel_calls: parallelism of decoding and augmentation (`AUTOTUNE`).
        prefetch: prefetch `AUTOTUNE` batches.
        group_by_size: whole images (`crop_size=None`, `batch_size > 1`) are batched only
            with images of the same size, never padded (default: `not training`). Padding
            changes an FCN's scores near it, so without this evaluation scores would depend
            on the batch size. Up to `batch_size - 1` decoded images (uint8) per distinct
            size wait for their batch; a size's last partial batch comes at the end.

    Returns:
        a `tf.data.Dataset` of `(images, masks)`: `float32 (N, H, W, 3)` RGB 0..255
        and `int32 (N, H, W)` with 255 = ignore, ready for `FCN.fit`.

    Raises:
        ValueError: an argument is invalid, or the source is empty.
        TypeError: `source` is neither a Source nor a `tf.data.Dataset`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    crop = _pair(crop_size, "crop_size")
    scale_range = _scale_range(scale_range)
    mean = tuple(float(m) for m in mean)
    if len(mean) != 3:
        raise ValueError(f"`mean` must have 3 values (RGB). Received: mean={mean!r}")
    shuffle = training if shuffle is None else bool(shuffle)
    flip = training if flip is None else bool(flip)
    if drop_remainder is None:
        drop_remainder = bool(training and crop is not None)
    group = not training if group_by_size is None else bool(group_by_size)
    batching = "stack" if crop is not None or batch_size == 1 else "group" if group else "pad"
    parallel = _Parallel(num_parallel_calls, True if deterministic is None else bool(deterministic))

    # Shuffle keys before decoding unless decoded examples are cached (then shuffled after).
    ds, length, check_classes = _examples(source, num_classes, shuffle and not cache, seed,
                                          shuffle_buffer, parallel)
    if check_classes is not None:
        ds = parallel.map(ds, _check_labels(check_classes))
    else:
        ds = ds.map(lambda image, mask, where: (image, mask))
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
        if shuffle:
            ds = ds.shuffle(shuffle_buffer or min(length or 1024, 10000), seed=seed,
                            reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training and (flip or scale_range is not None or crop is not None):
        ds = _randomly_augmented(ds, _Augmentation(scale_range, flip, crop, mean), seed, parallel)
    elif crop is not None:
        centre = _Augmentation(crop=crop, mean=mean, random_crop=False)
        ds = parallel.map(ds, lambda i, m: centre(i, m, tf.constant(0, tf.int64)))
    ds = _batched(ds, batch_size, drop_remainder, batching, mean, parallel)
    # Under tf.distribute multi-worker training each worker keeps every n-th batch
    # (examples are not read from per-worker files, so FILE sharding does not apply).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def _scale_range(scale_range):
    """`scale_range` checked: None, or `(lo, hi)` floats with 0 < lo <= hi."""
    if scale_range is None:
        return None
    try:
        lo, hi = (float(v) for v in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"`scale_range` must be (lo, hi). "
                         f"Received: scale_range={scale_range!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"`scale_range` must satisfy 0 < lo <= hi. "
                         f"Received: scale_range={scale_range!r}")
    return lo, hi


def _examples(source, num_classes, shuffle, seed, shuffle_buffer, parallel):
    """The examples of `source` as `(image uint8 (H, W, 3), mask uint8 (H, W), where string)`.

    Args:
        source: a `Source` or an unbatched `tf.data.Dataset` (see `pipeline`).
        num_classes: `pipeline`'s argument (None: the source's).
        shuffle: shuffle the examples (a Source shuffles its keys, before decoding).
        seed, shuffle_buffer: as in `pipeline`.
        parallel: a `_Parallel`.

    Returns:
        `(dataset, length, check_classes)`: the number of examples (None: unknown), and the
        class count the pipeline must check labels against (None: the source checks them).

    Raises:
        ValueError: the source is empty; TypeError: it is neither kind.
    """
    if isinstance(source, Source):
        check = None if num_classes is None or int(num_classes) == source.num_classes else int(num_classes)
        length = len(source) if source._length is not None else None
        if length == 0:
            raise ValueError(f"The source must hold at least one example. Received: {source!r}")
        ds = source.examples(shuffle=shuffle, seed=seed, num_parallel_calls=parallel.calls,
                             deterministic=parallel.deterministic)
        return ds, length, check
    if isinstance(source, tf.data.Dataset):
        ds = _as_pairs(source)
        card = int(ds.cardinality())
        if card == 0:
            raise ValueError("The dataset passed to pipeline() must hold at least one example. "
                             "Received: an empty dataset")
        length = card if card > 0 else None
        ds = ds.enumerate().map(lambda i, pair: (
            pair[0], pair[1], tf.strings.join(["example ", tf.strings.as_string(i)])))
        if shuffle:
            ds = ds.shuffle(shuffle_buffer or (length or 1024), seed=seed,
                            reshuffle_each_iteration=True)
        return ds, length, None if num_classes is None else int(num_classes)
    raise TypeError(f"`source` must be a fcn_keras.data.Source or a tf.data.Dataset of "
                    f"(image, mask) pairs. Received: {type(source).__name__}")


def _randomly_augmented(ds, augmentation, seed, parallel):
    """`augmentation` applied to each (image, mask) of `ds` with a seed of its own, drawn from
    `seed` and different in every epoch."""
    rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, rand).map(lambda pair, r: (pair[0], pair[1], r))
    return parallel.map(ds, augmentation)


def _batched(ds, batch_size, drop_remainder, mode, mean, parallel):
    """Batches of `(images float32 (N, H, W, 3), masks int32 (N, H, W))`.

    `mode`: "stack" (examples of one size: crops, or one image per batch), "group" (whole
    images batched with images of their size only; they wait for their batch in uint8) or
    "pad" (whole images, each batch padded to its largest: images with `mean`, masks 255).
    """
    def to_float(i, m):
        return tf.cast(i, tf.float32), m

    if mode != "group":
        ds = parallel.map(ds, to_float)
    if mode == "stack":
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    elif mode == "group":
        ds = ds.group_by_window(
            key_func=lambda i, m: tf.cast(tf.shape(i)[0], tf.int64) * (1 << 32)
            + tf.cast(tf.shape(i)[1], tf.int64),
            reduce_func=lambda _, window: window.batch(batch_size, drop_remainder=drop_remainder),
            window_size=batch_size).map(to_float)
    else:
        mean_t = tf.constant(mean, tf.float32)
        ds = ds.map(lambda i, m: (i - mean_t, m))
        ds = ds.padded_batch(batch_size, padded_shapes=([None, None, 3], [None, None]),
                             padding_values=(0.0, tf.constant(IGNORE_LABEL, tf.uint8)),
                             drop_remainder=drop_remainder)
        ds = ds.map(lambda i, m: (i + mean_t, m))
    return ds.map(lambda i, m: (i, tf.cast(m, tf.int32)))
