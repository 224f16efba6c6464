"""Colouring label maps: the PASCAL VOC palette, colour overlays and legends (numpy + Pillow).

    rgb = fcn_keras.viz.colorize(labels)                 # (H, W) ids -> (H, W, 3) uint8
    blend = fcn_keras.viz.overlay(image, labels)         # labels over the photo
    fcn_keras.viz.save_label_png(labels, "x.png")        # palette PNG, indices preserved
    panel = fcn_keras.viz.add_legend(blend, class_names, labels)
"""

from __future__ import annotations

import os

import numpy as np

from fcn_keras._io import atomic_write
from fcn_keras.conventions import IGNORE_LABEL, voc_palette

_PALETTE = voc_palette()


def _labels(mask):
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"a label map must be (H, W), got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"label values must be within 0..255, got {mask.min()}..{mask.max()}")
    return mask.astype(np.uint8)


def colorize(mask, palette=None):
    """Label ids ``(H, W)`` -> colours ``(H, W, 3)`` uint8 (VOC palette by default)."""
    pal = _PALETTE if palette is None else np.asarray(palette, np.uint8)
    return pal[_labels(mask)]


def overlay(image, mask, alpha=0.5, palette=None, ignore_background=True):
    """Blend coloured labels over an RGB image ``(H, W, 3)``.

    Args:
        alpha: opacity of the colours (0: image only, 1: colours only).
        ignore_background: leave background (0) and void (255) pixels as the photo.
    """
    image = np.asarray(image)
    mask = _labels(mask)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {mask.shape} differ in size")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within 0..1, got alpha={alpha!r}")
    img = image.astype(np.float32)
    col = colorize(mask, palette).astype(np.float32)
    out = (1 - alpha) * img + alpha * col
    if ignore_background:
        keep = (mask == 0) | (mask == IGNORE_LABEL)
        out[keep] = img[keep]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def legend(class_names, present=None, palette=None, swatch=14, width=None):
    """A legend image (white background): one colour swatch + name per class.

    Args:
        class_names: names indexed by class id.
        present: ids to list (default: all); e.g. ``np.unique(labels)`` to list only what
            an image shows (255 is skipped).
    """
    from PIL import Image, ImageDraw

    pal = _PALETTE if palette is None else np.asarray(palette, np.uint8)
    ids = range(len(class_names)) if present is None else [
        int(i) for i in present if int(i) != IGNORE_LABEL and int(i) < len(class_names)]
    ids = list(ids)
    row = swatch + 6
    w = width or (swatch + 12 + 7 * max([len(str(class_names[i])) for i in ids] + [4]))
    im = Image.new("RGB", (w, max(1, len(ids)) * row + 4), "white")
    d = ImageDraw.Draw(im)
    for k, i in enumerate(ids):
        y = 3 + k * row
        d.rectangle([3, y, 3 + swatch, y + swatch], fill=tuple(int(v) for v in pal[i]),
                    outline=(0, 0, 0))
        d.text((swatch + 8, y + 1), str(class_names[i]), fill=(0, 0, 0))
    return np.asarray(im)


def add_legend(image, class_names, labels=None, palette=None):
    """``image`` with a legend of the classes in ``labels`` (all classes if None) to its right."""
    image = np.asarray(image, np.uint8)
    present = None if labels is None else np.unique(_labels(labels))
    leg = legend(class_names, present, palette)
    h = max(image.shape[0], leg.shape[0])
    out = np.full((h, image.shape[1] + leg.shape[1], 3), 255, np.uint8)
    out[:image.shape[0], :image.shape[1]] = image
    out[:leg.shape[0], image.shape[1]:] = leg
    return out


def save_label_png(mask, path, palette=None, overwrite=True):
    """Write labels as a palette PNG (VOC style: pixel value = class id, colours shown by
    viewers). Written to a temporary name and renamed."""
    from PIL import Image

    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    pal = _PALETTE if palette is None else np.asarray(palette, np.uint8)
    im = Image.fromarray(_labels(mask), mode="P")
    im.putpalette(pal.reshape(-1).tolist())
    _atomic_save(im, path)


def save_image(array, path, overwrite=True):
    """Write an RGB uint8 array as PNG/JPEG (by extension), via a temporary name."""
    from PIL import Image

    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    _atomic_save(Image.fromarray(np.asarray(array, np.uint8)), path)


def _atomic_save(im, path):
    atomic_write(path, im.save)


def panel(image, labels, prediction=None, class_names=None, palette=None):
    """Side by side: image | coloured ground truth | coloured prediction (+ legend)."""
    parts = [np.asarray(image, np.uint8), colorize(labels, palette)]
    if prediction is not None:
        parts.append(colorize(prediction, palette))
    gap = np.full((parts[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate(sum([[p, gap] for p in parts], [])[:-1], axis=1)
    if class_names is not None:
        used = np.unique(np.concatenate([_labels(labels).ravel()] + (
            [_labels(prediction).ravel()] if prediction is not None else [])))
        row = add_legend(row, class_names, used.reshape(1, -1), palette)
    return row
