"""Full-int8 TFLite of a trained small FCN-8s AlexNet (the `trained_alexnet` fixture): the default
targets (labels >= 97%, mean-IU loss <= 1 point on shapes:val) are met at about a quarter of the
float32 file; verification scores only the images' own labelled pixels, however much padding
brings them to a fixed size; and a file that computes something else is still refused."""

import os

import numpy as np
import pytest

from fcn_keras.conventions import IGNORE_LABEL
from fcn_keras.export import (TARGETS, ParityError, Targets, Verification, export, fit_to_size, runner,
                              sample_images, verify)

pytestmark = pytest.mark.slow  # the shapes_alexnet training run, int8 calibration

NO_LATENCY = Verification(latency=False)


@pytest.fixture(scope="module")
def int8_file(trained_alexnet, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("int8") / "m_int8.tflite")
    return export(trained_alexnet, path, quantize="int8", representative_data="shapes", verify=NO_LATENCY)


def test_trained_model_meets_the_int8_targets(trained_alexnet, int8_file, tmp_path):
    fp32 = export(trained_alexnet, str(tmp_path / "m.tflite"), verify=NO_LATENCY)
    report = int8_file.report
    assert report.passed and report.builtin_only
    assert report.mean_iou["keras"] > 50  # the model learned something: a real test of int8
    assert TARGETS["int8"] == Targets(min_label_agreement=0.97, max_miou_loss=1.0)
    assert report.overall.label_agreement >= 0.97
    assert report.mean_iou["loss_points"] <= 1.0
    ratio = os.path.getsize(int8_file.path) / os.path.getsize(fp32.path)
    assert 0.2 < ratio < 0.3, ratio


def test_padding_is_never_scored(trained_alexnet, int8_file, tmp_path):
    """Shapes:val images (64..128 px) padded to 160 x 160 are mostly padding (mean colour, mask
    255): the file passes, and each size's scored pixels are exactly the images' own labelled
    ones, with the agreement counted on them alone (checked here through the public runner)."""
    sizes = (None, (83, 117), (160, 160))
    report = verify(int8_file.path, trained_alexnet, Verification(sizes=sizes, num_images=4, latency=False),
                    report_path=str(tmp_path / "report.json"))
    assert report.passed
    run = runner(int8_file.path)
    pairs = sample_images("shapes", "val", 4)
    for size in sizes:
        scored = agree = padded = 0
        for image, mask in pairs:
            image, mask, own = fit_to_size(image, mask, size)
            keep = own & (mask != IGNORE_LABEL)
            keras_labels = trained_alexnet(image[None].astype(np.float32), training=False).numpy()[0].argmax(-1)
            labels = run(image[None])[0][0]
            scored += keep.sum()
            agree += (labels == keras_labels)[keep].sum()
            padded += (~own).sum()
        stats = report.per_size["native" if size is None else f"{size[0]}x{size[1]}"]
        assert (stats.pixels, stats.agree) == (scored, agree), size
        if size == (160, 160):
            assert padded > scored  # most of the compared area is padding, none of it scored


def test_a_bad_int8_file_is_still_refused(trained_alexnet, tmp_path):
    """The same architecture with every kernel perturbed (noise 0.3 x the kernel's std): its int8
    file agrees with the trained model on ~93% of the labels and loses ~8 mean-IU points."""
    import keras

    bad = keras.models.clone_model(trained_alexnet)
    rng = np.random.default_rng(1)
    bad.set_weights([w + 0.3 * w.std() * rng.standard_normal(w.shape).astype(w.dtype) if w.ndim == 4 else w
                     for w in trained_alexnet.get_weights()])
    path = str(tmp_path / "bad_int8.tflite")
    export(bad, path, quantize="int8", representative_data="shapes", verify=False)
    with pytest.raises(ParityError, match="label agreement|mean-IU loss") as err:
        verify(path, trained_alexnet, NO_LATENCY)
    assert not err.value.report.passed and err.value.report.overall.label_agreement < 0.97
