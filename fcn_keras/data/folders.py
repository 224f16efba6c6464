"""`from_folders`: the user's own data, a folder of images and a folder of masks.

Layouts accepted (any depth of sub-folders, any image format Pillow reads)::

    images/a/b.jpg   masks/a/b.png            paired by relative path and stem
    images/b.jpg     masks/b_mask.png         a mask suffix (_mask, _label, _L, ...) detected
    images/train/... masks/train/...          split sub-folders (train, val, test, ...) used
    images/val/...   masks/val/...            as they are (files outside them are reported);
                                              otherwise a hash split

Masks are index PNGs (palette or grayscale, 8 or 16 bit; an RGB mask whose three channels are
equal counts as grayscale) or RGB colour masks with a colour table (`colors=`, see
`fcn_keras.data.colors`). Files that have no partner are reported (`Source.unpaired` and one
warning), never silently dropped.

Without split folders, an example's split follows from a hash of its relative name and the
seed, so adding files never moves the others between train and val.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import weakref

import numpy as np

from fcn_keras.images import IMAGE_EXTENSIONS, MAX_PIXELS, check_pixels

from .colors import load_table
from .directory import mask_error, read_dataset_image
from .errors import DataError
from .source import Source, check_example, python_loader

#: Mask name endings tried when `mask_suffix=None` (the one pairing most files wins).
MASK_SUFFIXES = ("", "_mask", "_masks", "-mask", "_label", "_labels", "-label", "_gt", "_seg",
                 "_segmentation", "_L", "_annotation")
_INDEX_MODES = ("P", "L", "I", "I;16", "I;16B", "I;16L", "I;16N")
_SHOWN = 5  # unpaired file names shown in messages


def _walk(root):
    """{relative path without extension (posix): file path} of the images under `root`.

    Raises:
        ValueError: two files differ only in their extension (`a.jpg`, `a.png`).
    """
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if name.startswith(".") or ext.lower() not in IMAGE_EXTENSIONS:
                continue
            path = os.path.join(folder, name)
            key = os.path.relpath(os.path.join(folder, stem), root).replace(os.sep, "/")
            if key in found:
                raise ValueError(f"Each image and mask name must be unique up to its extension. "
                                 f"Received: {found[key]} and {path}")
            found[key] = path
    return found


def _detect_suffix(image_keys, mask_keys):
    """The mask suffix pairing the most masks with images ("" on a tie)."""
    best, best_n = "", -1
    for suffix in MASK_SUFFIXES:
        n = sum(1 for k in mask_keys if k.endswith(suffix) and k[:len(k) - len(suffix)] in image_keys)
        if n > best_n:
            best, best_n = suffix, n
    return best


def pair_files(images_root, masks_root, mask_suffix=None):
    """Pairs the images under `images_root` with the masks under `masks_root`.

    Args:
        images_root, masks_root: folders (searched recursively).
        mask_suffix: what mask stems add to the image stem (`"_mask"`); None detects it
            (see `MASK_SUFFIXES`); `""`: the same stem.

    Returns:
        `(pairs, unpaired_images, unpaired_masks, suffix)`: `pairs` a sorted list of
        `(key, image path, mask path)`, key the image's relative path without extension.
    """
    images, masks = _walk(images_root), _walk(masks_root)
    suffix = _detect_suffix(images.keys(), masks.keys()) if mask_suffix is None else mask_suffix
    pairs, used = [], set()
    for key in sorted(images):
        mkey = key + suffix
        if mkey in masks:
            pairs.append((key, images[key], masks[mkey]))
            used.add(mkey)
    lone_images = [images[k] for k in sorted(images) if k + suffix not in masks]
    lone_masks = [masks[k] for k in sorted(masks) if k not in used]
    return pairs, lone_images, lone_masks, suffix


def hash_fraction(key, seed):
    """A number in [0, 1) fixed by `key` and `seed` (sha256): the hash split's coordinate."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_folders(images_root, masks_root):
    """The sub-folder names present in both roots (e.g. `["train", "val"]`), sorted."""
    def subdirs(root):
        return {d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")}

    common = subdirs(images_root) & subdirs(masks_root)
    return sorted(common) if "train" in common else []


def read_mask_pixels(path, table, max_pixels=MAX_PIXELS):
    """A mask file's class indices.

    Args:
        path: the mask (any image format Pillow reads; PNG recommended).
        table: a `ColorTable` (masks are read by colour), or None (index masks: palette or
            grayscale values are the classes; an RGB mask with equal channels counts as
            grayscale).
        max_pixels: refuse masks of more pixels (width x height) than this, from the file's
            header before decoding (`fcn_keras.images.check_pixels`); 0 or None: no limit.

    Returns:
        (H, W) class indices (uint8; 16-bit masks keep their dtype).

    Raises:
        DataError: the file is unreadable, or a colour mask without a table, or a colour not
            in the table (naming the file and the colours).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            check_pixels(im.size, max_pixels, path)  # from the header: nothing decoded yet
            im.load()
            mode = im.mode
            if table is None and mode in _INDEX_MODES:
                return np.asarray(im)
            if table is not None and mode.startswith("I"):
                raise DataError(f"{path}: a colour table was given but the mask is a {mode!r} "
                                f"(16/32-bit index) image. Expected RGB or palette colour masks, "
                                f"or no colour table for index masks")
            rgb = np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - every failure names the file
        raise mask_error(path, e) from None
    if table is not None:
        return table.to_labels(rgb, path)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0]
    colours = np.unique(rgb.reshape(-1, 3), axis=0)
    shown = ", ".join(str(tuple(int(v) for v in c)) for c in colours[:4])
    raise DataError(f"{path}: a colour mask (PIL mode {mode!r}, {len(colours)} colours, e.g. "
                    f"{shown}) needs a colour table. Expected colors= a dict, a class_dict.csv "
                    f"/ JSON file or 'voc' (--colors FILE), or index masks")


def from_folders(images, masks, split=None, *, val_fraction=0.1, seed=0, colors=None,
                 class_names=None, num_classes=None, mask_suffix=None, unknown_color="error",
                 skip_invalid=False, max_pixels=MAX_PIXELS):
    """Pairs from a folder of images and a folder of masks (the user's own data).

    Args:
        images: the images folder (searched recursively; any format Pillow reads).
        masks: the masks folder, mirroring `images` (`images/a/b.jpg` <-> `masks/a/b.png`).
        split: `"train"` (default), `"val"`, or `"all"` (no split); with split sub-folders
            (`images/train`, `masks/train`, ...) any of their names.
        val_fraction: without split folders, the share of examples in `"val"` (0..1),
            chosen by a hash of each file's relative name and `seed` (stable when files are
            added or removed).
        seed: the hash split's seed.
        colors: None (index masks) or a colour table: a dict `{(r, g, b): class}`, a CSV /
            JSON file of `name,r,g,b` rows (CamVid's `class_dict.csv`) or `"voc"`.
        class_names: the class names (default: the colour table's, else `class_i`).
        num_classes: the number of classes (default: the colour table's or
            `len(class_names)`; index masks need one of the three). Labels must lie below it
            or be 255 (ignore).
        mask_suffix: what the mask's stem adds to the image's (`"_mask"`); None detects it.
        unknown_color: `"error"` (a mask colour not in the table fails, naming the file,
            the colour and its pixel count) or `"ignore"` (those pixels become 255).
        skip_invalid: skip unreadable or inconsistent examples with a warning instead of
            raising.
        max_pixels: refuse images and masks of more pixels (width x height) than this, from
            the file's header before decoding (default: Pillow's warning threshold, about
            89.5 megapixels; 0 or None: no limit).

    Returns:
        a `fcn_keras.data.Source` named `"folders"` with attributes `pairs` (`[(image
        path, mask path)]`), `unpaired` (`{"images": [...], "masks": [...]}`: files without
        a partner), `outside` (files beside the split sub-folders, not used), `mask_suffix`,
        `palette` (the colour table's colours, or None) and
        `splits` (the split names available).

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: a bad argument, an unknown split, no pairs at all, or a malformed colour
            table (the message names the folder or file).
        DataError: (while reading) a file cannot be decoded or is inconsistent.
    """
    images, masks = os.fspath(images), os.fspath(masks)
    for name, folder in (("images", images), ("masks", masks)):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"The {name} folder must exist. Received: {name}={folder!r}, "
                                    f"which is not a directory")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"`val_fraction` must be within [0, 1). Received: val_fraction={val_fraction!r}")
    table = None if colors is None else load_table(colors, class_names, unknown_color)
    num_classes, class_names = _classes(table, class_names, num_classes)

    split = "train" if split is None else str(split)
    subs = split_folders(images, masks)
    splits = subs + ["all"] if subs else ["train", "val", "all"]
    if split not in splits:
        how = "split sub-folders" if subs else "no split sub-folders: a hash split"
        raise ValueError(f"`split` must be one of {splits} for {images} ({how}). Received: split={split!r}")
    if subs:
        pairs, lone_images, lone_masks, suffix, outside = _pairs_in_split_folders(
            images, masks, subs if split == "all" else [split], subs, mask_suffix)
    else:
        pairs, lone_images, lone_masks, suffix = pair_files(images, masks, mask_suffix)
        outside = []
        if split != "all":
            pairs = _hash_split(pairs, split == "val", val_fraction, seed, images)
    if not pairs:
        raise ValueError(_no_pairs_message(images, masks, split, lone_images, lone_masks))
    if lone_images or lone_masks:
        warnings.warn(f"fcn_keras.data: {unpaired_summary(lone_images, lone_masks)}", stacklevel=2)

    def load(image_path, mask_path):
        image = read_dataset_image(image_path, max_pixels)
        mask = read_mask_pixels(mask_path, table, max_pixels)
        return check_example(image, mask, num_classes, mask_path)

    image_paths = [p[1] for p in pairs]
    mask_paths = [p[2] for p in pairs]
    src = Source(name="folders", split=split, num_classes=num_classes, class_names=class_names,
                 keys=(np.array(image_paths), np.array(mask_paths)), load_fn=None,
                 length=len(pairs), skip_invalid=skip_invalid,
                 description=f"folders {images} + {masks}")
    src._load_fn = python_loader(weakref.ref(src), load, lambda image_path, mask_path: mask_path)
    src.pairs = list(zip(image_paths, mask_paths))
    src.unpaired = {"images": lone_images, "masks": lone_masks}
    src.outside = outside
    src.mask_suffix = suffix
    src.palette = None if table is None else table.palette()
    src.splits = splits
    return src


def _pairs_in_split_folders(images, masks, roots, subs, mask_suffix):
    """The pairs of the split sub-folders `roots` (of all the split folders `subs`).

    Returns:
        `(pairs, lone_images, lone_masks, mask_suffix, outside)`: `[(key "<split>/<name>",
        image path, mask path)]`, files without a partner, the suffix found, and the files
        beside the split folders (not used, with a warning).
    """
    pairs, lone_images, lone_masks, suffix = [], [], [], mask_suffix
    for sub in roots:
        p, li, lm, suffix = pair_files(os.path.join(images, sub), os.path.join(masks, sub), suffix)
        pairs += [(f"{sub}/{k}", i, m) for k, i, m in p]
        lone_images += li
        lone_masks += lm
    outside = [path for root in (images, masks) for key, path in sorted(_walk(root).items())
               if key.split("/", 1)[0] not in subs]
    if outside:
        warnings.warn(f"fcn_keras.data: {len(outside)} file(s) outside the split folders "
                      f"{subs} are not used ({', '.join(outside[:_SHOWN])})", stacklevel=3)
    return pairs, lone_images, lone_masks, suffix, outside


def _hash_split(pairs, val, val_fraction, seed, images):
    """The pairs of the hash split's `"val"` part (`val` True) or `"train"` part: a pair is in
    val when `hash_fraction` of its key and `seed` is below `val_fraction`.

    Raises:
        ValueError: that part is empty while `pairs` is not (the message names `images`).
    """
    chosen = [p for p in pairs if (hash_fraction(p[0], seed) < val_fraction) == val]
    if pairs and not chosen:
        part = "val" if val else "train"
        raise ValueError(f"The hash split of the {len(pairs)} pairs in {images} must leave "
                         f"at least one in {part!r}. Received: val_fraction={val_fraction}; "
                         f"change it, or make images/train and images/val sub-folders")
    return chosen


def _classes(table, class_names, num_classes):
    """(num_classes, class names) from the colour table, `class_names` and `num_classes`."""
    if table is not None:
        names = table.class_names
    elif class_names is not None:
        names = tuple(str(n) for n in class_names)
    elif num_classes is not None:
        names = tuple(f"class_{i}" for i in range(int(num_classes)))
    else:
        raise ValueError("Index masks need the number of classes. Expected num_classes= "
                         "(--num-classes), class_names= or a colour table colors= "
                         "(--colors). Received: none of them")
    if num_classes is not None and int(num_classes) != len(names):
        raise ValueError(f"`num_classes` must match the {len(names)} classes of "
                         f"{'the colour table' if table is not None else 'class_names'}. "
                         f"Received: num_classes={num_classes}")
    if not 1 <= len(names) <= 255:
        raise ValueError(f"`num_classes` must be within 1..255. Received: {len(names)}")
    return len(names), names


def unpaired_summary(lone_images, lone_masks):
    """One line: how many images have no mask and masks no image, with the first few names."""
    parts = []
    for what, lacking, files in (("image", "a mask", lone_images), ("mask", "an image", lone_masks)):
        if files:
            shown = ", ".join(files[:_SHOWN]) + (", ..." if len(files) > _SHOWN else "")
            plural = "s" if len(files) > 1 else ""
            parts.append(f"{len(files)} {what}{plural} without {lacking} ({shown})")
    return "unpaired files left out: " + "; ".join(parts)


def _no_pairs_message(images, masks, split, lone_images, lone_masks):
    if lone_images or lone_masks:
        found = (f"images such as {', '.join(lone_images[:2]) or 'none'}; masks such as "
                 f"{', '.join(lone_masks[:2]) or 'none'}")
        hint = "no mask has an image's relative path and stem (give mask_suffix= if masks add one)"
    else:
        found = "no image files at all"
        hint = "the folders hold no files Pillow reads"
    return (f"{images} and {masks} must hold image / mask pairs for split {split!r}. Expected "
            f"images/<name>.<ext> with masks/<name>[suffix].png. Received: {hint}; {found}")
