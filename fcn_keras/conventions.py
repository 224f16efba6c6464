"""The conventions every part of fcn_keras shares (no TensorFlow, no Keras: plain facts).

- `IGNORE_LABEL`: mask value 255 marks pixels that are not scored (PASCAL VOC's "void"); it
  also bounds the class count (ids 0 .. 254).
- `PRECISIONS`: the inference precisions offered ("float32", "bfloat16").
- `CAFFE_BGR_MEAN` / `CAFFE_RGB_MEAN`: the per-channel mean of the paper's data layer
  (and of the BVLC / VGG Caffe models), 0..255 pixel units, in BGR and in RGB order;
  `CAFFE_RGB_MEAN_UINT8` the same, rounded to 8-bit pixels (the colour padding and
  transparent pixels become: zero after the model's own mean subtraction, to rounding).
- `VOC_CLASSES`: the 21 PASCAL VOC class names, index = label; `DEFAULT_NUM_CLASSES` their
  count, every default `num_classes`.
- `voc_palette(n)`: the PASCAL VOC colour map, label -> RGB.
- `DEFAULT_MAX_SIZE`: the longest image side, in pixels, the network sees when labelling a
  photo (`fcn-keras predict --max-size`, the web export's page); larger photos are resized down
  and their scores resized back.
- `DataError`, `MARKER`, `data_error_message`: a data file that is unreadable or inconsistent,
  and how its one-line message crosses TensorFlow's errors (`fcn_keras.data.errors` raises
  them inside tf.data; `FCN.fit` and `fcn_keras.data.reraise_data_errors` read them back).
"""

import codecs

import numpy as np

IGNORE_LABEL = 255

# The inference precisions offered by `fcn_keras.build(dtype=...)`, predict and export.
PRECISIONS = ("float32", "bfloat16")

DEFAULT_MAX_SIZE = 1024

CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
CAFFE_RGB_MEAN = CAFFE_BGR_MEAN[::-1]
CAFFE_RGB_MEAN_UINT8 = tuple(int(round(v)) for v in CAFFE_RGB_MEAN)  # (123, 117, 104)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
DEFAULT_NUM_CLASSES = len(VOC_CLASSES)  # 21


def voc_palette(n=256):
    """The PASCAL VOC colour map (VOCdevkit's `labelcolormap`).

    Returns:
        (n, 3) uint8 RGB: index 0 is black, 1 (aeroplane) dark red, ..., 255 (void) cream
        (224, 224, 192).
    """
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


MAX_NAME_LENGTH = 200  # characters of a class name (names come from files others made)


def class_metadata(num_classes, class_names=None, palette=None):
    """A model's class names and colours, checked, with the defaults filled in.

    Args:
        num_classes: the model's output channels.
        class_names: None (VOC_CLASSES for 21 classes, else "class_<i>") or num_classes names.
        palette: None (`voc_palette`) or (num_classes, 3) RGB values 0..255.

    Returns:
        (list of num_classes str, uint8 (num_classes, 3) palette).

    Raises:
        ValueError: `class_names` or `palette` does not fit `num_classes`.
    """
    if class_names is None:
        class_names = (list(VOC_CLASSES) if num_classes == len(VOC_CLASSES)
                       else [f"class_{i}" for i in range(num_classes)])
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__len__"):
        raise ValueError(f"`class_names` must be a list of {num_classes} names. "
                         f"Received: class_names={class_names!r:.80}")
    odd = next((c for c in class_names if not isinstance(c, (str, int)) or isinstance(c, bool)
                or (isinstance(c, str) and (not c.isprintable() or len(c) > MAX_NAME_LENGTH))), None)
    if odd is not None:
        raise ValueError(f"`class_names` must be printable names of at most {MAX_NAME_LENGTH} characters (no "
                         f"newlines or control characters). Received: {odd!r:.80}")
    class_names = [str(c) for c in class_names]
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must have num_classes={num_classes} entries. Received {len(class_names)}: "
            f"class_names={class_names[:5]}{'...' if len(class_names) > 5 else ''}")
    try:
        palette = voc_palette(num_classes) if palette is None else np.asarray(palette)
    except (TypeError, ValueError):  # ragged lists
        raise ValueError(f"`palette` must be ({num_classes}, 3) integers in 0..255. "
                         f"Received: {palette!r:.80}") from None
    if palette.dtype.kind not in "iuf" or (palette.dtype.kind == "f" and not (
            np.isfinite(palette).all() and (palette == np.round(palette)).all())):
        raise ValueError(f"`palette` must be ({num_classes}, 3) integers in 0..255. Received: values of type "
                         f"{palette.dtype} such as {palette.ravel()[:3].tolist()!r:.80}")
    if palette.shape != (num_classes, 3) or palette.min() < 0 or palette.max() > 255:
        raise ValueError(f"`palette` must be ({num_classes}, 3) values in 0..255. "
                         f"Received: palette of shape {palette.shape}")
    return class_names, palette.astype(np.uint8)


MARKER = "fcn_keras.data.DataError: "


class DataError(ValueError):
    """A data file is unreadable or inconsistent; the message names the file and the value."""

    __module__ = "fcn_keras.data"  # where users meet it (re-exported there)


def data_error_message(error):
    """The `DataError` message a `tf.errors.OpError` carries, or None.

    Args:
        error: an exception raised by TensorFlow while running a pipeline.

    Returns:
        the text after `MARKER` up to the end of its line (without the bracket and
        the C escapes `tf.debugging.Assert` adds), or None when `error` carries no data
        error.
    """
    text = getattr(error, "message", None) or str(error)
    start = text.find(MARKER)
    if start < 0:
        return None
    line = text[start + len(MARKER):].split("\n", 1)[0].rstrip()
    line = line[:-1] if line.endswith("]") else line
    # Assert prints strings C-escaped (quotes, backslashes, UTF-8 bytes as octal): undo it
    return codecs.escape_decode(line.encode("utf-8"))[0].decode("utf-8", "replace")
