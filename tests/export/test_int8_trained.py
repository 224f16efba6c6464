"""The issue's int8 targets on trained weights: a small FCN-8s AlexNet trained on the synthetic
set, exported to full-integer TFLite with the default targets (labels >= 97%, mean-IU loss
<= 1 point on shapes:val) and about a quarter of the float32 file."""

import os

import keras

import fcn_keras
from fcn_keras import data, training
from fcn_keras.export import TARGETS, export


def test_trained_model_meets_the_int8_targets(tmp_path):
    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    train = data.pipeline(data.shapes("train", num_examples=256, image_size=64), batch_size=8,
                          training=True, seed=0, cache=True)
    training.train(model, train, None, epochs=6, verbose=0)

    int8 = export(model, str(tmp_path / "m_int8.tflite"), quantize="int8",
                  representative_data="shapes", latency=False)
    fp32 = export(model, str(tmp_path / "m.tflite"), latency=False)
    report = int8.report
    assert report["passed"] and report["builtin_only"]
    assert report["mean_iou"]["keras"] > 50  # the model learned something: a real test of int8
    assert TARGETS["int8"] == {"min_label_agreement": 0.97, "max_miou_loss": 1.0}
    assert report["overall"]["label_agreement"] >= 0.97
    assert report["mean_iou"]["loss_points"] <= 1.0
    ratio = os.path.getsize(int8.path) / os.path.getsize(fp32.path)
    assert 0.2 < ratio < 0.3, ratio
