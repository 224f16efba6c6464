"""Images for int8 calibration and for verification, resolved in one place.

`export`, `verify` and the `fcn-keras export` command all take their images through
`sample_images`, and bring them to a fixed size with `fit_to_size`, which pads and crops the
way `fcn_keras.data.pipeline` does for evaluation: padding at the bottom and right with the
mean colour (`fcn_keras.conventions.CAFFE_RGB_MEAN`, zero after the model's own mean
subtraction) and mask 255, then a centre crop.
"""

import os

import numpy as np

from fcn_keras.conventions import CAFFE_RGB_MEAN_UINT8, IGNORE_LABEL

from ._common import ExportError

DEFAULT_CALIBRATION = 32
PAD_RGB = np.asarray(CAFFE_RGB_MEAN_UINT8, np.uint8)  # (123, 117, 104)


def sample_images(data, split="val", num=None, *, arg="data"):
    """Up to `num` (image, mask) pairs at their own sizes.

    Args:
        data: "shapes" (the bundled synthetic set; val images 64..128 px, train 64..96 px), a
            VOC / SBD folder or a spec `fcn_keras.data.from_spec` reads ("voc:PATH",
            "tfds:NAME", ...), a `fcn_keras.data.Source`, an unbatched tf.data.Dataset of
            (image, mask) pairs, or a list of uint8 images (H, W, 3) or (image, mask) pairs
            (a mask may be None).
        split: the split read from a spec or folder ("train" for calibration, "val" for
            verification).
        num: at most this many pairs (None: all).
        arg: the argument name that error messages give (e.g. "representative_data").

    Returns:
        A list of (image uint8 (H, W, 3), mask (H, W) integer labels with 255 = not labelled, or None).

    Raises:
        ExportError: `data` cannot be read, holds no images, or an image is not (H, W, 3) in 0..255.
    """
    if num is not None and (not isinstance(num, int) or num < 1):
        raise ExportError(f"the number of images from `{arg}` must be a positive int. Received: num={num!r}")
    if isinstance(data, (list, tuple)):
        pairs = [_pair(d, i, arg) for i, d in enumerate(data[:num])]
    else:
        pairs = _from_source(data, split, num, arg)
    if not pairs:
        raise ExportError(f"`{arg}` must hold at least one image. Received: {arg}={_name(data)} (empty)")
    return pairs


def fit_to_size(image, mask, size):
    """Pads (bottom and right) and centre-crops one pair to `size`, like the data pipeline.

    Args:
        image: uint8 (H, W, 3).
        mask: integer labels (H, W), or None.
        size: (h, w), or None to keep the image as it is.

    Returns:
        (image uint8 (h, w, 3), mask (h, w) or None, own bool (h, w)): padded image pixels are
        the mean colour, padded mask pixels 255, and `own` is False on them.
    """
    own = np.ones(image.shape[:2], bool)
    if size is None:
        return image, mask, own
    h, w = size
    H, W = image.shape[:2]
    if H < h or W < w:
        ph, pw = max(h, H), max(w, W)
        padded = np.empty((ph, pw, 3), np.uint8)
        padded[:] = PAD_RGB
        padded[:H, :W] = image
        image = padded
        own = np.zeros((ph, pw), bool)
        own[:H, :W] = True
        if mask is not None:
            m = np.full((ph, pw), IGNORE_LABEL, np.asarray(mask).dtype)
            m[:H, :W] = mask
            mask = m
        H, W = ph, pw
    y, x = (H - h) // 2, (W - w) // 2
    crop = (slice(y, y + h), slice(x, x + w))
    return image[crop], None if mask is None else np.asarray(mask)[crop], own[crop]


def _name(data):
    return repr(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__


def _pair(item, i, arg):
    image, mask = item if isinstance(item, (tuple, list)) else (item, None)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ExportError(f"`{arg}`[{i}] must be an RGB image (H, W, 3). Received: shape={image.shape}")
    if image.dtype != np.uint8:
        if not (np.issubdtype(image.dtype, np.number) and image.min() >= 0 and image.max() <= 255):
            raise ExportError(f"`{arg}`[{i}] must hold pixel values 0..255 (uint8). "
                              f"Received: dtype={image.dtype}, range {image.min()}..{image.max()}")
        image = np.round(image).astype(np.uint8)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ExportError(f"`{arg}`[{i}]: the mask must be (H, W) like its image {image.shape[:2]}. "
                              f"Received: mask shape={mask.shape}")
    return image, mask


def _source(data, split, arg):
    import fcn_keras.data as fd
    import tensorflow as tf

    if isinstance(data, str) and data == "shapes":
        return fd.shapes(split, image_size=(64, 128) if split == "val" else (64, 96))
    if isinstance(data, (str, os.PathLike)):
        spec = os.fspath(data)
        try:
            return fd.from_directory(spec, split) if os.path.isdir(spec) else fd.from_spec(spec, split)
        except (OSError, ValueError) as e:
            raise ExportError(f"`{arg}` must be 'shapes', a VOC / SBD folder or a data spec "
                              f"('voc:PATH', 'tfds:NAME'). Received: {arg}={spec!r} ({e})") from None
    if isinstance(data, (fd.Source, tf.data.Dataset)):
        return data
    raise ExportError(f"`{arg}` must be 'shapes', a folder, a data spec, a fcn_keras.data.Source, a "
                      f"tf.data.Dataset or a list of images. Received: {arg} of type {type(data).__name__}")


def _from_source(data, split, num, arg):
    import fcn_keras.data as fd

    source = _source(data, split, arg)
    try:
        ds = fd.pipeline(source, batch_size=1, training=False, prefetch=False)
        if num is not None:
            ds = ds.take(num)
        return [(np.round(images[0]).astype(np.uint8), masks[0])
                for images, masks in ds.as_numpy_iterator()]
    except (TypeError, ValueError) as e:
        raise ExportError(f"Expected `{arg}` to yield (image, mask) pairs. Received: {arg}={_name(data)} "
                          f"({e})") from e
