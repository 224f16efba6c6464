"""The converted-weights cache is verified, not trusted on its attributes: a planted or damaged
file is converted again (a warning names it), and a folder others can write to is refused."""

import hashlib
import os

import numpy as np
import pytest

import fcn_keras
from fcn_keras.weights import converted_path, mapping, zoo
from tests.reference import caffe_nets

pytestmark = pytest.mark.slow  # converts a full-width GoogLeNet each time


@pytest.fixture
def googlenet_source(keras_home, monkeypatch):
    """BVLC GoogLeNet's file (random weights) in the download cache, its checksum the zoo's."""
    (keras_home / "models").mkdir()
    placed = keras_home / "models" / zoo.IMAGENET["googlenet"]["source"]["filename"]
    spec = caffe_nets.googlenet_classifier(width=1.0, size=224)
    layers = {n: a for n, _, a in caffe_nets.random_caffemodel(spec, placed, seed=3, extra=caffe_nets.GOOGLENET_AUX)}
    source = zoo.IMAGENET["googlenet"]["source"]
    monkeypatch.setitem(source, "urls", ())
    monkeypatch.setitem(source, "checksum", "sha1:" + hashlib.sha1(placed.read_bytes()).hexdigest())
    return layers["inception_5b/5x5"][0].transpose(2, 3, 1, 0)


def _build():
    return fcn_keras.build("googlenet", "32s", num_classes=3, weights="imagenet")


def test_a_planted_cache_file_with_the_right_checksum_attribute_is_not_trusted(googlenet_source):
    model = _build()  # converts and caches
    cached = converted_path("googlenet-imagenet")
    values, meta = mapping.load_converted(cached)
    values["inception_5b_5x5"][0] = np.full_like(values["inception_5b_5x5"][0], np.nan)
    mapping.save_converted(cached, values, meta)  # the same attributes, planted values
    with pytest.warns(UserWarning, match="googlenet-imagenet.converted.h5.*converting again"):
        again = _build()
    np.testing.assert_array_equal(again.get_layer("inception_5b_5x5").get_weights()[0], googlenet_source)
    assert np.isfinite(mapping.load_converted(cached)[0]["inception_5b_5x5"][0]).all()
    del model


def test_a_damaged_cache_file_is_named_and_converted_again(googlenet_source):
    _build()
    cached = converted_path("googlenet-imagenet")
    with open(cached, "r+b") as f:
        f.truncate(os.path.getsize(cached) // 2)
    with pytest.warns(UserWarning, match="googlenet-imagenet.converted.h5"):
        again = _build()
    np.testing.assert_array_equal(again.get_layer("inception_5b_5x5").get_weights()[0], googlenet_source)


def test_a_cache_folder_others_can_write_to_is_refused(googlenet_source):
    folder = os.path.dirname(converted_path("googlenet-imagenet"))
    os.makedirs(folder)
    os.chmod(folder, 0o777)
    with pytest.raises(PermissionError, match=f"{folder}.*other users can write"):
        _build()
    os.chmod(folder, 0o755)
    _build()
