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
def trained_alexnet(shapes_alexnet):
    """FCN-8s AlexNet (width 0.125, 4 classes) trained 6 epochs on 256 synthetic 64 px images
    (tests/conftest.py's `shapes_alexnet`): a model whose labels mean something, for int8 tests."""
    return shapes_alexnet.model
