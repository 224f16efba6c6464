"""Pictures of label maps: the PASCAL VOC palette, overlays, legends and comparison panels.

    rgb = fcn_keras.viz.colorize(labels)                 # (H, W) ids -> (H, W, 3) uint8
    blend = fcn_keras.viz.overlay(image, labels)         # labels over the photo
    fcn_keras.viz.save_label_png(labels, "x.png")        # palette PNG, indices preserved
    picture = fcn_keras.viz.add_legend(blend, class_names, labels)
    picture = fcn_keras.viz.panel(image, truth, labels, class_names)   # titled, scored

Label id 255 marks ignored ("void") pixels: it keeps the VOC cream colour and is named
"void / ignored" in legends.
"""

from __future__ import annotations

import os

import numpy as np

from fcn_keras._io import atomic_write, exists_error
from fcn_keras.conventions import IGNORE_LABEL, voc_palette

_PALETTE = voc_palette()
_BLOCK = 1 << 18  # pixels blended at a time by `overlay` (whole rows, at least one)
VOID_NAME = "void / ignored"


def _labels(mask):
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"A label map must be (H, W). Received shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"Label values must be within 0..255. Received values {mask.min()}..{mask.max()}")
    return mask.astype(np.uint8, copy=False)


def colorize(mask, palette=None):
    """Colours a label map.

    Args:
        mask: (H, W) or (H, W, 1) class ids 0..255.
        palette: (K, 3) uint8 colours by id (default: the VOC colour map); ids from K up take
            the VOC colours.

    Returns:
        uint8 array (H, W, 3), RGB.
    """
    return _full_palette(palette)[_labels(mask)]


def overlay(image, mask, alpha=0.5, palette=None, ignore_background=True):
    """Blends coloured labels over a photo.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) class ids.
        alpha: opacity of the colours, 0 (image only) to 1 (colours only).
        palette: (K, 3) colours by id (default: the VOC colour map).
        ignore_background: leave background (0) and void (255) pixels as the photo.

    Returns:
        uint8 array (H, W, 3).
    """
    image = np.asarray(image)
    mask = _labels(mask)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`image` must be (H, W, 3). Received shape {image.shape}")
    if image.shape[:2] != mask.shape:
        raise ValueError(f"`image` {image.shape[:2]} and labels {mask.shape} differ in size")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be within 0..1. Received: alpha={alpha!r}")
    pal = _full_palette(palette)
    out = np.empty(image.shape, np.uint8)
    rows = max(1, _BLOCK // max(1, mask.shape[1]))
    for y in range(0, mask.shape[0], rows):  # a block of rows at a time: no full-size float copy
        labels = mask[y:y + rows]
        img = image[y:y + rows].astype(np.float32)
        blend = (1 - alpha) * img + alpha * pal[labels].astype(np.float32)
        if ignore_background:
            keep = (labels == 0) | (labels == IGNORE_LABEL)
            blend[keep] = img[keep]
        out[y:y + rows] = np.clip(np.rint(blend), 0, 255)
    return out


def legend(class_names, present=None, palette=None, swatch=16, width=None, font_size=14):
    """A legend image (white background): one colour swatch and name per class.

    Args:
        class_names: names indexed by class id.
        present: ids to list (default: every class); e.g. `np.unique(labels)` lists only what
            an image shows. 255 (ignored pixels) is listed as "void / ignored" in its colour.
        palette: (K, 3) uint8 colours by id (default: the VOC colour map); ids from K to 255
            take the VOC colours.
        swatch: swatch side in pixels.
        width: image width in pixels (default: fits the longest name).
        font_size: text height in pixels (Pillow's default font).

    Returns:
        uint8 array (rows * (swatch + 6) + 6, width, 3).
    """
    from PIL import Image, ImageDraw

    pal = _full_palette(palette)
    ids = range(len(class_names)) if present is None else [
        int(i) for i in present if int(i) < len(class_names) or int(i) == IGNORE_LABEL]
    rows = [(i, VOID_NAME if i == IGNORE_LABEL else str(class_names[i])) for i in ids]
    font = _font(font_size)
    row = max(swatch, font_size) + 6
    text_w = max([_text_width(font, name) for _, name in rows] + [_text_width(font, "none")])
    im = Image.new("RGB", (width or int(swatch + 16 + text_w), max(1, len(rows)) * row + 6), "white")
    d = ImageDraw.Draw(im)
    for k, (i, name) in enumerate(rows):
        y = 4 + k * row
        d.rectangle([4, y, 4 + swatch, y + swatch], fill=tuple(int(v) for v in pal[i]), outline=(0, 0, 0))
        d.text((swatch + 10, y + swatch / 2), name, fill=(0, 0, 0), font=font, anchor="lm")
    return np.asarray(im)


def add_legend(image, class_names, labels=None, palette=None):
    """`image` (H, W, 3) with a legend of the classes in `labels` (every class if None) to
    its right; ignored pixels (255) in `labels` add a "void / ignored" row."""
    image = np.asarray(image, np.uint8)
    present = None if labels is None else np.unique(_labels(labels))
    leg = legend(class_names, present, palette)
    h = max(image.shape[0], leg.shape[0])
    out = np.full((h, image.shape[1] + leg.shape[1], 3), 255, np.uint8)
    out[:image.shape[0], :image.shape[1]] = image
    out[:leg.shape[0], image.shape[1]:] = leg
    return out


def save_label_png(mask, path, palette=None, overwrite=True):
    """Writes labels as a palette PNG (VOC style: pixel value = class id, colours for viewers).

    Args:
        mask: (H, W) class ids 0..255.
        path: the .png to write (via a temporary name, renamed when complete).
        palette: (K, 3) colours by id (default: the VOC colour map).
        overwrite: replace an existing file.

    Raises:
        FileExistsError: `path` exists and overwrite is False.
    """
    from PIL import Image

    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise exists_error(path)
    im = Image.fromarray(_labels(mask), mode="P")
    im.putpalette(_full_palette(palette).reshape(-1).tolist())
    atomic_write(path, im.save)


def save_image(array, path, overwrite=True):
    """Writes an RGB uint8 array (H, W, 3) as PNG or JPEG (by extension), via a temporary name.

    Raises:
        FileExistsError: `path` exists and overwrite is False.
    """
    from PIL import Image

    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise exists_error(path)
    atomic_write(path, Image.fromarray(np.asarray(array, np.uint8)).save)


def image_scores(truth, prediction, num_classes):
    """The paper's scores for one image (`fcn_keras.metrics.scores_from_confusion`).

    Args:
        truth: (H, W) class ids, 255 not scored (another id >= num_classes: a ValueError,
            `fcn_keras.metrics.confusion_matrix`).
        prediction: (H, W) class ids.
        num_classes: number of classes C.

    Returns:
        the dict of `scores_from_confusion` (mean_iou, pixel_accuracy, ... as fractions, NaN
        when the image has no scored pixel).
    """
    from fcn_keras.metrics import confusion_matrix, scores_from_confusion

    return scores_from_confusion(confusion_matrix(_labels(truth), _labels(prediction), num_classes))


def panel(image, labels, prediction=None, class_names=None, palette=None, min_height=240):
    """Side by side, legible at 1:1: image | truth | prediction, with column titles, a legend
    (ignored pixels included) and the image's mean IU and pixel accuracy.

    Images shorter than `min_height` are enlarged by a whole factor (labels nearest-neighbour,
    the photo bilinear), so small test images stay readable.

    Args:
        image: (H, W, 3) uint8 RGB.
        labels: (H, W) ground-truth ids (255 = ignored), or None for image | prediction.
        prediction: (H, W) predicted ids, or None.
        class_names: names by id for the legend and scores (None: no legend; the score then
            counts classes up to the largest id seen).
        palette: (K, 3) colours by id (default: the VOC colour map).
        min_height: height in pixels the image columns are enlarged to reach.

    Returns:
        uint8 array (H', W', 3).
    """
    from PIL import Image, ImageDraw

    image = np.asarray(image, np.uint8)
    h, w = image.shape[:2]
    maps = [(name, _labels(m)) for name, m in (("truth", labels), ("prediction", prediction)) if m is not None]
    for name, m in maps:
        if m.shape != (h, w):
            raise ValueError(f"`{name}` must have the image's size {(h, w)}. Received shape {m.shape}")
    k = max(1, -(-int(min_height) // max(h, 1)))
    size = (w * k, h * k)
    columns = [("image", Image.fromarray(image).resize(size, Image.BILINEAR))]
    columns += [(name, Image.fromarray(colorize(m, palette)).resize(size, Image.NEAREST)) for name, m in maps]

    title_font, font = _font(18), _font(14)
    gap, title_h, foot_h = 8, 28, 24
    footer = None
    if labels is not None and prediction is not None:
        used = max(int(np.max(np.where(m < IGNORE_LABEL, m, 0))) for _, m in maps) + 1
        n = len(class_names) if class_names is not None else used
        s = image_scores(labels, prediction, n)
        footer = ("this image: mean IU " + _percent(s["mean_iou"]) + ", pixel accuracy "
                  + _percent(s["pixel_accuracy"]) + f" ({int(s['pixels'])} labelled pixels)")
    leg = None
    if class_names is not None:
        present = np.unique(np.concatenate([m.ravel() for _, m in maps])) if maps else None
        leg = Image.fromarray(legend(class_names, present, palette))
    body_w = len(columns) * (size[0] + gap) + gap
    width = body_w + (leg.width + gap if leg is not None else 0)
    if footer is not None:
        width = max(width, _text_width(font, footer) + 2 * gap)
    height = title_h + size[1] + gap + (foot_h if footer is not None else 0)
    if leg is not None:
        height = max(height, title_h + leg.height + gap)
    out = Image.new("RGB", (int(width), int(height)), "white")
    d = ImageDraw.Draw(out)
    for c, (name, im) in enumerate(columns):
        x = gap + c * (size[0] + gap)
        d.text((x + size[0] / 2, title_h / 2), name, fill=(0, 0, 0), font=title_font, anchor="mm")
        out.paste(im, (x, title_h))
    if leg is not None:
        out.paste(leg, (body_w, title_h))
    if footer is not None:
        d.text((gap, title_h + size[1] + gap / 2 + foot_h / 2), footer, fill=(0, 0, 0), font=font, anchor="lm")
    return np.asarray(out)


def _percent(x):
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _font(size):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _text_width(font, text):
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font)


def _full_palette(palette=None):
    """(256, 3) uint8: `palette` for its ids, the VOC colour map for the rest (255 = void)."""
    if palette is None:
        return _PALETTE
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] > 256 or pal.min() < 0 or pal.max() > 255:
        raise ValueError(f"`palette` must be (K, 3) colours 0..255 with K <= 256. Received shape {pal.shape}")
    full = _PALETTE.copy()
    full[:len(pal)] = pal
    return full
