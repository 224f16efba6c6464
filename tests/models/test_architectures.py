"""Every architecture through the shared battery; parameter counts against the reference nets."""

import numpy as np
import pytest

import fcn_keras
from fcn_keras.models import architectures
from fcn_keras.models.heads import plan
from fcn_keras.models.registry import BACKBONES
from tests.conftest import check_architecture

ARCHS = architectures()


def test_registry_lists_ten_architectures():
    assert len(ARCHS) == 10
    assert ("vgg16", "8s-atonce") in ARCHS and ("alexnet", "8s-atonce") not in ARCHS


@pytest.mark.parametrize("backbone,head", ARCHS, ids=[f"{b}-{h}" for b, h in ARCHS])
def test_architecture(backbone, head, tmp_path):
    check_architecture(backbone, head, tmp_path)


def _conv(k, cin, cout, groups=1):
    return k * k * (cin // groups) * cout + cout


def _deconv(k, c):
    return k * k * c * c


# Counted by hand from the reference prototxts (voc-fcn*/train.prototxt, 21 classes).
VGG_CONVS = sum(_conv(3, a, b) for a, b in [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256),
                (256, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512),
                (512, 512)])
VGG_FC = _conv(7, 512, 4096) + _conv(1, 4096, 4096) + _conv(1, 4096, 21)
REFERENCE = {
    ("vgg16", "32s"): (VGG_FC + VGG_CONVS, _deconv(64, 21)),
    ("vgg16", "16s"): (VGG_FC + VGG_CONVS + _conv(1, 512, 21), _deconv(4, 21) + _deconv(32, 21)),
    ("vgg16", "8s"): (VGG_FC + VGG_CONVS + _conv(1, 512, 21) + _conv(1, 256, 21),
                      2 * _deconv(4, 21) + _deconv(16, 21)),
    ("alexnet", "32s"): (_conv(11, 3, 96) + _conv(5, 96, 256, 2) + _conv(3, 256, 384)
                         + _conv(3, 384, 384, 2) + _conv(3, 384, 256, 2) + _conv(6, 256, 4096)
                         + _conv(1, 4096, 4096) + _conv(1, 4096, 21), _deconv(63, 21)),
}
REFERENCE[("vgg16", "8s-atonce")] = REFERENCE[("vgg16", "8s")]


@pytest.mark.parametrize("backbone,head", sorted(REFERENCE))
def test_parameter_counts_equal_reference(backbone, head):
    model = fcn_keras.build(backbone, head, num_classes=21)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == REFERENCE[(backbone, head)]


# The README's table: (trainable, fixed) at full width with 21 classes, for every architecture.
DOCUMENTED = {
    ("vgg16", "32s"): (134_346_581, 1_806_336), ("vgg16", "16s"): (134_357_354, 458_640),
    ("vgg16", "8s"): (134_362_751, 127_008), ("vgg16", "8s-atonce"): (134_362_751, 127_008),
    ("alexnet", "32s"): (56_954_261, 1_750_329), ("alexnet", "16s"): (56_959_658, 427_770),
    ("alexnet", "8s"): (56_965_055, 107_163), ("googlenet", "32s"): (5_995_077, 1_750_329),
    ("googlenet", "16s"): (6_012_570, 427_770), ("googlenet", "8s"): (6_022_671, 107_163),
}


@pytest.mark.parametrize("backbone,head", ARCHS, ids=[f"{b}-{h}" for b, h in ARCHS])
def test_parameter_counts_as_documented(backbone, head):
    model = fcn_keras.build(backbone, head, num_classes=21)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == DOCUMENTED[(backbone, head)]
    assert all(w.path.split("/")[0].startswith("upscore") for w in model.non_trainable_weights)


def test_fcn8s_vgg16_has_134_5_million_parameters():
    assert fcn_keras.build("vgg16", "8s").count_params() == 134_489_759


@pytest.mark.parametrize("head,expected", [
    ("32s", [("up", "upscore", 64, 32), ("crop", 19)]),
    ("16s", [("up", "upscore2", 4, 2), ("fuse", "pool4", 5), ("up", "upscore16", 32, 16), ("crop", 27)]),
    ("8s", [("up", "upscore2", 4, 2), ("fuse", "pool4", 5), ("up", "upscore_pool4", 4, 2),
            ("fuse", "pool3", 9), ("up", "upscore8", 16, 8), ("crop", 31)]),
])
def test_vgg16_geometry_is_the_reference(head, expected):
    assert plan(BACKBONES["vgg16"]["coords"], head) == expected


def test_alexnet_32s_geometry_is_the_reference():
    assert plan(BACKBONES["alexnet"]["coords"], "32s") == [("up", "upscore", 63, 32), ("crop", 18)]


def test_atonce_scales_skips():
    model = fcn_keras.build("vgg16", "8s-atonce", width=0.125)
    assert model.get_layer("scale_pool4").scale == 0.01
    assert model.get_layer("scale_pool3").scale == 0.0001
