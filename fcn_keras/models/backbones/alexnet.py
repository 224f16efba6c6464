"""AlexNet in CaffeNet layer order (BVLC bvlc_reference_caffenet: pool, then norm) as the FCN backbone.

conv1 11x11/4 (pad 100 in the FCN) -> pool1 3x3/2 -> norm1 -> conv2 5x5 group 2 -> pool2 ->
norm2 -> conv3 -> conv4 group 2 -> conv5 group 2 -> pool5 -> fc6 6x6 -> fc7 1x1.
Pooling is Caffe's ceil mode, LRN is Caffe's (alpha divided by local_size).

The reference has only FCN-32s on AlexNet. For 16s/8s we tap the last stride-16 and
stride-8 features, conv5 (after conv3..5) and conv2, named pool4 and pool3 by stride.
"""

from keras import layers

from fcn_keras.models.deferred_init import kernel_init
from fcn_keras.models.layers import LRN, GroupConv2D, caffe_max_pool

FIRST_PAD = 100
FC = 4096

# Coordinate maps (scale, shift) with first_pad=100: conv1 4y - 95, pool1 8y - 91 (conv2 keeps
# it), pool2 16y - 83 (conv3..5 keep it), pool5 32y - 67, fc6 (6x6 valid) 32y + 13.
COORDS = {"pool3": (8, -91), "pool4": (16, -83), "fc7": (32, 13)}


def alexnet(x, width=1.0, first_pad=FIRST_PAD):
    """AlexNet's (CaffeNet order) named taps.

    Args:
        x: (N, H, W, 3) preprocessed BGR.
        width: channel multiplier w (channel counts stay even: two groups).
        first_pad: zero padding of conv1 (100 in the FCN, 0 in the ImageNet classifier).

    Returns:
        {"pool3": conv2 (N, ., ., 256w), "pool4": conv5 (N, ., ., 256w), "fc7": (N, ., ., 4096w)}
        at strides 8, 16, 32.
    """

    def ch(c):
        return max(2, 2 * int(c * width / 2))

    taps = {}
    x = layers.ZeroPadding2D(first_pad, name="conv1_pad")(x)
    x = layers.Conv2D(ch(96), 11, strides=4, padding="valid", activation="relu",
                      kernel_initializer=kernel_init(), name="conv1")(x)
    x = caffe_max_pool(x, 3, 2, name="pool1")
    x = LRN(5, 1e-4, 0.75, name="norm1")(x)
    x = GroupConv2D(ch(256), 5, groups=2, activation="relu", kernel_initializer=kernel_init(), name="conv2")(x)
    taps["pool3"] = x
    x = caffe_max_pool(x, 3, 2, name="pool2")
    x = LRN(5, 1e-4, 0.75, name="norm2")(x)
    x = layers.Conv2D(ch(384), 3, padding="same", activation="relu",
                      kernel_initializer=kernel_init(), name="conv3")(x)
    x = GroupConv2D(ch(384), 3, groups=2, activation="relu", kernel_initializer=kernel_init(), name="conv4")(x)
    x = GroupConv2D(ch(256), 3, groups=2, activation="relu", kernel_initializer=kernel_init(), name="conv5")(x)
    taps["pool4"] = x
    x = caffe_max_pool(x, 3, 2, name="pool5")
    x = layers.Conv2D(ch(FC), 6, padding="valid", activation="relu",
                      kernel_initializer=kernel_init(), name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Conv2D(ch(FC), 1, activation="relu", kernel_initializer=kernel_init(), name="fc7")(x)
    taps["fc7"] = layers.Dropout(0.5, name="drop7")(x)
    return taps
