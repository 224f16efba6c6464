"""The reference networks as Caffe prototxt, random caffemodels for them, and OpenCV to run them.

The nets follow the authors' `net.py` / deploy prototxts layer for layer (shelhamer/
fcn.berkeleyvision.org voc-fcn*/, BVLC/caffe models/bvlc_reference_caffenet and
bvlc_googlenet, the VGG team's ILSVRC-16 deploy net): conv1 pad 100 in the FCNs, Caffe's
ceil-mode pooling (its default), 7x7 fc6, Deconvolution layers with full C x C kernels and
no bias, Crop layers with the reference offsets (32s: 19; 16s: 5, 27; 8s: 5, 9, 31;
FCN-AlexNet k63 s32, 18), fixed Scale layers 0.01 / 0.0001 in FCN-8s at-once.

`width` scales channel counts the way fcn_keras' `width` does, so small nets run fast;
width=1.0 is the released architecture. Caffemodels are written with
fcn_keras.weights.write_caffemodel (the reader's schema); OpenCV reading them is the check
that they are real Caffe files.
"""

import math
import os
import tempfile

import numpy as np

BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)


class NetSpec:
    """A tiny Caffe NetSpec: records layers, tracks blob shapes (C, H, W), emits prototxt."""

    def __init__(self, name, height, width):
        self.name = name
        self.layers = []  # dicts: name, type, bottom, top, params (prototxt text), blobs (shapes)
        self.shapes = {"data": (3, height, width)}
        self.producer = {"data": "data"}
        self.input_hw = (height, width)

    def _add(self, name, ltype, bottoms, top, params="", blobs=(), fill=None):
        self.layers.append({"name": name, "type": ltype, "bottom": list(bottoms), "top": top,
                            "params": params, "blobs": [tuple(b) for b in blobs], "fill": fill})
        self.producer[top] = name
        return top

    def conv(self, name, bottom, nout, k, stride=1, pad=0, group=1, relu=None, bias=True):
        c, h, w = self.shapes[bottom]
        assert c % group == 0 and nout % group == 0, (name, c, nout, group)
        oh = (h + 2 * pad - k) // stride + 1
        ow = (w + 2 * pad - k) // stride + 1
        self.shapes[name] = (nout, oh, ow)
        params = (f"convolution_param {{ num_output: {nout} kernel_size: {k} stride: {stride} pad: {pad}"
                  f"{f' group: {group}' if group > 1 else ''}{'' if bias else ' bias_term: false'} }}")
        blobs = [(nout, c // group, k, k)] + ([(nout,)] if bias else [])
        self._add(name, "Convolution", [bottom], name, params, blobs)
        if relu:
            self._add(relu, "ReLU", [name], name)
        return name

    def fc(self, name, bottom, nout, relu=None):
        c, h, w = self.shapes[bottom]
        self.shapes[name] = (nout, 1, 1)
        self._add(name, "InnerProduct", [bottom], name, f"inner_product_param {{ num_output: {nout} }}",
                  [(nout, c * h * w), (nout,)])
        if relu:
            self._add(relu, "ReLU", [name], name)
        return name

    def deconv(self, name, bottom, nout, k, stride):
        c, h, w = self.shapes[bottom]
        self.shapes[name] = (nout, (h - 1) * stride + k, (w - 1) * stride + k)
        params = (f"convolution_param {{ num_output: {nout} bias_term: false kernel_size: {k} "
                  f"stride: {stride} }}")
        return self._add(name, "Deconvolution", [bottom], name, params, [(c, nout, k, k)])

    def pool(self, name, bottom, k, stride, pad=0, method="MAX"):
        c, h, w = self.shapes[bottom]

        def out(n):  # Caffe: ceil, and the last window must start inside the image (+pad)
            o = int(math.ceil((n + 2 * pad - k) / stride)) + 1
            if pad and (o - 1) * stride >= n + pad:
                o -= 1
            return o

        self.shapes[name] = (c, out(h), out(w))
        params = f"pooling_param {{ pool: {method} kernel_size: {k} stride: {stride}{f' pad: {pad}' if pad else ''} }}"
        return self._add(name, "Pooling", [bottom], name, params)

    def lrn(self, name, bottom):
        self.shapes[name] = self.shapes[bottom]
        return self._add(name, "LRN", [bottom], name, "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }")

    def crop(self, name, bottom, like, offset):
        c = self.shapes[bottom][0]
        _, h, w = self.shapes[like]
        self.shapes[name] = (c, h, w)
        return self._add(name, "Crop", [bottom, like], name, f"crop_param {{ axis: 2 offset: {offset} }}")

    def eltwise(self, name, a, b):
        self.shapes[name] = self.shapes[a]
        return self._add(name, "Eltwise", [a, b], name, "eltwise_param { operation: SUM }")

    def scale(self, name, bottom, value):
        c = self.shapes[bottom][0]
        self.shapes[name] = self.shapes[bottom]
        return self._add(name, "Scale", [bottom], name, "scale_param { bias_term: false }", [(c,)], fill=value)

    def concat(self, name, bottoms):
        c = sum(self.shapes[b][0] for b in bottoms)
        _, h, w = self.shapes[bottoms[0]]
        self.shapes[name] = (c, h, w)
        return self._add(name, "Concat", bottoms, name)

    def prototxt(self):
        h, w = self.input_hw
        out = [f'name: "{self.name}"',
               'layer { name: "data" type: "Input" top: "data" '
               f"input_param {{ shape {{ dim: 1 dim: 3 dim: {h} dim: {w} }} }} }}"]
        for layer in self.layers:
            bottoms = " ".join(f'bottom: "{b}"' for b in layer["bottom"])
            out.append(f'layer {{ name: "{layer["name"]}" type: "{layer["type"]}" {bottoms} '
                       f'top: "{layer["top"]}" {layer["params"]} }}')
        return "\n".join(out) + "\n"

    def param_layers(self):
        return [layer for layer in self.layers if layer["blobs"]]


def _ch(c, width, even=False):
    if even:
        return max(2, 2 * int(c * width / 2))
    return max(1, int(c * width))


# ----------------------------------------------------------------------------- VGG16

VGG_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def _vgg16_trunk(n, width, first_pad):
    x = "data"
    for b, block in enumerate(VGG_BLOCKS, start=1):
        for i, c in enumerate(block, start=1):
            x = n.conv(f"conv{b}_{i}", x, _ch(c, width), 3, pad=first_pad if (b, i) == (1, 1) else 1,
                       relu=f"relu{b}_{i}")
        x = n.pool(f"pool{b}", x, 2, 2)
    return x


def vgg16_fcn(head, num_classes=21, width=1.0, height=64, width_px=64):
    """voc-fcn32s / 16s / 8s / 8s-atonce (deploy form, no loss)."""
    n = NetSpec(f"voc-fcn{head}", height, width_px)
    x = _vgg16_trunk(n, width, first_pad=100)
    x = n.conv("fc6", x, _ch(4096, width), 7, relu="relu6")
    x = n.conv("fc7", x, _ch(4096, width), 1, relu="relu7")
    x = n.conv("score_fr", x, num_classes, 1)
    if head == "32s":
        x = n.deconv("upscore", x, num_classes, 64, 32)
        n.crop("score", x, "data", 19)
        return n
    atonce = head == "8s-atonce"
    x = n.deconv("upscore2", x, num_classes, 4, 2)
    p4 = n.scale("scale_pool4", "pool4", 0.01) if atonce else "pool4"
    s4 = n.conv("score_pool4", p4, num_classes, 1)
    s4 = n.crop("score_pool4c", s4, x, 5)
    x = n.eltwise("fuse_pool4", x, s4)
    if head == "16s":
        x = n.deconv("upscore16", x, num_classes, 32, 16)
        n.crop("score", x, "data", 27)
        return n
    x = n.deconv("upscore_pool4", x, num_classes, 4, 2)
    p3 = n.scale("scale_pool3", "pool3", 0.0001) if atonce else "pool3"
    s3 = n.conv("score_pool3", p3, num_classes, 1)
    s3 = n.crop("score_pool3c", s3, x, 9)
    x = n.eltwise("fuse_pool3", x, s3)
    x = n.deconv("upscore8", x, num_classes, 16, 8)
    n.crop("score", x, "data", 31)
    return n


def vgg16_classifier(width=1.0, size=224):
    """The VGG team's ILSVRC-16 deploy net (conv pad 1, InnerProduct fc6/fc7/fc8)."""
    n = NetSpec("VGG_ILSVRC_16_layers", size, size)
    x = _vgg16_trunk(n, width, first_pad=1)
    x = n.fc("fc6", x, _ch(4096, width), relu="relu6")
    x = n.fc("fc7", x, _ch(4096, width), relu="relu7")
    n.fc("fc8", x, 1000)
    return n


# ----------------------------------------------------------------------------- AlexNet (CaffeNet order)

def _caffenet_trunk(n, width, first_pad):
    e = dict(even=True)
    x = n.conv("conv1", "data", _ch(96, width, **e), 11, stride=4, pad=first_pad, relu="relu1")
    x = n.pool("pool1", x, 3, 2)
    x = n.lrn("norm1", x)
    x = n.conv("conv2", x, _ch(256, width, **e), 5, pad=2, group=2, relu="relu2")
    x = n.pool("pool2", x, 3, 2)
    x = n.lrn("norm2", x)
    x = n.conv("conv3", x, _ch(384, width, **e), 3, pad=1, relu="relu3")
    x = n.conv("conv4", x, _ch(384, width, **e), 3, pad=1, group=2, relu="relu4")
    x = n.conv("conv5", x, _ch(256, width, **e), 3, pad=1, group=2, relu="relu5")
    return n.pool("pool5", x, 3, 2)


def alexnet_fcn(num_classes=21, width=1.0, height=64, width_px=64):
    """voc-fcn-alexnet (32s): CaffeNet with pad 100, 6x6 fc6, upscore k63 s32, crop 18."""
    n = NetSpec("voc-fcn-alexnet", height, width_px)
    x = _caffenet_trunk(n, width, first_pad=100)
    x = n.conv("fc6", x, _ch(4096, width, even=True), 6, relu="relu6")
    x = n.conv("fc7", x, _ch(4096, width, even=True), 1, relu="relu7")
    x = n.conv("score_fr", x, num_classes, 1)
    x = n.deconv("upscore", x, num_classes, 63, 32)
    n.crop("score", x, "data", 18)
    return n


def caffenet_classifier(width=1.0, size=227):
    """BVLC CaffeNet (bvlc_reference_caffenet) deploy net."""
    n = NetSpec("CaffeNet", size, size)
    x = _caffenet_trunk(n, width, first_pad=0)
    x = n.fc("fc6", x, _ch(4096, width, even=True), relu="relu6")
    x = n.fc("fc7", x, _ch(4096, width, even=True), relu="relu7")
    n.fc("fc8", x, 1000)
    return n


# ----------------------------------------------------------------------------- GoogLeNet

INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _inception(n, x, name, width):
    c1, c3r, c3, c5r, c5, cp = (_ch(c, width) for c in INCEPTION[name])
    p = f"inception_{name}/"
    b1 = n.conv(p + "1x1", x, c1, 1, relu=p + "relu_1x1")
    b3 = n.conv(p + "3x3_reduce", x, c3r, 1, relu=p + "relu_3x3_reduce")
    b3 = n.conv(p + "3x3", b3, c3, 3, pad=1, relu=p + "relu_3x3")
    b5 = n.conv(p + "5x5_reduce", x, c5r, 1, relu=p + "relu_5x5_reduce")
    b5 = n.conv(p + "5x5", b5, c5, 5, pad=2, relu=p + "relu_5x5")
    bp = n.pool(p + "pool", x, 3, 1, pad=1)
    bp = n.conv(p + "pool_proj", bp, cp, 1, relu=p + "relu_pool_proj")
    return n.concat(p + "output", [b1, b3, b5, bp])


def googlenet_classifier(width=1.0, size=224):
    """BVLC GoogLeNet (bvlc_googlenet) deploy net."""
    n = NetSpec("GoogleNet", size, size)
    x = n.conv("conv1/7x7_s2", "data", _ch(64, width), 7, stride=2, pad=3, relu="conv1/relu_7x7")
    x = n.pool("pool1/3x3_s2", x, 3, 2)
    x = n.lrn("pool1/norm1", x)
    x = n.conv("conv2/3x3_reduce", x, _ch(64, width), 1, relu="conv2/relu_3x3_reduce")
    x = n.conv("conv2/3x3", x, _ch(192, width), 3, pad=1, relu="conv2/relu_3x3")
    x = n.lrn("conv2/norm2", x)
    x = n.pool("pool2/3x3_s2", x, 3, 2)
    for name in ("3a", "3b"):
        x = _inception(n, x, name, width)
    x = n.pool("pool3/3x3_s2", x, 3, 2)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = _inception(n, x, name, width)
    x = n.pool("pool4/3x3_s2", x, 3, 2)
    for name in ("5a", "5b"):
        x = _inception(n, x, name, width)
    x = n.pool("pool5/7x7_s1", x, 7, 1, method="AVE")
    n.fc("loss3/classifier", x, 1000)
    return n


# Auxiliary classifier layers present in bvlc_googlenet.caffemodel but not in its deploy net.
GOOGLENET_AUX = [("loss1/conv", "Convolution", [(128, 512, 1, 1), (128,)]),
                 ("loss1/fc", "InnerProduct", [(1024, 2048), (1024,)]),
                 ("loss1/classifier", "InnerProduct", [(1000, 1024), (1000,)]),
                 ("loss2/conv", "Convolution", [(128, 528, 1, 1), (128,)]),
                 ("loss2/fc", "InnerProduct", [(1024, 2048), (1024,)]),
                 ("loss2/classifier", "InnerProduct", [(1000, 1024), (1000,)])]


# ----------------------------------------------------------------------------- random caffemodels

def _random(rng, shape, std):
    """Gaussian values; large blobs tile a block of prime length (no period aligns with an
    axis, so any layout mix-up still shows) to keep 100 M-value fc6 blobs fast."""
    n = int(np.prod(shape))
    block = rng.standard_normal(min(n, 1_000_003), dtype=np.float32) * np.float32(std)
    return block.reshape(shape) if n == block.size else np.resize(block, shape)


def random_blobs(spec, seed=0, extra=()):
    """[(name, type, [float32 arrays])] for every parameter layer of `spec`, He-scaled so
    activations keep their magnitude through the net (LRN then really normalises).
    Deconvolution kernels are random too (not bilinear), so a Cin/Cout mix-up shows."""
    rng = np.random.default_rng(seed)
    out = []
    for layer in list(spec.param_layers()) + [{"name": n, "type": t, "blobs": b, "fill": None} for n, t, b in extra]:
        arrays = []
        for i, shape in enumerate(layer["blobs"]):
            if layer["fill"] is not None:
                arrays.append(np.full(shape, layer["fill"], np.float32))
            elif i == 0:
                if layer["type"] == "Deconvolution":
                    fan_in = shape[0] * 4  # each output sees ~(k/s)^2 = 4 taps per input channel
                else:
                    fan_in = int(np.prod(shape[1:]))
                arrays.append(_random(rng, shape, math.sqrt(2.0 / fan_in)))
            else:
                arrays.append(_random(rng, shape, 0.5))
        out.append((layer["name"], layer["type"], arrays))
    return out


def random_caffemodel(spec, path, seed=0, legacy_v1=False, extra=()):
    """Writes random weights for `spec` (plus `extra` layers) to `path`; returns the blobs."""
    from fcn_keras.weights.caffemodel import write_caffemodel

    layers = random_blobs(spec, seed, extra)
    write_caffemodel(path, layers, name=spec.name, legacy_v1=legacy_v1)
    return layers


# ----------------------------------------------------------------------------- OpenCV executor

def run_opencv(spec, caffemodel, image_rgb, blobs=("score",)):
    """Runs `spec` with `caffemodel` in OpenCV's Caffe importer on one RGB image (H, W, 3).

    The image is fed as the reference data layer does: BGR, minus the BGR mean, CHW.
    Returns {blob name: array (H', W', C)} for each requested blob (the output of the last
    layer writing it, e.g. after an in-place ReLU).
    """
    import cv2

    h, w = image_rgb.shape[:2]
    spec.input_hw = (h, w)
    with tempfile.TemporaryDirectory() as tmp:
        proto = os.path.join(tmp, "net.prototxt")
        with open(proto, "w") as f:
            f.write(spec.prototxt())
        net = cv2.dnn.readNetFromCaffe(proto, os.fspath(caffemodel))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    x = image_rgb[..., ::-1].astype(np.float64) - np.array(BGR_MEAN)
    net.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32))
    names = [spec.producer[b] for b in blobs]
    outs = net.forward(names)
    result = {}
    for b, o in zip(blobs, outs):
        o = np.asarray(o)[0]
        result[b] = o.reshape(1, 1, -1) if o.ndim == 1 else o.transpose(1, 2, 0)  # InnerProduct: (C,)
    return result


def rel_error(actual, expected):
    """max |actual - expected| / max |expected|."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))
