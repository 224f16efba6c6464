"""Reading image files as the networks expect them: 8-bit RGB, EXIF orientation applied.

Every mode Pillow opens is either converted correctly or refused with an `ImageError`
naming the file and the mode; nothing is silently clipped or truncated.

- "RGB", "RGBX", "L", "1", "P" (palette, no transparency), "CMYK", "YCbCr", "LAB", "HSV":
  Pillow's own conversion to RGB.
- 16-bit greyscale ("I;16", "I;16B", "I;16L", "I;16N"): value / 257 (0..65535 -> 0..255),
  rounded. Pillow's own conversion clips every value above 255 to white, which made a
  16-bit photo a blank picture.
- "I" (32-bit integer, e.g. TIFF): taken as 16-bit (value / 257) when every value lies within
  0..65535; refused otherwise, since its range is then unknown.
- "F" (32-bit float): values within 0..1 are intensities (x 255); within 0..255 pixel values
  (kept); anything else (negative, above 255, NaN, infinite) is refused.
- 16-bit colour PNGs: Pillow decodes them as "RGB" / "RGBA" keeping each sample's high byte
  (value >> 8), within one level of value / 257.
- Transparency ("RGBA", "RGBa", "LA", "La", "PA", "P" with a transparent colour):
  composited over the Caffe mean colour (RGB 123, 117, 104), the colour the networks'
  preprocessing maps to zero, so transparent areas carry no signal.
- Multi-frame files (GIF, TIFF): the first frame.

Decompression bombs: a file declaring more than `max_pixels` pixels (default `MAX_PIXELS`,
Pillow's own warning threshold, about 89.5 megapixels: a 9459 x 9459 photo) is refused from
its header, before any pixel is decoded; a tiny PNG can declare 13000 x 13000 pixels. Raise
the limit with `max_pixels=` (`--max-pixels` on the command line) for photos known to be that
large; Pillow's own hard limit (twice its threshold) still applies unless
`PIL.Image.MAX_IMAGE_PIXELS` is raised too.

    from fcn_keras.images import read_image
    image = read_image("photo.jpg")     # uint8 (H, W, 3)
"""

import os
import warnings

import numpy as np

from fcn_keras.conventions import CAFFE_RGB_MEAN_UINT8

#: The colour transparent pixels are composited on: the Caffe mean, RGB, rounded.
BACKGROUND = CAFFE_RGB_MEAN_UINT8

#: File name endings read as images when a folder is searched.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".jp2", ".ico")

#: Default pixel limit (width x height): Pillow's `Image.MAX_IMAGE_PIXELS`, 89478485.
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
_ROWS = 256  # rows converted at a time (16-bit and float images)

_DIRECT = ("RGB", "RGBX", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV")
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageError(ValueError):
    """An image file that cannot be read, or whose pixels cannot be converted faithfully."""


def check_pixels(size, max_pixels, name="image"):
    """Refuses an image larger than `max_pixels` (a decompression bomb, or a huge photo).

    Args:
        size: (width, height) as the file's header declares it (`PIL.Image.Image.size`).
        max_pixels: the limit in pixels (width x height); None or 0: no limit.
        name: what to call the image in the error (the file name).

    Raises:
        ImageError: width x height exceeds `max_pixels` (the message names the file, its size,
            the limit and how to raise it).
    """
    if max_pixels is not None and (not isinstance(max_pixels, int) or isinstance(max_pixels, bool)
                                   or max_pixels < 0):
        raise ValueError(f"`max_pixels` must be a non-negative int (0 or None: no limit). "
                         f"Received: max_pixels={max_pixels!r}")
    width, height = size
    if max_pixels and width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} pixels ({width * height / 1e6:.1f} megapixels) exceeds the limit of "
            f"{max_pixels} pixels (a decompression bomb?); raise it with max_pixels= / --max-pixels "
            "if the image is genuine")


def _bomb_message(name, error, max_pixels):
    """The message for Pillow's `DecompressionBombError` (raised by `Image.open` before the
    size is known to us): the pixel count it states, and the limit that applies."""
    import re

    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(error))
    if not found:
        return f"{name}: {error}"
    hard = 2 * Image.MAX_IMAGE_PIXELS
    limit = min(max_pixels, hard) if max_pixels else hard
    n = int(found.group(1))
    return (f"{name}: {n} pixels ({n / 1e6:.1f} megapixels) exceeds the limit of {limit} pixels (a "
            "decompression bomb?)" + ("" if limit < hard else
                                      "; Pillow refuses more than twice PIL.Image.MAX_IMAGE_PIXELS"))


def read_image(path, exif_orientation=True, max_pixels=MAX_PIXELS):
    """Decodes an image file to 8-bit RGB, with its EXIF orientation applied.

    Args:
        path: the image file (any format Pillow opens).
        exif_orientation: rotate/flip as the file's EXIF orientation tag says (what a photo
            viewer shows). False keeps the stored pixel grid, which is what a data set's
            label masks are drawn on.
        max_pixels: refuse images of more pixels (width x height) than this, from the file's
            header, before decoding (default `MAX_PIXELS`, about 89.5 megapixels; None or 0:
            no limit of ours).

    Returns:
        uint8 array (H, W, 3), RGB, H and W after the EXIF rotation (if applied).

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageError: the file is empty or cannot be decoded, declares more than `max_pixels`
            pixels, or its mode has no faithful 8-bit RGB conversion (the message names the
            file and the mode).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    check_pixels((0, 0), max_pixels)  # the argument, before touching the file
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            # our own limit replaces Pillow's warning (its hard limit still raises)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(im.size, max_pixels, path)  # from the header: nothing decoded yet
            im.load()
            if exif_orientation:
                im = ImageOps.exif_transpose(im)
            return to_rgb(im, path)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can identify") from None
    except Image.DecompressionBombError as e:  # Pillow's hard limit (twice its threshold), at open
        raise ImageError(_bomb_message(path, e, max_pixels)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        raise ImageError(f"{path}: cannot decode the image ({type(e).__name__}: {e})") from None


def to_rgb(im, name="image"):
    """Converts a Pillow image of any supported mode to 8-bit RGB (see the module docstring).

    Args:
        im: a loaded `PIL.Image.Image`.
        name: what to call it in errors (the file name).

    Returns:
        uint8 array (H, W, 3).

    Raises:
        ImageError: a mode with no faithful conversion (named in the message).
    """
    from PIL import Image

    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode == "RGB":
        return np.asarray(im, np.uint8)  # no converted copy
    if mode in _DIRECT:
        return np.asarray(im.convert("RGB"), np.uint8)
    if mode in _ALPHA:
        rgba = (im.convert("LA") if mode == "La" else im).convert("RGBA")
        base = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return np.asarray(Image.alpha_composite(base, rgba).convert("RGB"), np.uint8)
    if mode in _SIXTEEN:
        return _grey(np.asarray(im), _from_16_bits)
    if mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError(
                f"{name}: 32-bit integer image (PIL mode 'I') with values {values.min()}..{values.max()}: "
                "expected 0..65535 (16-bit); convert it to 8 or 16 bits first")
        return _grey(values, _from_16_bits)
    if mode == "F":
        values = np.asarray(im)
        if not np.isfinite(values).all():
            raise ImageError(f"{name}: float image (PIL mode 'F') holds NaN or infinite values")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise ImageError(f"{name}: float image (PIL mode 'F') with values {lo:g}..{hi:g}: expected "
                             "0..1 or 0..255; rescale it first")
        scale = 255.0 if hi <= 1.0 else 1.0
        return _grey(values, lambda rows: np.rint(rows.astype(np.float64) * scale))
    raise ImageError(f"{name}: PIL mode {mode!r} has no faithful 8-bit RGB conversion; expected one of "
                     f"{_DIRECT + _ALPHA + _SIXTEEN + ('I', 'F')}")


def _from_16_bits(rows):
    """0..65535 -> 0..255 as round(value / 257), in integers (no float copy of the image)."""
    return (rows.astype(np.uint32) + 128) // 257


def _grey(values, convert):
    """(H, W) values -> uint8 (H, W, 3) grey, `convert` applied `_ROWS` rows at a time so that
    no full-size temporary wider than the result is made."""
    out = np.empty(values.shape + (3,), np.uint8)
    for y in range(0, values.shape[0], _ROWS):
        grey = np.clip(convert(values[y:y + _ROWS]), 0, 255).astype(np.uint8)
        out[y:y + _ROWS] = grey[..., None]
    return out
