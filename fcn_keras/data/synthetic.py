"""`shapes`: a small synthetic segmentation set, generated on the fly, deterministic.

Every example is drawn from a numpy generator seeded with `(seed, split, index)`, so the
same call always yields the same images, on any machine, and nothing is stored on disk.

An image is a noisy greyish background of random brightness with a gentle gradient and
1-3 filled shapes (circle, square, triangle) of random sizes and positions, drawn in order
(later shapes cover earlier ones). Each shape class has its own hue family (circle
red-orange, square green, triangle blue-violet, +-30 degrees) with random saturation and
brightness: the class is told by both form and colour, so a small model learns the set on
a CPU in minutes. The mask holds the class of the shape on top, 0 for background, and - as in
PASCAL VOC - a thin strip of 255 ("void", not scored) along every shape's outline.
"""

from __future__ import annotations

import weakref

import numpy as np

from fcn_keras.conventions import IGNORE_LABEL

SHAPES_CLASSES = ("background", "circle", "square", "triangle")

_SPLITS = {"train": (1, 512), "val": (2, 128), "test": (3, 128)}


def _parse_size(image_size):
    if isinstance(image_size, (int, np.integer)):
        lo = hi = int(image_size)
    else:
        try:
            lo, hi = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"`image_size` must be an int or a (min, max) pair. "
                             f"Received: image_size={image_size!r}") from None
    if not 16 <= lo <= hi <= 4096:
        raise ValueError(f"`image_size` must be within 16..4096, with min <= max. "
                         f"Received: image_size={image_size!r}")
    return lo, hi


# Each class has its own hue family (degrees): circle red-orange, square green, triangle
# blue-violet; saturation and brightness are random. Shape and colour are both cues, so a
# small model learns the set on a CPU in minutes.
_HUES = {1: 15.0, 2: 125.0, 3: 245.0}


def _shape_colour(rng, cls):
    import colorsys

    hue = (_HUES[cls] + rng.uniform(-30, 30)) % 360 / 360
    sat = rng.uniform(0.55, 1.0)
    val = rng.uniform(0.5, 1.0)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255


def _draw(index, split_id, seed, lo, hi, noise):
    rng = np.random.default_rng([int(seed), int(split_id), int(index)])
    h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # background: a greyish colour of random brightness (low saturation)
    bg = rng.uniform(40, 215) + rng.uniform(-25, 25, size=3)
    # a gentle linear gradient so the background is not flat
    grad = rng.uniform(-40, 40, size=(2, 3))
    image = bg + (yy[..., None] / h - 0.5) * grad[0] + (xx[..., None] / w - 0.5) * grad[1]
    label = np.zeros((h, w), np.uint8)
    s = min(h, w)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, len(SHAPES_CLASSES)))
        r = rng.uniform(0.18, 0.34) * s
        cy = rng.uniform(r * 0.6, h - r * 0.6)
        cx = rng.uniform(r * 0.6, w - r * 0.6)
        colour = _shape_colour(rng, cls)
        if cls == 1:  # circle
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif cls == 2:  # square (axis aligned), same area scale as the circle
            a = r * 0.85
            inside = (np.abs(yy - cy) <= a) & (np.abs(xx - cx) <= a)
        else:  # upright equilateral-ish triangle
            top, bottom = cy - r, cy + r * 0.7
            half = (yy - top) / (bottom - top) * r * 1.1
            inside = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)
        image[inside] = colour
        label[inside] = cls
    image = image + rng.normal(0, noise, size=image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    # void outline: pixels whose 3x3 neighbourhood holds another label
    p = np.pad(label, 1, mode="edge")
    border = np.zeros((h, w), bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            border |= p[dy:dy + h, dx:dx + w] != label
    mask = label.copy()
    mask[border] = IGNORE_LABEL
    return image, mask


def shapes(split="train", num_examples=None, image_size=(64, 96), seed=0, noise=8.0):
    """The bundled synthetic set: background + circle, square, triangle (4 classes).

    Args:
        split: `"train"` (512 examples), `"val"` (128) or `"test"` (128); each split
            is drawn from its own seed stream.
        num_examples: override the number of examples.
        image_size: an int (square images of that size) or `(min, max)`: height and
            width are each drawn from `min..max` (default 64..96 pixels).
        seed: base seed; the same seed gives the same data.
        noise: standard deviation of the gaussian pixel noise.

    Returns:
        a `fcn_keras.data.Source` with `num_classes=4` and
        `class_names == SHAPES_CLASSES`.

    Raises:
        ValueError: an unknown split, a bad `image_size` or `num_examples`.
    """
    from .source import Source, check_example, python_loader  # here: the drawing above needs no TensorFlow

    if split not in _SPLITS:
        raise ValueError(f"`split` must be one of {sorted(_SPLITS)}. Received: split={split!r}")
    split_id, default_n = _SPLITS[split]
    n = default_n if num_examples is None else int(num_examples)
    if n <= 0:
        raise ValueError(f"`num_examples` must be positive. "
                         f"Received: num_examples={num_examples!r}")
    lo, hi = _parse_size(image_size)
    noise = float(noise)

    def make(index):
        image, mask = _draw(index, split_id, seed, lo, hi, noise)
        return check_example(image, mask, len(SHAPES_CLASSES), f"shapes:{split}[{index}]")

    src = Source(name="shapes", split=split, num_classes=len(SHAPES_CLASSES),
                 class_names=SHAPES_CLASSES, keys=np.arange(n, dtype=np.int64),
                 load_fn=None, length=n,
                 description=f"synthetic shapes, {lo}..{hi} px, seed {seed}")
    src._load_fn = python_loader(weakref.ref(src), make, lambda index: f"shapes:{split}[{index}]")
    return src
