"""The one registry: backbone names -> builder, coordinate maps, supported heads, facts.

`build()`, `build_backbone()`, the CLI and the zoo table all read it.
"""

from fcn_keras.models.backbones import alexnet, googlenet, vgg

BACKBONES = {
    "vgg16": {
        "builder": vgg.vgg16,
        "coords": vgg.COORDS,
        "heads": ("32s", "16s", "8s", "8s-atonce"),
        "classifier_pad": 1,
        "description": "VGG16 (VGG ILSVRC-16 layers), reference nets voc-fcn32s/16s/8s/8s-atonce",
    },
    "alexnet": {
        "builder": alexnet.alexnet,
        "coords": alexnet.COORDS,
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 0,
        "description": "AlexNet (CaffeNet order: pool, then LRN), reference net voc-fcn-alexnet (32s)",
    },
    "googlenet": {
        "builder": googlenet.googlenet,
        "coords": googlenet.COORDS,
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 3,
        "description": "GoogLeNet (BVLC inception v1), no released reference net",
    },
}


def check(backbone, head=None):
    """Validates names; raises ValueError listing the choices."""
    if backbone not in BACKBONES:
        raise ValueError(
            f"Unknown backbone. Expected one of {sorted(BACKBONES)}. Received: backbone={backbone!r}")
    if head is not None and head not in BACKBONES[backbone]["heads"]:
        raise ValueError(
            f"Unknown head for backbone {backbone!r}. Expected one of "
            f"{list(BACKBONES[backbone]['heads'])}. Received: head={head!r}")


def architectures():
    """All (backbone, head) pairs, in registry order."""
    return [(b, h) for b, spec in BACKBONES.items() for h in spec["heads"]]
