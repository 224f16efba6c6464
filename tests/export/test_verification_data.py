"""Verification and calibration images: padded like the data pipeline, padding never scored."""

import numpy as np
import pytest

from fcn_keras.conventions import IGNORE_LABEL
from fcn_keras.export import ExportError, Verification, fit_to_size, sample_images
from fcn_keras.export.verification import verification_items


def test_fit_to_size_matches_the_pipeline_eval_crop():
    import tensorflow as tf

    import fcn_keras.data as fd

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 150, 3), dtype=np.uint8)  # shorter, wider than 83 x 117
    mask = rng.integers(0, 4, (70, 150), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensors((image, mask))
    p_image, p_mask = next(iter(fd.pipeline(ds, crop_size=(83, 117))))
    img, m, own = fit_to_size(image, mask, (83, 117))
    assert img.dtype == np.uint8 and img.shape == (83, 117, 3)
    np.testing.assert_array_equal(img, np.round(p_image[0].numpy()))  # mean colour, rounded
    np.testing.assert_array_equal(m, p_mask[0].numpy())
    np.testing.assert_array_equal(own, p_mask[0].numpy() != IGNORE_LABEL)
    assert (img[~own] == (123, 117, 104)).all() and (~own).sum() == 13 * 117


def test_padding_and_unlabelled_pixels_are_not_scored():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    mask = np.zeros((50, 60), np.uint8)
    mask[:5] = IGNORE_LABEL  # an unlabelled band of the image itself
    opts = Verification(data=[image, (image, mask)], sizes=(None, (83, 117)))
    items = verification_items(opts, None, num_classes=4)
    assert [key for key, *_ in items] == ["native", "native", "83x117", "83x117"]
    (_, _, _, all_own), (_, _, _, labelled), (_, padded, _, own), (_, _, pmask, scored) = items
    assert all_own.all() and labelled.sum() == 45 * 60
    assert own.sum() == 50 * 60 and (padded[~own] == (123, 117, 104)).all()  # no mask: own pixels
    assert scored.sum() == 45 * 60 and (pmask[~scored] == IGNORE_LABEL).all()  # mask: labelled own pixels


def test_masks_with_labels_beyond_the_model_are_refused():
    image = np.zeros((8, 8, 3), np.uint8)
    opts = Verification(data=[(image, np.full((8, 8), 7, np.uint8))], sizes=(None,))
    with pytest.raises(ExportError, match="labels 0..3 or 255. Received: label 7"):
        verification_items(opts, None, num_classes=4)


def test_sample_images_reads_specs_and_checks_lists():
    pairs = sample_images("shapes", "val", 3)
    assert len(pairs) == 3 and all(i.dtype == np.uint8 and i.shape[:2] == m.shape for i, m in pairs)
    assert {i.shape[:2] for i, _ in pairs} != {(64, 64)}  # val images have their own, varied sizes
    with pytest.raises(ExportError, match=r"`images`\[0\] must be an RGB image"):
        sample_images([np.zeros((4, 4))], arg="images")
    with pytest.raises(ExportError, match="pixel values 0..255"):
        sample_images([np.full((4, 4, 3), 300.0)])
    with pytest.raises(ExportError, match="voc:PATH"):
        sample_images("/no/such/folder")


def test_verify_takes_a_verification_object(tmp_path):
    from fcn_keras.export import verify

    with pytest.raises(ExportError, match="Received: verification='shapes'"):
        verify(tmp_path / "m.tflite", None, "shapes")
