"""Fixtures for the export tests (models from export_helpers, a trained small FCN)."""

import numpy as np
import pytest

from export_helpers import small_model


@pytest.fixture(scope="session")
def vgg8s():
    return small_model("vgg16", "8s")


@pytest.fixture(scope="session")
def vgg8s_keras_file(vgg8s, tmp_path_factory):
    p = tmp_path_factory.mktemp("keras") / "vgg8s.keras"
    vgg8s.save(p)
    return str(p)


@pytest.fixture(scope="session")
def val_batch():
    """Two shapes-val images centre-cropped to the odd size 83 x 117, as one uint8 batch."""
    import fcn_keras.data as fd

    ds = fd.pipeline(fd.shapes("val", num_examples=2), batch_size=2, crop_size=(83, 117))
    images, _ = next(iter(ds))
    return np.round(images.numpy()).astype(np.uint8)


@pytest.fixture(scope="session")
def trained_alexnet():
    """FCN-8s AlexNet (width 0.125, 4 classes) trained 6 epochs on 256 synthetic 64 px images
    (about a minute on 2 CPU cores): a model whose labels mean something, for int8 tests."""
    import keras

    import fcn_keras
    from fcn_keras import data, training

    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    train = data.pipeline(data.shapes("train", num_examples=256, image_size=64), batch_size=8,
                          training=True, seed=0, cache=True)
    training.train(model, train, None, epochs=6, verbose=0)
    return model
