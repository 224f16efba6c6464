"""Sources from TensorFlow Datasets, each set's label convention mapped to ours
(classes `0 .. num_classes-1`, 255 = ignore).

=================  ===========================================================================
name               convention
=================  ===========================================================================
oxford_iiit_pet    `segmentation_mask` trimap 1 = pet, 2 = background, 3 = border
                   -> 0 background, 1 pet, 255 (border is not scored). 2 classes.
cityscapes         `segmentation_label` Cityscapes label ids -> the 19 train ids of the
                   benchmark; all other ids (void, ego vehicle, parking, ...) -> 255.
                   Image key `image_left`; config `cityscapes/semantic_segmentation`.
scene_parse150     `annotation` is TFDS's ADE20K challenge PNG (3 channels); its R channel
                   is the category id, 0 = unlabelled -> 255, `k` -> `k - 1`.
                   `num_classes=150` by default (pass `num_classes` to narrow it).
=================  ===========================================================================

A mask value outside its set's convention (e.g. a trimap value 7) or a mask whose size differs
from its image is a `fcn_keras.data.DataError` naming the example (its TFDS id) and the
value; inside `tf.data` it travels as an `InvalidArgumentError` that
`fcn_keras.data.reraise_data_errors` turns back into the `DataError`.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import tensorflow as tf

from fcn_keras._io import DownloadError
from fcn_keras.conventions import IGNORE_LABEL

from .source import Source

_INVALID = -1
# urllib3 retries per URL while TFDS downloads (TFDS' own default is 10, with exponential
# backoff: 3.5 minutes before an offline machine hears of it); 2 still rides out a hiccup.
DOWNLOAD_RETRIES = 2

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
# label id -> train id (cityscapesScripts labels.py); everything else is 255
_CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                         23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def _table(mapping, valid_range=None, default=_INVALID):
    t = np.full(256, default, np.int32)
    if valid_range is not None:
        for v in valid_range:
            t[v] = IGNORE_LABEL
    for k, v in mapping.items():
        t[k] = v
    return t


def _pets_table():
    return _table({1: 1, 2: 0, 3: IGNORE_LABEL})


def _cityscapes_table():
    # label ids 0..33 are defined; -1 (license plate) is not stored in the uint8 PNGs
    return _table(_CITYSCAPES_TRAIN_IDS, valid_range=range(0, 34))


def _ade_table(num_classes):
    t = np.full(256, _INVALID, np.int32)
    t[0] = IGNORE_LABEL
    t[1:num_classes + 1] = np.arange(num_classes)
    return t


TFDS_CONVENTIONS = {
    "oxford_iiit_pet": dict(image="image", mask="segmentation_mask", channel=0,
                            id_key="file_name", num_classes=2,
                            class_names=("background", "pet"), table=lambda n: _pets_table()),
    "cityscapes": dict(image="image_left", mask="segmentation_label", channel=0,
                       id_key="image_id", num_classes=19, class_names=CITYSCAPES_CLASSES,
                       table=lambda n: _cityscapes_table(),
                       default_config="semantic_segmentation"),
    "scene_parse150": dict(image="image", mask="annotation", channel=0, id_key=None,
                           num_classes=150, class_names=None, table=_ade_table),
}


def _base_name(name):
    return name.split("/")[0].split(":")[0]


def _ranges(values):
    """`[0, 1, 2, 5]` -> `"0..2, 5"`."""
    runs = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def _prepare(builder, full_name, download):
    """Makes sure `builder`'s data is prepared, downloading it if `download`; else DownloadError."""
    if builder.is_prepared():
        return
    import requests
    from tensorflow_datasets.core.download import downloader

    root = getattr(builder, "_data_dir_root", None) or builder.data_dir
    manual = os.path.join(root, "downloads", "manual")

    def unavailable(why):
        return DownloadError(
            f"The TFDS data set {full_name!r} is not prepared in the TFDS data folder {root} and {why}.\n"
            f"To prepare it offline: on a machine with network access run `tfds build {full_name} "
            f"--data_dir DIR` and copy DIR's contents to {root} (or pass data_dir=DIR);\n"
            f"or put its manually downloaded archives in {manual} and run `tfds build {full_name} "
            f"--data_dir {root} --manual_dir {manual}`.")

    if not download:
        raise unavailable("download=False")
    retries, downloader.MAX_RETRIES = downloader.MAX_RETRIES, min(downloader.MAX_RETRIES, DOWNLOAD_RETRIES)
    pool_log = logging.getLogger("urllib3.connectionpool")  # one "Retrying ..." line per attempt
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)
    try:
        builder.download_and_prepare()
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise unavailable(f"cannot be downloaded ({_reason(e)})") from None
    finally:
        downloader.MAX_RETRIES = retries
        pool_log.setLevel(level)


def _reason(err):
    """The last cause of a requests error, in short (e.g. "Failed to resolve 'host'")."""
    text = str(err)
    found = re.search(r"\(Caused by \w+\(.*?: (.*?)\"?\)\)?$", text)
    return (found.group(1) if found else text)[:200]


def from_tfds(name, split="train", *, data_dir=None, download=True, num_classes=None,
              shuffle_files=False, read_config=None, builder_kwargs=None):
    """A TFDS segmentation set as a `fcn_keras.data.Source`.

    Args:
        name: `"oxford_iiit_pet"`, `"cityscapes"` (= `cityscapes/semantic_segmentation`)
            or `"scene_parse150"`, optionally with `/config` and `:version`.
        split: a TFDS split string (`"train"`, `"test"`, `"train[:80%]"`, ...).
        data_dir: TFDS data folder (default: TFDS's).
        download: let TFDS download and prepare the data if needed (Cityscapes needs a
            manual download, see TFDS's documentation).
        num_classes: override the class count (only for `scene_parse150`).
        shuffle_files: passed to TFDS when the pipeline does not shuffle itself.
        read_config: a `tfds.ReadConfig` (default: one with `add_tfds_id=True`, so
            errors name the example).
        builder_kwargs: more keyword arguments for `tfds.builder`.

    Returns:
        a `fcn_keras.data.Source` of `(uint8 (H, W, 3), uint8 (H, W))` pairs,
        labels mapped to `0 .. num_classes - 1` and 255 (ignore).

    Raises:
        ValueError: no label convention is known for `name`, or `num_classes` is
            invalid for it.
        fcn_keras.data.DownloadError: the set is not prepared in the TFDS data folder and
            cannot be downloaded (offline, or `download=False`): the message names the set,
            the folder and how to prepare it offline. Raised within seconds, not after
            minutes of retries.
    """
    import tensorflow_datasets as tfds

    base, n_cls = _checked_name(name, num_classes)
    conv = TFDS_CONVENTIONS[base]
    full_name = _full_name(name, conv)
    builder = tfds.builder(full_name, data_dir=data_dir, **(builder_kwargs or {}))
    _prepare(builder, full_name, download)
    try:
        num_examples = builder.info.splits[split].num_examples
    except Exception:  # noqa: BLE001 - unknown until prepared (or mocked)
        num_examples = None

    def make(shuffle=False, seed=None):
        rc = read_config or tfds.ReadConfig(shuffle_seed=seed, add_tfds_id=True)
        ds = builder.as_dataset(split=split, shuffle_files=bool(shuffle or shuffle_files),
                                read_config=rc)
        if shuffle:
            ds = ds.shuffle(1024, seed=seed, reshuffle_each_iteration=True)
        return ds

    class_names = conv["class_names"] or tuple(f"class_{i}" for i in range(n_cls))
    return Source(name=f"tfds:{base}", split=split, num_classes=n_cls, class_names=class_names,
                  keys=make, load_fn=_converter(base, n_cls, f"tfds:{name}:{split} "),
                  length=num_examples, description=f"TFDS {full_name}")


def _checked_name(name, num_classes):
    """`(base name, class count)` of a TFDS set `from_tfds` knows; raises as it says."""
    base = _base_name(name)
    if base not in TFDS_CONVENTIONS:
        raise ValueError(f"from_tfds has no label convention for this data set. Expected one "
                         f"of {sorted(TFDS_CONVENTIONS)} (or pass your own tf.data.Dataset of "
                         f"(image, mask) pairs to fcn_keras.data.pipeline). Received: name={name!r}")
    if num_classes is not None and base != "scene_parse150":
        raise ValueError(f"`num_classes` can only be changed for scene_parse150 ({base} has "
                         f"{TFDS_CONVENTIONS[base]['num_classes']} classes). "
                         f"Received: num_classes={num_classes!r}")
    n_cls = int(num_classes or TFDS_CONVENTIONS[base]["num_classes"])
    if not 1 <= n_cls <= IGNORE_LABEL:
        raise ValueError(f"`num_classes` must be within 1..{IGNORE_LABEL}. Received: num_classes={num_classes!r}")
    return base, n_cls


def _full_name(name, conv):
    """`name` with its set's default config (`cityscapes` -> `cityscapes/semantic_segmentation`,
    a `:version` kept at the end)."""
    if "default_config" not in conv or "/" in name:
        return name
    stem, colon, version = name.partition(":")
    return f"{stem}/{conv['default_config']}{colon}{version}"


def _text(t):
    return tf.strings.as_string(t) if t.dtype != tf.string else t


def _size(shape):
    """(H, W) -> the string "WxH"."""
    return tf.strings.join([_text(shape[1]), "x", _text(shape[0])])


def _converter(base, num_classes, prefix):
    """The example function of a set with `base`'s convention: a TFDS example dict ->
    `(image uint8 (H, W, 3), mask uint8 (H, W), ok, where, error)`, the labels mapped to ours;
    `ok` False when a mask value is outside the convention or the mask's size differs from
    the image's, `error` then the message naming the example (`where`: `prefix` + its id)."""
    conv = TFDS_CONVENTIONS[base]
    table_np = conv["table"](num_classes)
    table = tf.constant(table_np, tf.int32)
    expected = _ranges(np.flatnonzero(table_np != _INVALID).tolist())
    ikey, mkey, ch, id_key = conv["image"], conv["mask"], conv["channel"], conv["id_key"]

    def convert(ex):
        image = ex[ikey]
        if image.shape.rank == 3 and image.shape[-1] == 4:
            image = image[..., :3]
        image = tf.ensure_shape(tf.cast(image, tf.uint8), [None, None, 3])
        raw = tf.cast(ex[mkey][..., ch], tf.int32)
        mapped = tf.gather(table, raw)
        key = id_key if id_key in ex else "tfds_id" if "tfds_id" in ex else None
        where = tf.strings.join([prefix, ex[key] if key else "(no id)"])
        size_ok = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(raw)))
        bad = tf.equal(mapped, _INVALID)
        value = _text(tf.reduce_max(tf.where(bad, raw, -1)))
        error = tf.where(
            size_ok,
            tf.strings.join([where, ": mask value ", value, f" is outside the {base} label "
                             f"convention. Expected values {expected}. Received: value=", value]),
            tf.strings.join([where, ": the mask must be the size of its image. Expected ",
                             _size(tf.shape(image)), " (WxH). Received: mask size=",
                             _size(tf.shape(raw))]))
        ok = tf.logical_and(size_ok, tf.logical_not(tf.reduce_any(bad)))
        return image, tf.cast(mapped, tf.uint8), ok, where, error

    return convert
