"""The one registry: backbone names -> builder, coordinate maps, supported heads, facts.

`fcn_keras.build()`, `build_backbone()`, the command line, the training recipes, the zoo
and the generated docs all read it: adding a backbone means adding an entry here.
"""

from fcn_keras.models.backbones import alexnet, googlenet, vgg

BACKBONES = {
    "vgg16": {
        "builder": vgg.vgg16,
        "coords": vgg.COORDS,
        "heads": ("32s", "16s", "8s", "8s-atonce"),
        "classifier_pad": 1,
    },
    "alexnet": {
        "builder": alexnet.alexnet,
        "coords": alexnet.COORDS,
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 0,
    },
    "googlenet": {
        "builder": googlenet.googlenet,
        "coords": googlenet.COORDS,
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 3,
    },
}


def check(backbone, head=None):
    """Validates a backbone name and, when given, a head name for it.

    Raises:
        ValueError: an unknown name, listing the choices and the value received.
    """
    if backbone not in BACKBONES:
        raise ValueError(
            f"Unknown backbone. Expected one of {sorted(BACKBONES)}. Received: backbone={backbone!r}")
    if head is not None and head not in BACKBONES[backbone]["heads"]:
        raise ValueError(
            f"Unknown head for backbone {backbone!r}. Expected one of "
            f"{list(BACKBONES[backbone]['heads'])}. Received: head={head!r}")


def heads(backbone=None):
    """The head names of `backbone`, or of all backbones (in registry order) when None."""
    if backbone is not None:
        check(backbone)
        return list(BACKBONES[backbone]["heads"])
    return list(dict.fromkeys(h for spec in BACKBONES.values() for h in spec["heads"]))


def architectures():
    """All (backbone, head) pairs, in registry order."""
    return [(b, h) for b, spec in BACKBONES.items() for h in spec["heads"]]
