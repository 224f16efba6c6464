"""from_tfds through tfds.testing.mock_data: the real TFDS builders and loading code, with
generated examples instead of a download."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from fcn_keras import data


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


def test_oxford_pet_trimap_mapped():
    rng = np.random.default_rng(0)
    trimap = rng.integers(1, 4, (10, 12, 1)).astype(np.uint8)
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    ex = _fill("oxford_iiit_pet", {"image": image, "segmentation_mask": trimap,
                                   "file_name": b"cat_1.jpg"})
    with _mock([ex, ex]):
        src = data.from_tfds("oxford_iiit_pet", "train")
        assert src.num_classes == 2 and src.class_names == ("background", "pet")
        pairs = list(src)
    assert len(pairs) == 2
    got_image, got_mask = pairs[0]
    np.testing.assert_array_equal(got_image, image)
    want = np.choose(trimap[..., 0] - 1, [1, 0, 255]).astype(np.uint8)
    np.testing.assert_array_equal(got_mask, want)


def test_oxford_pet_random_mock_data_is_rejected_clearly():
    # TFDS's own random mock data draws mask values 0..255 and its own sizes: not a trimap
    with tfds.testing.mock_data(num_examples=2):
        src = data.from_tfds("oxford_iiit_pet", "train")
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="outside the oxford_iiit_pet label convention|differs from"):
            list(src)


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
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"bremen_7[\s\S]*40"):
            list(data.from_tfds("cityscapes", "train"))


def test_scene_parse150_category_channel():
    ann = np.zeros((3, 3, 3), np.uint8)
    ann[..., 0] = [[0, 1, 2], [150, 5, 0], [3, 3, 3]]
    ann[..., 1] = 77  # instance ids are ignored
    ex = _fill("scene_parse150", {"image": np.zeros((3, 3, 3), np.uint8), "annotation": ann})
    with _mock([ex]):
        (img, mask), = list(data.from_tfds("scene_parse150", "test"))
    np.testing.assert_array_equal(mask, [[255, 0, 1], [149, 4, 255], [2, 2, 2]])


def test_tfds_feeds_the_pipeline():
    ex = _fill("oxford_iiit_pet", {"image": np.zeros((9, 7, 3), np.uint8),
                                   "segmentation_mask": np.full((9, 7, 1), 2, np.uint8)})
    with _mock([ex] * 3):
        ds = data.pipeline(data.from_tfds("oxford_iiit_pet", "train"), batch_size=3,
                           crop_size=8, training=True, seed=0)
        x, y = next(iter(ds))
    assert x.shape == (3, 8, 8, 3)
    assert set(np.unique(y.numpy())) <= {0, 255}


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="no label convention known for 'mnist'"):
        data.from_tfds("mnist", "train")
