"""Data for FCNs: sources yielding (image uint8 HxWx3, mask uint8 HxW, 255 = ignore) pairs,
and one pipeline that turns any of them into batches.

    train = fcn_keras.data.pipeline(fcn_keras.data.shapes("train"), batch_size=8,
                                    crop_size=64, training=True)
    val = fcn_keras.data.pipeline(fcn_keras.data.shapes("val"))   # batch 1, whole images

Sources: :func:`from_directory` (PASCAL VOC, SBD), :func:`from_tfds` (TFDS segmentation
sets), :func:`shapes` (bundled synthetic set, generated on the fly).
"""

from .directory import VOC_CLASSES, from_directory, read_image, read_mask, seg11valid_ids
from .pipeline import MEAN_RGB, pipeline
from fcn_keras.conventions import IGNORE_LABEL

from .source import DataError, Source, check_example
from .synthetic import SHAPES_CLASSES, shapes
from .tfds import TFDS_CONVENTIONS, from_tfds

__all__ = [
    "from_directory", "from_tfds", "shapes", "pipeline", "Source", "DataError",
    "check_example", "read_image", "read_mask", "seg11valid_ids",
    "SHAPES_CLASSES", "VOC_CLASSES", "TFDS_CONVENTIONS", "MEAN_RGB", "IGNORE_LABEL",
]


def from_spec(spec, split="train", **kwargs):
    """A source from a short text spec (what the command line takes):

    * ``"shapes"`` - the synthetic set (``kwargs`` go to :func:`shapes`);
    * ``"voc:PATH"``, ``"sbd:PATH"``, ``"dir:PATH"`` (layout detected) - :func:`from_directory`;
    * ``"tfds:NAME"`` - :func:`from_tfds`.
    """
    spec = str(spec)
    kind, _, arg = spec.partition(":")
    if kind == "shapes" and not arg:
        return shapes(split, **kwargs)
    if kind in ("voc", "sbd", "dir") and arg:
        return from_directory(arg, split, layout=None if kind == "dir" else kind, **kwargs)
    if kind == "tfds" and arg:
        return from_tfds(arg, split, **kwargs)
    raise ValueError(f"data spec must be 'shapes', 'voc:PATH', 'sbd:PATH', 'dir:PATH' or "
                     f"'tfds:NAME', got {spec!r}")


__all__.append("from_spec")
