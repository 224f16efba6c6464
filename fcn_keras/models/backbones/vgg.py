"""VGG16 (the VGG team's ILSVRC-16 net) as the FCN backbone: named taps at strides 8/16/32.

Layer names are the reference's (conv1_1 ... conv5_3, pool1 ... pool5, fc6, fc7), so a
caffemodel or Keras' ImageNet file maps by name. With first_pad=100 (the FCN) conv1_1
sees the input zero-padded by 100 pixels; first_pad=1 gives the ImageNet classifier's maps.
"""

from keras import layers

from fcn_keras.models.deferred_init import kernel_init
from fcn_keras.models.layers import caffe_max_pool

FIRST_PAD = 100
BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
FC = 4096

# Coordinate maps (scale a, shift b) of each tap with first_pad=100: the tap's cell y sits
# at input pixel a*y + b (Caffe's coord_map; a layer with kernel k, stride s, pad p maps
# its output y to s*y + (k-1)/2 - p). conv1_1 gives -99, each 2x2/2 pool 2y + 0.5:
# pool3 = 8y - 95.5, pool4 = 16y - 91.5, pool5 = 32y - 83.5, fc6 (7x7 valid) = 32y + 12.5.
COORDS = {"pool3": (8, -95.5), "pool4": (16, -91.5), "fc7": (32, 12.5)}


def vgg16(x, width=1.0, first_pad=FIRST_PAD):
    """VGG16's named taps.

    Args:
        x: (N, H, W, 3) preprocessed BGR.
        width: channel multiplier w.
        first_pad: zero padding of conv1_1 (100 in the FCN, 1 in the ImageNet classifier).

    Returns:
        {"pool3": (N, ~H/8, ., 256w), "pool4": (., 512w), "fc7": (N, ~H/32 - 6, ., 4096w)};
        with first_pad=100 the maps include the padding, hence the FCN's crops.
    """

    def ch(c):
        return max(1, int(c * width))

    taps = {}
    for b, block in enumerate(BLOCKS, start=1):
        for i, filters in enumerate(block, start=1):
            name = f"conv{b}_{i}"
            if name == "conv1_1":
                x = layers.ZeroPadding2D(first_pad, name="conv1_1_pad")(x)
                padding = "valid"
            else:
                padding = "same"
            x = layers.Conv2D(ch(filters), 3, padding=padding, activation="relu",
                              kernel_initializer=kernel_init(), name=name)(x)
        x = caffe_max_pool(x, 2, 2, name=f"pool{b}")
        if b in (3, 4):
            taps[f"pool{b}"] = x
    x = layers.Conv2D(ch(FC), 7, padding="valid", activation="relu",
                      kernel_initializer=kernel_init(), name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Conv2D(ch(FC), 1, activation="relu", kernel_initializer=kernel_init(), name="fc7")(x)
    taps["fc7"] = layers.Dropout(0.5, name="drop7")(x)
    return taps
