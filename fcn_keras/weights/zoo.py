"""The zoo as data: every pretrained entry, where its file comes from and what it scores.

Each entry says which architecture it fits (`build(backbone, head, num_classes)`, which
`build(weights=name)` fills in), its parameter count (`num_params`, checked against the
built model by the tests), its classes in output order, the source file (URLs, file name, the published checksum and
where that checksum was published), the preprocessing the model expects, the metrics the
authors report, and what the converter does with the file (`rename`, `ignore`). Entries
whose network does not fit an fcn_keras architecture are listed in `UNSUPPORTED` with
the reason. `fcn-keras zoo`, `fcn_keras.list_models()` and the generated zoo/ folder read this module.

Checksums are only ever the published ones (never computed here): the BVLC model-zoo
readmes (BVLC/caffe models/*/readme.md), Keras' own hash (keras/src/applications/vgg16.py),
and OpenCV's test-data list (opencv/opencv_extra testdata/dnn/download_models.py), which
publishes sha1 sums for fcn8s-heavy-pascal and fcn32s-heavy-pascal. For the other FCN
releases no checksum is published anywhere we could find; those entries have
`checksum=None` and are not downloaded unless the caller passes a hash (see
`fcn_keras.weights.fetch`), or the user puts the file in the cache themselves.
"""

import copy

from fcn_keras.conventions import CAFFE_BGR_MEAN, VOC_CLASSES
from fcn_keras.models import registry

# data/pascal-context/classes-59.txt of the reference: 0 background + the 59 classes.
PASCAL_CONTEXT_CLASSES = VOC_CLASSES + (
    "bag", "bed", "bench", "book", "building", "cabinet", "ceiling", "clothes", "computer",
    "cup", "door", "fence", "floor", "flower", "food", "grass", "ground", "keyboard", "light",
    "mountain", "mouse", "curtain", "platform", "sign", "plate", "road", "rock", "shelves",
    "sidewalk", "sky", "snow", "bedcloth", "track", "tree", "truck", "wall", "water", "window",
    "wood",
)
# data/nyud/classes.txt (labels 1..40, output channel = label - 1; 0 is void).
NYUD_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refridgerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)
# data/sift-flow/classes.txt, semantic labels 1..33 (output channel = label - 1).
SIFTFLOW_CLASSES = (
    "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow", "crosswalk",
    "desert", "door", "fence", "field", "grass", "moon", "mountain", "person", "plant", "pole",
    "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky", "staircase",
    "streetlight", "sun", "tree", "window",
)

CAFFE_PREPROCESSING = {
    "input": "RGB 0..255; the model converts to BGR and subtracts the mean itself",
    "bgr_mean": CAFFE_BGR_MEAN,
    "scale": 1.0,
}
REFERENCE = "https://github.com/shelhamer/fcn.berkeleyvision.org"
BERKELEY = "dl.caffe.berkeleyvision.org"
OPENCV_SUMS = "opencv/opencv_extra testdata/dnn/download_models.py"


def _caffe_urls(fname, host=BERKELEY):
    # The authors publish http:// links. https is tried first; the checksum (when one is
    # published) is what makes either trustworthy.
    return (f"https://{host}/{fname}", f"http://{host}/{fname}")


def _fcn(name, backbone, head, classes, dataset, fname, *, num_params, checksum=None, checksum_source=None,
         metrics=None, notes="", rename=None, ignore=(), folder=None):
    return {
        "name": name,
        "kind": "fcn",
        "backbone": backbone,
        "head": head,
        "num_classes": len(classes),
        "classes": tuple(classes),
        "num_params": num_params,
        "dataset": dataset,
        "source": {
            "format": "caffemodel",
            "urls": _caffe_urls(fname),
            "filename": fname,
            "checksum": checksum,
            "checksum_source": checksum_source,
            "reference": f"{REFERENCE}/tree/master/{folder or name}",
        },
        "preprocessing": dict(CAFFE_PREPROCESSING),
        "metrics": metrics or {},
        "rename": dict(rename or {}),
        "ignore": tuple(ignore),
        "notes": notes,
    }


# The SIFT Flow releases (32s, 16s, 8s) have two decoders on one trunk: `<layer>_sem` (33
# semantic classes) and `<layer>_geo` (3 geometric classes), for every decoder layer of those
# three heads (score_fr, upscore, upscore2, upscore16, score_pool4, upscore_pool4, ...).
_SIFT_LAYERS = tuple(dict.fromkeys(layer for head in registry.staged_heads() for layer in registry.head_layers(head)))
_SIFT_RENAME = {f"{layer}_sem": layer for layer in _SIFT_LAYERS}
_SIFT_IGNORE = tuple(f"{layer}_geo" for layer in _SIFT_LAYERS)
_SIFT_NOTE = ("The release is two-headed (33 semantic + 3 geometric classes, one VGG16 trunk). "
              "fcn_keras loads the trunk and the semantic head (layers *_sem renamed to the "
              "single-head names) and drops the geometric head (*_geo). The reference README notes "
              "its semantic evaluation is 'not quite right' (missing classes).")
_NO_SUM = "No checksum is published for this file (reference repo, BVLC zoo and OpenCV list none)."

ENTRIES = {}


def _add(entry):
    ENTRIES[entry["name"]] = entry


# --- PASCAL VOC (reference README: mean IU on seg11valid; FCN-8s also on seg12test) ---
_add(_fcn("voc-fcn32s", "vgg16", "32s", VOC_CLASSES, "PASCAL VOC 2011 (+SBD)", "fcn32s-heavy-pascal.caffemodel",
          num_params=136_152_917,
          checksum="sha1:05eb922d7829c39448f57e5ab9d8cd75d6c0be6d", checksum_source=OPENCV_SUMS,
          metrics={"seg11valid": {"mean_iu": 63.6}}))
_add(_fcn("voc-fcn16s", "vgg16", "16s", VOC_CLASSES, "PASCAL VOC 2011 (+SBD)", "fcn16s-heavy-pascal.caffemodel",
          num_params=134_815_994,
          metrics={"seg11valid": {"mean_iu": 65.0}}, notes=_NO_SUM))
_add(_fcn("voc-fcn8s", "vgg16", "8s", VOC_CLASSES, "PASCAL VOC 2011 (+SBD)", "fcn8s-heavy-pascal.caffemodel",
          num_params=134_489_759,
          checksum="sha1:c449ea74dd7d83751d1357d6a8c323fcf4038962", checksum_source=OPENCV_SUMS,
          metrics={"seg11valid": {"mean_iu": 65.5}, "seg12test": {"mean_iu": 67.2}}))
_add(_fcn("voc-fcn8s-atonce", "vgg16", "8s-atonce", VOC_CLASSES, "PASCAL VOC 2011 (+SBD)",
          "fcn8s-atonce-pascal.caffemodel", num_params=134_489_759, metrics={"seg11valid": {"mean_iu": 65.4}},
          notes=_NO_SUM))
_add(_fcn("voc-fcn-alexnet", "alexnet", "32s", VOC_CLASSES, "PASCAL VOC 2011 (+SBD)",
          "fcn-alexnet-pascal.caffemodel", num_params=58_704_590, metrics={"seg11valid": {"mean_iu": 48.0}},
          notes="CaffeNet layer order (pool before norm). " + _NO_SUM))

# --- PASCAL-Context (59 classes + background = 60 outputs) ---
for _head, _params in (("32s", 149_251_964), ("16s", 138_281_144), ("8s", 135_589_364)):
    _add(_fcn(f"pascalcontext-fcn{_head}", "vgg16", _head, PASCAL_CONTEXT_CLASSES, "PASCAL-Context (59 + background)",
              f"pascalcontext-fcn{_head}-heavy.caffemodel", num_params=_params,
              notes="The reference README publishes no score for this release (the PAMI paper reports "
                    "PASCAL-Context results in its tables). " + _NO_SUM))

# --- NYUDv2 (40 classes): only the colour (RGB) net has an RGB input ---
_add(_fcn("nyud-fcn32s-color", "vgg16", "32s", NYUD_CLASSES, "NYUDv2 (40 classes)",
          "nyud-fcn32s-color-heavy.caffemodel", num_params=140_978_024,
          notes="Colour input (BGR, the usual mean). The reference README publishes no score for this "
                "release. " + _NO_SUM))

# --- SIFT Flow: the semantic head of the two-headed nets ---
for _head, _params in (("32s", 138_856_289), ("16s", 135_545_234), ("8s", 134_734_787)):
    _add(_fcn(f"siftflow-fcn{_head}", "vgg16", _head, SIFTFLOW_CLASSES, "SIFT Flow (33 semantic classes)",
              f"siftflow-fcn{_head}-heavy.caffemodel", num_params=_params, rename=_SIFT_RENAME,
              ignore=_SIFT_IGNORE,
              notes=_SIFT_NOTE + " " + _NO_SUM))

# --- ImageNet backbones (weights="imagenet") ---
IMAGENET = {
    "vgg16": {
        "name": "vgg16-imagenet",
        "kind": "backbone",
        "backbone": "vgg16",
        "head": None,
        "num_classes": None,
        "classes": (),
        "num_params": 134_260_544,
        "dataset": "ImageNet (ILSVRC-2012)",
        "source": {
            "format": "keras-h5",
            "urls": ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                     "vgg16_weights_tf_dim_ordering_tf_kernels.h5",),
            "filename": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "checksum": "md5:64373286793e3c8b2b4e3219cbf3544b",
            "checksum_source": "keras/src/applications/vgg16.py (keras.applications.VGG16)",
            "reference": "https://keras.io/api/applications/vgg/",
        },
        "preprocessing": dict(CAFFE_PREPROCESSING),
        "metrics": {},
        "rename": {},
        "ignore": ("predictions",),
        "notes": ("Keras' own VGG16 file (converted from the VGG team's Caffe model, same BGR/mean "
                  "input); shared with keras.applications' cache. fc1/fc2 become the 7x7 fc6 and 1x1 fc7 "
                  "convolutions; the 1000-class 'predictions' layer is not used."),
    },
    "alexnet": {
        "name": "alexnet-imagenet",
        "kind": "backbone",
        "backbone": "alexnet",
        "head": None,
        "num_classes": None,
        "classes": (),
        "num_params": 56_868_224,
        "dataset": "ImageNet (ILSVRC-2012)",
        "source": {
            "format": "caffemodel",
            "urls": _caffe_urls("bvlc_reference_caffenet.caffemodel"),
            "filename": "bvlc_reference_caffenet.caffemodel",
            "checksum": "sha1:4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
            "checksum_source": "BVLC/caffe models/bvlc_reference_caffenet/readme.md",
            "reference": "https://github.com/BVLC/caffe/tree/master/models/bvlc_reference_caffenet",
        },
        "preprocessing": dict(CAFFE_PREPROCESSING),
        "metrics": {"ilsvrc12-val-center-crop": {"top1": 57.4, "top5": 80.4}},
        "rename": {},
        "ignore": ("fc8",),
        "notes": ("BVLC CaffeNet, the AlexNet variant with pooling before normalisation: the layer order "
                  "of fcn_keras' AlexNet and of the reference FCN-AlexNet (whose ilsvrc-nets/README.md "
                  "names CaffeNet as its base). bvlc_alexnet (norm before pool) is listed as unsupported."),
    },
    "googlenet": {
        "name": "googlenet-imagenet",
        "kind": "backbone",
        "backbone": "googlenet",
        "head": None,
        "num_classes": None,
        "classes": (),
        "num_params": 5_973_552,
        "dataset": "ImageNet (ILSVRC-2012)",
        "source": {
            "format": "caffemodel",
            "urls": _caffe_urls("bvlc_googlenet.caffemodel"),
            "filename": "bvlc_googlenet.caffemodel",
            "checksum": "sha1:405fc5acd08a3bb12de8ee5e23a96bec22f08204",
            "checksum_source": "BVLC/caffe models/bvlc_googlenet/readme.md",
            "reference": "https://github.com/BVLC/caffe/tree/master/models/bvlc_googlenet",
        },
        "preprocessing": dict(CAFFE_PREPROCESSING),
        "metrics": {"ilsvrc12-val-center-crop": {"top1": 68.7, "top5": 88.9}},
        "rename": {},
        "ignore": ("loss1/", "loss2/", "loss3/classifier"),
        "notes": ("BVLC GoogLeNet. The FCN uses it up to inception_5b; the auxiliary classifiers "
                  "(loss1/*, loss2/*) and loss3/classifier are not used."),
    },
}
for _entry in IMAGENET.values():
    ENTRIES[_entry["name"]] = _entry

UNSUPPORTED = {
    "bvlc_alexnet": "BVLC AlexNet normalises before pooling (conv1 -> norm1 -> pool1); fcn_keras' AlexNet and "
                    "the reference FCN-AlexNet use CaffeNet's order (pool -> norm). Its blobs would load but "
                    "compute a different function; use alexnet-imagenet (CaffeNet) instead.",
    "nyud-fcn32s-hha": "HHA (depth-derived) input, not RGB: fcn_keras models take RGB images.",
    "nyud-fcn32s-color-d": "4-channel colour + depth input (early fusion): fcn_keras models take 3-channel RGB.",
    "nyud-fcn32s-color-hha": "Late fusion of two VGG16 streams (colour and HHA): not an fcn_keras architecture.",
    "fcn-googlenet": "Never released by the authors ('coming soon' in the reference README); the CVPR paper "
                     "reports 42.5 mean IU on seg11valid for it.",
}


METRIC_LABELS = {"mean_iu": "mean IU", "top1": "top-1 %", "top5": "top-5 %"}


def two_headed(layer_names):
    """True for the layer names of a two-headed SIFT Flow caffemodel (`score_fr_sem`, no `score_fr`)."""
    names = set(layer_names)
    return "score_fr_sem" in names and "score_fr" not in names


def score_layer(layer_names):
    """The layer whose output count is the class count: `score_fr`, or `score_fr_sem` (SIFT Flow)."""
    return "score_fr_sem" if two_headed(layer_names) else "score_fr"


def get(name):
    """The entry `name` (a deep copy).

    Raises:
        ValueError: an unknown name (with the reason when it is a known unsupported release),
            listing the names.
    """
    if name not in ENTRIES:
        hint = f" ({UNSUPPORTED[name]})" if name in UNSUPPORTED else ""
        raise ValueError(f"Unknown zoo entry{hint}. Expected one of {sorted(ENTRIES)}. Received: name={name!r}")
    return copy.deepcopy(ENTRIES[name])


def imagenet_entry(backbone):
    """The ImageNet entry of `backbone` (a deep copy); ValueError when there is none."""
    if backbone not in IMAGENET:
        raise ValueError(
            f"No ImageNet weights for this backbone. Expected one of {sorted(IMAGENET)}. Received: backbone={backbone!r}")
    return copy.deepcopy(IMAGENET[backbone])


def list_models():
    """One dict per zoo entry (a copy): name, kind, backbone, head, num_classes, classes,
    num_params, dataset, source (urls, filename, checksum, checksum_source, reference),
    preprocessing, metrics, rename, ignore, notes."""
    return [copy.deepcopy(ENTRIES[name]) for name in ENTRIES]


def row(entry):
    """One line of the zoo table as text fields: name, architecture, classes, params (int),
    metrics, checksum (shortened) and file."""
    checksum = entry["source"]["checksum"]
    metrics = "; ".join(f"{split}: " + ", ".join(f"{METRIC_LABELS.get(k, k)} {v}" for k, v in values.items())
                        for split, values in entry["metrics"].items())
    return {
        "name": entry["name"],
        "architecture": (f"{entry['backbone']} backbone" if entry["kind"] == "backbone"
                         else f"{entry['backbone']} FCN-{entry['head']}"),
        "classes": entry["num_classes"] or "-",
        "params": entry["num_params"],
        "metrics": metrics or "not published",
        "checksum": f"{checksum[:14]}…" if checksum else "none published",
        "file": entry["source"]["filename"],
    }


def rows():
    """`row` of every entry, in zoo order (the table of `fcn-keras zoo` and zoo/README.md)."""
    return [row(ENTRIES[name]) for name in ENTRIES]
