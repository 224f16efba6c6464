"""The boundary F-score (Csurka et al. 2013) on hand-made masks whose answer is known."""

import numpy as np
import pytest

from fcn_keras.metrics import BoundaryF, boundary_f_scores


def _split(width, at):
    """100 x width: class 0 left of column `at`, class 1 from it."""
    mask = np.zeros((100, width), np.uint8)
    mask[:, at:] = 1
    return mask


def test_identical_maps_score_one_and_absent_classes_are_nan():
    truth = _split(100, 50)
    f = boundary_f_scores(truth, truth, 3)
    assert f[0] == f[1] == 1.0 and np.isnan(f[2])


def test_a_shift_within_the_tolerance_matches_and_beyond_it_does_not():
    truth = _split(100, 50)  # diagonal 141.4 px: the tolerance is 1.06 px
    np.testing.assert_array_equal(boundary_f_scores(truth, _split(100, 51), 2), [1.0, 1.0])
    np.testing.assert_array_equal(boundary_f_scores(truth, _split(100, 52), 2), [0.0, 0.0])
    # a wider tolerance (5% of the diagonal, 7.1 px) accepts the 2-pixel shift
    np.testing.assert_array_equal(boundary_f_scores(truth, _split(100, 52), 2, tolerance=0.05), [1.0, 1.0])


def test_half_the_true_boundary_found_gives_two_thirds():
    truth = np.zeros((100, 100), np.uint8)
    truth[:, 30:70] = 1               # edges at columns 29|30 and 69|70
    prediction = np.zeros_like(truth)
    prediction[:, 30:] = 1             # only the left edge (the image edge is no boundary)
    # precision 1 (every predicted edge pixel is a true one), recall 1/2: F = 2/3
    np.testing.assert_allclose(boundary_f_scores(truth, prediction, 2), [2 / 3, 2 / 3])


def test_void_bands_and_void_regions():
    truth = np.zeros((300, 300), np.uint8)   # tolerance 0.75% of 424 px = 3.2 px
    truth[97:203, 97:203] = 255              # a 3-pixel void band around the object, as in VOC
    truth[100:200, 100:200] = 1
    truth[:30, :30] = 255                    # and a void corner
    prediction = np.zeros_like(truth)
    prediction[98:202, 98:202] = 1           # the edge in the middle of the band
    prediction[5:20, 5:20] = 1               # a blob inside the void corner: not scored
    np.testing.assert_array_equal(boundary_f_scores(truth, prediction, 2), [1.0, 1.0])
    prediction[150:160, 150:160] = 0         # a hole in the object: predicted edges far from any true one
    f = boundary_f_scores(truth, prediction, 2)
    assert 0 < f[1] < 1 and 0 < f[0] < 1


def test_a_class_missed_entirely_scores_zero_and_the_mean_is_over_images():
    truth = _split(100, 50)
    missed = np.zeros_like(truth)
    np.testing.assert_array_equal(boundary_f_scores(truth, missed, 2), [0.0, 0.0])
    bf = BoundaryF(2)
    bf.update(truth, truth)        # image mean 1
    bf.update(truth, missed)       # image mean 0
    result = bf.result()
    assert result["boundary_f"] == pytest.approx(0.5)
    np.testing.assert_allclose(result["per_class_boundary_f"], [0.5, 0.5])


def test_shapes_must_match():
    with pytest.raises(ValueError, match="same"):
        boundary_f_scores(np.zeros((4, 4)), np.zeros((4, 5)), 2)


def test_an_image_without_scored_pixels_is_not_scored():
    truth = np.full((20, 20), 255, np.uint8)
    prediction = _split(20, 10)[:20]
    assert np.isnan(boundary_f_scores(truth, prediction, 2)).all()
