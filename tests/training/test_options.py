"""The config objects of `train` / `run_recipe` (`RunFiles`, `StageBuild`, `StageCompile`),
their keywords, and `worker_info`'s named fields."""

import json

import numpy as np
import pytest

import fcn_keras
from fcn_keras import training
from fcn_keras.training import options


def test_keywords_fill_the_config_and_the_rest_is_left():
    files, rest = options.with_keywords(None, training.RunFiles,
                                        {"keep": ("best",), "backup_every": 3, "width": 2}, "train")
    assert files == training.RunFiles(keep=("best",), backup_every=3)
    assert files.csv and files.save_model  # the other fields keep their defaults
    assert rest == {"width": 2}


def test_a_field_given_both_ways_or_an_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match=r"\['keep'\] either as keywords or in the RunFiles"):
        training.train(None, None, files=training.RunFiles(), keep=("last",))
    with pytest.raises(TypeError, match="train\\(\\) got an unexpected keyword argument 'widht'"):
        training.train(None, None, widht=0.5)
    with pytest.raises(TypeError, match="run_recipe\\(\\) got an unexpected keyword argument 'lr'"):
        training.run_recipe("alexnet", None, lr=0.1)
    with pytest.raises(TypeError, match="expected a StageBuild"):
        training.run_recipe("alexnet", None, build={"width": 0.5})


def test_run_recipe_takes_config_objects(tmp_path):
    ds = fcn_keras.data.pipeline(fcn_keras.data.shapes("train", num_examples=2, image_size=32),
                                 batch_size=2, crop_size=32, training=True, seed=0)
    r = training.run_recipe(
        "alexnet", ds, schedule="32s", num_classes=4, epochs=1, out_dir=tmp_path, verbose=0,
        build=training.StageBuild(width=0.0625, class_names=list(fcn_keras.data.SHAPES_CLASSES)),
        compile_options=training.StageCompile(optimizer="adam", learning_rate=1e-3,
                                              jit_compile=False),
        files=training.RunFiles(keep=("last",), csv=False))
    stage = tmp_path / "fcn32s"
    assert r.model.class_names == list(fcn_keras.data.SHAPES_CLASSES)
    assert r.model.jit_compile is False
    assert r.model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert sorted(p.name for p in (stage / "checkpoints").iterdir()) == ["last.weights.h5"]
    assert not (stage / "log.csv").exists() and (stage / "model.weights.h5").exists()


def test_worker_info_names_its_fields(monkeypatch):
    assert training.worker_info() == training.WorkerInfo("worker", 0, 1, True)
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2}}))
    info = training.worker_info()
    assert (info.task_type, info.task_index, info.num_workers, info.is_chief) == ("worker", 2, 3, False)


def test_evaluate_names_a_label_outside_the_classes():
    """A plain data set (no pipeline check) with a label the model has no class for: the one
    confusion matrix (`metrics.confusion_matrix`) refuses it, naming the value."""
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[0, :2] = 255  # not scored
    masks[0, 5, 5] = 9
    with pytest.raises(ValueError, match=r"Expected labels in 0\.\.3 or the ignore label 255\. "
                                         r"Received: label 9 \(1 pixels\)"):
        training.evaluate(model, [(np.zeros((1, 32, 32, 3), np.float32), masks)], progress=False)
    masks[0, 5, 5] = 0
    scores = training.evaluate(model, [(np.zeros((1, 32, 32, 3), np.float32), masks)],
                               progress=False, boundary=False)
    assert scores["pixels"] == 32 * 30 and scores["images"] == 1
