"""GoogLeNet (BVLC's bvlc_googlenet, inception v1) as the FCN backbone.

Caffe names with "/" replaced by "_" (conv1_7x7_s2, inception_3a_1x1, ...). The FCN drops
the average pool, dropout and classifier (CVPR paper, Table 1) and taps inception_3b,
inception_4e and inception_5b (strides 8, 16, 32). BVLC pads conv1 by 3; the FCN pads by
100 like the reference nets so that every input size gives a full-size output.
"""

from keras import layers

from fcn_keras.models.deferred_init import kernel_init
from fcn_keras.models.layers import LRN, caffe_max_pool

FIRST_PAD = 100

# name: (1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj)
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}

# Coordinate maps with first_pad=100: conv1 (7x7/2) 2y - 97, pool1 4y - 95, pool2 8y - 91,
# pool3 16y - 83, pool4 32y - 67; inception modules keep the map (centred kernels, stride 1).
COORDS = {"pool3": (8, -91), "pool4": (16, -83), "fc7": (32, -67)}


def _inception(x, name, spec, ch):
    c1, c3r, c3, c5r, c5, cp = (ch(c) for c in spec)
    p = f"inception_{name}_"
    b1 = layers.Conv2D(c1, 1, activation="relu", kernel_initializer=kernel_init(), name=p + "1x1")(x)
    b3 = layers.Conv2D(c3r, 1, activation="relu", kernel_initializer=kernel_init(), name=p + "3x3_reduce")(x)
    b3 = layers.Conv2D(c3, 3, padding="same", activation="relu",
                       kernel_initializer=kernel_init(), name=p + "3x3")(b3)
    b5 = layers.Conv2D(c5r, 1, activation="relu", kernel_initializer=kernel_init(), name=p + "5x5_reduce")(x)
    b5 = layers.Conv2D(c5, 5, padding="same", activation="relu",
                       kernel_initializer=kernel_init(), name=p + "5x5")(b5)
    bp = layers.MaxPooling2D(3, 1, padding="same", name=p + "pool")(x)
    bp = layers.Conv2D(cp, 1, activation="relu", kernel_initializer=kernel_init(), name=p + "pool_proj")(bp)
    return layers.Concatenate(axis=-1, name=p + "output")([b1, b3, b5, bp])


def googlenet(x, width=1.0, first_pad=FIRST_PAD):
    """GoogLeNet's named taps.

    Args:
        x: (N, H, W, 3) preprocessed BGR.
        width: channel multiplier w.
        first_pad: zero padding of conv1 (100 in the FCN, 3 in the ImageNet classifier).

    Returns:
        {"pool3": inception_3b (480w channels), "pool4": inception_4e (832w), "fc7":
        inception_5b (1024w)} at strides 8, 16, 32.
    """

    def ch(c):
        return max(1, int(c * width))

    taps = {}
    x = layers.ZeroPadding2D(first_pad, name="conv1_7x7_s2_pad")(x)
    x = layers.Conv2D(ch(64), 7, strides=2, padding="valid", activation="relu",
                      kernel_initializer=kernel_init(), name="conv1_7x7_s2")(x)
    x = caffe_max_pool(x, 3, 2, name="pool1_3x3_s2")
    x = LRN(5, 1e-4, 0.75, name="pool1_norm1")(x)
    x = layers.Conv2D(ch(64), 1, activation="relu", kernel_initializer=kernel_init(), name="conv2_3x3_reduce")(x)
    x = layers.Conv2D(ch(192), 3, padding="same", activation="relu",
                      kernel_initializer=kernel_init(), name="conv2_3x3")(x)
    x = LRN(5, 1e-4, 0.75, name="conv2_norm2")(x)
    x = caffe_max_pool(x, 3, 2, name="pool2_3x3_s2")
    for name in ("3a", "3b"):
        x = _inception(x, name, INCEPTION[name], ch)
    taps["pool3"] = x
    x = caffe_max_pool(x, 3, 2, name="pool3_3x3_s2")
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = _inception(x, name, INCEPTION[name], ch)
    taps["pool4"] = x
    x = caffe_max_pool(x, 3, 2, name="pool4_3x3_s2")
    for name in ("5a", "5b"):
        x = _inception(x, name, INCEPTION[name], ch)
    taps["fc7"] = x
    return taps
