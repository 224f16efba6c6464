"""Class statistics, class weights and the full read-through (`survey`) on real files."""

import numpy as np
import pytest

from fcn_keras import data

from .conftest import make_folder_pair, write_class_dict


def _source(root, names, **kwargs):
    make_folder_pair(root, names)
    return data.from_folders(root / "images", root / "masks", "all",
                             colors=write_class_dict(root / "c.csv"), **kwargs)


def test_class_frequencies_count_pixels_per_class(tmp_path):
    truth = make_folder_pair(tmp_path, ["a", "b", "c"])
    src = data.from_folders(tmp_path / "images", tmp_path / "masks", "all",
                            colors=write_class_dict(tmp_path / "c.csv"))
    expected = sum(np.bincount(t.reshape(-1), minlength=4) for t in truth.values())
    np.testing.assert_array_equal(data.class_frequencies(src), expected)


def test_class_frequencies_leave_out_the_ignore_label():
    src = data.shapes("val", num_examples=2, image_size=24)
    masks = [m for _, m in src]
    assert any((m == 255).any() for m in masks)
    expected = sum(np.bincount(m[m != 255], minlength=4) for m in masks)
    np.testing.assert_array_equal(data.class_frequencies(src), expected)


def test_class_weights_by_hand():
    # shares 0.5, 0.3, 0.15, 0.05, 0: median of the present ones 0.225
    freq = [500, 300, 150, 50, 0]
    np.testing.assert_allclose(data.class_weights(freq), [0.45, 0.75, 1.5, 4.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(data.class_weights(freq, "inverse_sqrt"),
                               np.sqrt([0.45, 0.75, 1.5, 4.5, 0.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="`method` must be one of"):
        data.class_weights(freq, "log")
    with pytest.raises(ValueError, match="non-negative counts with a positive sum"):
        data.class_weights([0, 0])


def test_survey_keeps_going_past_bad_files(tmp_path):
    src = _source(tmp_path, ["a", "b", "c", "d"])
    (tmp_path / "images" / "b.jpg").write_bytes(b"broken")
    (tmp_path / "masks" / "d.png").write_bytes(b"")
    result = data.survey(src, progress=False)
    assert result.examples == 2 and result.sizes == [(24, 32), (24, 32)]
    assert [w.rsplit("/", 1)[-1] for w, _ in result.problems] == ["b.png", "d.png"]
    assert "b.jpg" in result.problems[0][1] and "d.png" in result.problems[1][1]
    assert result.pixels.sum() == 2 * 24 * 32 and (result.images_with == [2, 2, 2, 2]).all()
    assert not src.skip_invalid and src.skipped == []  # the source is left as it was


def test_compile_takes_a_method_and_the_source():
    """`compile(class_weights="median_frequency", source=src)`: the loss gets the source's
    median-frequency weights, exactly those of class_weights(class_frequencies(src))."""
    import fcn_keras

    src = data.shapes("val", num_examples=3, image_size=24)
    expected = data.class_weights(data.class_frequencies(src))
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    model.compile(class_weights="median_frequency", source=src)
    np.testing.assert_allclose(model.loss.class_weights, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="pass it as source="):
        model.compile(class_weights="median_frequency")
    with pytest.raises(ValueError, match="only read when `class_weights` names a method"):
        model.compile(class_weights=[1, 1, 1, 1], source=src)
