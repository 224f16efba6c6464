"""pipeline(): batching, cropping, padding, augmentation, caching, label checks."""

import numpy as np
import pytest
import tensorflow as tf

from fcn_keras import data
from fcn_keras.data import MEAN_RGB


def _pairs(n=4, sizes=((20, 30), (25, 17), (12, 12), (31, 40))):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        h, w = sizes[k % len(sizes)]
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 5, (h, w)).astype(np.uint8)
        mask[0, 0] = 255
        out.append((image, mask))
    return out


def _ds(pairs):
    return tf.data.Dataset.from_generator(
        lambda: iter(pairs),
        output_signature=(tf.TensorSpec([None, None, 3], tf.uint8),
                          tf.TensorSpec([None, None], tf.uint8)))


def test_whole_images_batch_one_any_size():
    pairs = _pairs()
    out = list(data.pipeline(_ds(pairs), batch_size=1, num_classes=5))
    assert len(out) == 4
    for (x, y), (image, mask) in zip(out, pairs):
        assert x.dtype == tf.float32 and y.dtype == tf.int32
        assert x.shape == (1,) + image.shape and y.shape == (1,) + mask.shape
        np.testing.assert_array_equal(x[0].numpy(), image.astype(np.float32))
        np.testing.assert_array_equal(y[0].numpy(), mask)


def test_padded_batches_use_mean_and_ignore():
    pairs = _pairs()
    x, y = next(iter(data.pipeline(_ds(pairs), batch_size=2, group_by_size=False)))
    assert x.shape == (2, 25, 30, 3) and y.shape == (2, 25, 30)
    # second image is 25x17: columns 17.. are padding
    np.testing.assert_allclose(x[1, :, 17:].numpy(), np.broadcast_to(MEAN_RGB, (25, 13, 3)),
                               rtol=0, atol=1e-4)
    assert (y[1, :, 17:].numpy() == 255).all()
    # first image is 20x30: rows 20.. are padding
    assert (y[0, 20:].numpy() == 255).all()
    np.testing.assert_allclose(x[0, :20].numpy(), pairs[0][0].astype(np.float32), atol=1e-4)


def test_fixed_crops_pad_small_images():
    pairs = _pairs()
    # shuffle=False: the batch order must not depend on a global seed other tests set
    ds = data.pipeline(_ds(pairs), batch_size=4, crop_size=(24, 24), training=True, seed=3,
                       flip=False, shuffle=False)
    (x, y), = list(ds)
    assert x.shape == (4, 24, 24, 3) and y.shape == (4, 24, 24)
    # the 12x12 image (index 2) fits: the crop keeps all its pixels plus padding
    assert int((y[2].numpy() != 255).sum()) == int((pairs[2][1] != 255).sum())
    pad = y[2].numpy() == 255
    pad[0, 0] = False
    # padded pixels carry the mean
    img = x[2].numpy()
    assert np.allclose(img[12:, :, :], MEAN_RGB, atol=1e-4)


def test_center_crop_for_evaluation():
    image = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    mask = np.arange(100, dtype=np.uint8).reshape(10, 10) % 4
    ds = data.pipeline(_ds([(image, mask)]), crop_size=4, training=False)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(y[0].numpy(), mask[3:7, 3:7])
    np.testing.assert_array_equal(x[0].numpy(), image[3:7, 3:7].astype(np.float32))


def test_flip_and_scale_keep_image_and_mask_aligned():
    # mask = (column index) % 4 with a marker: after flip / scale, labels follow pixels
    h, w = 16, 24
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = (np.arange(w) * 10)[None, :]
    mask = np.broadcast_to((np.arange(w) // 6).astype(np.uint8)[None, :], (h, w)).copy()
    ds = data.pipeline(_ds([(image, mask)] * 8), training=True, flip=True,
                       scale_range=(0.5, 2.0), seed=1, num_classes=4)
    flipped = 0
    for x, y in ds:
        x, y = x[0].numpy(), y[0].numpy()
        # red channel increases left->right unless flipped; labels must follow
        row_img, row_lab = x[x.shape[0] // 2, :, 0], y[y.shape[0] // 2]
        if row_img[0] > row_img[-1]:
            flipped += 1
            row_img, row_lab = row_img[::-1], row_lab[::-1]
        assert (np.diff(row_lab.astype(int)) >= 0).all()
        assert row_lab[0] == 0 and row_lab[-1] == 3
        assert 8 <= x.shape[0] <= 32
    assert 0 < flipped < 8


def test_seeded_augmentation_repeats_and_differs_per_epoch():
    src = data.shapes("val", num_examples=4)
    a = data.pipeline(src, batch_size=4, crop_size=48, training=True, seed=7)
    b = data.pipeline(src, batch_size=4, crop_size=48, training=True, seed=7)
    xa1, ya1 = next(iter(a))
    xb1, yb1 = next(iter(b))
    np.testing.assert_array_equal(ya1.numpy(), yb1.numpy())
    np.testing.assert_array_equal(xa1.numpy(), xb1.numpy())
    xa2, ya2 = next(iter(a))  # second epoch: other crops / order
    assert not np.array_equal(ya1.numpy(), ya2.numpy())


def test_shuffle_permutes_every_epoch_and_cache():
    src = data.shapes("val", num_examples=12, image_size=20)
    ref = [m for _, m in src]

    def order(ds):
        got = []
        for _, y in ds:
            y = y[0].numpy()
            got.append(next(i for i, m in enumerate(ref) if np.array_equal(m, y)))
        return got

    for cache in (False, True):
        ds = data.pipeline(src, training=True, flip=False, shuffle=True, seed=0, cache=cache)
        e1, e2 = order(ds), order(ds)
        assert sorted(e1) == list(range(12)) and sorted(e2) == list(range(12))
        assert e1 != e2 and e1 != list(range(12))


def test_eval_pipeline_is_ordered():
    src = data.shapes("val", num_examples=5)
    got = [y[0].numpy() for _, y in data.pipeline(src)]
    for y, (_, m) in zip(got, src):
        np.testing.assert_array_equal(y, m)


def test_repeat_and_dict_elements():
    pairs = _pairs(2)
    ds = tf.data.Dataset.from_generator(
        lambda: ({"image": i, "mask": m[..., None]} for i, m in pairs),
        output_signature={"image": tf.TensorSpec([None, None, 3], tf.uint8),
                          "mask": tf.TensorSpec([None, None, 1], tf.uint8)})
    out = list(data.pipeline(ds, repeat=True).take(5))
    assert len(out) == 5 and out[0][1].shape == (1, 20, 30)


def test_bad_label_in_raw_dataset_raises_with_value():
    image = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 9
    ds = data.pipeline(_ds([(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3), np.uint8)),
                            (image, mask)]), num_classes=5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"example 1: label 9 is not a class"):
        list(ds)  # without the helper: TensorFlow's error, with the same message
    with pytest.raises(data.DataError, match=r"^example 1: label 9 is not a class. Expected "
                       r"labels 0..4 or 255 \(ignore\) for num_classes=5. Received: label=9$"):
        with data.reraise_data_errors():
            list(ds)


def test_mask_size_in_raw_dataset_names_the_example():
    ds = data.pipeline(_ds([(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6), np.uint8))]),
                       num_classes=5)
    with pytest.raises(data.DataError, match=r"^example 0: the mask must be the size of its "
                       r"image. Expected 4x5 \(HxW\). Received: mask shape=4x6$"):
        with data.reraise_data_errors():
            list(ds)


def test_argument_errors():
    ds = _ds(_pairs())
    with pytest.raises(ValueError, match="batch_size"):
        data.pipeline(ds, batch_size=0)
    with pytest.raises(ValueError, match="crop_size"):
        data.pipeline(ds, crop_size="big")
    with pytest.raises(ValueError, match="scale_range"):
        data.pipeline(ds, scale_range=(2.0, 1.0))
    with pytest.raises(TypeError, match="`source` must be"):
        data.pipeline([1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        data.pipeline(tf.data.Dataset.from_tensor_slices(
            (np.zeros((0, 4, 4, 3), np.uint8), np.zeros((0, 4, 4), np.uint8))))


def test_sources_feed_the_pipeline(voc_tree, sbd_tree):
    for root in (voc_tree[0], sbd_tree[0]):
        src = data.from_directory(root, "train")
        x, y = next(iter(data.pipeline(src, batch_size=2, crop_size=16, training=True)))
        assert x.shape == (2, 16, 16, 3) and y.shape == (2, 16, 16)
        assert y.dtype == tf.int32 and int(tf.reduce_max(tf.where(y == 255, 0, y))) < 21
