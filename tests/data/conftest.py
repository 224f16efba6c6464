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
