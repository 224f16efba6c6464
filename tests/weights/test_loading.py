"""Loading weights: files that do not fit fail completely and clearly; every source kind loads."""

import hashlib

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras.weights import WeightsMismatchError, zoo
from tests.reference import caffe_nets


def _snapshot(model):
    return [w.copy() for w in model.get_weights()]


def _unchanged(model, before):
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_alexnet_file_into_vgg16_names_layers_and_shapes(tmp_path):
    spec = caffe_nets.alexnet_fcn(num_classes=21, width=0.125)
    path = tmp_path / "fcn-alexnet.caffemodel"
    caffe_nets.random_caffemodel(spec, path)
    model = fcn_keras.build("vgg16", "32s", num_classes=21, width=0.125)
    before = _snapshot(model)
    with pytest.raises(WeightsMismatchError) as info:
        fcn_keras.weights.load(model, str(path))
    message = str(info.value)
    assert "fcn-alexnet.caffemodel" in message and "nothing was loaded" in message
    # fc6 exists in both: the message gives the layer and both shapes (Caffe layout).
    assert "'fc6' -> Keras layer 'fc6' weights: the file has shape (512, 32, 6, 6), the model needs (512, 64, 7, 7)" \
        in message
    assert "upscore" in message  # k63 (AlexNet) vs k64 (VGG16)
    assert "model layers not in the file: conv1_1" in message
    assert "file layers the model does not have: conv1, conv2" in message
    assert _unchanged(model, before)


def _small_fcn_file(tmp_path, head="32s", num_classes=21, width=0.125, seed=0):
    spec = caffe_nets.vgg16_fcn(head, num_classes=num_classes, width=width)
    path = tmp_path / f"{head}-{num_classes}.caffemodel"
    caffe_nets.random_caffemodel(spec, path, seed=seed)
    return str(path)


def test_wrong_number_of_classes(tmp_path):
    path = _small_fcn_file(tmp_path, num_classes=21)
    model = fcn_keras.build("vgg16", "32s", num_classes=5, width=0.125)
    before = _snapshot(model)
    with pytest.raises(WeightsMismatchError, match=r"'score_fr' weights: the file has shape \(21, 512, 1, 1\), "
                                                   r"the model needs \(5, 512, 1, 1\)"):
        fcn_keras.weights.load(model, path)
    assert _unchanged(model, before)


def test_wrong_head(tmp_path):
    path = _small_fcn_file(tmp_path, head="8s")
    model = fcn_keras.build("vgg16", "32s", width=0.125)
    with pytest.raises(WeightsMismatchError) as info:
        fcn_keras.weights.load(model, path)
    assert "model layers not in the file: upscore" in str(info.value)
    assert "score_pool4" in str(info.value) and "upscore8" in str(info.value)


def test_atonce_scale_must_match(tmp_path):
    spec = caffe_nets.vgg16_fcn("8s-atonce", width=0.125)
    layers = caffe_nets.random_blobs(spec, seed=0)
    layers = [(n, t, [np.full_like(a[0], 0.5)] if n == "scale_pool4" else a) for n, t, a in layers]
    path = tmp_path / "atonce.caffemodel"
    from fcn_keras.weights.caffemodel import write_caffemodel

    write_caffemodel(path, layers)
    model = fcn_keras.build("vgg16", "8s-atonce", width=0.125)
    with pytest.raises(WeightsMismatchError, match=r"'scale_pool4' fixed scale: the file has shape values \[0.5\]"):
        fcn_keras.weights.load(model, str(path))
    # The reference's 8s at-once file does not load into the plain 8s model either.
    good = _small_fcn_file(tmp_path, head="8s-atonce")
    with pytest.raises(WeightsMismatchError, match="scale_pool4"):
        fcn_keras.build("vgg16", "8s", width=0.125, weights=good)


def test_keras_files_round_trip_and_fail_whole(tmp_path, rgb):
    path = _small_fcn_file(tmp_path)
    model = fcn_keras.build("vgg16", "32s", width=0.125, weights=path)
    image = rgb(40, 50)[None]
    expected = keras.ops.convert_to_numpy(model(image))
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.keras")
    for f in ("m.weights.h5", "m.keras"):
        again = fcn_keras.build("vgg16", "32s", width=0.125, weights=str(tmp_path / f))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(image)), expected)
    other = fcn_keras.build("vgg16", "32s", num_classes=5, width=0.125)
    before = _snapshot(other)
    with pytest.raises(Exception):
        fcn_keras.weights.load(other, str(tmp_path / "m.weights.h5"))
    assert _unchanged(other, before)


def test_bad_weights_arguments(tmp_path):
    model = fcn_keras.build("vgg16", "32s", width=0.125)
    with pytest.raises(ValueError, match=r"zoo name \(.*voc-fcn8s.*Received: weights='vgg'"):
        fcn_keras.weights.load(model, "vgg")
    with pytest.raises(FileNotFoundError, match="missing.caffemodel"):
        fcn_keras.weights.load(model, str(tmp_path / "missing.caffemodel"))
    with pytest.raises(ValueError, match=r"FCN-8s on vgg16 with 21 classes: build it with "
                                         r"fcn_keras.build\('vgg16', '8s', num_classes=21"):
        fcn_keras.weights.load(model, "voc-fcn8s")
    with pytest.raises(ValueError, match="width=1.0"):
        fcn_keras.build("vgg16", "8s", width=0.125, weights="voc-fcn8s")
    with pytest.raises(ValueError, match="width=1.0"):
        fcn_keras.build("vgg16", "8s", width=0.125, weights="imagenet")


def test_zoo_offline_not_cached_error(keras_home, monkeypatch, closed_port):
    """voc-fcn8s with no network and no cache: the error names URL, file and place."""
    source = zoo.ENTRIES["voc-fcn8s"]["source"]
    url = f"http://127.0.0.1:{closed_port}/fcn8s-heavy-pascal.caffemodel"
    monkeypatch.setitem(source, "urls", (url,))
    with pytest.raises(fcn_keras.weights.DownloadError) as info:
        fcn_keras.weights.fetch("voc-fcn8s")  # what build(..., weights="voc-fcn8s") calls
    message = str(info.value)
    assert url in message and str(keras_home / "models" / "fcn8s-heavy-pascal.caffemodel") in message


@pytest.mark.slow  # full-width nets: GoogLeNet converted, VGG16 ImageNet, FCN-AlexNet
def test_zoo_caffemodel_downloads_converts_and_caches(http_server, keras_home, monkeypatch, rgb):
    """weights='imagenet' for GoogLeNet end to end: download from a local server, verify,
    convert, cache; the second build needs neither the server nor the caffemodel."""
    spec = caffe_nets.googlenet_classifier(width=1.0, size=224)
    served = http_server.root / "bvlc_googlenet.caffemodel"
    layers = caffe_nets.random_caffemodel(spec, served, seed=9, extra=caffe_nets.GOOGLENET_AUX)
    sha1 = hashlib.sha1(served.read_bytes()).hexdigest()
    source = zoo.IMAGENET["googlenet"]["source"]
    monkeypatch.setitem(source, "urls", (http_server.url("bvlc_googlenet.caffemodel"),))
    monkeypatch.setitem(source, "checksum", f"sha1:{sha1}")

    model = fcn_keras.build("googlenet", "32s", num_classes=3, weights="imagenet")
    want = dict((n, a) for n, _, a in layers)["inception_5b/5x5"][0].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.get_layer("inception_5b_5x5").get_weights()[0], want)
    converted = keras_home / "models" / "fcn_keras" / "googlenet-imagenet.converted.h5"
    assert converted.exists() and (keras_home / "models" / "bvlc_googlenet.caffemodel").exists()

    http_server.stop()
    (keras_home / "models" / "bvlc_googlenet.caffemodel").unlink()
    again = fcn_keras.build("googlenet", "8s", num_classes=7, weights="imagenet")
    np.testing.assert_array_equal(again.get_layer("inception_5b_5x5").get_weights()[0], want)
    assert not any(again.get_layer("score_fr").get_weights()[0].ravel())


@pytest.fixture
def keras_vgg16_file(tmp_path):
    """Keras' VGG16 ImageNet file layout, written by Keras' own legacy HDF5 writer (the
    layout of vgg16_weights_tf_dim_ordering_tf_kernels.h5), from a randomly initialised VGG16."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    vgg = keras.applications.VGG16(weights=None)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, vgg)
    return vgg, path


@pytest.mark.slow  # full-width nets: GoogLeNet converted, VGG16 ImageNet, FCN-AlexNet
def test_vgg16_imagenet_from_keras_file(keras_vgg16_file, http_server, keras_home, monkeypatch, rgb):
    """weights='imagenet' for VGG16 end to end: Keras' file from a local server, md5-checked,
    converted (fc1/fc2 -> 7x7 fc6 / 1x1 fc7) and cached. The backbone's fc7 on a 224x224
    image equals keras.applications.VGG16's fc2; the second load uses only the cache."""
    vgg, path = keras_vgg16_file
    data = path.read_bytes()
    (http_server.root / path.name).write_bytes(data)
    source = zoo.IMAGENET["vgg16"]["source"]
    monkeypatch.setitem(source, "urls", (http_server.url(path.name),))
    monkeypatch.setitem(source, "checksum", "md5:" + hashlib.md5(data).hexdigest())

    backbone = fcn_keras.build_backbone("vgg16", first_pad=1)  # the classifier's own pad
    fcn_keras.weights.load(backbone, "imagenet")
    assert backbone.count_params() == zoo.get("vgg16-imagenet")["num_params"]
    image = rgb(224, 224).astype("float32")
    # Same input on both sides: BGR minus the FCN data layer's mean (Keras' own
    # preprocess_input subtracts the ImageNet mean 103.939, 116.779, 123.68 instead).
    bgr = image[None, ..., ::-1] - np.array(caffe_nets.BGR_MEAN, "float32")
    fc2 = keras.Model(vgg.input, vgg.get_layer("fc2").output)
    want = keras.ops.convert_to_numpy(fc2(bgr))[0]
    got = keras.ops.convert_to_numpy(backbone(image[None])["fc7"])[0]
    assert got.shape == (1, 1, 4096) and np.abs(want).max() > 0
    assert caffe_nets.rel_error(got[0, 0], want) <= 1e-4

    assert (keras_home / "models" / "fcn_keras" / "vgg16-imagenet.converted.h5").exists()
    http_server.stop()
    (keras_home / "models" / path.name).unlink()
    fc6 = backbone.get_layer("fc6")
    fc6.set_weights([np.zeros_like(w) for w in fc6.get_weights()])
    fcn_keras.weights.load(backbone, "imagenet")
    np.testing.assert_array_equal(fc6.get_weights()[0], vgg.get_layer("fc1").get_weights()[0].reshape(7, 7, 512, 4096))


@pytest.mark.slow  # full-width nets: GoogLeNet converted, VGG16 ImageNet, FCN-AlexNet
def test_zoo_fcn_entry_from_a_file_put_in_the_cache(keras_home, rgb):
    """voc-fcn-alexnet (no published checksum) offline: the user puts the file into
    $KERAS_HOME/models/; build(weights=name) uses it, converts once, and then needs only the cache."""
    spec = caffe_nets.alexnet_fcn(num_classes=21, width=1.0)
    (keras_home / "models").mkdir()
    placed = keras_home / "models" / "fcn-alexnet-pascal.caffemodel"
    layers = {n: a for n, _, a in caffe_nets.random_caffemodel(spec, placed, seed=11)}
    model = fcn_keras.build("alexnet", "32s", weights="voc-fcn-alexnet")
    want = layers["upscore"][0].transpose(2, 3, 1, 0)  # Caffe deconv (Cin, Cout, k, k) -> Keras (k, k, Cout, Cin)
    np.testing.assert_array_equal(model.get_layer("upscore").get_weights()[0], want)
    assert model.count_params() == zoo.get("voc-fcn-alexnet")["num_params"]
    placed.unlink()
    model.get_layer("upscore").set_weights([np.zeros_like(want)])
    fcn_keras.weights.load(model, "voc-fcn-alexnet")  # from $KERAS_HOME/models/fcn_keras/ only
    np.testing.assert_array_equal(model.get_layer("upscore").get_weights()[0], want)
    # The zoo name alone implies the architecture (alexnet, 32s, 21 classes).
    implied = fcn_keras.build(weights="voc-fcn-alexnet")
    assert (implied.backbone_name, implied.head_name, implied.num_classes) == ("alexnet", "32s", 21)
    np.testing.assert_array_equal(implied.get_layer("upscore").get_weights()[0], want)
