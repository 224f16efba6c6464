"""`Runner`: the base class every format's runtime wrapper derives from (no format code here)."""

import numpy as np


class Runner:
    """Runs an exported artefact: uint8 images in, (labels, float32 scores) out.

    A format's subclass (`saved_model.SavedModelRunner`, `tflite.TFLiteRunner`,
    `onnx.ONNXRunner`) sets `fixed_size` and implements `prepare` and `run`.

    Attributes:
        fixed_size: None when the artefact takes any height and width, else its (h, w).
    """

    fixed_size = None

    def __call__(self, images):
        """Labels and scores for a batch of images.

        Args:
            images: uint8 (N, H, W, 3) RGB pixels; (H, W) must equal `fixed_size` when it is set
                (a fixed-size artefact takes one image at a time; a batch is run image by image).

        Returns:
            (labels uint8 (N, H, W) (int32 above 256 classes), scores float32 (N, H, W, C)): the
            argmax and the class logits (dequantised for a full-int8 TFLite file).

        Raises:
            ValueError: `images` is not a uint8 (N, H, W, 3) array of the accepted size.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"Expected `images` uint8 of shape (N, H, W, 3). "
                             f"Received: images.shape={images.shape}, dtype={images.dtype}")
        if self.fixed_size is not None:
            if tuple(images.shape[1:3]) != tuple(self.fixed_size):
                raise ValueError(f"Expected `images` of size {tuple(self.fixed_size)} (this artefact has "
                                 f"a fixed input size). Received: images.shape={images.shape}")
            if len(images) > 1:
                outs = [self.run(self.prepare(img[None])) for img in images]
                return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
        return self.run(self.prepare(images))

    def prepare(self, images):
        """The runtime's input for uint8 images (N, H, W, 3); `run` takes it."""
        raise NotImplementedError

    def run(self, prepared):
        """(labels, float32 scores) for a `prepare`d input."""
        raise NotImplementedError
