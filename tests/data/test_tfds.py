"""from_tfds: Oxford-IIIT Pet prepared for real by TFDS from archives served on 127.0.0.1
(tests/conftest.py's prepare_tiny_pets); the label conventions of Cityscapes and ADE20K through
tfds.testing.mock_data (the real builders and features, with examples we choose instead of a
download)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from fcn_keras import data


def test_builder_code_path_imports():
    # TFDS 4.9 needs the importlib_resources backport here but declares it only for
    # Python < 3.9: fcn_keras depends on it itself
    assert tfds.builder("oxford_iiit_pet").code_path.name.endswith(".py")


def test_oxford_pet_prepared_for_real(tiny_pets):
    data_dir, trimaps = tiny_pets
    src = data.from_tfds("oxford_iiit_pet", "train", data_dir=data_dir, download=False)
    assert (len(src), src.num_classes, src.class_names) == (2, 2, ("background", "pet"))
    got = {}
    for ex, (image, mask) in zip(tfds.builder("oxford_iiit_pet", data_dir=data_dir)
                                 .as_dataset(split="train").as_numpy_iterator(), src):
        assert image.shape == (12, 10, 3) and image.dtype == np.uint8
        got[ex["file_name"].decode()] = mask
    assert sorted(got) == ["Abyssinian_1.jpg", "beagle_2.jpg"]
    for name, mask in got.items():  # trimap 1 pet, 2 background, 3 border -> 1, 0, 255
        np.testing.assert_array_equal(mask, np.choose(trimaps[name] - 1, [1, 0, 255]))


def test_oxford_pet_bad_trimap_is_a_data_error(tiny_pets):
    data_dir, _ = tiny_pets
    src = data.from_tfds("oxford_iiit_pet", "test", data_dir=data_dir, download=False)
    with pytest.raises(data.DataError, match=r"^tfds:oxford_iiit_pet:test pug_3\.jpg: mask value 7 "
                       r"is outside the oxford_iiit_pet label convention. Expected values 1..3. "
                       r"Received: value=7$"):
        list(src)


def _mock(examples):
    """mock_data whose examples we choose, encoded/decoded by the builder's real features."""

    def as_dataset(self, *args, **kwargs):
        spec = tf.nest.map_structure(  # free sizes (Cityscapes declares 1024x2048)
            lambda s: tf.TensorSpec([None] * s.shape.rank, s.dtype),
            self.info.features.get_tensor_spec())
        return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=spec)

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def _fill(builder_name, ex):
    """Complete an example with the builder's other features (zeros / empty strings)."""
    feats = tfds.builder(builder_name).info.features
    out = {}
    for key, spec in feats.get_tensor_spec().items():
        if key in ex:
            out[key] = ex[key]
        elif isinstance(spec, dict):
            out[key] = {k: np.zeros([d or 0 for d in s.shape], s.dtype.as_numpy_dtype)
                        for k, s in spec.items()}
        elif spec.dtype == tf.string:
            out[key] = b""
        else:
            out[key] = np.zeros([d or 1 for d in spec.shape], spec.dtype.as_numpy_dtype)
    return out


def test_cityscapes_label_ids_to_train_ids():
    ids = np.array([[7, 8, 11, 26], [0, 1, 9, 33]], np.uint8)[..., None]
    image = np.zeros((2, 4, 3), np.uint8)
    ex = _fill("cityscapes/semantic_segmentation",
               {"image_left": image, "segmentation_label": ids, "image_id": b"aachen_0"})
    with _mock([ex]):
        src = data.from_tfds("cityscapes", "validation")
        (img, mask), = list(src)
    assert src.num_classes == 19 and src.class_names[13] == "car"
    np.testing.assert_array_equal(mask, [[0, 1, 2, 13], [255, 255, 255, 18]])


def test_cityscapes_undefined_id_names_example_and_value():
    ids = np.full((2, 2, 1), 40, np.uint8)
    ex = _fill("cityscapes/semantic_segmentation",
               {"image_left": np.zeros((2, 2, 3), np.uint8), "segmentation_label": ids,
                "image_id": b"bremen_7"})
    with _mock([ex]):
        with pytest.raises(data.DataError, match=r"bremen_7: mask value 40 is outside the "
                           r"cityscapes label convention. Expected values 0..33"):
            list(data.from_tfds("cityscapes", "train"))


def test_scene_parse150_category_channel():
    ann = np.zeros((3, 3, 3), np.uint8)
    ann[..., 0] = [[0, 1, 2], [150, 5, 0], [3, 3, 3]]
    ann[..., 1] = 77  # instance ids are ignored
    ex = _fill("scene_parse150", {"image": np.zeros((3, 3, 3), np.uint8), "annotation": ann})
    with _mock([ex]):
        (img, mask), = list(data.from_tfds("scene_parse150", "test"))
    np.testing.assert_array_equal(mask, [[255, 0, 1], [149, 4, 255], [2, 2, 2]])


def test_tfds_feeds_the_pipeline(tiny_pets):
    src = data.from_tfds("oxford_iiit_pet", "train", data_dir=tiny_pets[0], download=False)
    x, y = next(iter(data.pipeline(src, batch_size=2, crop_size=8, training=True, seed=0)))
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 8, 8)
    assert set(np.unique(y.numpy())) <= {0, 1, 255}


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="no label convention.*Received: name='mnist'"):
        data.from_tfds("mnist", "train")


OFFLINE_SCRIPT = """
import sys, time
from fcn_keras import data
start = time.monotonic()
try:
    data.from_tfds("oxford_iiit_pet", "train", data_dir=sys.argv[1])
except data.DownloadError as e:
    print(f"@@ {time.monotonic() - start:.1f}")
    print(e)
"""


def test_offline_not_prepared_fails_fast_with_how_to_prepare(tmp_path):
    """A set not prepared, no network (an unreachable proxy stands in: a real refused
    connection, never the internet): the package's DownloadError within seconds, naming the
    set, the data folder and `tfds build`, not urllib3's 3.5 minutes of retries."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", no_proxy="",
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    folder = str(tmp_path / "tfds")
    run = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, folder], capture_output=True, text=True,
                         env=env, timeout=150)  # TFDS' own retries take 210 s
    out = run.stdout.partition("@@ ")[2]  # TFDS prints its own lines before
    lines = out.splitlines()
    assert run.returncode == 0 and lines, (run.stdout[-1000:], run.stderr[-2000:])
    assert float(lines[0]) < 30, lines[0]
    message = "\n".join(lines[1:])
    assert "'oxford_iiit_pet'" in message and folder in message and "tfds build oxford_iiit_pet" in message
    assert "manual" in message and len(lines) <= 5
    # download=False on a folder without the set: the same error, no network tried
    with pytest.raises(data.DownloadError, match="download=False"):
        data.from_tfds("oxford_iiit_pet", "train", data_dir=str(tmp_path / "empty"), download=False)
