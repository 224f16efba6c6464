"""fcn_keras.images: real files of every Pillow mode, read back to 8-bit RGB pixel for pixel."""

import numpy as np
import pytest
from PIL import Image

from fcn_keras import images
from fcn_keras.data import DataError
from fcn_keras.data import read_dataset_image
from fcn_keras.images import BACKGROUND, ImageError, read_image

H, W = 5, 7
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _save(tmp_path, name, im, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def test_rgb_and_greyscale_modes(tmp_path):
    np.testing.assert_array_equal(read_image(_save(tmp_path, "a.png", Image.fromarray(RGB))), RGB)
    grey = RGB[..., 0]
    out = read_image(_save(tmp_path, "l.png", Image.fromarray(grey, "L")))
    np.testing.assert_array_equal(out, np.stack([grey] * 3, -1))
    bits = grey > 127
    out = read_image(_save(tmp_path, "one.png", Image.fromarray(bits).convert("1")))
    assert Image.open(tmp_path / "one.png").mode == "1"
    np.testing.assert_array_equal(out[..., 1], np.where(bits, 255, 0))


def test_sixteen_bit_greyscale_spans_its_range(tmp_path):
    # A 16-bit PNG whose values span 0..65535: Pillow's own convert("RGB") clips it to white
    # almost everywhere (what made predictions blank); the reader scales by 257.
    values = np.linspace(0, 65535, H * W).round().astype(np.uint16).reshape(H, W)
    path = _save(tmp_path, "g16.png", Image.fromarray(values))
    assert Image.open(path).mode == "I;16"
    assert (np.asarray(Image.open(path).convert("RGB")) == 255).mean() > 0.9  # the old, wrong way
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out[..., 0], np.rint(values / 257.0).astype(np.uint8))
    assert out.min() == 0 and out.max() == 255
    # a "dark" 16-bit photo (values 256..4095, a 12-bit sensor) is not all white either
    dark = (RGB[..., 0].astype(np.uint16) * 16)
    out = read_image(_save(tmp_path, "dark.tif", Image.fromarray(dark)))
    np.testing.assert_array_equal(out[..., 2], np.rint(dark / 257.0).astype(np.uint8))


def test_sixteen_bit_colour_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb16 = np.stack([np.linspace(0, 65535, H * W).reshape(H, W),
                      65535 - np.linspace(0, 65535, H * W).reshape(H, W),
                      np.full((H, W), 32896)], -1).round().astype(np.uint16)
    path = str(tmp_path / "rgb16.png")
    assert cv2.imwrite(path, rgb16[..., ::-1])
    out = read_image(path)
    assert np.abs(out.astype(int) - np.rint(rgb16 / 257.0)).max() <= 1
    assert out.min() == 0 and out.max() == 255


def test_thirty_two_bit_integer_and_float(tmp_path):
    values = np.linspace(0, 65535, H * W).round().astype(np.int32).reshape(H, W)
    out = read_image(_save(tmp_path, "i.tif", Image.fromarray(values, "I")))
    np.testing.assert_array_equal(out[..., 0], np.rint(values / 257.0).astype(np.uint8))
    with pytest.raises(ImageError, match=r"big\.tif.*'I'.*70000"):
        read_image(_save(tmp_path, "big.tif", Image.fromarray(values + 70000 - values.max(), "I")))

    unit = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    out = read_image(_save(tmp_path, "f1.tif", Image.fromarray(unit, "F")))
    np.testing.assert_array_equal(out[..., 0], np.rint(unit.astype(np.float64) * 255.0).astype(np.uint8))
    eight = unit * 200 + 3
    out = read_image(_save(tmp_path, "f255.tif", Image.fromarray(eight, "F")))
    np.testing.assert_array_equal(out[..., 1], np.rint(eight.astype(np.float64)).astype(np.uint8))
    with pytest.raises(ImageError, match=r"neg\.tif.*'F'.*-1"):
        read_image(_save(tmp_path, "neg.tif", Image.fromarray(unit - 1, "F")))


def test_transparency_composites_on_the_mean_colour(tmp_path):
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, :3] = 255
    alpha[:, 3] = 128
    rgba = np.concatenate([RGB, alpha[..., None]], -1)
    out = read_image(_save(tmp_path, "rgba.png", Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(out[:, :3], RGB[:, :3])                 # opaque: the pixels
    np.testing.assert_array_equal(out[:, 4:], np.broadcast_to(BACKGROUND, (H, W - 4, 3)))
    half = (RGB[:, 3].astype(int) + np.array(BACKGROUND)) / 2             # half: a blend
    assert np.abs(out[:, 3] - half).max() <= 1.5

    la = np.stack([RGB[..., 0], alpha], -1)
    out = read_image(_save(tmp_path, "la.png", Image.fromarray(la, "LA")))
    np.testing.assert_array_equal(out[:, 0], np.stack([RGB[:, 0, 0]] * 3, -1))
    np.testing.assert_array_equal(out[:, 6], np.broadcast_to(BACKGROUND, (H, 3)))

    # a palette PNG with one transparent entry: its colour is replaced, the others kept
    pal = Image.fromarray((np.arange(H * W) % 3).reshape(H, W).astype(np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    path = _save(tmp_path, "p.png", pal, transparency=1)
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    out = read_image(path)
    idx = np.asarray(pal)
    np.testing.assert_array_equal(out[idx == 0], np.broadcast_to((255, 0, 0), ((idx == 0).sum(), 3)))
    np.testing.assert_array_equal(out[idx == 1], np.broadcast_to(BACKGROUND, ((idx == 1).sum(), 3)))
    np.testing.assert_array_equal(out[idx == 2], np.broadcast_to((0, 0, 255), ((idx == 2).sum(), 3)))
    pal.info.pop("transparency", None)
    out = read_image(_save(tmp_path, "p_opaque.png", pal))
    np.testing.assert_array_equal(out[idx == 1], np.broadcast_to((0, 255, 0), ((idx == 1).sum(), 3)))


def test_colour_spaces(tmp_path):
    # CMYK (pure magenta), YCbCr and LAB greys, in TIFF files that keep the mode
    out = read_image(_save(tmp_path, "cmyk.tif", Image.new("CMYK", (W, H), (0, 255, 0, 0))))
    np.testing.assert_array_equal(out[0, 0], (255, 0, 255))
    out = read_image(_save(tmp_path, "ycc.tif", Image.new("YCbCr", (W, H), (128, 128, 128))))
    np.testing.assert_array_equal(out[0, 0], (128, 128, 128))
    path = _save(tmp_path, "lab.tif", Image.new("LAB", (W, H), (128, 128, 128)))
    assert Image.open(path).mode == "LAB"
    out = read_image(path)
    assert np.abs(out[0, 0].astype(int) - 119).max() <= 1   # L* 50 -> sRGB grey 119
    # modes no file format here stores: through the same conversion
    np.testing.assert_array_equal(images.to_rgb(Image.new("HSV", (2, 2), (0, 255, 255)))[0, 0], (255, 0, 0))
    la = Image.new("LA", (2, 2), (200, 255)).convert("La")
    np.testing.assert_array_equal(images.to_rgb(la)[0, 0], (200, 200, 200))
    pa = Image.new("PA", (2, 2), (1, 0))
    pa.putpalette([9, 9, 9, 200, 100, 50])
    np.testing.assert_array_equal(images.to_rgb(pa)[0, 0], BACKGROUND)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = read_image(_save(tmp_path, "rot.png", im, exif=exif))
    assert out.shape == (W, H, 3)
    np.testing.assert_array_equal(out, np.rot90(RGB, k=-1))


def test_data_set_images_keep_their_stored_grid(tmp_path):
    # Masks are drawn on the stored pixels: a training image is not rotated by its EXIF tag.
    im = Image.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = 6
    path = _save(tmp_path, "rot.png", im, exif=exif)
    np.testing.assert_array_equal(read_dataset_image(path), RGB)
    np.testing.assert_array_equal(read_image(path, exif_orientation=False), RGB)


def test_undecodable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match=r"notes\.jpg"):
        read_image(bad)
    good = _save(tmp_path, "cut.png", Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png"):
        read_image(good)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_image(tmp_path / "nowhere.png")


def test_read_dataset_image_uses_the_same_reader(tmp_path):
    values = np.linspace(0, 65535, H * W).round().astype(np.uint16).reshape(H, W)
    path = _save(tmp_path, "g16.png", Image.fromarray(values))
    np.testing.assert_array_equal(read_dataset_image(path), read_image(path))
    with pytest.raises(DataError, match=r"missing\.jpg"):
        read_dataset_image(tmp_path / "missing.jpg")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"bad\.png"):
        read_dataset_image(tmp_path / "bad.png")
