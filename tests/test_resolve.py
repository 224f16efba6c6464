"""The one resolver (`fcn_keras.resolve.resolve`): each kind of spec, the zoo-implies rule,
conflicts refused with the argument named. Real files in tmp_path; nothing is mocked."""

import os

import numpy as np
import pytest

from fcn_keras.resolve import Resolved, resolve
from fcn_keras.weights import write_caffemodel, zoo

TINY = dict(backbone="alexnet", head="8s", num_classes=3, width=0.0625)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real .keras file, .weights.h5, .caffemodel (a 5-class score layer), SavedModel-shaped
    folder, .tflite and .onnx names, and a file of no known kind."""
    import fcn_keras

    folder = tmp_path_factory.mktemp("specs")
    model = fcn_keras.build(**TINY)
    paths = {"keras": str(folder / "m.keras"), "weights": str(folder / "m.weights.h5"),
             "caffemodel": str(folder / "net.caffemodel"), "backbone_caffemodel": str(folder / "cls.caffemodel"),
             "folder": str(folder / "exported"), "tflite": str(folder / "m.tflite"),
             "onnx": str(folder / "m.onnx"), "other": str(folder / "notes.txt")}
    model.save(paths["keras"])
    model.save_weights(paths["weights"])
    write_caffemodel(paths["caffemodel"], [("score_fr", "Convolution", [np.zeros((5, 4, 1, 1), np.float32)])])
    write_caffemodel(paths["backbone_caffemodel"], [("fc8", "InnerProduct", [np.zeros((10, 4), np.float32)])])
    os.mkdir(paths["folder"])
    for key in ("tflite", "onnx", "other"):
        with open(paths[key], "wb") as f:
            f.write(b"x")
    return model, paths


def test_each_kind_of_spec_is_sorted_once(files):
    model, paths = files
    assert resolve(paths["keras"]).kind == "keras"
    assert resolve(paths["weights"], **TINY).kind == "weights"
    assert resolve(paths["caffemodel"]).kind == "weights"
    assert resolve(paths["folder"]).kind == "saved_model" and resolve(paths["folder"]).is_artefact
    assert resolve(paths["tflite"]).kind == "tflite" and resolve(paths["onnx"]).kind == "onnx"
    assert resolve("somewhere/missing.tflite").kind == "tflite"  # by suffix, existing or not
    assert resolve(paths["other"]).kind is None and resolve("voc-fcn9s").kind is None
    assert resolve("voc-fcn8s").kind == "zoo" and resolve("imagenet").kind == "imagenet"
    assert resolve(model).kind == "model" and resolve(None).kind is None
    from pathlib import Path

    assert resolve(Path(paths["keras"])).path == paths["keras"]  # os.PathLike: the same as its string


def test_a_path_that_exists_wins_over_a_zoo_name(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("voc-fcn8s", "wb") as f:
        f.write(b"x")
    found = resolve("voc-fcn8s")
    assert found.kind is None and found.entry is None  # the local file, not the zoo entry


def test_a_zoo_fcn_implies_its_architecture(files):
    found = resolve("voc-fcn8s")
    assert isinstance(found, Resolved) and found.entry is zoo.ENTRIES["voc-fcn8s"]
    assert found.arch == {"backbone": "vgg16", "head": "8s", "num_classes": 21, "width": None}
    assert found.implied == {"backbone", "head", "num_classes"} and found.missing == []
    same = resolve("voc-fcn8s", backbone="vgg16", head="8s", num_classes=21, width=1.0)
    assert same.arch == {"backbone": "vgg16", "head": "8s", "num_classes": 21, "width": 1.0}
    backbone_entry = next(name for name, e in zoo.ENTRIES.items() if e["kind"] == "backbone")
    found = resolve(backbone_entry, head="32s")
    assert found.arch["backbone"] == zoo.ENTRIES[backbone_entry]["backbone"] and found.arch["head"] == "32s"
    assert found.implied == {"backbone"} and found.missing == []  # build's default class count
    assert resolve(backbone_entry).missing == ["head"]
    assert resolve("imagenet").missing == ["backbone", "head"]


@pytest.mark.parametrize("arg,value,entry_value", [
    ("backbone", "alexnet", "vgg16"), ("head", "32s", "8s"), ("num_classes", 4, 21)])
def test_a_conflict_with_the_zoo_entry_is_refused_naming_the_argument(arg, value, entry_value):
    with pytest.raises(ValueError, match=f"`{arg}` conflicts with the zoo entry 'voc-fcn8s'. "
                                         f"Expected {arg}={entry_value!r}.*Received: {arg}={value!r}"):
        resolve("voc-fcn8s", **{arg: value})
    with pytest.raises(ValueError, match=f"`{arg}` conflicts"):  # as the weights of a build too
        resolve("voc-fcn8s", **{arg: value}, as_weights=True)


def test_self_describing_specs_refuse_architecture_arguments(files):
    model, paths = files
    for spec, what in ((paths["keras"], paths["keras"]), (paths["tflite"], paths["tflite"]),
                       (paths["folder"], paths["folder"]), (model, "a keras.Model")):
        with pytest.raises(ValueError, match=f"`head` applies only to weights files.*{what}.*"
                                             "defines its own architecture. Received: head='8s'"):
            resolve(spec, head="8s")
    # as the `weights` of a build on a given architecture, a .keras file lends its weights
    assert resolve(paths["keras"], **TINY, as_weights=True).arch == TINY


def test_a_weights_file_needs_its_architecture(files):
    _, paths = files
    assert resolve(paths["weights"]).missing == ["backbone", "head", "num_classes"]
    assert resolve(paths["weights"], backbone="alexnet").missing == ["head", "num_classes"]
    assert resolve(paths["weights"], **TINY).missing == []


def test_a_caffemodel_implies_its_class_count_when_asked(files):
    _, paths = files
    assert resolve(paths["caffemodel"], backbone="vgg16", head="32s").arch["num_classes"] is None  # not read
    found = resolve(paths["caffemodel"], backbone="vgg16", head="32s", read_classes=True)
    assert found.arch["num_classes"] == 5 and found.missing == []
    assert resolve(paths["caffemodel"], num_classes=7, read_classes=True).arch["num_classes"] == 7  # given wins
    classifier = resolve(paths["backbone_caffemodel"], backbone="vgg16", head="32s", read_classes=True)
    assert classifier.arch["num_classes"] is None and classifier.missing == []  # ImageNet: build's default
