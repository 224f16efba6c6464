"""Data for FCNs: sources yielding (image uint8 HxWx3, mask uint8 HxW, 255 = ignore) pairs,
and one pipeline that turns any of them into batches.

    train = fcn_keras.data.pipeline(fcn_keras.data.shapes("train"), batch_size=8,
                                    crop_size=64, training=True)
    val = fcn_keras.data.pipeline(fcn_keras.data.shapes("val"))   # batch 1, whole images
    with fcn_keras.data.reraise_data_errors():   # a bad file: DataError naming it
        model.fit(train, validation_data=val)

Sources: `from_folders` (your own images and masks, index or colour masks), `from_directory`
(PASCAL VOC, SBD), `from_tfds` (TFDS segmentation sets), `shapes` (bundled synthetic set,
generated on the fly), and `from_spec` (the command line's text). Class statistics:
`class_frequencies`, `class_weights`, `survey`.
"""

import os

from fcn_keras._io import DownloadError
from fcn_keras.conventions import IGNORE_LABEL

from .directory import (VOC_CLASSES, detect_layout, from_directory, read_dataset_image, read_mask,
                        seg11valid_ids)
from .errors import DataError, reraise_data_errors
from .folders import from_folders
from .pipeline import MEAN_RGB, pipeline
from .source import Source, check_example
from .stats import class_frequencies, class_weights, survey
from .synthetic import SHAPES_CLASSES, shapes
from .tfds import TFDS_CONVENTIONS, from_tfds

__all__ = [
    "from_folders", "class_frequencies", "class_weights", "survey",
    "from_directory", "from_tfds", "shapes", "from_spec", "pipeline", "Source", "DataError",
    "reraise_data_errors", "check_example", "detect_layout", "read_dataset_image", "read_mask",
    "seg11valid_ids", "SHAPES_CLASSES", "VOC_CLASSES", "TFDS_CONVENTIONS", "MEAN_RGB",
    "IGNORE_LABEL", "DownloadError",
]

_SPECS = ("'shapes', 'voc:PATH', 'sbd:PATH', 'dir:PATH', 'tfds:NAME', 'folders:IMAGES,MASKS' "
          "or a VOC / SBD folder")


def from_spec(spec, split="train", **kwargs):
    """A source from a short text spec (what the command line's `--data` takes).

    Args:
        spec: `"shapes"` (the synthetic set); `"folders:IMAGES,MASKS"` (`from_folders`);
            `"voc:PATH"` or `"sbd:PATH"` (that
            layout); `"dir:PATH"` or a plain folder path (layout detected: PASCAL VOC or
            SBD, see `detect_layout`); `"tfds:NAME"` (`from_tfds`).
        split: the split to read.
        **kwargs: passed to the source's function.

    Returns:
        a `Source`.

    Raises:
        ValueError: `spec` is none of these, or a folder holds neither layout (the
            message names the folder and what was expected).
        FileNotFoundError: the folder of a `voc:`, `sbd:` or `dir:` spec is missing.
    """
    spec = os.fspath(spec)
    kind, _, arg = spec.partition(":")
    if spec == "shapes":
        return shapes(split, **kwargs)
    if kind == "folders" and arg:
        parts = arg.split(",")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"A folders spec must be 'folders:IMAGES,MASKS' (two folders, one "
                             f"comma). Received: data={spec!r}")
        return from_folders(parts[0], parts[1], split, **kwargs)
    if kind in ("voc", "sbd", "dir") and arg:
        return from_directory(arg, split, layout=None if kind == "dir" else kind, **kwargs)
    if kind == "tfds" and arg:
        return from_tfds(arg, split, **kwargs)
    if os.path.isdir(spec):
        return from_directory(spec, split, **kwargs)
    raise ValueError(f"The data spec must be {_SPECS}. Received: data={spec!r}"
                     + ("" if kind in ("shapes", "folders", "voc", "sbd", "dir", "tfds")
                        else " (no such folder)"))
