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

    from fcn_keras.images import read_image
    image = read_image("photo.jpg")     # uint8 (H, W, 3)
"""

import os

import numpy as np

from fcn_keras.conventions import CAFFE_RGB_MEAN_UINT8

#: The colour transparent pixels are composited on: the Caffe mean, RGB, rounded.
BACKGROUND = CAFFE_RGB_MEAN_UINT8

#: File name endings read as images when a folder is searched.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".jp2", ".ico")

_DIRECT = ("RGB", "RGBX", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV")
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageError(ValueError):
    """An image file that cannot be read, or whose pixels cannot be converted faithfully."""


def read_image(path, exif_orientation=True):
    """Decodes an image file to 8-bit RGB, with its EXIF orientation applied.

    Args:
        path: the image file (any format Pillow opens).
        exif_orientation: rotate/flip as the file's EXIF orientation tag says (what a photo
            viewer shows). False keeps the stored pixel grid, which is what a data set's
            label masks are drawn on.

    Returns:
        uint8 array (H, W, 3), RGB, H and W after the EXIF rotation (if applied).

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageError: the file is empty or cannot be decoded, or its mode has no faithful 8-bit RGB
            conversion (the message names the file and the mode).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes), not an image")
    try:
        with Image.open(path) as im:
            im.load()
            if exif_orientation:
                im = ImageOps.exif_transpose(im)
            return to_rgb(im, path)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can identify") from None
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
    if mode in _DIRECT:
        return np.asarray(im.convert("RGB"), np.uint8)
    if mode in _ALPHA:
        rgba = (im.convert("LA") if mode == "La" else im).convert("RGBA")
        base = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return np.asarray(Image.alpha_composite(base, rgba).convert("RGB"), np.uint8)
    if mode in _SIXTEEN:
        return _grey(np.asarray(im, np.float64) / 257.0)
    if mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError(
                f"{name}: 32-bit integer image (PIL mode 'I') with values {values.min()}..{values.max()}: "
                "expected 0..65535 (16-bit); convert it to 8 or 16 bits first")
        return _grey(values.astype(np.float64) / 257.0)
    if mode == "F":
        values = np.asarray(im, np.float64)
        if not np.isfinite(values).all():
            raise ImageError(f"{name}: float image (PIL mode 'F') holds NaN or infinite values")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise ImageError(f"{name}: float image (PIL mode 'F') with values {lo:g}..{hi:g}: expected "
                             "0..1 or 0..255; rescale it first")
        return _grey(values * 255.0 if hi <= 1.0 else values)
    raise ImageError(f"{name}: PIL mode {mode!r} has no faithful 8-bit RGB conversion; expected one of "
                     f"{_DIRECT + _ALPHA + _SIXTEEN + ('I', 'F')}")


def _grey(values):
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
