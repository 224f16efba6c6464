"""Data errors raised inside tf.data reach Python code as fcn_keras.data.DataError, naming the
file and the value, through a pipeline and through model.fit / evaluate / predict."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import fcn_keras
from fcn_keras import data

from .conftest import make_voc_tree, write_palette_png


@pytest.fixture
def bad_voc(tmp_path):
    """VOC trees whose 2nd image is broken: 'size' (a mask 5 px too wide), 'label' (a 37)
    and 'image' (an undecodable JPEG)."""
    trees = {}
    for kind in ("size", "label", "image"):
        root = str(tmp_path / kind)
        truth = make_voc_tree(root, {"train": ["a", "b", "c"]})
        mask = truth["b"][1].copy()
        if kind == "size":
            mask = np.zeros((mask.shape[0], mask.shape[1] + 5), np.uint8)
        elif kind == "label":
            mask[2, 3] = 37
        write_palette_png(mask, os.path.join(root, "SegmentationClass", "b.png"))
        if kind == "image":
            with open(os.path.join(root, "JPEGImages", "b.jpg"), "wb") as f:
                f.write(b"\xff\xd8 not a JPEG")
        trees[kind] = root
    return trees


MESSAGES = {
    "size": r"size/SegmentationClass/b\.png: the mask must be the size of its image. "
            r"Expected 32x23 \(WxH\). Received: mask size=37x23$",
    "label": r"label/SegmentationClass/b\.png: label 37 is not a class. Expected labels 0..20 "
             r"or 255 \(ignore\) for num_classes=21. Received: label=37 \(all invalid labels: \[37\]\)$",
    "image": r"image/JPEGImages/b\.jpg: (cannot decode|not an image file Pillow can identify)",
}


def _raises_data_error(kind):
    return pytest.raises(data.DataError, match=MESSAGES[kind])


def _plain(excinfo):
    """The DataError carries no chained TensorFlow error (no repeated traceback)."""
    e = excinfo.value
    assert type(e) is data.DataError
    assert e.__cause__ is None and e.__suppress_context__
    assert "Traceback" not in str(e) and "\n" not in str(e)


@pytest.mark.parametrize("kind", ["size", "label", "image"])
def test_pipeline_inside_the_helper(bad_voc, kind):
    ds = data.pipeline(data.from_directory(bad_voc[kind], "train"), batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(ds)  # TensorFlow's own error outside the helper
    with _raises_data_error(kind) as excinfo:
        with data.reraise_data_errors():
            for _ in ds:
                pass
    _plain(excinfo)


@pytest.mark.parametrize("kind", ["size", "label"])
def test_source_check_and_iteration(bad_voc, kind):
    src = data.from_directory(bad_voc[kind], "train")
    with _raises_data_error(kind) as excinfo:
        src.check()
    _plain(excinfo)
    with _raises_data_error(kind):
        list(src)


def test_model_fit_evaluate_predict_wrapped(bad_voc):
    model = fcn_keras.build("alexnet", "32s", num_classes=21, width=0.125)
    model.compile(optimizer="adam", metrics=[])
    for kind in ("size", "label"):
        train = data.pipeline(data.from_directory(bad_voc[kind], "train"), batch_size=1)
        with _raises_data_error(kind) as excinfo:
            with data.reraise_data_errors():
                model.fit(train, epochs=1, verbose=0)
        _plain(excinfo)
    with _raises_data_error("label"):
        with data.reraise_data_errors():
            model.evaluate(train, verbose=0)

    @data.reraise_data_errors()  # works as a decorator too
    def predict():
        return model.predict(data.pipeline(data.from_directory(bad_voc["image"], "train")),
                             verbose=0)

    with _raises_data_error("image"):
        predict()


def test_other_errors_pass_through():
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a data error"):
        with data.reraise_data_errors():
            list(tf.data.Dataset.range(1).map(
                lambda x: tf.debugging.Assert(x < 0, ["not a data error"]) and x))
    with pytest.raises(KeyError):
        with data.reraise_data_errors():
            raise KeyError("x")


def test_skip_invalid_drops_all_three(bad_voc):
    for kind in ("size", "label", "image"):
        src = data.from_directory(bad_voc[kind], "train", skip_invalid=True)
        with pytest.warns(UserWarning, match="skipped"):
            assert src.check() == 2
        assert [w.rsplit("/", 1)[1] for w, _ in src.skipped] == ["b.png"]


def test_quotes_and_non_ascii_names_survive(tmp_path):
    root = str(tmp_path / "voc")
    make_voc_tree(root, {"train": ["l'été"]})
    path = os.path.join(root, "SegmentationClass", "l'été.png")
    write_palette_png(np.full((3, 4), 40, np.uint8), path)
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(
        os.path.join(root, "JPEGImages", "l'été.jpg"))
    with pytest.raises(data.DataError) as excinfo:
        with data.reraise_data_errors():
            list(data.pipeline(data.from_directory(root, "train")))
    assert str(excinfo.value).startswith(f"{path}: label 40 is not a class.")
