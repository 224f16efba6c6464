"""The one registry: backbone names -> builder, coordinate maps, supported heads, facts; and
the heads (decoders) as data, `HEADS`.

`fcn_keras.build()`, `build_backbone()`, the decoders (`heads.py`), the command line, the
training recipes, the zoo and the generated docs all read it: adding a backbone or a head
means adding an entry here.

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
        "first_channels": 64,  # the first convolution's at width 1 (a .keras file's width is checked by it)
    },
    "alexnet": {
        "module": "fcn_keras.models.backbones.alexnet",
        "function": "alexnet",
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 0,
        "first_channels": 96,
    },
    "googlenet": {
        "module": "fcn_keras.models.backbones.googlenet",
        "function": "googlenet",
        "heads": ("32s", "16s", "8s"),
        "classifier_pad": 3,
        "first_channels": 64,
    },
}

# The decoders of the paper (Long et al.; the reference nets voc-fcn32s/16s/8s/8s-atonce), in
# order, each as data:
#   skips        the backbone taps fused, coarse to fine (each scored by a layer `score_<tap>`;
#                the coarsest, fc7, by `score_fr`)
#   upsample     the names of the transposed convolutions, one per step (len(skips) + 1)
#   tap_scale    fixed factors applied to taps before scoring (at-once: `scale_<tap>` layers)
#   paper_lr     the paper's fixed rate for Caffe's summed loss (voc-fcn*/solver.prototxt)
#   staged_from  the head the staged schedule initialises it from (None: it starts a schedule)
#   at_once      trained in one go by the "at-once" schedule
#   model_id     the head in model names (`fcn<model_id>_<backbone>`)
HEADS = {
    "32s": {"skips": (), "upsample": ("upscore",), "tap_scale": {}, "paper_lr": 1e-10,
            "staged_from": None, "at_once": False, "model_id": "32s"},
    "16s": {"skips": ("pool4",), "upsample": ("upscore2", "upscore16"), "tap_scale": {}, "paper_lr": 1e-12,
            "staged_from": "32s", "at_once": False, "model_id": "16s"},
    "8s": {"skips": ("pool4", "pool3"), "upsample": ("upscore2", "upscore_pool4", "upscore8"), "tap_scale": {},
           "paper_lr": 1e-14, "staged_from": "16s", "at_once": False, "model_id": "8s"},
    "8s-atonce": {"skips": ("pool4", "pool3"), "upsample": ("upscore2", "upscore_pool4", "upscore8"),
                  "tap_scale": {"pool4": 0.01, "pool3": 0.0001}, "paper_lr": 1e-10,
                  "staged_from": None, "at_once": True, "model_id": "8s_atonce"},
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
    """The head names of `backbone`, or every head of `HEADS` (in its order) when None."""
    if backbone is not None:
        check(backbone)
        return list(BACKBONES[backbone]["heads"])
    return list(HEADS)


def head(name):
    """The `HEADS` entry of a head name.

    Raises:
        ValueError: an unknown name, listing the choices.
    """
    if name not in HEADS:
        raise ValueError(f"Unknown head. Expected one of {list(HEADS)}. Received: head={name!r}")
    return HEADS[name]


def head_layers(name):
    """The decoder layers of head `name` that hold weights, in the net's order.

    E.g. "8s": score_fr, upscore2, score_pool4, upscore_pool4, score_pool3, upscore8 (the
    names of the reference prototxts, and of the Keras layers).
    """
    spec = head(name)
    layers = ["score_fr"]
    for i, up in enumerate(spec["upsample"]):
        layers.append(up)
        if i < len(spec["skips"]):
            layers.append(f"score_{spec['skips'][i]}")
    return layers


def staged_heads():
    """The heads of the staged schedule, in training order (32s, 16s, 8s): each initialised
    from the one before (`staged_from`)."""
    chain = [h for h, s in HEADS.items()
             if s["staged_from"] is None and any(t["staged_from"] == h for t in HEADS.values())]
    while True:
        following = [h for h, s in HEADS.items() if s["staged_from"] == chain[-1]]
        if not following:
            return chain
        chain.append(following[0])


def at_once_head(backbone):
    """The head the "at-once" schedule trains for `backbone`: its at-once head (VGG16's
    8s-atonce), else the last staged head (8s)."""
    return next((h for h in heads(backbone) if HEADS[h]["at_once"]), staged_heads()[-1])


def architectures():
    """All (backbone, head) pairs, in registry order."""
    return [(b, h) for b, spec in BACKBONES.items() for h in spec["heads"]]
