"""Fixtures for the data tests: small VOC and SBD trees written to tmp folders."""

import os

import numpy as np
import pytest
from PIL import Image

from fcn_keras.viz import voc_palette


def _example(rng, h, w, num_classes=21):
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, num_classes, size=(h, w)).astype(np.uint8)
    mask[0, :] = 255  # a void strip, as VOC has
    return image, mask


def write_palette_png(mask, path):
    im = Image.fromarray(mask, mode="P")
    im.putpalette(voc_palette().reshape(-1).tolist())
    im.save(path)


def make_voc_tree(root, ids_by_split, sizes=None, seed=0):
    """A VOC2012-like folder; returns {id: (image, mask)} as written (JPEG is lossy)."""
    rng = np.random.default_rng(seed)
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    truth = {}
    all_ids = sorted({i for ids in ids_by_split.values() for i in ids})
    for k, i in enumerate(all_ids):
        h, w = (sizes or {}).get(i, (20 + 3 * k, 30 + 2 * k))
        image, mask = _example(rng, h, w)
        Image.fromarray(image).save(os.path.join(root, "JPEGImages", f"{i}.jpg"), quality=95)
        write_palette_png(mask, os.path.join(root, "SegmentationClass", f"{i}.png"))
        truth[i] = (image, mask)
    for split, ids in ids_by_split.items():
        with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    return truth


def make_sbd_tree(root, ids_by_split, seed=1):
    """An SBD ``dataset`` folder (img/*.jpg, cls/*.mat with GTcls, <split>.txt)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "img"), exist_ok=True)
    os.makedirs(os.path.join(root, "cls"), exist_ok=True)
    truth = {}
    all_ids = sorted({i for ids in ids_by_split.values() for i in ids})
    for k, i in enumerate(all_ids):
        image = rng.integers(0, 256, size=(18 + k, 25 + k, 3), dtype=np.uint8)
        seg = rng.integers(0, 21, size=(18 + k, 25 + k)).astype(np.uint8)  # SBD has no void
        Image.fromarray(image).save(os.path.join(root, "img", f"{i}.jpg"), quality=95)
        gt = {"Segmentation": seg, "Boundaries": np.zeros((20, 1), object),
              "CategoriesPresent": np.unique(seg[seg > 0]).astype(np.uint8)}
        scipy.io.savemat(os.path.join(root, "cls", f"{i}.mat"), {"GTcls": gt})
        truth[i] = (image, seg)
    for split, ids in ids_by_split.items():
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    return truth


@pytest.fixture
def voc_tree(tmp_path):
    root = str(tmp_path / "VOCdevkit" / "VOC2012")
    truth = make_voc_tree(root, {"train": ["2008_000001", "2008_000002", "2008_000003"],
                                 "val": ["2007_000033", "2008_000004"]})
    return root, truth


@pytest.fixture
def sbd_tree(tmp_path):
    root = str(tmp_path / "benchmark_RELEASE" / "dataset")
    # 2007_000033 and 2007_000042 are in seg11valid, the others are not
    truth = make_sbd_tree(root, {"train": ["2007_000033", "2007_000042", "2008_000010",
                                           "2008_000011"],
                                 "val": ["2008_000012"]})
    return root, truth


# A CamVid-like colour table: name,r,g,b (the class_dict.csv layout).
CAMVID_LIKE = (("sky", (128, 128, 128)), ("road", (128, 64, 128)), ("car", (64, 0, 128)),
               ("sign", (192, 128, 128)))


def write_class_dict(path, table=CAMVID_LIKE):
    with open(path, "w") as f:
        f.write("name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in table))
    return str(path)


def colour_mask(labels, table=CAMVID_LIKE):
    """uint8 (H, W, 3): each label's colour from `table`."""
    colours = np.array([c for _, c in table], np.uint8)
    return colours[labels]


def imbalanced_labels(rng, h, w):
    """Labels 0..3: sky top, road bottom, a car block, a tiny sign (well under 2% of pixels)."""
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2:] = 1
    y, x = int(rng.integers(h // 2, h - 6)), int(rng.integers(0, w - 8))
    labels[y:y + 5, x:x + 8] = 2
    labels[1, 1] = 3
    return labels


def make_folder_pair(root, names, size=(24, 32), seed=0, suffix="", colour=True):
    """images/<name>.jpg and masks/<name><suffix>.png (colour masks with `CAMVID_LIKE`, or
    grayscale index masks); returns {name: labels}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for name in names:
        h, w = size
        labels = imbalanced_labels(rng, h, w)
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        ipath = os.path.join(root, "images", name + ".jpg")
        mpath = os.path.join(root, "masks", name + suffix + ".png")
        for p in (ipath, mpath):
            os.makedirs(os.path.dirname(p), exist_ok=True)
        Image.fromarray(image).save(ipath, quality=95)
        Image.fromarray(colour_mask(labels) if colour else labels).save(mpath)
        truth[name] = labels
    return truth
