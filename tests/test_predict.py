"""fcn_keras.predict: one Predictor for every artefact, and `fcn-keras predict` as a user runs it
(real subprocesses, real runtimes, real files)."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

import fcn_keras
from fcn_keras import viz
from fcn_keras.predict import Predictor, resize_rows

from .conftest import fcn_keras_cli

NAMES = ["sky", "road", "car", "tree"]
PAL = np.array([[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)


def _model():
    # Seeded here: the module-scoped fixture below is made before the per-test seed is set,
    # so without it the initial weights would depend on which tests ran before.
    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # score layers start at zero (all background): give them weights
        if layer.name.startswith("score") and layer.weights:
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def _images(n=3, h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n, 1, 1, 3))
    return np.clip(base + rng.normal(0, 40, size=(n, h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    """The tiny model as every artefact the project makes (exports unverified: fast)."""
    from fcn_keras.export import export

    d = tmp_path_factory.mktemp("artefacts")
    model = _model()
    paths = {"keras": str(d / "m.keras"), "weights": str(d / "m.weights.h5")}
    model.save(paths["keras"])
    model.save_weights(paths["weights"])
    calib = list(_images(4, seed=7))
    for key, name, kw in (("saved_model", "m_savedmodel", {}), ("tflite", "m.tflite", {}),
                          ("float16", "m16.tflite", {"quantize": "float16"}),
                          ("int8", "m8.tflite", {"quantize": "int8", "representative_data": calib}),
                          ("fixed", "mfix.tflite", {"input_size": (24, 32)}), ("onnx", "m.onnx", {})):
        paths[key] = str(d / name)
        export(model, paths[key], kw.pop("format", None), verify=False, class_names=NAMES, palette=PAL, **kw)
    return model, paths


def _keras_scores(model, image):
    return np.asarray(model(image[None].astype("float32"), training=False))[0]


@pytest.mark.parametrize("key,agree", [("keras", 1.0), ("saved_model", 0.999), ("tflite", 0.999),
                                       ("float16", 0.99), ("int8", 0.9), ("onnx", 0.999)])
def test_every_artefact_gives_the_keras_labels(art, key, agree):
    model, paths = art
    p = Predictor(paths[key])
    assert p.num_classes == 4 and p.fixed_size is None
    if key != "keras":  # class names and colours come from the artefact's metadata
        assert p.class_names == NAMES
        np.testing.assert_array_equal(p.palette, PAL)
    for image in _images():
        ref = _keras_scores(model, image)
        labels, scores = p.predict(image)
        assert labels.shape == (40, 56) and labels.dtype == np.uint8
        assert scores.shape == (40, 56, 4) and scores.dtype == np.float32
        assert len(np.unique(ref.argmax(-1))) > 1  # the comparison is not all-background
        assert (labels == ref.argmax(-1)).mean() >= agree
        if key in ("keras", "saved_model", "tflite", "onnx"):
            assert np.abs(scores - ref).max() <= 1e-4 * np.abs(ref).max()


def test_fixed_size_artefact_resizes_in_and_out(art):
    model, paths = art
    p = Predictor(paths["fixed"])
    assert p.fixed_size == (24, 32) and p.network_size(40, 56) == (24, 32)
    image = _images(1)[0]
    labels, scores = p.predict(image)
    assert labels.shape == (40, 56) and scores.shape == (40, 56, 4)
    # the Keras model on the same resized image, scores resized back the same way
    expect = Predictor(model, max_size=32)
    assert expect.network_size(40, 56) == (23, 32)
    small = np.asarray(Image.fromarray(image).resize((32, 24), Image.BILINEAR))
    ref = _keras_scores(model, small)
    ref_full = np.concatenate([r for _, _, r in resize_rows(ref, 40, 56)])
    assert (labels == ref_full.argmax(-1)).mean() >= 0.999
    assert np.abs(scores - ref_full).max() <= 1e-4 * np.abs(ref).max()


def test_max_size_predicts_small_and_resizes_scores_back(art):
    import tensorflow as tf

    model, _ = art
    p = Predictor(model, max_size=28)
    image = _images(1)[0]
    assert p.network_size(40, 56) == (20, 28) and Predictor(model, max_size=0).network_size(40, 56) == (40, 56)
    labels, scores = p.predict(image)
    small = np.asarray(Image.fromarray(image).resize((28, 20), Image.BILINEAR))
    ref = tf.image.resize(_keras_scores(model, small)[None], (40, 56), "bilinear").numpy()[0]
    assert labels.shape == (40, 56)
    np.testing.assert_allclose(scores, ref, atol=1e-5 * np.abs(ref).max())
    # scores written into a float16 array, 64 rows at a time, give the same labels
    out = np.zeros((40, 56, 4), np.float16)
    labels16, got = p.predict(image, scores_out=out)
    assert got is out and (labels16 == labels).all()
    assert p.predict(image, return_scores=False)[1] is None


@pytest.mark.parametrize("shape,size", [((5, 7, 3), (40, 56)), ((40, 56, 2), (9, 13)), ((3, 3, 1), (3, 200))])
def test_resize_rows_is_tf_bilinear(shape, size):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    blocks = list(resize_rows(x, *size, rows=3))
    assert [b[0] for b in blocks] == list(range(0, size[0], 3))
    got = np.concatenate([b[2] for b in blocks])
    ref = tf.image.resize(x[None], size, "bilinear").numpy()[0]
    np.testing.assert_allclose(got, ref, atol=1e-5 * np.abs(x).max() * 10)


def test_model_errors_are_short_and_named(art, tmp_path):
    model, paths = art
    with pytest.raises(ValueError, match=r"m\.weights\.h5 holds weights only.*`backbone`, `head`, `num_classes`"):
        Predictor(paths["weights"])
    p = Predictor(paths["weights"], backbone="alexnet", head="8s", num_classes=4, width=0.125)
    image = _images(1)[0]
    np.testing.assert_array_equal(p.predict(image)[0], _keras_scores(model, image).argmax(-1))
    with pytest.raises(ValueError) as err:
        Predictor(paths["weights"], backbone="alexnet", head="8s", num_classes=5, width=0.125)
    msg = str(err.value)
    assert "does not fit FCN-8s alexnet with num_classes=5" in msg and "value=[" not in msg and len(msg) < 400
    assert "layer score_fr: the file has shape (1, 1, 512, 4), the model needs (1, 1, 512, 5)" in msg, msg
    with pytest.raises(ValueError, match="`backbone` applies only to weights files"):
        Predictor(paths["keras"], backbone="vgg16")
    with pytest.raises(FileNotFoundError, match="nothing.tflite"):
        Predictor(str(tmp_path / "nothing.tflite"))
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"`model` must be .*model\.pt"):
        Predictor(str(tmp_path / "model.pt"))
    with pytest.raises(ValueError, match="class_names"):
        Predictor(model, class_names=["a"])
    with pytest.raises(ValueError, match="max_size"):
        Predictor(model, max_size=-1)


# --------------------------------------------------------------------------- command line

def _cli(*args, env=None):
    return fcn_keras_cli("predict", *map(str, args), env=env, timeout=300)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder as users have them: same stems, a subfolder, a 16-bit PNG, a broken file."""
    d = tmp_path_factory.mktemp("photos")
    imgs = _images(3)
    (d / "sub").mkdir()
    Image.fromarray(imgs[0]).save(d / "a.png")
    Image.fromarray(imgs[1]).save(d / "a.jpg", quality=95)
    Image.fromarray(imgs[2]).save(d / "sub" / "b.png")
    # the same picture as a 16-bit greyscale PNG spanning 0..65535 (was predicted blank)
    grey = imgs[0][..., 0]
    Image.fromarray(grey.astype(np.uint16) * 257).save(d / "sub" / "grey16.png")
    Image.fromarray(grey).save(d / "grey8.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d


@pytest.mark.slow  # the predict command over a folder in a subprocess (19 s CPU; test_cli_artefacts runs the command fast)
def test_cli_keras_folder_run(art, photos, tmp_path):
    model, paths = art
    out = tmp_path / "out"
    r = _cli(photos, "--model", paths["keras"], "--out", out, "--save-scores", "--legend",
             "--class-names", ",".join(NAMES))
    assert r.returncode == 1, r.stderr
    assert "1 of 6 images failed" in r.stderr and "broken.jpg" in r.stderr
    assert "Traceback" not in r.stderr
    assert "for 5 of 6 images" in r.stdout
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(f"{n}{s}" for n in ("a.png", "a.jpg", "grey8.png", "sub/b.png", "sub/grey16.png")
                             for s in ("_labels.png", "_overlay.png", "_scores.npy"))
    p = Predictor(model)
    for name in ("a.png", "sub/b.png"):
        image = np.asarray(Image.open(photos / name))
        labels = np.asarray(Image.open(out / f"{name}_labels.png"))
        assert Image.open(out / f"{name}_labels.png").mode == "P"
        np.testing.assert_array_equal(labels, p.predict(image)[0])
        scores = np.load(out / f"{name}_scores.npy")
        assert scores.dtype == np.float16 and scores.shape == (40, 56, 4)
        assert (scores.astype(np.float32).argmax(-1) == labels).mean() > 0.99
        overlay = np.asarray(Image.open(out / f"{name}_overlay.png"))
        assert overlay.shape[1] > 56  # the legend is on the right
        np.testing.assert_array_equal(overlay[:40, :56], viz.overlay(image, labels))
    # the 16-bit PNG gives the 8-bit picture's labels, and they are not blank
    g16 = np.asarray(Image.open(out / "sub/grey16.png_labels.png"))
    np.testing.assert_array_equal(g16, np.asarray(Image.open(out / "grey8.png_labels.png")))
    assert len(np.unique(g16)) > 1

    # a second run refuses to overwrite before doing any work, naming a file
    before = (out / "a.png_labels.png").stat().st_mtime_ns
    r = _cli(photos, "--model", paths["keras"], "--out", out)
    assert r.returncode == 2 and "exists" in r.stderr and "--overwrite" in r.stderr and "_labels.png" in r.stderr
    assert (out / "a.png_labels.png").stat().st_mtime_ns == before


# ONNX in the fast tests; every format's Predictor runs in-process above (6 s of CPU each here)
@pytest.mark.parametrize("key", ["onnx", pytest.param("saved_model", marks=pytest.mark.slow),
                                 pytest.param("fixed", marks=pytest.mark.slow)])
def test_cli_artefacts(art, photos, tmp_path, key):
    _, paths = art
    out = tmp_path / "out"
    r = _cli(photos / "sub" / "b.png", photos / "a.png", "--model", paths[key], "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["a.png_labels.png", "a.png_overlay.png", "b.png_labels.png",
                                       "b.png_overlay.png"]
    labels = np.asarray(Image.open(out / "b.png_labels.png"))
    assert labels.shape == (40, 56)
    image = np.asarray(Image.open(photos / "sub" / "b.png"))
    np.testing.assert_array_equal(labels, Predictor(paths[key]).predict(image)[0])
    # colours from the artefact's metadata
    np.testing.assert_array_equal(np.array(Image.open(out / "b.png_labels.png").getpalette()[:12]).reshape(4, 3), PAL)


def test_cli_weights_file_needs_its_architecture(art, photos, tmp_path):
    _, paths = art
    r = _cli(photos / "a.png", "--model", paths["weights"], "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "holds weights only" in r.stderr and "--backbone" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr) < 600 and not (tmp_path / "o").exists()
    r = _cli(photos / "a.png", "--weights", paths["weights"], "--out", tmp_path / "o", "--backbone", "alexnet",
             "--head", "8s", "--num-classes", "5", "--width", "0.125")
    assert r.returncode == 2 and "does not fit" in r.stderr and len(r.stderr) < 800, r.stderr


def test_cli_zoo_name_offline(photos, tmp_path):
    # an unreachable proxy stands in for no network; the cache is empty
    env = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    r = _cli(photos / "a.png", "--model", "voc-fcn32s", "--out", tmp_path / "o", env=env)
    assert r.returncode == 1, r.stderr  # a download that cannot be made: a runtime failure
    assert "fcn32s-heavy-pascal.caffemodel" in r.stderr and "http" in r.stderr
    assert str(tmp_path / "keras") in r.stderr
    assert "Traceback" not in r.stderr


def test_find_images_mirrors_folders_and_refuses_collisions(photos, tmp_path):
    from fcn_keras.cli._inputs import find_images  # the command line's file walker (moved from predict)

    found = find_images([photos], skip=photos / "sub")
    assert [rel for _, rel in found] == ["a.jpg", "a.png", "broken.jpg", "grey8.png"]
    found = find_images([photos])
    assert [rel for _, rel in found][-2:] == [os.path.join("sub", "b.png"), os.path.join("sub", "grey16.png")]
    assert len(find_images([photos], recursive=False)) == 4
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(_images(1)[0]).save(other / "a.png")
    with pytest.raises(ValueError, match=r"a\.png.*a\.png.*both be written"):
        find_images([photos, other])
    assert len(find_images([photos / "a.png", photos / "a.png"])) == 1
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_images([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        find_images([tmp_path / "empty"])


# --------------------------------------------------------------------------- precision

def test_precision_of_keras_sources(art, recwarn):
    """bfloat16 for a Keras source is a bfloat16 copy (labels ~ float32's), said by a warning
    where the CPU has no native bfloat16; a .keras file saved in bfloat16 stays bfloat16."""
    from fcn_keras.models import native_bfloat16, with_precision

    model, paths = art
    image = _images(1)[0]
    ref = Predictor(paths["keras"])
    assert ref.precision == "float32"
    fast = Predictor(paths["keras"], precision="bfloat16")
    assert fast.precision == "bfloat16"
    slow_here = native_bfloat16() == []
    assert any("computes in bfloat16" in str(w.message) and "no faster than float32" in str(w.message)
               for w in recwarn) == slow_here
    labels, scores = fast.predict(image)
    assert scores.dtype == np.float32 and (labels == ref.predict(image)[0]).mean() > 0.97
    assert Predictor(paths["weights"], backbone="alexnet", head="8s", num_classes=4, width=0.125,
                     precision="bfloat16").precision == "bfloat16"
    bf16_file = os.path.join(os.path.dirname(paths["keras"]), "m_bf16.keras")
    with_precision(model, "bfloat16").save(bf16_file)
    assert Predictor(bf16_file).precision == "bfloat16"
    own = Predictor(bf16_file, precision="float32")
    assert own.precision == "float32"
    # independent reference: the float32 model with its weights rounded to bfloat16 in NumPy
    import keras

    from fcn_keras.models.layers import refresh_upsampling

    ref_model = keras.models.load_model(paths["keras"], compile=False)
    ref_model.set_weights([_round_to_bfloat16(w) for w in ref_model.get_weights()])
    refresh_upsampling(ref_model)
    want = _keras_scores(ref_model, image)
    labels, scores = own.predict(image)
    assert scores.dtype == np.float32 and scores.shape == want.shape
    assert np.abs(scores - want).max() <= 1e-4 * np.abs(want).max()
    top2 = np.sort(want, -1)[..., -2:]
    wide = top2[..., 1] - top2[..., 0] > 0.05 * np.abs(want).max()
    assert wide.mean() > 0.5 and (labels == want.argmax(-1))[wide].all()


def _round_to_bfloat16(w):
    """float32 `w` rounded to bfloat16 (nearest, ties to even) and back, by its bits."""
    bits = np.ascontiguousarray(w, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).reshape(np.shape(w))


@pytest.mark.parametrize("key", ["tflite", "int8", "onnx", "saved_model"])
def test_precision_of_an_artefact_is_its_own(art, key):
    _, paths = art
    own = {"int8": "int8"}.get(key, "float32")
    assert Predictor(paths[key]).precision == own
    if own == "float32":
        assert Predictor(paths[key], precision="float32").precision == "float32"
    with pytest.raises(ValueError, match=rf"`precision` applies to Keras models .*quantize='{own}'.*"
                                         r"Received: precision='bfloat16'"):
        Predictor(paths[key], precision="bfloat16")
    with pytest.raises(ValueError, match=r"`precision` must be None .*Received: precision='float16'"):
        Predictor(paths[key], precision="float16")


def test_cli_precision(art, photos, tmp_path, capsys):
    from fcn_keras.cli import main
    from fcn_keras.models import native_bfloat16

    _, paths = art
    r = _cli(photos / "a.png", "--model", paths["keras"], "--out", tmp_path / "o", "--precision", "bfloat16")
    assert r.returncode == 0, r.stderr
    assert "computes in bfloat16" in r.stdout
    assert ("no faster than float32" in r.stdout) == (native_bfloat16() == [])
    assert "Warning" not in r.stderr
    code = main(["predict", str(photos / "a.png"), "--model", paths["tflite"], "--out", str(tmp_path / "o2"),
                 "--precision", "bfloat16"])
    err = capsys.readouterr().err
    assert code == 2 and "error: `precision` applies to Keras models" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()
