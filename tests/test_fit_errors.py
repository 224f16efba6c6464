"""`model.fit` on what a new user passes it: each mistake is one clear line naming what is
wrong (not Keras' "Unrecognized data type" or a TensorFlow "Graph execution error")."""

import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras import data

from .conftest import make_tiny_voc


@pytest.fixture(scope="module")
def model():
    m = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    m.compile(optimizer="adam")
    return m


def _one_line(err):
    text = str(err.value)
    assert "\n" not in text and "Graph execution" not in text, text
    return text


def test_a_source_needs_a_pipeline(model):
    with pytest.raises(ValueError) as err:
        model.fit(data.shapes("train", num_examples=2), epochs=1, verbose=0)
    assert "fcn_keras.data.pipeline(source)" in _one_line(err)


def test_data_with_more_classes_than_the_model(model):
    with pytest.raises(ValueError) as err:  # shapes: 4 classes, the model 3
        model.fit(data.pipeline(data.shapes("train", num_examples=2)), epochs=1, verbose=0)
    text = _one_line(err)
    assert "label 3" in text and "3 classes" in text and "num_classes" in text


def test_numpy_masks_of_another_size(model):
    x = np.zeros((2, 32, 32, 3), "float32")
    with pytest.raises(ValueError) as err:
        model.fit(x, np.zeros((2, 30, 32), "int32"), epochs=1, verbose=0)
    assert "(2, 32, 32, 3)" in _one_line(err) and "(2, 30, 32)" in str(err.value)
    with pytest.raises(ValueError) as err:
        model.fit(x, np.full((2, 32, 32), 7, "int32"), epochs=1, verbose=0)
    assert "label 7" in _one_line(err)


def test_numpy_masks_with_a_channel_axis_train(model):
    x = np.zeros((2, 24, 24, 3), "uint8")
    history = model.fit(x, np.zeros((2, 24, 24, 1), "uint8"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_bad_mask_through_a_pipeline_names_the_file(tmp_path):
    root = tmp_path / "voc"
    make_tiny_voc(str(root))
    bad = root / "SegmentationClass" / "2012_000000.png"
    Image.new("L", (10, 10)).save(bad)
    m = fcn_keras.build("alexnet", "32s", num_classes=21, width=0.0625)
    m.compile(optimizer="adam")
    with pytest.raises(data.DataError) as err:
        m.fit(data.pipeline(data.from_directory(str(root), "train")), epochs=1, verbose=0)
    assert str(bad) in _one_line(err) and "size" in str(err.value)
