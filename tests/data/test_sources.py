"""Sources: VOC and SBD trees on disk, the synthetic set, and their error reporting."""

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fcn_keras import data
from fcn_keras.data import DataError

from .conftest import make_voc_tree, write_palette_png


def _pairs(src):
    return list(src)


# ------------------------------------------------------------------ VOC
def test_voc_pairs_match_files(voc_tree):
    root, truth = voc_tree
    src = data.from_directory(root, "train")
    assert (src.name, src.split, len(src), src.num_classes) == ("voc", "train", 3, 21)
    assert src.class_names == data.VOC_CLASSES
    for (image, mask), i in zip(_pairs(src), src.ids):
        want_image, want_mask = truth[i]
        assert image.dtype == np.uint8 and image.shape == want_image.shape
        assert mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, want_mask)  # palette indices kept, 255 kept
        decoded = np.asarray(Image.open(os.path.join(root, "JPEGImages", f"{i}.jpg")).convert("RGB"))
        np.testing.assert_array_equal(image, decoded)  # JPEG is lossy: compare to a decode


def test_voc_detected_from_parent_folder(voc_tree, tmp_path):
    root, _ = voc_tree
    src = data.from_directory(str(tmp_path / "VOCdevkit"), "val")
    assert src.name == "voc" and len(src) == 2


def test_seg11valid_list_shipped():
    ids = data.seg11valid_ids()
    assert len(ids) == 736 and len(set(ids)) == 736
    assert ids == sorted(ids)
    assert ids[0] == "2007_000033" and ids[-1] == "2011_003271"


def test_voc_seg11valid_split_uses_shipped_list(tmp_path):
    root = str(tmp_path / "voc")
    make_voc_tree(root, {"train": ["2007_000033"]})
    with pytest.raises(DataError, match="2007_000042"):
        # the tree holds only one seg11valid image: the 2nd id's files are reported missing
        list(data.from_directory(root, "seg11valid"))


def test_missing_split_names_file_and_choices(voc_tree):
    root, _ = voc_tree
    with pytest.raises(FileNotFoundError, match=r"test\.txt.*\['train', 'val'\]"):
        data.from_directory(root, "test")


def test_empty_split_is_an_error(voc_tree):
    root, _ = voc_tree
    open(os.path.join(root, "ImageSets", "Segmentation", "empty.txt"), "w").close()
    with pytest.raises(ValueError, match="empty"):
        data.from_directory(root, "empty")
    with pytest.raises(ValueError, match="empty"):
        data.from_directory(root, "train", exclude=["2008_000001", "2008_000002", "2008_000003"])


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(ValueError, match=r"neither a PASCAL VOC nor an SBD[\s\S]*Expected "
                       r"JPEGImages/, SegmentationClass/, ImageSets/Segmentation/") as e:
        data.from_directory(str(tmp_path), "train")
    assert str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.from_directory(str(tmp_path / "nope"), "train")


def test_corrupt_image_names_the_file(voc_tree):
    root, _ = voc_tree
    bad = os.path.join(root, "JPEGImages", "2008_000002.jpg")
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not a jpeg")
    src = data.from_directory(root, "train")
    with pytest.raises(DataError, match="2008_000002.jpg.*cannot decode"):
        list(src)
    with pytest.raises(DataError, match="2008_000002.jpg"):
        src.check()


def test_skip_invalid_warns_and_counts(voc_tree):
    root, _ = voc_tree
    with open(os.path.join(root, "JPEGImages", "2008_000002.jpg"), "wb") as f:
        f.write(b"garbage")
    os.remove(os.path.join(root, "SegmentationClass", "2008_000003.png"))
    src = data.from_directory(root, "train", skip_invalid=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = list(src)
    assert len(pairs) == 1
    assert len(src.skipped) == 2
    assert any("2008_000002.jpg" in s[1] for s in src.skipped)
    assert any("not found" in s[1] and "2008_000003.png" in s[1] for s in src.skipped)
    text = " ".join(str(w.message) for w in caught)
    assert "skipped" in text and "2 skipped so far" in text


def test_mask_size_mismatch_names_file_and_sizes(voc_tree):
    root, _ = voc_tree
    write_palette_png(np.zeros((7, 9), np.uint8),
                      os.path.join(root, "SegmentationClass", "2008_000001.png"))
    with pytest.raises(DataError, match=r"2008_000001\.png: the mask must be the size of its "
                       r"image. Expected 32x23 \(WxH\). Received: mask size=9x7$"):
        list(data.from_directory(root, "train"))


def test_label_out_of_range_names_file_and_value(voc_tree):
    root, truth = voc_tree
    mask = np.zeros(truth["2008_000002"][1].shape, np.uint8)
    mask[3, 4] = 30
    write_palette_png(mask, os.path.join(root, "SegmentationClass", "2008_000002.png"))
    with pytest.raises(DataError, match=r"2008_000002\.png: label 30 is not a class. Expected "
                       r"labels 0..20 or 255 \(ignore\) for num_classes=21. Received: label=30"):
        list(data.from_directory(root, "train"))
    # the same file is fine for a data set declared with more classes
    assert len(list(data.from_directory(root, "train", num_classes=31))) == 3


def test_colour_mask_is_rejected(voc_tree):
    root, truth = voc_tree
    h, w = truth["2008_000002"][1].shape
    Image.new("RGB", (w, h)).save(os.path.join(root, "SegmentationClass", "2008_000002.png"))
    with pytest.raises(DataError, match="palette or grayscale.*Received: PIL mode='RGB'"):
        list(data.from_directory(root, "train"))


# ------------------------------------------------------------------ SBD
def test_sbd_mat_pairs(sbd_tree):
    root, truth = sbd_tree
    src = data.from_directory(root, "train")
    assert src.name == "sbd" and len(src) == 4
    for (image, mask), i in zip(_pairs(src), src.ids):
        np.testing.assert_array_equal(mask, truth[i][1])
        assert image.shape == truth[i][0].shape


def test_sbd_train_minus_seg11valid(sbd_tree):
    root, _ = sbd_tree
    src = data.from_directory(root, "train", exclude="seg11valid")
    assert src.ids == ["2008_000010", "2008_000011"]


def test_sbd_found_from_benchmark_release(sbd_tree, tmp_path):
    src = data.from_directory(str(tmp_path / "benchmark_RELEASE"), "val")
    assert src.name == "sbd" and len(list(src)) == 1


def test_sbd_bad_mat_names_file(sbd_tree):
    import scipy.io

    root, _ = sbd_tree
    scipy.io.savemat(os.path.join(root, "cls", "2008_000012.mat"), {"other": np.zeros(3)})
    with pytest.raises(DataError, match=r"2008_000012\.mat: not an SBD class file.*"
                       r"Received: variables \['other'\]"):
        list(data.from_directory(root, "val"))


# ------------------------------------------------------------------ shapes
def test_shapes_deterministic_and_labelled():
    a = list(data.shapes("val", num_examples=6))
    b = list(data.shapes("val", num_examples=6))
    c = list(data.shapes("train", num_examples=6))
    for (ia, ma), (ib, mb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ma, mb)
    assert any(ia.shape != ic.shape or (ia != ic).any() for (ia, _), (ic, _) in zip(a, c))
    labels = set()
    for image, mask in a + c:
        assert image.dtype == np.uint8 and image.shape[2] == 3
        assert 64 <= image.shape[0] <= 96 and 64 <= image.shape[1] <= 96
        assert mask.shape == image.shape[:2]
        labels |= set(np.unique(mask).tolist())
        assert (mask == 255).any() and (mask == 0).any()
    assert labels == {0, 1, 2, 3, 255}
    assert data.SHAPES_CLASSES == ("background", "circle", "square", "triangle")


def test_shapes_arguments():
    src = data.shapes("test", num_examples=3, image_size=40)
    assert len(src) == 3 and all(i.shape == (40, 40, 3) for i, _ in src)
    with pytest.raises(ValueError, match="`split` must be one of"):
        data.shapes("validation")
    with pytest.raises(ValueError, match="image_size"):
        data.shapes("train", image_size=(90, 50))
    with pytest.raises(ValueError, match="num_examples"):
        data.shapes("train", num_examples=0)


def test_from_spec_prefixes():
    assert data.from_spec("shapes", "val", num_examples=2).num_classes == 4
    with pytest.raises(ValueError, match=r"The data spec must be 'shapes', 'voc:PATH'.*"
                                         r"Received: data='voc'"):
        data.from_spec("voc", "train")
    with pytest.raises(ValueError, match=r"Received: data='nowhere/VOC2012' \(no such folder\)"):
        data.from_spec("nowhere/VOC2012", "train")


def test_from_spec_plain_folders(voc_tree, sbd_tree, tmp_path):
    voc_root, _ = voc_tree
    sbd_root, _ = sbd_tree
    for spec, name, n in ((voc_root, "voc", 2), (str(tmp_path / "VOCdevkit"), "voc", 2),
                          (f"voc:{voc_root}", "voc", 2), (f"dir:{voc_root}", "voc", 2),
                          (sbd_root, "sbd", 1), (f"sbd:{sbd_root}", "sbd", 1)):
        src = data.from_spec(spec, "val")
        assert (src.name, len(src)) == (name, n), spec
        assert len(list(src)) == n


def test_from_spec_folder_of_neither_layout_says_what_is_missing(tmp_path):
    # a VOC tree without its split lists, and an SBD tree without train.txt / val.txt
    voc = tmp_path / "voc"
    for d in ("JPEGImages", "SegmentationClass"):
        (voc / d).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"Received: root='.*voc' \(no ImageSets/Segmentation/ "
                                         r"for VOC; no img/ nor cls/ nor train.txt or val.txt"):
        data.from_spec(str(voc), "train")
    sbd = tmp_path / "sbd"
    for d in ("img", "cls"):
        (sbd / d).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"sbd' \(no JPEGImages/.*; no train.txt or val.txt for SBD\)"):
        data.from_spec(str(sbd), "train")
