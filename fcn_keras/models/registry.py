"""The one registry: backbone names -> builder, coordinate maps, supported heads, facts.

`fcn_keras.build()`, `build_backbone()`, the command line, the training recipes, the zoo
and the generated docs all read it: adding a backbone means adding an entry here.

Plain data: this module imports no Keras (the command line reads its names before it
imports TensorFlow); `builder(name)` and `coords(name)` import the backbone's module.
"""

import importlib

BACKBONES = {
    "vgg16": {
        "module": "fcn_keras.models.backbones.vgg",
        "function": "vgg16",
        "heads": ("32s", "16s", "8s", "8s-atonce"),
        "classifier_pad": 1,
    },
    "alexnet": {
        "module": "fcn_keras.models.backbones.alexnet",
        "function": "alexnet",
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 0,
    },
    "googlenet": {
        "module": "fcn_keras.models.backbones.googlenet",
        "function": "googlenet",
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 3,
    },
}

# The training schedules of `fcn_keras.training.run_recipe` (besides a single head name).
SCHEDULES = ("staged", "at-once")


def check(backbone, head=None):
    """Validates a backbone name and, when given, a head name for it.

    Raises:
        ValueError: an unknown name, listing the choices and the value received.
    """
    if backbone not in BACKBONES:
        raise ValueError(
            f"Unknown backbone. Expected one of {list(BACKBONES)}. Received: backbone={backbone!r}")
    if head is not None and head not in BACKBONES[backbone]["heads"]:
        raise ValueError(
            f"Unknown head for backbone {backbone!r}. Expected one of "
            f"{list(BACKBONES[backbone]['heads'])}. Received: head={head!r}")


def _module(backbone):
    check(backbone)
    return importlib.import_module(BACKBONES[backbone]["module"])


def builder(backbone):
    """The function `f(x, width=..., **kwargs) -> taps` that builds `backbone` (imports Keras)."""
    return getattr(_module(backbone), BACKBONES[backbone]["function"])


def coords(backbone):
    """The coordinate maps {"pool3"|"pool4"|"fc7": (scale, shift)} of `backbone`'s taps."""
    return _module(backbone).COORDS


def backbones():
    """The backbone names, in registry order."""
    return list(BACKBONES)


def heads(backbone=None):
    """The head names of `backbone`, or of all backbones (in registry order) when None."""
    if backbone is not None:
        check(backbone)
        return list(BACKBONES[backbone]["heads"])
    return list(dict.fromkeys(h for spec in BACKBONES.values() for h in spec["heads"]))


def architectures():
    """All (backbone, head) pairs, in registry order."""
    return [(b, h) for b, spec in BACKBONES.items() for h in spec["heads"]]
