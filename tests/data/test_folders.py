"""`fcn_keras.data.from_folders`: the user's own image and mask folders, real files in tmp
folders (Pillow), index and colour masks, colour tables, splits, unpaired and bad files."""

import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from fcn_keras import data
from fcn_keras.conventions import voc_palette
from fcn_keras.data import DataError, from_folders

from .conftest import CAMVID_LIKE, colour_mask, make_folder_pair, write_class_dict

NAMES = [f"seq{i % 2}/f{i:03d}" for i in range(10)]


def _dirs(root):
    return str(root / "images"), str(root / "masks")


def _quiet_folders(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_folders(*args, **kwargs)


def test_colour_masks_with_class_dict_nested_and_suffix_detected(tmp_path):
    truth = make_folder_pair(tmp_path, NAMES, suffix="_L")
    csv = write_class_dict(tmp_path / "class_dict.csv")
    src = from_folders(*_dirs(tmp_path), "all", colors=csv)
    assert src.mask_suffix == "_L"
    assert src.class_names == ("sky", "road", "car", "sign") and src.num_classes == 4
    np.testing.assert_array_equal(src.palette, [c for _, c in CAMVID_LIKE])
    assert len(src) == len(NAMES)
    keys = [os.path.relpath(i, tmp_path / "images")[:-4].replace(os.sep, "/") for i, _ in src.pairs]
    for (image, mask), key in zip(src, keys):
        assert image.shape == (24, 32, 3)
        np.testing.assert_array_equal(mask, truth[key])


def test_unpaired_files_are_reported_not_dropped_silently(tmp_path):
    make_folder_pair(tmp_path, NAMES[:4])
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "lonely.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "orphan.png")
    with pytest.warns(UserWarning, match=r"1 image without a mask .*lonely\.png.*1 mask without an image .*orphan\.png"):
        src = from_folders(*_dirs(tmp_path), "all", colors=write_class_dict(tmp_path / "c.csv"))
    assert [os.path.basename(p) for p in src.unpaired["images"]] == ["lonely.png"]
    assert [os.path.basename(p) for p in src.unpaired["masks"]] == ["orphan.png"]
    assert len(src) == 4


def test_hash_split_is_disjoint_complete_and_stable_when_files_are_added(tmp_path):
    make_folder_pair(tmp_path, [f"f{i:02d}" for i in range(30)])
    csv = write_class_dict(tmp_path / "c.csv")
    val = _quiet_folders(*_dirs(tmp_path), "val", colors=csv, val_fraction=0.3)
    train = _quiet_folders(*_dirs(tmp_path), "train", colors=csv, val_fraction=0.3)
    assert not set(val.pairs) & set(train.pairs)
    assert len(val) + len(train) == 30 and 0 < len(val) < 30
    make_folder_pair(tmp_path, [f"a{i:02d}" for i in range(30)], seed=5)  # sorted first
    val2 = _quiet_folders(*_dirs(tmp_path), "val", colors=csv, val_fraction=0.3)
    old = {p for p in val2.pairs if os.path.basename(p[0]).startswith("f")}
    assert old == set(val.pairs)  # the old files kept their split
    other_seed = _quiet_folders(*_dirs(tmp_path), "val", colors=csv, val_fraction=0.3, seed=1)
    assert set(other_seed.pairs) != set(val2.pairs)


def test_split_sub_folders_are_used_as_they_are(tmp_path):
    make_folder_pair(tmp_path, [f"train/t{i}" for i in range(3)] + [f"val/v{i}" for i in range(2)])
    csv = write_class_dict(tmp_path / "c.csv")
    train = from_folders(*_dirs(tmp_path), "train", colors=csv)
    val = from_folders(*_dirs(tmp_path), "val", colors=csv)
    assert len(train) == 3 and len(val) == 2 and train.splits == ["train", "val", "all"]
    assert all("/val/" in i.replace(os.sep, "/") for i, _ in val.pairs)
    assert len(from_folders(*_dirs(tmp_path), "all", colors=csv)) == 5
    make_folder_pair(tmp_path, ["stray"])  # beside the split folders: reported, not used
    with pytest.warns(UserWarning, match=r"2 file\(s\) outside the split folders \['train', 'val'\].*stray\.jpg"):
        stray = from_folders(*_dirs(tmp_path), "all", colors=csv)
    assert len(stray) == 5 and sorted(os.path.basename(p) for p in stray.outside) == ["stray.jpg", "stray.png"]
    with pytest.raises(ValueError, match=r"`split` must be one of \['train', 'val', 'all'\].*test"):
        from_folders(*_dirs(tmp_path), "test", colors=csv)


def test_index_masks_palette_grayscale_16bit_and_equal_channel_rgb(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(6, 7)).astype(np.uint8)
    labels[0, 0] = 255
    for name in ("pal", "grey", "deep", "rgb"):
        Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(images / f"{name}.png")
    pal = Image.fromarray(labels, mode="P")
    pal.putpalette(voc_palette().reshape(-1).tolist())
    pal.save(masks / "pal.png")
    Image.fromarray(labels).save(masks / "grey.png")
    Image.fromarray(labels.astype(np.uint16)).save(masks / "deep.png")
    Image.fromarray(np.repeat(labels[..., None], 3, -1)).save(masks / "rgb.png")
    src = from_folders(images, masks, "all", num_classes=5)
    assert src.class_names == tuple(f"class_{i}" for i in range(5))
    for _, mask in src:
        np.testing.assert_array_equal(mask, labels)


def test_voc_colour_table_reads_colour_masks_with_void(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    labels = np.array([[0, 1, 15], [20, 255, 7]], np.uint8)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(images / "a.png")
    Image.fromarray(voc_palette()[labels]).save(masks / "a.png")  # RGB, as tools export it
    src = from_folders(images, masks, "all", colors="voc")
    assert src.num_classes == 21 and src.class_names[15] == "person"
    np.testing.assert_array_equal(next(iter(src))[1], labels)


@pytest.mark.parametrize("form", ["dict_int", "dict_name", "json_dict", "json_list", "csv_id"])
def test_colour_table_forms(tmp_path, form):
    colours = {(10, 20, 30): "road", (200, 0, 0): "car", (0, 0, 0): "void"}
    path = tmp_path / "table"
    if form == "dict_int":
        table, names = {(10, 20, 30): 0, (200, 0, 0): 1, (0, 0, 0): 255}, ("class_0", "class_1")
    elif form == "dict_name":
        table, names = {k: v for k, v in colours.items() if v != "void"}, ("road", "car")
    elif form == "json_dict":
        path = path.with_suffix(".json")
        path.write_text(json.dumps({"road": [10, 20, 30], "car": [200, 0, 0]}))
        table, names = str(path), ("road", "car")
    elif form == "json_list":
        path = path.with_suffix(".json")
        path.write_text(json.dumps([{"name": "road", "color": [10, 20, 30]},
                                    {"name": "car", "r": 200, "g": 0, "b": 0},
                                    {"name": "void", "color": [0, 0, 0], "id": 255}]))
        table, names = str(path), ("road", "car")
    else:
        path = path.with_suffix(".csv")
        path.write_text("name,id,r,g,b\nroad,0,10,20,30\ncar,1,200,0,0\nvoid,255,0,0,0\n")
        table, names = str(path), ("road", "car")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rgb = np.array([[[10, 20, 30], [200, 0, 0]]], np.uint8)
    expected = [[0, 1]]
    if form in ("dict_int", "json_list", "csv_id"):
        rgb = np.concatenate([rgb, [[[0, 0, 0], [10, 20, 30]]]]).astype(np.uint8)
        expected = [[0, 1], [255, 0]]
    Image.fromarray(np.zeros(rgb.shape, np.uint8)).save(images / "a.png")
    Image.fromarray(rgb).save(masks / "a.png")
    src = from_folders(images, masks, "all", colors=table)
    assert src.class_names == names
    np.testing.assert_array_equal(next(iter(src))[1], expected)


def test_malformed_colour_table_names_the_file_and_line(tmp_path):
    make_folder_pair(tmp_path, ["a"])
    bad = tmp_path / "bad.csv"
    bad.write_text("name,r,g,b\nsky,1,2,3\nroad,1,two,3\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 3 must be `name,r,g,b`.*'road,1,two,3'"):
        from_folders(*_dirs(tmp_path), "all", colors=str(bad))
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        from_folders(*_dirs(tmp_path), "all", colors=str(tmp_path / "missing.csv"))
    twice = tmp_path / "twice.csv"
    twice.write_text("name,r,g,b\nsky,1,2,3\nroad,9,9,9\ncar,1,2,3\n")
    with pytest.raises(ValueError, match=r"twice\.csv: each colour must appear once.*\(1, 2, 3\) 2 times"):
        from_folders(*_dirs(tmp_path), "all", colors=str(twice))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20))
    with pytest.raises(ValueError, match=r"big\.json: a colour table must be at most"):
        from_folders(*_dirs(tmp_path), "all", colors=str(big))


def test_unknown_colour_names_file_colour_count_and_edge_cause(tmp_path):
    make_folder_pair(tmp_path, ["a", "b"])
    mask = colour_mask(np.zeros((24, 32), np.uint8))
    mask[5, 5:8] = (100, 100, 101)  # an anti-aliased edge pixel colour
    Image.fromarray(mask).save(tmp_path / "masks" / "b.png")
    csv = write_class_dict(tmp_path / "c.csv")
    src = from_folders(*_dirs(tmp_path), "all", colors=csv)
    with pytest.raises(DataError, match=r"b\.png: colour \(100, 100, 101\) is not in the colour "
                                        r"table.*3 of 768 pixels.*anti-aliased"):
        list(src)
    ignored = from_folders(*_dirs(tmp_path), "all", colors=csv, unknown_color="ignore")
    masks = dict(zip([os.path.basename(m) for _, m in ignored.pairs], [m for _, m in ignored]))
    assert (masks["b.png"][5, 5:8] == 255).all() and (masks["b.png"] != 255).sum() == 768 - 3


def test_colour_mask_without_a_table_says_what_to_give(tmp_path):
    make_folder_pair(tmp_path, ["a"])
    src = from_folders(*_dirs(tmp_path), "all", num_classes=4)
    with pytest.raises(DataError, match=r"a\.png: a colour mask .* needs a colour table.*--colors"):
        list(src)


def _break(root, name):
    """Makes example `name` of the index-mask folder pair in `root` bad; returns the pattern
    its error must match."""
    if name == "b":
        (root / "images" / "b.jpg").write_bytes(b"not a jpeg")
        return r"b\.jpg: not an image file"
    if name == "c":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "c.png")
        return r"c\.png: the mask must be the size of its image"
    labels = np.zeros((24, 32), np.uint8)
    labels[0, 0] = 9
    Image.fromarray(labels).save(root / "masks" / "d.png")
    return r"d\.png: label 9 is not a class"


@pytest.mark.parametrize("name", ["b", "c", "d"])
def test_a_bad_example_names_its_file(tmp_path, name):
    make_folder_pair(tmp_path, ["a", name], colour=False)
    pattern = _break(tmp_path, name)
    with pytest.raises(DataError, match=pattern):
        list(from_folders(*_dirs(tmp_path), "all", num_classes=4))


def test_skip_invalid_skips_and_counts_bad_examples(tmp_path):
    make_folder_pair(tmp_path, ["a", "b", "c", "d"], colour=False)
    for name in "bcd":
        _break(tmp_path, name)
    src = from_folders(*_dirs(tmp_path), "all", num_classes=4, skip_invalid=True)
    with pytest.warns(UserWarning, match="skipped"):
        good = list(src)
    assert len(good) == 1 and len(src.skipped) == 3


def test_folder_and_argument_errors(tmp_path):
    make_folder_pair(tmp_path, ["a"])
    with pytest.raises(FileNotFoundError, match="masks folder must exist"):
        from_folders(tmp_path / "images", tmp_path / "nope", num_classes=4)
    with pytest.raises(ValueError, match=r"Index masks need the number of classes"):
        from_folders(*_dirs(tmp_path), "all")
    with pytest.raises(ValueError, match=r"`val_fraction` must be within \[0, 1\)"):
        from_folders(*_dirs(tmp_path), num_classes=4, val_fraction=1.5)
    with pytest.raises(ValueError, match=r"hash split of the 1 pairs .* at least one in 'val'. "
                                         r"Received: val_fraction=0.0"):
        from_folders(*_dirs(tmp_path), "val", num_classes=4, val_fraction=0.0)
    (tmp_path / "other").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "other" / "zzz.png")
    with pytest.raises(ValueError, match=r"must hold image / mask pairs.*masks such as .*zzz\.png"):
        from_folders(tmp_path / "images", tmp_path / "other", "all", num_classes=4)


def test_from_spec_and_pipeline(tmp_path):
    make_folder_pair(tmp_path, NAMES)
    csv = write_class_dict(tmp_path / "c.csv")
    src = data.from_spec(f"folders:{tmp_path / 'images'},{tmp_path / 'masks'}", "all", colors=csv)
    assert src.name == "folders" and len(src) == len(NAMES)
    images, masks = next(iter(data.pipeline(src, batch_size=2, crop_size=16, training=True, seed=0)))
    assert images.shape == (2, 16, 16, 3) and masks.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="folders:IMAGES,MASKS"):
        data.from_spec(f"folders:{tmp_path / 'images'}")


def test_a_mask_bomb_is_refused_from_its_header(tmp_path):
    """A colour mask declaring 10000 x 9000 pixels (just over the limit; header only, no pixel
    data): refused by name before decoding, and `max_pixels` raises the limit."""
    from tests.bombs import write_png

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    write_png(tmp_path / "masks" / "a.png", 10000, 9000, data=False)
    src = _quiet_folders(tmp_path / "images", tmp_path / "masks", split="all", colors="voc")
    with pytest.raises(DataError, match=r"a\.png: 10000x9000 pixels .*exceeds the limit"):
        list(src)
    src = _quiet_folders(tmp_path / "images", tmp_path / "masks", split="all", colors="voc",
                         max_pixels=10000 * 9000)
    with pytest.raises(DataError, match="cannot decode the mask"):  # past the check: a truncated file
        list(src)
