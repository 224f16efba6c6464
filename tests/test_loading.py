"""The one loader (`fcn_keras.loading`): every kind of model spec, damaged files named as such,
and class names that travel with the model (`FCN` config, `.keras` files, Predictor, export)."""

import os

import numpy as np
import pytest

import fcn_keras
from fcn_keras import loading
from fcn_keras.export import ExportError, export
from fcn_keras.images import ImageError, read_image
from fcn_keras.predict import Predictor
from fcn_keras.resolve import kind_of  # the sorting moved from loading to the resolver

NAMES = ["background", "disc", "square"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny FCN with class names and palette, as .keras and .weights.h5, plus damaged copies."""
    folder = tmp_path_factory.mktemp("loading")
    model = fcn_keras.build("alexnet", "8s", num_classes=3, width=0.0625, class_names=NAMES,
                            palette=[[0, 0, 0], [200, 10, 10], [10, 200, 10]])
    paths = {"keras": str(folder / "m.keras"), "weights": str(folder / "m.weights.h5")}
    model.save(paths["keras"])
    model.save_weights(paths["weights"])
    data = open(paths["keras"], "rb").read()
    paths["truncated"] = str(folder / "truncated.keras")
    with open(paths["truncated"], "wb") as f:
        f.write(data[: len(data) // 2])
    paths["empty"] = str(folder / "empty.keras")
    open(paths["empty"], "wb").close()
    return model, paths


def test_kind_of_sorts_a_spec_by_what_it_names(saved):
    _, paths = saved
    assert kind_of(paths["keras"]) == "keras" and kind_of("voc-fcn8s") == "zoo"
    assert kind_of("x.tflite") == "tflite" and kind_of(os.path.dirname(paths["keras"])) == "saved_model"


def test_a_model_a_keras_file_and_a_weights_file_load_to_the_same_net(saved):
    model, paths = saved
    assert loading.load_model(model) is model
    x = np.random.default_rng(0).integers(0, 256, (1, 37, 41, 3)).astype("uint8")
    want = np.asarray(model(x))
    for spec, arch in ((paths["keras"], {}),
                       (paths["weights"], dict(backbone="alexnet", head="8s", num_classes=3, width=0.0625))):
        got = loading.load_model(spec, **arch)
        np.testing.assert_allclose(np.asarray(got(x)), want, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_load_model_refuses_inconsistent_and_missing_specs_by_name(saved):
    _, paths = saved
    with pytest.raises(ValueError, match="holds weights only.*`backbone`, `head`, `num_classes`"):
        loading.load_model(paths["weights"])
    with pytest.raises(ValueError, match="`backbone` applies only to weights files"):
        loading.load_model(paths["keras"], backbone="vgg16")
    with pytest.raises(ValueError, match="exported tflite artefact"):
        loading.load_model("somewhere/m.tflite")
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        loading.load_model("nope.keras")
    with pytest.raises(FileNotFoundError, match="'voc-fcn9s' does not exist.*zoo name"):
        loading.load_model("voc-fcn9s")


def test_truncated_and_empty_keras_files_are_named_as_such(saved):
    _, paths = saved
    for spec, what in ((paths["truncated"], "exists .* but is not a complete .keras archive"),
                       (paths["empty"], "is empty")):
        with pytest.raises(ValueError, match=what):
            loading.load_model(spec)
        with pytest.raises(ValueError, match=what):
            Predictor(spec)
        with pytest.raises(ExportError, match=what):
            export(spec, os.path.join(os.path.dirname(spec), "out.onnx"), verify=False)


def test_empty_image_file_is_named_empty(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"photo\.jpg: the file is empty"):
        read_image(path)


def test_class_names_travel_with_the_model(saved, tmp_path):
    import keras

    from fcn_keras.export._common import model_classes  # renamed: conventions.class_metadata is the other job
    from fcn_keras.models import with_precision

    model, paths = saved
    loaded = keras.models.load_model(paths["keras"])
    assert loaded.class_names == NAMES and loaded.palette[1] == [200, 10, 10]
    assert with_precision(loaded, "bfloat16").class_names == NAMES
    predictor = Predictor(paths["keras"])
    assert predictor.class_names == NAMES and predictor.palette[2].tolist() == [10, 200, 10]
    names, palette = model_classes(loaded)  # what export() stores in its metadata
    assert names == NAMES and palette[1].tolist() == [200, 10, 10]
    with pytest.raises(ValueError, match="num_classes=3 entries"):
        loaded.class_names = ["only one"]
    with pytest.raises(ValueError, match="num_classes=3 entries"):
        fcn_keras.build("alexnet", "8s", num_classes=3, width=0.0625, class_names=["a", "b"])


@pytest.mark.slow  # the shapes_alexnet training run
def test_training_sets_the_data_class_names_in_model_keras(shapes_alexnet):
    """tests/conftest.py's session run trains with class_names=data.SHAPES_CLASSES."""
    from fcn_keras import data, training

    names = list(data.SHAPES_CLASSES)
    assert Predictor(str(shapes_alexnet.out_dir / "model.keras")).class_names == names
    scores = training.evaluate(shapes_alexnet.model, shapes_alexnet.val_ds, steps=1, progress=False)
    assert list(scores["per_class_iou"]) == names  # the report names the classes
    assert "class_0" not in training.format_report(scores)
