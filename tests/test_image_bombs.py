"""Decompression bombs and hostile data-set files: refused from the header, named by file.

Peak-memory figures of the same files through `predict`, `data.pipeline` and `from_directory`
are printed by benchmarks/image_bombs.py (not asserted here); these tests check what the
figures rest on: the pixel limit is applied before decoding, and 16-bit conversion and overlays
make no full-size float copy (tracemalloc sees every NumPy allocation).
"""

import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from fcn_keras import viz
from fcn_keras.data import DataError, from_directory
from fcn_keras.data import read_mask as data_read_mask
from fcn_keras.images import MAX_PIXELS, ImageError, read_image
from tests.bombs import write_png
from tests.data.conftest import make_voc_tree


def test_the_default_limit_is_pillows_warning_threshold():
    assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS == 89478485


@pytest.mark.parametrize("width, height", [(10000, 9000), (13000, 13000), (20000, 20000)])
def test_a_bomb_is_refused_from_its_header(tmp_path, width, height):
    """Header only, no pixel data: a reader that decoded first would fail to decode (or, above
    Pillow's hard limit, raise Pillow's own DecompressionBombError), not name the limit."""
    path = write_png(tmp_path / "bomb.png", width, height, data=False)
    with pytest.raises(ImageError, match=rf"bomb\.png: ({width}x{height}|{width * height}) pixels .* "
                                         rf"exceeds the limit of {MAX_PIXELS} pixels"):
        read_image(path)


def test_a_whole_bomb_is_refused(tmp_path):
    """10000 x 9000 RGB (90 MP, just over the limit), 0.3 MB: Pillow only warns about it."""
    path = write_png(tmp_path / "bomb.png", 10000, 9000)
    assert os.path.getsize(path) < 1 << 20
    with pytest.raises(ImageError, match=r"bomb\.png: 10000x9000 pixels"):
        read_image(path)


def test_max_pixels_raises_or_lowers_the_limit(tmp_path):
    path = write_png(tmp_path / "small.png", 100, 60)
    with pytest.raises(ImageError, match=r"small\.png: 100x60 pixels .* limit of 5999 pixels"):
        read_image(path, max_pixels=5999)
    assert read_image(path, max_pixels=6000).shape == (60, 100, 3)
    assert read_image(path, max_pixels=None).shape == (60, 100, 3)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=-1)


def _numpy_peak(fn, *args):
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_sixteen_bit_conversion_is_exact_and_makes_no_float_copy(tmp_path):
    """Every 16-bit value maps to round(v / 257); the old float64 path held 8+ bytes a pixel
    (several times over), the integer one about 2 (the samples) + 3 (the result) + a block."""
    h, w = 1024, 1024
    values = (np.arange(h * w) % 65536).astype(np.uint16).reshape(h, w)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    rgb, peak = _numpy_peak(read_image, path)
    want = np.rint(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(rgb, np.repeat(want[..., None], 3, -1))
    assert peak < 8 * h * w, f"peak {peak / (h * w):.1f} bytes a pixel"


def test_overlay_blends_in_row_blocks(tmp_path):
    """The same picture as a full-size float blend, with no full-size float32 copy."""
    rng = np.random.default_rng(0)
    h, w = 2000, 2000
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, 21, (h, w)).astype(np.uint8)
    labels[:10] = 255
    out, peak = _numpy_peak(viz.overlay, image, labels, 0.4)
    img = image.astype(np.float32)
    want = 0.6 * img + 0.4 * viz.colorize(labels).astype(np.float32)
    keep = (labels == 0) | (labels == 255)
    want[keep] = img[keep]
    np.testing.assert_array_equal(out, np.clip(np.rint(want), 0, 255).astype(np.uint8))
    assert peak < 4 * image.nbytes, f"peak {peak / image.nbytes:.1f} x the image"


def _voc(tmp_path, ids=("a", "b")):
    root = str(tmp_path / "VOC2012")
    make_voc_tree(root, {"train": list(ids)})
    return root


def test_a_bomb_in_a_data_set_image_is_named_by_the_image(tmp_path):
    root = _voc(tmp_path)
    write_png(os.path.join(root, "JPEGImages", "b.jpg"), 10000, 9000, data=False)  # a PNG named .jpg
    with pytest.raises(DataError, match=r"JPEGImages/b\.jpg: 10000x9000 pixels .* exceeds the limit") as e:
        list(from_directory(root, "train"))
    assert "SegmentationClass" not in str(e.value)
    assert len(list(from_directory(root, "train", skip_invalid=True))) == 1


def test_a_bomb_in_a_mask_is_named_by_the_mask(tmp_path):
    root = _voc(tmp_path)
    mask = os.path.join(root, "SegmentationClass", "a.png")
    write_png(mask, 13000, 13000, channels=1, data=False)
    with pytest.raises(DataError, match=r"SegmentationClass/a\.png: 13000x13000 pixels .* exceeds the limit"):
        data_read_mask(mask)
    with pytest.raises(DataError, match=r"SegmentationClass/a\.png: 13000x13000 pixels"):
        list(from_directory(root, "train"))


def test_max_pixels_reaches_the_data_set_reader(tmp_path):
    root = _voc(tmp_path)  # images of 20x30 and 23x32 pixels
    assert len(list(from_directory(root, "train", max_pixels=23 * 32))) == 2
    with pytest.raises(DataError, match=r"b\.jpg: 32x23 pixels .* limit of 700 pixels"):
        list(from_directory(root, "train", max_pixels=700))


@pytest.mark.parametrize("bad", ["../../../secret", "sub/a", "/etc/passwd", "..", "a\\b"])
def test_split_ids_cannot_leave_the_data_set(tmp_path, bad):
    root = _voc(tmp_path)
    os.makedirs(tmp_path / "secret", exist_ok=True)
    split = os.path.join(root, "ImageSets", "Segmentation", "train.txt")
    with open(split, "a") as f:
        f.write(bad + "\n")
    with pytest.raises(DataError, match=r"train\.txt: id 3: an id must be a plain file base name"):
        from_directory(root, "train")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import fcn_keras

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    fcn_keras.build("alexnet", "32s", num_classes=21, width=0.0625).save(path)
    return str(path)


def test_predict_refuses_a_bomb_and_takes_max_pixels(tiny_model, tmp_path, capsys):
    from fcn_keras.cli import main

    bomb = write_png(tmp_path / "bomb.png", 13000, 13000, data=False)  # the header is enough
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (90, 120, 30)).save(photo)
    assert main(["predict", str(bomb), str(photo), "--model", tiny_model, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "bomb.png: 13000x13000 pixels" in err and "exceeds the limit of 89478485" in err, err
    assert (tmp_path / "o" / "photo.png_labels.png").exists()
    assert not (tmp_path / "o" / "bomb.png_labels.png").exists()
    assert main(["predict", str(photo), "--model", tiny_model, "--out", str(tmp_path / "p"),
                 "--max-pixels", "1199"]) == 1
    assert "photo.png: 40x30 pixels (0.0 megapixels) exceeds the limit of 1199 pixels" in capsys.readouterr().err


def test_evaluate_takes_max_pixels(tiny_model, tmp_path, capsys):
    from fcn_keras.cli import main

    root = _voc(tmp_path)
    code = main(["evaluate", "--model", tiny_model, "--data", root, "--split", "train", "--max-pixels", "700"])
    err = capsys.readouterr().err
    assert code == 2 and "exceeds the limit of 700 pixels" in err and "Traceback" not in err, err
