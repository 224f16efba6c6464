"""The conventions every part of fcn_keras shares (no TensorFlow, no Keras: plain facts).

- `IGNORE_LABEL`: mask value 255 marks pixels that are not scored (PASCAL VOC's "void").
- `CAFFE_BGR_MEAN` / `CAFFE_RGB_MEAN`: the per-channel mean of the paper's data layer
  (and of the BVLC / VGG Caffe models), 0..255 pixel units, in BGR and in RGB order.
- `VOC_CLASSES`: the 21 PASCAL VOC class names, index = label.
- `voc_palette(n)`: the PASCAL VOC colour map, label -> RGB.
"""

import numpy as np

IGNORE_LABEL = 255

CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
CAFFE_RGB_MEAN = CAFFE_BGR_MEAN[::-1]

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


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
