"""Training curves and the data repetition behind `steps_per_epoch`."""

import json

import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras import data, training
from fcn_keras.training import plot_history

METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")


def test_plot_history_draws_every_quantity_with_stages(tmp_path):
    n = 6
    history = {"loss": list(np.linspace(1.4, 0.3, n)), "val_loss": list(np.linspace(1.3, 0.4, n))}
    for key in METRICS:
        history[key] = list(np.linspace(0.2, 0.8, n))
        history[f"val_{key}"] = [None] + list(np.linspace(0.25, 0.75, n - 1))  # a gap is fine
    path = plot_history(history, tmp_path / "curves.png", stages=[("FCN-32s", 0), ("FCN-16s", 3)],
                        title="run")
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 500 and image.shape[1] >= 900  # legible at 1:1
    # blue (train) and orange (validation) lines are both drawn
    blue = np.all(np.abs(image.astype(int) - (31, 119, 180)) < 30, axis=-1).sum()
    orange = np.all(np.abs(image.astype(int) - (255, 127, 14)) < 30, axis=-1).sum()
    assert blue > 500 and orange > 500, (blue, orange)
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically
    with pytest.raises(ValueError, match="loss"):
        plot_history({"mean_iou": [0.5]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # a training run with its files (8 s)
def test_steps_per_epoch_longer_than_the_data_repeats_it(tmp_path):
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    model.compile(optimizer="adam")
    ds = data.pipeline(data.shapes("train", num_examples=2, image_size=32), batch_size=2,
                       crop_size=32, training=True, seed=0)  # one batch per pass
    history = training.train(model, ds, epochs=2, steps_per_epoch=3, out_dir=str(tmp_path),
                             verbose=0)
    assert len(history.history["loss"]) == 2
    with open(tmp_path / "history.json") as f:
        assert len(json.load(f)["loss"]) == 2
    assert (tmp_path / "curves.png").exists() and (tmp_path / "model.keras").exists()


def test_one_epoch_curve_has_whole_epoch_ticks_and_a_loss_label():
    from matplotlib import pyplot as plt

    from fcn_keras.training.plots import figure

    history = {"loss": [0.9], "val_loss": [1.0]}
    for key in METRICS:
        history[key], history[f"val_{key}"] = [0.4], [0.5]
    fig = figure(history)
    try:
        drawn = [ax for ax in fig.axes if ax.lines]
        assert len(drawn) == 5
        for ax in drawn:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks == [1.0], ticks  # no 0.96, 0.98, ... on a one-epoch run
        assert drawn[0].get_title() == "loss" and "loss" in drawn[0].get_ylabel()
    finally:
        plt.close(fig)
    fig = figure({"loss": list(np.linspace(1, 0.1, 40))})
    try:
        ax = fig.axes[0]
        assert all(float(t).is_integer() for t in ax.get_xticks()) and len(ax.get_xticks()) <= 12
    finally:
        plt.close(fig)
