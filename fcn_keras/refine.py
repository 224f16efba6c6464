"""Dense CRF refinement of an FCN's probabilities (Krähenbühl & Koltun, NIPS 2011).

A fully connected CRF over the pixels: the unary term is the network's softmax, the pairwise
terms an appearance kernel (pixels close in position and colour prefer one label) and a
smoothness kernel (close in position), solved by mean-field iterations. The answer to the
FCN paper's "no spatial consistency": labels snap to colour edges the 8x-upsampled scores
blur. It runs in `pydensecrf2` (a maintained build of the authors' code), an optional extra:
`pip install "fcn-keras[crf]"`.

Cost: time and memory grow with pixels x classes; `MAX_VALUES` bounds it (about 3 megapixels
at 21 classes): larger images are refused with a message naming `max_size`, which predicts at
a smaller size first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

MAX_VALUES = 64 * 2**20  # pixels x classes the CRF accepts (its buffers: ~10 float32 copies)


class MissingExtra(ImportError, ValueError):
    """An optional dependency is not installed; the message names the extra to install (a
    ValueError too: asking for the part is the error, and the command line exits 2)."""


@dataclass(frozen=True)
class CRF:
    """The CRF's parameters. Defaults: DeepLab v2's PASCAL VOC values (Chen et al., TPAMI
    2017): appearance kernel weight 4, spatial std 67 px, colour std 3; smoothness kernel
    weight 3, spatial std 1 px; 10 mean-field iterations.

    Attributes:
        bilateral_weight, bilateral_xy, bilateral_rgb: the appearance kernel (w1, theta_alpha in
            pixels, theta_beta in 0..255 colour units).
        gaussian_weight, gaussian_xy: the smoothness kernel (w2, theta_gamma in pixels).
        iterations: mean-field steps.
    """

    bilateral_weight: float = 4.0
    bilateral_xy: float = 67.0
    bilateral_rgb: float = 3.0
    gaussian_weight: float = 3.0
    gaussian_xy: float = 1.0
    iterations: int = 10

    @classmethod
    def parse(cls, spec):
        """A `CRF` from None (none), a `CRF`, "crf" (the defaults), a dict of fields, or text
        "crf:iterations=5,bilateral_xy=80"."""
        if spec is None or isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            return cls.of(spec, repr(spec))
        text = str(spec).replace(" ", "")
        name, _, params = text.partition(":")
        if name != "crf":
            raise ValueError(f'`refine` must be "crf" or "crf:name=value,...". Received: refine={spec!r}')
        fields = {}
        for item in filter(None, params.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"refine parameters are name=value. Received: refine={spec!r}")
            fields[key] = value
        return cls.of(fields, repr(spec))

    @classmethod
    def of(cls, fields, shown):
        """Defaults with `fields` ({name: value}) replaced, each checked."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown CRF parameter {unknown[0]!r}; expected one of {sorted(known)}. "
                             f"Received: refine={shown}")
        try:
            values = {k: (int(v) if k == "iterations" else float(v)) for k, v in fields.items()}
        except (TypeError, ValueError):
            raise ValueError(f"CRF parameters must be numbers. Received: refine={shown}") from None
        crf = replace(cls(), **values)
        if crf.iterations < 1 or min(crf.bilateral_xy, crf.bilateral_rgb, crf.gaussian_xy) <= 0 \
                or min(crf.bilateral_weight, crf.gaussian_weight) < 0 \
                or not np.isfinite([crf.bilateral_weight, crf.bilateral_xy, crf.bilateral_rgb,
                                    crf.gaussian_weight, crf.gaussian_xy]).all():
            raise ValueError("CRF iterations must be >= 1, standard deviations > 0 and weights >= 0 "
                             f"(finite). Received: refine={shown}")
        return crf

    def __call__(self, image, probs):
        """Refines `probs` with `image`.

        Args:
            image: uint8 (H, W, 3) RGB, the picture the probabilities are of.
            probs: float (H, W, C) softmax probabilities (each pixel sums to 1).

        Returns:
            float32 (H, W, C): the CRF's marginals.

        Raises:
            MissingExtra: pydensecrf2 is not installed.
            ValueError: shapes that do not match, or more than `MAX_VALUES` pixels x classes.
        """
        dcrf = self.backend()
        image, probs = np.asarray(image), np.asarray(probs, np.float32)
        h, w, c = probs.shape
        if image.shape != (h, w, 3) or image.dtype != np.uint8:
            raise ValueError(f"the CRF needs the uint8 (H, W, 3) image of its probabilities {(h, w)}. "
                             f"Received {image.dtype} {image.shape}")
        if h * w * c > MAX_VALUES:
            raise ValueError(f"an image of {h}x{w} pixels with {c} classes is too large for the CRF "
                             f"({h * w * c} values, at most {MAX_VALUES}); predict at a smaller size "
                             "(max_size / --max-size)")
        crf = dcrf.DenseCRF2D(w, h, c)
        unary = -np.log(np.clip(probs, 1e-8, 1.0)).reshape(h * w, c).T
        crf.setUnaryEnergy(np.ascontiguousarray(unary, np.float32))
        crf.addPairwiseGaussian(sxy=self.gaussian_xy, compat=self.gaussian_weight)
        crf.addPairwiseBilateral(sxy=self.bilateral_xy, srgb=self.bilateral_rgb,
                                 rgbim=np.require(image, np.uint8, ["C", "W"]), compat=self.bilateral_weight)
        q = np.asarray(crf.inference(self.iterations), np.float32)  # (C, H * W)
        return q.T.reshape(h, w, c)

    @staticmethod
    def backend():
        """The `pydensecrf.densecrf` module.

        Raises:
            MissingExtra: pydensecrf2 is not installed (naming the extra).
        """
        try:
            import pydensecrf.densecrf as dcrf
        except ImportError:
            raise MissingExtra('CRF refinement needs pydensecrf2: pip install "fcn-keras[crf]"') from None
        return dcrf

    def __str__(self):
        return ("crf:" + ",".join(f"{k}={getattr(self, k):g}" for k in self.__dataclass_fields__))
