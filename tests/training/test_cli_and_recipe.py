"""fcn-keras train (staged schedule) -> evaluate, end to end on tiny shapes; the recipe's
weight surgery, evaluate's report, and viz helpers."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras import data, viz
from fcn_keras.cli import evaluate as evaluate_cli
from fcn_keras.cli import train as train_cli
from fcn_keras.training import evaluate, format_report, stages_for, transfer_weights


def _main(argv):
    import argparse

    parser = argparse.ArgumentParser(prog="fcn-keras")
    subparsers = parser.add_subparsers(dest="command")
    train_cli.register(subparsers)
    evaluate_cli.register(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def test_transfer_weights_initialises_finer_net_from_coarser():
    a = fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625)
    for layer in a.layers:  # make every weight distinguishable from a fresh init
        if layer.weights and layer.trainable:
            layer.set_weights([w + 0.5 for w in layer.get_weights()])
    b = fcn_keras.build("alexnet", "16s", num_classes=3, width=0.0625)
    copied = transfer_weights(a, b)
    assert {"conv1", "conv5", "fc6", "fc7", "score_fr"} <= set(copied)
    np.testing.assert_array_equal(a.get_layer("fc7").get_weights()[0],
                                  b.get_layer("fc7").get_weights()[0])
    # the new score layer of the finer net stays zero-initialised
    assert "score_pool4" not in copied
    assert not np.any(b.get_layer("score_pool4").get_weights()[0])
    assert stages_for("vgg16", "staged") == ["32s", "16s", "8s"]
    assert stages_for("vgg16", "at-once") == ["8s-atonce"]
    assert stages_for("alexnet", "at-once") == ["8s"]
    with pytest.raises(ValueError, match="schedule must be one of"):
        stages_for("vgg16", "fast")


@pytest.mark.slow  # three training stages, evaluate and predict through the command line (31 s CPU)
def test_cli_train_staged_then_evaluate_and_predict(tmp_path, capsys):
    out = str(tmp_path / "run")
    rc = _main(["train", "--backbone", "alexnet", "--width", "0.0625", "--schedule", "staged",
                "--data", "shapes", "--image-size", "32", "--num-examples", "4",
                "--epochs", "1", "--batch-size", "2", "--crop-size", "32",
                "--optimizer", "adam", "--lr", "1e-3", "--seed", "0", "--out", out, "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean IU" in text and "circle" in text
    for head in ("32s", "16s", "8s"):
        stage = os.path.join(out, f"fcn{head}")
        for name in ("model.keras", "model.weights.h5", "log.csv", "history.json",
                     "curves.png"):
            assert os.path.exists(os.path.join(stage, name)), (head, name)
    # the final net, the curves of all stages and their combined history at the top
    for name in ("model.keras", "curves.png", "history.json"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "history.json")) as f:
        assert len(json.load(f)["loss"]) == 3
    assert [line for line in text.splitlines() if line.startswith("stage ")] == [
        "stage 1/3: FCN-32s from scratch", "stage 2/3: FCN-16s from FCN-32s",
        "stage 3/3: FCN-8s from FCN-16s"]
    with open(os.path.join(out, "scores.json")) as f:
        scores = json.load(f)
    assert set(scores["per_class_iou"]) == set(data.SHAPES_CLASSES)
    assert 0.0 <= scores["mean_iou"] <= 1.0

    # evaluate the final (8s) model from its .keras file and write JSON
    model_path = os.path.join(out, "model.keras")
    js = str(tmp_path / "eval.json")
    assert _main(["evaluate", "--model", model_path, "--data", "shapes", "--split", "val",
                  "--image-size", "32", "--num-examples", "4", "--json", js, "--quiet"]) == 0
    text = capsys.readouterr().out
    for label in ("pixel accuracy", "mean accuracy", "mean IU", "frequency weighted IU",
                  "triangle"):
        assert label in text
    with open(js) as f:
        ev = json.load(f)
    assert ev["images"] == 4 and len(ev["confusion_matrix"]) == 4


def test_cli_errors():
    with pytest.raises(ValueError, match="data spec"):
        _main(["train", "--data", "imagenet", "--out", "/nonexistent/x"])
    with pytest.raises(FileNotFoundError, match="--model"):
        _main(["evaluate", "--model", "/nonexistent/model.keras"])


def test_evaluate_api_and_report():
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    ds = data.pipeline(data.shapes("val", num_examples=3, image_size=32))
    scores = evaluate(model, ds, 4, data.SHAPES_CLASSES, progress=False)
    # a fresh FCN has zero score layers: every logit is 0 and argmax says background
    hist = np.array(scores["confusion_matrix"])
    assert hist[:, 1:].sum() == 0 and hist.sum() == scores["pixels"]
    assert scores["pixel_accuracy"] == pytest.approx(hist[0, 0] / hist.sum())
    assert scores["per_class_iou"]["circle"] in (0.0, None)
    report = format_report(scores)
    assert "background" in report and "mean IU" in report


def test_viz_palette_overlay_legend(tmp_path):
    pal = viz.voc_palette()
    assert tuple(pal[1]) == (128, 0, 0) and tuple(pal[15]) == (192, 128, 128)
    assert tuple(pal[255]) == (224, 224, 192)
    labels = np.array([[0, 1], [15, 255]], np.uint8)
    np.testing.assert_array_equal(viz.colorize(labels)[1, 0], [192, 128, 128])
    image = np.full((2, 2, 3), 100, np.uint8)
    ov = viz.overlay(image, labels, alpha=0.5)
    np.testing.assert_array_equal(ov[0, 0], [100, 100, 100])  # background left as photo
    np.testing.assert_array_equal(ov[0, 1], [114, 50, 50])
    out = viz.add_legend(ov, data.VOC_CLASSES, labels)
    # the 2 x 2 overlay top left on white, a legend of the 4 ids present (0, 1, 15, void) right
    assert out.shape[0] == 4 * (16 + 6) + 6 and out.shape[1] > 2 + 16, out.shape
    np.testing.assert_array_equal(out[:2, :2], ov)
    assert (out[2:, :2] == 255).all()
    colours = {tuple(c) for c in out[:, 2:].reshape(-1, 3)}
    assert {tuple(pal[i]) for i in (0, 1, 15, 255)} <= colours and tuple(pal[2]) not in colours
    path = str(tmp_path / "l.png")
    viz.save_label_png(labels, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), labels)
    with pytest.raises(FileExistsError):
        viz.save_label_png(labels, path, overwrite=False)
    with pytest.raises(ValueError, match="differ in size"):
        viz.overlay(np.zeros((3, 3, 3), np.uint8), labels)


@pytest.mark.slow  # mixed precision and XLA compilation (13 s CPU)
def test_recipe_switches_mixed_precision_and_xla():
    import keras

    from fcn_keras.training import run_recipe

    ds = data.pipeline(data.shapes("train", num_examples=2, image_size=32), batch_size=2,
                       crop_size=32, training=True, seed=0)
    before = keras.config.dtype_policy().name
    r = run_recipe("alexnet", ds, schedule="32s", num_classes=4, epochs=1, width=0.0625,
                   optimizer="adam", mixed_precision=True, jit_compile=True, verbose=0)
    assert r.model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    assert r.model.jit_compile is True
    assert keras.config.dtype_policy().name == before  # restored
    assert np.isfinite(r.histories["32s"].history["loss"][0])
    assert r.model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0).dtype == np.float32


def test_nan_loss_stops_training_and_saves_nothing(tmp_path):
    import keras
    import tensorflow as tf

    from fcn_keras.training import train

    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    # a loss that turns NaN (as a diverging run's would)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred) * float("nan"))
    x = np.zeros((2, 32, 32, 3), np.float32)
    y = np.zeros((2, 32, 32), np.int32)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat(3)
    with pytest.raises(FloatingPointError, match="NaN"):
        train(model, ds, epochs=3, out_dir=str(tmp_path), verbose=0)
    assert not (tmp_path / "model.keras").exists()


def test_data_errors_reach_python_as_data_error_naming_the_file(tmp_path):
    from tests.data.conftest import make_voc_tree, write_palette_png

    from fcn_keras.training import train

    root = str(tmp_path / "VOC2012")
    make_voc_tree(root, {"train": ["2008_000001", "2008_000002"]},
                  sizes={"2008_000002": (20, 30)})
    bad = np.zeros((20, 30), np.uint8)
    bad[5, 5] = 37  # not a class of 21, not 255
    write_palette_png(bad, os.path.join(root, "SegmentationClass", "2008_000002.png"))
    model = fcn_keras.build("alexnet", "32s", num_classes=21, width=0.0625)
    ds = data.pipeline(data.from_directory(root, "train"))
    with pytest.raises(data.DataError, match="2008_000002.png"):
        evaluate(model, ds, progress=False)
    model.compile(optimizer="adam")
    with pytest.raises(data.DataError, match="2008_000002.png"):
        train(model, ds, epochs=1, out_dir=str(tmp_path / "run"), verbose=0)
