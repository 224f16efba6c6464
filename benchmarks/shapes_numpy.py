"""The bundled synthetic set (`fcn_keras.data.shapes`) without TensorFlow: numpy arrays and a
`keras.utils.PyDataset`, for machines with JAX or PyTorch and no TensorFlow (a lent GPU).

`fcn_keras.data` is built on tf.data, and importing any of its modules runs its `__init__`,
which imports TensorFlow. The drawing itself (`fcn_keras/data/synthetic.py`, `_draw`) is
numpy only, so this module loads that one file on its own, under a private name, and calls
the same function with the same seeds: `example("val", 3)` is the very image and mask that
`fcn_keras.data.shapes("val")` yields at index 3 (a test checks this where TensorFlow is
installed).

Images are uint8 RGB (H, W, 3) 0..255 (the model subtracts the mean itself), masks uint8
(H, W) with classes 0..3 and 255 (void).
"""

import importlib.util
import os

import numpy as np

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fcn_keras", "data",
                     "synthetic.py")
_spec = importlib.util.spec_from_file_location("_fcn_keras_shapes_drawing", _PATH)
_synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_synthetic)

SHAPES_CLASSES = _synthetic.SHAPES_CLASSES
SPLITS = _synthetic._SPLITS  # split -> (seed stream id, number of examples)


def example(split, index, image_size=64, seed=0, noise=8.0):
    """(image uint8 (H, W, 3), mask uint8 (H, W)): `fcn_keras.data.shapes(split,
    image_size=image_size, seed=seed, noise=noise)`'s example `index`."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {sorted(SPLITS)}. Received: split={split!r}")
    lo, hi = _synthetic._parse_size(image_size)
    return _synthetic._draw(index, SPLITS[split][0], seed, lo, hi, float(noise))


def arrays(split, num_examples=None, image_size=64, seed=0):
    """(images uint8 (N, S, S, 3), masks uint8 (N, S, S)) of one split at a fixed `image_size`
    (an int: every example the same size, so they stack)."""
    if not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"`image_size` must be one int here (the examples are stacked). "
                         f"Received: image_size={image_size!r}")
    n = SPLITS[split][1] if num_examples is None else int(num_examples)
    pairs = [example(split, i, image_size, seed) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def py_dataset(images, masks, batch_size, shuffle_seed=None):
    """A `keras.utils.PyDataset` of (float32 images (B, S, S, 3), int32 masks (B, S, S)) batches,
    reshuffled every epoch when `shuffle_seed` is set (the last partial batch is dropped)."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(images))
            self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
            self.on_epoch_end()

        def __len__(self):
            return len(images) // batch_size

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            return images[idx].astype("float32"), masks[idx].astype("int32")

        def on_epoch_end(self):
            if self.rng is not None:
                self.rng.shuffle(self.order)

    return Batches()
