"""The SavedModel's `segment_bytes` signature: encoded photos in (a batch of different sizes,
PNG and JPEG), palette PNG label maps out, equal to `predict`'s labels, read by Pillow."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from fcn_keras.export import export
from fcn_keras.images import read_image
from fcn_keras.predict import Predictor


def photo(name, size):
    import skimage.data

    image = Image.open(os.path.join(os.path.dirname(skimage.data.__file__), name)).convert("RGB")
    return np.asarray(image.resize(size, Image.BILINEAR), np.uint8)


def encoded(rgb, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(vgg8s, tmp_path_factory):
    import tensorflow as tf

    path = str(tmp_path_factory.mktemp("sm") / "fcn")
    names = ["background", "cat", "mug", "sky"]
    palette = np.array([[0, 0, 0], [200, 10, 10], [10, 200, 10], [10, 10, 200]], np.uint8)
    export(vgg8s, path, "saved_model", class_names=names, palette=palette, verify=False)
    return path, names, palette, tf.saved_model.load(path).signatures["segment_bytes"]


def test_palette_pngs_equal_predict_labels(served, vgg8s, tmp_path):
    import tensorflow as tf

    path, names, palette, segment = served
    cat, mug = photo("chelsea.png", (117, 83)), photo("coffee.png", (96, 64))
    jpeg = encoded(mug, "JPEG", quality=90)
    out = segment(image_bytes=tf.constant([encoded(cat, "PNG"), jpeg]))
    assert [n.decode() for n in out["class_names"].numpy()] == names
    pngs = out["label_png_bytes"].numpy()
    assert len(pngs) == 2
    maps = []
    for png, rgb in zip(pngs, (cat, mug)):
        image = Image.open(io.BytesIO(png))
        image.load()  # Pillow checks every chunk's CRC
        assert image.mode == "P" and image.size == (rgb.shape[1], rgb.shape[0])
        assert image.getpalette()[:3 * len(names)] == palette.reshape(-1).tolist()
        maps.append(np.asarray(image))
    (tmp_path / "cat.png").write_bytes(encoded(cat, "PNG"))
    for predictor in (Predictor(vgg8s, max_size=0), Predictor(path, max_size=0)):  # Keras, the SavedModel
        expected = predictor.predict(read_image(str(tmp_path / "cat.png")), return_scores=False)[0]
        assert len(np.unique(expected)) > 1
        assert np.mean(maps[0] == expected) >= 0.999
    decoded = tf.io.decode_jpeg(jpeg).numpy()  # the pixels the signature saw (TensorFlow's JPEG decoder)
    expected = Predictor(vgg8s, max_size=0).predict(decoded, return_scores=False)[0]
    assert np.mean(maps[1] == expected) >= 0.999


def test_bad_bytes_are_an_error_not_a_label_map(served):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError):
        served[3](image_bytes=tf.constant([b"not an image"]))
