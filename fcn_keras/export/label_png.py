"""The SavedModel's compact signature `segment_bytes`: encoded photos in, palette PNG label maps out.

    segment_bytes(image_bytes: string (N,), each a JPEG / PNG / GIF / BMP file)
      -> {"label_png_bytes": string (N,), each the image's label map as a palette PNG of its
          size (pixel value = class index, palette = the class colours),
          "class_names": string (C,)}

A TF Serving / KServe REST client sends a photo and gets back a few KB instead of H*W*C
float scores. The names follow TF Serving's REST convention: a tensor whose name ends in
`_bytes` travels as {"b64": "..."} in JSON.

TensorFlow writes no palette PNGs, but an 8-bit greyscale PNG (`tf.io.encode_png`) holds the
very pixel bytes an 8-bit palette PNG holds (filtered, deflated indices): changing the colour
type in its header (0 -> 3) and inserting a PLTE chunk makes it one. The header's CRC changes
by a constant (CRC-32 is affine: crc(a ^ e) = crc(a) ^ crc(e) ^ crc(0) for equal lengths), so
no CRC is computed in the graph.
"""

import struct
import zlib

import numpy as np

SIGNATURE = "segment_bytes"
INPUT = "image_bytes"
OUTPUT = "label_png_bytes"
MAX_CLASSES = 256  # a palette holds at most 256 colours
# A PNG: 8-byte signature, then IHDR: length (4), "IHDR" (4), 13 data bytes, CRC (4).
_COLOUR_TYPE_AT = 8 + 4 + 4 + 9  # byte offset of IHDR's colour type in the file
_IHDR_END = 8 + 4 + 4 + 13  # where IHDR's CRC starts
_GREY, _PALETTE = 0, 3


def _crc_change():
    """The 4 bytes to XOR into IHDR's CRC when its colour type goes from greyscale to palette."""
    change = bytearray(17)  # "IHDR" + 13 data bytes
    change[4 + 9] = _GREY ^ _PALETTE
    return struct.pack(">I", zlib.crc32(bytes(change)) ^ zlib.crc32(bytes(17)))


def plte_chunk(palette):
    """The PLTE chunk (bytes) of uint8 (C, 3) RGB `palette`, C <= 256."""
    data = np.asarray(palette, np.uint8).reshape(-1, 3).tobytes()
    body = b"PLTE" + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def to_palette_png(grey_png, plte):
    """The palette PNG (tf.string scalar) of an 8-bit greyscale `tf.io.encode_png` result.

    Args:
        grey_png: tf.string scalar, a PNG of uint8 (H, W, 1) class indices.
        plte: the `plte_chunk` bytes.
    """
    import tensorflow as tf

    byte = tf.constant([bytes([i]) for i in range(256)])  # byte value -> a 1-byte string
    old_crc = tf.io.decode_raw(tf.strings.substr(grey_png, _IHDR_END, 4), tf.uint8)
    new_crc = tf.bitwise.bitwise_xor(old_crc, tf.constant(list(_crc_change()), tf.uint8))
    return tf.strings.join([
        tf.strings.substr(grey_png, 0, _COLOUR_TYPE_AT), bytes([_PALETTE]),
        tf.strings.substr(grey_png, _COLOUR_TYPE_AT + 1, _IHDR_END - _COLOUR_TYPE_AT - 1),
        tf.strings.reduce_join(tf.gather(byte, tf.cast(new_crc, tf.int32))),
        plte,
        tf.strings.substr(grey_png, _IHDR_END + 4, -1),
    ])


def segment_bytes_fn(serve, class_names, palette):
    """The `segment_bytes` function (see the module docstring) around `serve`.

    Args:
        serve: `fcn_keras.export._common.serving_fn`'s function, uint8 labels (C <= 256).
        class_names: the C class names; palette: uint8 (C, 3).

    Returns:
        A Python function `segment_bytes(image_bytes)` to wrap in `tf.function`.
    """
    import tensorflow as tf

    plte = plte_chunk(palette)
    names = list(class_names)

    def one(encoded):
        image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
        labels = serve(image[tf.newaxis])["labels"][0]
        return to_palette_png(tf.io.encode_png(labels[..., tf.newaxis]), plte)

    def segment_bytes(image_bytes):
        pngs = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {OUTPUT: pngs, "class_names": tf.constant(names)}

    return segment_bytes


def input_spec():
    """The `image_bytes` TensorSpec: a batch of encoded images."""
    import tensorflow as tf

    return tf.TensorSpec([None], tf.string, name=INPUT)
