"""Fidelity against an independent executor: OpenCV's Caffe importer.

For each reference net we write its prototxt, fill it with random weights into a
.caffemodel, run prototxt + caffemodel in OpenCV, load the same file with
`build(..., weights=path)` and compare: relative error <= 1e-4 (max abs difference over
max abs reference value). Deconvolution kernels are random too, so a swapped Cin/Cout or
a flipped kernel would show; input sizes are odd so ceil-mode pooling and crops matter.
"""

import keras
import numpy as np
import pytest

import fcn_keras
from tests.reference import caffe_nets

TOL = 1e-4


def _keras(model, image):
    out = model(image[None].astype("float32"))
    if isinstance(out, dict):
        return {k: keras.ops.convert_to_numpy(v)[0] for k, v in out.items()}
    return keras.ops.convert_to_numpy(out)[0]


@pytest.mark.parametrize("head", ["32s", "16s", "8s", "8s-atonce"])
def test_vgg16_fcn_matches_opencv(head, tmp_path, rgb):
    spec = caffe_nets.vgg16_fcn(head, num_classes=21, width=0.125)
    path = tmp_path / f"voc-fcn{head}.caffemodel"
    caffe_nets.random_caffemodel(spec, path, seed=1)
    image = rgb(61, 75)
    expected = caffe_nets.run_opencv(spec, path, image)["score"]
    model = fcn_keras.build("vgg16", head, num_classes=21, width=0.125, weights=str(path))
    actual = _keras(model, image)
    assert actual.shape == expected.shape == (61, 75, 21)
    assert np.abs(expected).max() > 1.0  # a real signal, not zeros
    assert caffe_nets.rel_error(actual, expected) <= TOL


@pytest.mark.slow  # full-width FCN-8s VGG16 in OpenCV and Keras
def test_vgg16_fcn8s_full_width_matches_opencv(tmp_path, rgb):
    """The released FCN-8s architecture at full size (134 M parameters)."""
    spec = caffe_nets.vgg16_fcn("8s", num_classes=21)
    path = tmp_path / "fcn8s.caffemodel"
    caffe_nets.random_caffemodel(spec, path, seed=2)
    image = rgb(64, 64)
    expected = caffe_nets.run_opencv(spec, path, image)["score"]
    model = fcn_keras.build("vgg16", "8s", weights=path)  # a PathLike works too
    # convs 14,714,688 + fc6 102,764,544 + fc7 16,781,312 + score layers 102,207 + deconvs 127,008
    assert model.count_params() == 134_489_759
    actual = _keras(model, image)
    assert caffe_nets.rel_error(actual, expected) <= TOL


@pytest.mark.parametrize("width", [0.25])
def test_fcn_alexnet_matches_opencv(width, tmp_path, rgb):
    spec = caffe_nets.alexnet_fcn(num_classes=21, width=width)
    path = tmp_path / "fcn-alexnet.caffemodel"
    caffe_nets.random_caffemodel(spec, path, seed=3)
    image = rgb(67, 59)
    expected = caffe_nets.run_opencv(spec, path, image)["score"]
    model = fcn_keras.build("alexnet", "32s", num_classes=21, width=width, weights=str(path))
    actual = _keras(model, image)
    assert actual.shape == (67, 59, 21)
    assert caffe_nets.rel_error(actual, expected) <= TOL


# ImageNet classifiers: the backbone with the classifier's own first pad gives the
# classifier's feature maps; compare the three taps (fc7 is the 1x1 map of fc7 + ReLU).
CLASSIFIERS = {
    # name: (spec factory, backbone, width, size, caffe blobs for pool3/pool4/fc7, writer options)
    "vgg16-v1": (caffe_nets.vgg16_classifier, "vgg16", 0.25, 224, ("pool3", "pool4", "fc7"),
                 {"legacy_v1": True}),
    "caffenet": (caffe_nets.caffenet_classifier, "alexnet", 0.5, 227, ("conv2", "conv5", "fc7"), {}),
    "googlenet": (caffe_nets.googlenet_classifier, "googlenet", 1.0, 224,
                  ("inception_3b/output", "inception_4e/output", "inception_5b/output"),
                  {"extra": caffe_nets.GOOGLENET_AUX}),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if CLASSIFIERS[n][2] == 1.0 else n
                                  for n in sorted(CLASSIFIERS)])  # slow: full width
def test_imagenet_classifier_matches_opencv(name, tmp_path, rgb):
    factory, backbone, width, size, blobs, options = CLASSIFIERS[name]
    spec = factory(width=width, size=size)
    path = tmp_path / f"{name}.caffemodel"
    caffe_nets.random_caffemodel(spec, path, seed=4, **options)
    image = rgb(size, size)
    expected = caffe_nets.run_opencv(spec, path, image, blobs=blobs)
    from fcn_keras.models import registry

    model = fcn_keras.build_backbone(backbone, width=width, first_pad=registry.BACKBONES[backbone]["classifier_pad"])
    fcn_keras.weights.load(model, str(path))
    actual = _keras(model, image)
    for tap, blob in zip(("pool3", "pool4", "fc7"), blobs):
        assert actual[tap].shape == expected[blob].shape, (tap, blob)
        assert caffe_nets.rel_error(actual[tap], expected[blob]) <= TOL, (tap, blob)


def test_imagenet_caffemodel_into_fcn_keeps_decoder_init(tmp_path, rgb):
    """A backbone (ImageNet) file loads the backbone of an FCN and leaves the decoder alone:
    score layers stay zero and deconvolutions bilinear."""
    spec = caffe_nets.googlenet_classifier(width=0.125, size=224)
    path = tmp_path / "googlenet.caffemodel"
    blobs = dict((n, a) for n, _, a in caffe_nets.random_caffemodel(spec, path, seed=5, extra=caffe_nets.GOOGLENET_AUX))
    model = fcn_keras.build("googlenet", "8s", num_classes=5, width=0.125, weights=str(path))
    kernel = model.get_layer("inception_4e_3x3").get_weights()[0]
    np.testing.assert_array_equal(kernel, blobs["inception_4e/3x3"][0].transpose(2, 3, 1, 0))
    assert not np.any(model.get_layer("score_fr").get_weights()[0])
    from fcn_keras.models.layers import bilinear_kernel

    up = model.get_layer("upscore8").get_weights()[0]
    np.testing.assert_array_equal(up, bilinear_kernel(up.shape[0], 5))
