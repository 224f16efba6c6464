"""Sources read from files: the PASCAL VOC layout and the SBD (Hariharan et al.) layout.

VOC (`VOCdevkit/VOC2012` or `VOC2011`)::

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png          palette PNG: index = class, 255 = void
    root/ImageSets/Segmentation/<split>.txt  one id per line

SBD (`benchmark_RELEASE/dataset`)::

    root/img/<id>.jpg
    root/cls/<id>.mat                        GTcls.Segmentation: uint8 class map (no void)
    root/<split>.txt                         train.txt (8498 ids), val.txt (2857 ids)

The paper trains on SBD `train` and scores on `seg11valid`, the 736 VOC2011 val images
that are not in SBD train (`fcn_keras/data/seg11valid.txt`, from the authors'
repository). `split="seg11valid"` works on any VOC tree that holds those images, and
`exclude="seg11valid"` removes them from any split.
"""

from __future__ import annotations

import os
import warnings
import weakref
from importlib import resources

import numpy as np

from fcn_keras.conventions import DEFAULT_NUM_CLASSES, VOC_CLASSES
from fcn_keras.images import MAX_PIXELS

from .source import DataError, Source, check_example, python_loader


def seg11valid_ids():
    """The paper's `seg11valid` split: VOC2011 val minus SBD train.

    Returns:
        the 736 image ids (str, sorted), as listed in `fcn_keras/data/seg11valid.txt`.
    """
    text = resources.files("fcn_keras.data").joinpath("seg11valid.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_ids(path):
    with open(path) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    for n, i in enumerate(ids, 1):
        check_id(i, f"{path}: id {n}")
    return ids


def check_id(example_id, where):
    """Refuses an example id that would name a file outside the data set's folders.

    Args:
        example_id: one id of a split file (a base name such as "2007_000032").
        where: the split file and line, for the message.

    Raises:
        DataError: the id is absolute, holds a path separator, "..", or a NUL byte.
    """
    seps = [s for s in (os.sep, os.altsep, "/", "\\") if s]
    if (os.path.isabs(example_id) or any(s in example_id for s in seps) or ".." in example_id
            or "\0" in example_id):
        raise DataError(f"{where}: an id must be a plain file base name (no path separator, '..' or "
                        f"absolute path). Received: {example_id!r}")


def read_dataset_image(path, max_pixels=MAX_PIXELS):
    """Decodes a data set's image (one with a mask) with `fcn_keras.images.read_image`.

    Every Pillow mode is converted faithfully or refused. The EXIF orientation is NOT
    applied: a data set's masks are drawn on the stored pixel grid, so the image keeps it
    (a photo to segment is read with `fcn_keras.images.read_image`, which applies it).

    Args:
        path: the image file.
        max_pixels: refuse images of more pixels than this, before decoding (see
            `fcn_keras.images.read_image`).

    Returns:
        uint8 array (H, W, 3), RGB, the stored pixel grid.

    Raises:
        DataError: the file is missing or unreadable, or larger than `max_pixels` (the message
            names it).
    """
    from fcn_keras.images import ImageError, read_image

    try:
        return read_image(path, exif_orientation=False, max_pixels=max_pixels)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except ImageError as e:
        raise DataError(str(e)) from None


def read_mask(path, max_pixels=MAX_PIXELS):
    """Read a label map, keeping its class indices (no colour conversion).

    Args:
        path: a palette or grayscale PNG (VOC's `SegmentationClass`) or an SBD `.mat`
            file (`GTcls.Segmentation`).
        max_pixels: refuse PNG masks of more pixels than this, before decoding.

    Returns:
        the label map, `(H, W)` (uint8 for VOC and SBD; 16-bit PNGs keep their dtype).

    Raises:
        DataError: the file is missing, cannot be decoded, or is a colour image.
    """
    if str(path).endswith(".mat"):
        return _read_sbd_mat(path)
    from PIL import Image

    from fcn_keras.images import check_pixels

    try:
        with warnings.catch_warnings():  # our limit replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(im.size, max_pixels, path)  # from the header: nothing decoded yet
            im.load()
            if im.mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
                raise DataError(
                    f"{path}: the mask must be a palette or grayscale PNG holding class "
                    f"indices (convert a colour-coded mask first). Received: PIL mode={im.mode!r}")
            return np.asarray(im)
    except Exception as e:  # noqa: BLE001 - every failure names the file
        raise mask_error(path, e) from None


def mask_error(path, err):
    """The `DataError` naming `path` for `err`, an error raised while reading the mask there
    (a `DataError` stays as it is; a pixel limit's `ImageError` keeps its message)."""
    from fcn_keras.images import ImageError

    if isinstance(err, DataError):
        return err
    if isinstance(err, ImageError):
        return DataError(str(err))
    if isinstance(err, FileNotFoundError):
        return DataError(f"{path}: mask file not found")
    return DataError(f"{path}: cannot decode the mask ({type(err).__name__}: {err})")


def _read_sbd_mat(path):
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
    except FileNotFoundError:
        raise DataError(f"{path}: mask file not found") from None
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: cannot read the .mat file ({type(e).__name__}: {e})") from None
    try:
        seg = mat["GTcls"][0]["Segmentation"][0]
    except (KeyError, IndexError, ValueError):
        raise DataError(f"{path}: not an SBD class file. Expected a struct GTcls with a field "
                        f"Segmentation. Received: variables {sorted(k for k in mat if not k.startswith('__'))}") from None
    return np.asarray(seg)


_LAYOUTS = {
    "voc": ("JPEGImages/", "SegmentationClass/", "ImageSets/Segmentation/"),
    "sbd": ("img/", "cls/", "train.txt or val.txt"),
}
_SUBFOLDERS = ("VOCdevkit/VOC2012", "VOC2012", "VOCdevkit/VOC2011", "VOC2011",
               "benchmark_RELEASE/dataset", "dataset")


def _missing(folder, layout):
    """The entries of `layout` that `folder` lacks (an empty list: it has that layout)."""
    if layout == "voc":
        need = {"JPEGImages/": "JPEGImages", "SegmentationClass/": "SegmentationClass",
                "ImageSets/Segmentation/": os.path.join("ImageSets", "Segmentation")}
        return [k for k, v in need.items() if not os.path.isdir(os.path.join(folder, v))]
    missing = [k for k in ("img/", "cls/") if not os.path.isdir(os.path.join(folder, k))]
    has_split = any(f.endswith(".txt") and os.path.isfile(os.path.join(folder, f))
                    for f in os.listdir(folder))
    return missing + ([] if has_split else ["train.txt or val.txt"])


def detect_layout(root):
    """Find the PASCAL VOC or SBD data set in `root` or one of its usual sub-folders.

    Args:
        root: a folder: the data set itself (VOC: `VOCdevkit/VOC2012`; SBD:
            `benchmark_RELEASE/dataset`) or a parent such as `VOCdevkit`.

    Returns:
        `(layout, folder)`: `"voc"` or `"sbd"`, and the folder that holds it.

    Raises:
        FileNotFoundError: `root` is not a folder.
        ValueError: neither layout is there; the message says what each needs and what
            `root` lacks.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"The data folder must exist. Received: root={root!r}, "
                                f"which is not a directory")
    for sub in ("",) + _SUBFOLDERS:
        folder = os.path.join(root, sub) if sub else root
        if os.path.isdir(folder):
            for layout in _LAYOUTS:
                if not _missing(folder, layout):
                    return layout, folder
    lacks = "; ".join(f"no {' nor '.join(_missing(root, k))} for {k.upper()}" for k in _LAYOUTS)
    raise ValueError(
        f"{root} is neither a PASCAL VOC nor an SBD data set folder. Expected "
        f"{', '.join(_LAYOUTS['voc'])} (VOC, e.g. VOCdevkit/VOC2012) or "
        f"{', '.join(_LAYOUTS['sbd'])} (SBD, benchmark_RELEASE/dataset), in the folder or in "
        f"one of {', '.join(_SUBFOLDERS)}. Received: root={root!r} ({lacks})")


def from_directory(root, split="train", *, layout=None, num_classes=DEFAULT_NUM_CLASSES, class_names=None,
                   exclude=None, skip_invalid=False, max_pixels=MAX_PIXELS):
    """Pairs from a PASCAL VOC or SBD folder tree (layout detected from its folders).

    Args:
        root: the VOC folder (holding `JPEGImages`, `SegmentationClass`,
            `ImageSets/Segmentation`) or the SBD `dataset` folder (holding `img`,
            `cls`, `train.txt`); a parent such as `VOCdevkit` or `benchmark_RELEASE`
            is accepted too.
        split: a split name (VOC: a file `ImageSets/Segmentation/<split>.txt`; SBD:
            `<split>.txt`; `"seg11valid"` uses the shipped 736-id list) or the path of a
            text file with one id per line.
        layout: `"voc"` or `"sbd"` to skip detection.
        num_classes: labels must be `< num_classes` or 255 (VOC: 21).
        class_names: names for the classes (default: the VOC names when `num_classes=21`).
        exclude: ids to leave out: an iterable of ids, or `"seg11valid"` (the paper's
            training set is `from_directory(sbd_root, "train", exclude="seg11valid")`).
        skip_invalid: skip unreadable or inconsistent examples with a warning instead of
            raising.
        max_pixels: refuse images and masks of more pixels (width x height) than this, from
            their headers, before decoding (default `fcn_keras.images.MAX_PIXELS`, about 89.5
            megapixels; None: no limit of ours).

    Returns:
        a `fcn_keras.data.Source` of `(uint8 (H, W, 3), uint8 (H, W))` pairs, with
        `ids` (the example ids) and `root` (the data set folder) attributes.

    Raises:
        FileNotFoundError: `root` or the split file does not exist.
        ValueError: `root` holds neither layout, the layout is unknown, or the split is
            empty.
        DataError: the split file lists an id holding a path separator, ".." or an absolute
            path (which would read files outside the data set).
        DataError: (while reading) a file cannot be decoded or is inconsistent.
    """
    layout, root = _located(root, layout)
    ids, split_name = _split_ids(root, layout, split)
    if exclude is not None:
        drop = set(seg11valid_ids()) if isinstance(exclude, str) and exclude == "seg11valid" \
            else ({exclude} if isinstance(exclude, str) else set(exclude))
        ids = [i for i in ids if i not in drop]
    if not ids:
        raise ValueError(f"The split of {root} must hold at least one image. Received: "
                         f"split={split!r}, empty" + (" after exclude" if exclude is not None else ""))
    if class_names is None:
        class_names = VOC_CLASSES if num_classes == len(VOC_CLASSES) else tuple(
            f"class_{i}" for i in range(num_classes))
    image_dir, mask_dir, mask_ext = _FILES[layout]
    images = [os.path.join(root, image_dir, f"{i}.jpg") for i in ids]
    masks = [os.path.join(root, mask_dir, f"{i}{mask_ext}") for i in ids]

    def load(image_path, mask_path):
        image = read_dataset_image(image_path, max_pixels)
        mask = read_mask(mask_path, max_pixels)
        return check_example(image, mask, num_classes, mask_path)

    src = Source(name=layout, split=split_name, num_classes=num_classes,
                 class_names=class_names, keys=(np.array(images), np.array(masks)),
                 load_fn=None, length=len(ids), skip_invalid=skip_invalid,
                 description=f"{layout} at {root}")
    src._load_fn = python_loader(weakref.ref(src), load, lambda image_path, mask_path: mask_path)
    src.ids = ids
    src.root = root
    return src


#: Per layout: the folders of the images and of the masks, and the masks' file ending.
_FILES = {"voc": ("JPEGImages", "SegmentationClass", ".png"), "sbd": ("img", "cls", ".mat")}


def _located(root, layout):
    """`(layout, folder)` of the data set `from_directory` reads: `layout` (None: detected,
    see `detect_layout`) and the folder holding it. Raises as `from_directory` says."""
    if layout is None:
        layout, root = detect_layout(root)
    root = os.fspath(root)
    if layout not in _LAYOUTS:
        raise ValueError(f"`layout` must be 'voc', 'sbd' or None (detect). "
                         f"Received: layout={layout!r}")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"The data folder must exist. Received: root={root!r}, "
                                f"which is not a directory")
    return layout, root


def _split_ids(root, layout, split):
    """`(ids, split name)` of `split` (see `from_directory`) in the data set at `root`.

    Raises:
        FileNotFoundError: no such split (the message lists the splits there).
        ValueError, DataError: the split file is empty or lists an unsafe id.
    """
    split_name = os.fspath(split)
    if split_name.endswith(".txt") or os.sep in split_name:  # a split file's path
        return _read_split_file(split_name), os.path.splitext(os.path.basename(split_name))[0]
    split_dir = os.path.join(root, "ImageSets", "Segmentation") if layout == "voc" else root
    split_file = os.path.join(split_dir, f"{split_name}.txt")
    if os.path.isfile(split_file):
        return _read_split_file(split_file), split_name
    if split_name == "seg11valid":
        return seg11valid_ids(), split_name
    avail = sorted(f[:-4] for f in os.listdir(split_dir) if f.endswith(".txt")) \
        if os.path.isdir(split_dir) else []
    raise FileNotFoundError(
        f"{split_file} not found. Expected one of the splits in {split_dir}: "
        f"{avail or 'none'}. Received: split={split!r}")


def _read_split_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The split file must exist. Received: split={path!r}")
    ids = _read_ids(path)
    if not ids:
        raise ValueError(f"The split file must list at least one id. Received: {path}, empty")
    return ids
