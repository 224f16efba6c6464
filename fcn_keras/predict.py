"""Label maps from any model the project makes or names, in Python and as `fcn-keras predict`.

    from fcn_keras.predict import Predictor
    p = Predictor("fcn8s.tflite")              # or .keras, .onnx, a SavedModel folder, a zoo name,
    labels, scores = p.predict(image)          # a .weights.h5 with backbone/head/num_classes
    p.class_names, p.palette
    Predictor("voc-fcn8s", precision="bfloat16")   # a bfloat16 copy of a Keras model

Large photos: the network sees the image with its longest side at most `max_size` pixels
(default 1024; 0 = full resolution); the scores are resized back to the photo's size
(bilinear, 64 rows at a time) before the argmax, so labels and scores always have the
photo's size and memory stays bounded by the network's input. Artefacts exported with a fixed
input size take every image resized to that size, and their scores are resized back the same way.

Tiles: `Predictor(..., tile=512)` (or "auto") computes what the network sees in tiles whose
logits equal the whole image's, so `max_size=0` (full resolution) needs only one tile's
memory; at full resolution labels and scores are written as tiles (or row bands) complete.
A Keras FCN is tiled in stages (`fcn_keras.staged`: its front in tiles with small halos, its
coarse middle whole, its last upsampling in row bands); an artefact, or a Keras model of
another structure, in whole-net windows (`fcn_keras.tiling`).
"""

import warnings

import numpy as np

from fcn_keras.conventions import DEFAULT_MAX_SIZE, IGNORE_LABEL, class_metadata
ROWS = 64  # rows of full-size scores made at a time: bounds the memory of the resize
TILE_BUDGET = 1 << 30  # bytes of activations a tile may use with tile="auto"


class Predictor:
    """Predicts per-pixel classes with a Keras model or an exported artefact.

    Args:
        model: a `keras.Model`; or a path: `.keras`, a SavedModel folder, `.tflite` (float32,
            float16 or int8), `.onnx`, or a weights file (`.weights.h5`, `.h5`, `.caffemodel`)
            together with `backbone`, `head` and `num_classes`; or a zoo name
            (`fcn_keras.list_models()`).
        backbone, head, num_classes, width: the architecture a weights file was trained with
            (only for weights files; width defaults to 1.0).
        class_names: names by class id (default: the artefact's metadata or zoo entry, the VOC
            names for 21 classes, else "class_i").
        palette: (C, 3) uint8 colours (default: the artefact's metadata, else the VOC colour map).
        max_size: longest image side, in pixels, the network sees (larger images are resized
            down and their scores resized back); 0 or None = full resolution. Ignored by
            artefacts with a fixed input size.
        num_threads: CPU threads for the TFLite / ONNX runtimes (None: their default).
        tile: None (the whole image at once), a tile size in pixels (a multiple of the net's
            output stride, 32), or "auto" (the largest tile whose activations fit
            `tile_budget` bytes; for a Keras model, less the image's cut tensors). Tiled logits
            equal the whole image's (`fcn_keras.staged` for a Keras model, else
            `fcn_keras.tiling`). Not for artefacts with a fixed input size.
        tile_budget: bytes of activations a tile may use with tile="auto" (default 1 GiB).
        tta: test-time augmentation: None, "flip", "scales=0.5,0.75,1,1.25,1.5", both
            ("flip,scales=..."), or a `TTA`. The scores are then the log of the softmax
            probabilities averaged over the flips and scales (each scale computed at its own
            size, tiled when `tile` is set, and resized back to the size the network sees).
        refine: None, "crf" (a dense CRF over the probabilities and the image, DeepLab's
            defaults: `fcn_keras.refine.CRF`), "crf:iterations=5,..." or a `CRF`; run at the
            size the network sees, after `tta`; scores are then log-probabilities. Needs the
            extra `pip install "fcn-keras[crf]"`.
        precision: what a Keras model (a keras.Model, .keras, weights file, zoo name) computes
            in: "float32" or "bfloat16" (a copy with bfloat16 weights and compute,
            `fcn_keras.models.with_precision`: half the weight memory, labels equal to
            float32's but where its top two scores nearly tie; can be fast only on CPUs with
            AVX-512 BF16 or AMX, no faster than float32 elsewhere, with a warning). None: the
            model's own (float32 unless it was saved in bfloat16). An exported artefact's
            precision was fixed at export: it must be None or the artefact's own.
        trust: a SavedModel is a program that can read and write files: False (default)
            refuses one holding an op that an fcn_keras export does not hold
            (`fcn_keras.export.graph_check.UntrustedModelError`, raised before it is loaded);
            True loads any SavedModel, for one from a source you trust as a program.

    Attributes:
        class_names: list of C names; palette: (C, 3) uint8 colours; num_classes: C;
        format: "keras", "weights", "zoo", "saved_model", "tflite" or "onnx"; source: the
        path, zoo name or model name; fixed_size: None or the artefact's (height, width);
        precision: what it computes in: a Keras dtype policy name ("float32", "bfloat16") or
        an artefact's `quantize` ("float32", "bfloat16", "float16", "dynamic-int8", "int8").

    Raises:
        FileNotFoundError: `model` is a path that does not exist.
        ValueError: an unsupported file, a weights file without its architecture, or one that
            does not fit it; a `precision` that is not offered for `model`.
        fcn_keras.export.graph_check.UntrustedModelError (a ValueError): a SavedModel holding
            an op outside the allowlist, with trust=False.
        fcn_keras.weights.DownloadError: a zoo model that is neither cached nor downloadable.
    """

    def __init__(self, model, *, backbone=None, head=None, num_classes=None, width=None,
                 class_names=None, palette=None, max_size=DEFAULT_MAX_SIZE, num_threads=None,
                 precision=None, trust=False, tile=None, tile_budget=TILE_BUDGET, tta=None, refine=None):
        from fcn_keras.models.precision import PRECISIONS

        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"`precision` must be None (the model's own) or one of {PRECISIONS}. "
                             f"Received: precision={precision!r}")
        self.tta = TTA.parse(tta)
        from fcn_keras.refine import CRF

        self.refine = CRF.parse(refine)
        if self.refine:
            CRF.backend()  # a missing extra is said before any work
        if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
            raise ValueError(f"`max_size` must be a non-negative int (0: full resolution). "
                             f"Received: max_size={max_size!r}")
        self.max_size = max_size or None
        from fcn_keras.loading import open_runnable

        opened = open_runnable(model, backbone=backbone, head=head, num_classes=num_classes, width=width,
                               precision=precision, num_threads=num_threads, trust=trust)
        self.source, self.format, self.precision = opened.source, opened.format, opened.precision
        self.fixed_size, self.num_classes = opened.fixed_size, opened.num_classes
        self._call, self._model, meta = opened.call, opened.model, opened.meta
        self._note = None
        if self.precision == "bfloat16":
            from fcn_keras.models.cpu_flags import slow_bfloat16_note

            self._note = slow_bfloat16_note()
            if self._note:
                warnings.warn(f"{self.source} computes in bfloat16; {self._note}", stacklevel=2)
        if self.num_classes > IGNORE_LABEL:
            raise ValueError(f"A label PNG holds class ids 0..{IGNORE_LABEL - 1} ({IGNORE_LABEL} = void): "
                             f"{self.source} has "
                             f"{self.num_classes} classes")
        try:
            self.class_names, self.palette = class_metadata(
                self.num_classes, class_names if class_names is not None else meta.get("class_names"),
                palette if palette is not None else meta.get("palette"))
        except ValueError as e:
            given = "the arguments" if class_names is not None or palette is not None else "its metadata"
            raise ValueError(f"{self.source}: {given}: {e}") from None
        self._staged, self._tile_budget = None, tile_budget if tile == "auto" else None
        self.tile, self.tile_spec = self._tiling(tile, tile_budget, meta)
        if self.tile and self._model is not None:
            self._call.xla_after = None  # tiles bound memory: XLA's compiled shapes would add to it
        if self.tta and self.fixed_size and self.tta.scales != (1.0,):
            raise ValueError(f"{self.source} takes a fixed input size {tuple(self.fixed_size)}: TTA scales "
                             f"need a model that takes any size (flip alone works). Received: tta={str(self.tta)!r}")

    def _tiling(self, tile, budget, meta):
        """(core tile size or None, `tiling.TileSpec` or None) for `tile`."""
        if tile is None:
            return None, None
        if tile != "auto" and (isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0):
            raise ValueError(f'`tile` must be None, "auto" or a positive number of pixels. Received: tile={tile!r}')
        if self.fixed_size:
            raise ValueError(f"{self.source} takes a fixed input size {tuple(self.fixed_size)}: it cannot "
                             "be tiled (tiles need a model that takes any size)")
        from fcn_keras import tiling

        if self._model is not None:
            spec = tiling.tile_spec(self._model)
            if tile == "auto" or tile % spec.grid == 0:
                from fcn_keras.staged import Staged

                self._staged = Staged.of(self._model)
            if self._staged:
                staged = self._staged.spec
                return (staged.tile_for_budget(budget) if tile == "auto" else tile), staged
        else:
            arch = meta.get("model") or {}
            if not (arch.get("backbone") and arch.get("head")):
                raise ValueError(f"{self.source} does not say its backbone and head (its metadata), "
                                 "which tiling needs for the receptive field")
            spec = tiling.tile_spec_for(arch["backbone"], arch["head"])
        if tile == "auto":
            return spec.tile_for_budget(budget), spec
        if tile % spec.grid:
            raise ValueError(f"`tile` must be a multiple of {spec.grid} pixels (the net's output stride), "
                             f"so tiles start on its grid. Received: tile={tile}")
        return tile, spec

    def network_size(self, height, width):
        """The (height, width) the network sees for an image of (height, width) pixels."""
        if self.fixed_size:
            return tuple(self.fixed_size)
        longest = max(height, width)
        if self.max_size and longest > self.max_size:
            s = self.max_size / longest
            return max(1, round(height * s)), max(1, round(width * s))
        return height, width

    def predict(self, image, return_scores=True, scores_out=None):
        """Labels and scores for one image, at the image's own size.

        Args:
            image: uint8 (H, W, 3) RGB, pixel values 0..255.
            return_scores: also return the scores (a new float32 array unless `scores_out`).
            scores_out: optional (H, W, C) array (e.g. a float16 `np.lib.format.open_memmap`)
                the scores are written into, 64 rows at a time, instead of a new array.

        Returns:
            (labels uint8 (H, W) class ids, scores (H, W, C) float32 logits (with `tta` or
            `refine`: log-probabilities) or `scores_out`, or None when neither is asked for).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"`image` must be uint8 (H, W, 3). Received {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        size = self.network_size(h, w)
        x = image if size == (h, w) else _resize_image(image, size)
        c = self.num_classes
        if scores_out is None and return_scores:
            scores_out = np.empty((h, w, c), np.float32)
        if scores_out is not None and tuple(scores_out.shape) != (h, w, c):
            raise ValueError(f"`scores_out` must have shape {(h, w, c)}. Received {tuple(scores_out.shape)}")
        labels = np.empty((h, w), np.uint8)
        if size == (h, w) and self.tile and not (self.tta or self.refine):  # tiles go straight out
            for (y0, y1, x0, x1), core in self._tiles(x):
                labels[y0:y1, x0:x1] = core.argmax(-1)
                if scores_out is not None:
                    scores_out[y0:y1, x0:x1] = core
            return labels, scores_out
        small = self._augmented(x) if self.tta else self._network(x)
        if self.refine:
            probs = np.exp(small) if self.tta else _softmax(small)
            small = np.log(np.maximum(self.refine(x, probs), np.finfo(np.float32).tiny))
        for y0, y1, rows in resize_rows(small, h, w):
            labels[y0:y1] = rows.argmax(-1)
            if scores_out is not None:
                scores_out[y0:y1] = rows
        return labels, scores_out

    def _network(self, x):
        """The network's scores (h, w, C) float32 for x (h, w, 3) uint8: whole, or tile by tile."""
        if not self.tile:
            return self._scores(x)
        out = np.empty(x.shape[:2] + (self.num_classes,), np.float32)
        for (y0, y1, x0, x1), core in self._tiles(x):
            out[y0:y1, x0:x1] = core
        return out

    def _augmented(self, x):
        """Test-time augmentation: log of the softmax probabilities averaged over `tta.scales`
        (each computed at its own size, resized back as `predict` resizes) and, with
        `tta.flip`, the horizontal mirror of each. (h, w, C) float32."""
        size = x.shape[:2]
        total, n = None, 0
        for scale in self.tta.scales:
            scaled = tuple(max(1, round(d * scale)) for d in size)
            xs = x if scaled == size else _resize_image(x, scaled)
            for flip in (False, True) if self.tta.flip else (False,):
                scores = self._network(np.ascontiguousarray(xs[:, ::-1]) if flip else xs)
                probs = _softmax(scores[:, ::-1] if flip else scores)
                if scaled != size:
                    probs = np.concatenate([rows for _, _, rows in resize_rows(probs, *size)])
                total = probs if total is None else total + probs
                n += 1
        return np.log(np.maximum(total / n, np.finfo(np.float32).tiny))

    def _scores(self, x):
        """The network's scores (h, w, C) float32 for one image x (h, w, 3) uint8, whole."""
        scores = self._call(x[None])[0]
        expected = x.shape[:2] + (self.num_classes,)
        if scores.shape != expected:
            raise ValueError(f"{self.source} returned scores of shape {scores.shape} for a "
                             f"{x.shape[:2]} input; expected {expected}")
        return scores

    def _tiles(self, x):
        """Yields ((y0, y1, x0, x1), scores of those pixels) tile by tile (or band by band), equal
        to the whole image's scores there (`fcn_keras.staged`, else `fcn_keras.tiling.plan`)."""
        from fcn_keras.tiling import plan

        if self._staged:  # with tile="auto" the windows leave room for the image's cut tensors
            staged, tile = self._staged, self.tile
            if self._tile_budget:  # "auto": a coarser cut for a large image, then the tile
                staged = staged.for_image(*x.shape[:2], self._tile_budget)
                tile = staged.tile_for(*x.shape[:2], self._tile_budget)
            yield from staged.run(x, tile)
            return
        for (y0, y1, x0, x1), (iy0, iy1, ix0, ix1) in plan(x.shape[0], x.shape[1], self.tile, self.tile_spec):
            scores = self._scores(np.ascontiguousarray(x[iy0:iy1, ix0:ix1]))
            yield (y0, y1, x0, x1), scores[y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0]


class TTA:
    """Test-time augmentation: `flip` (bool: also the horizontal mirror) and `scales` (the
    factors each image is resized by; 1.0 is the image as the network would see it).

    `TTA.parse("flip")`, `TTA.parse("flip,scales=0.5,0.75,1,1.25,1.5")`, `TTA.parse("scales=1,2")`.
    """

    def __init__(self, flip=False, scales=(1.0,)):
        scales = tuple(float(s) for s in scales)
        if not scales or any(not np.isfinite(s) or s <= 0 or s > 4 for s in scales):
            raise ValueError(f"TTA scales must be numbers in (0, 4]. Received: scales={scales!r}")
        self.flip, self.scales = bool(flip), scales

    @classmethod
    def parse(cls, spec):
        """A `TTA` from None (none), a `TTA`, or text: "flip", "scales=a,b,...", or both
        ("flip,scales=0.5,1,1.5")."""
        if spec is None or isinstance(spec, cls):
            return spec
        text = str(spec).replace(" ", "")
        flip, _, scales = text.partition("scales=")
        flip = flip.rstrip(",")
        if flip not in ("", "flip") or (not flip and not scales):
            raise ValueError(f'`tta` must be "flip", "scales=a,b,..." or "flip,scales=a,b,...". '
                             f"Received: tta={spec!r}")
        try:
            factors = [float(v) for v in scales.split(",") if v] if scales else [1.0]
        except ValueError:
            raise ValueError(f"TTA scales must be numbers. Received: tta={spec!r}") from None
        return cls(flip=flip == "flip", scales=factors)

    def __repr__(self):
        return f"TTA(flip={self.flip}, scales={self.scales})"

    def __str__(self):
        parts = (["flip"] if self.flip else []) + [f"scales={','.join(f'{s:g}' for s in self.scales)}"]
        return ",".join(parts)


def _softmax(scores):
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def resize_rows(scores, height, width, rows=ROWS):
    """Bilinear resize of scores (h, w, C) to (height, width, C), `rows` output rows at a time.

    Half-pixel centres, as `tf.image.resize(..., "bilinear")`; only one block of rows is ever
    held, so full-size scores need not fit in memory.

    Yields:
        (y0, y1, float32 array (y1 - y0, width, C)).
    """
    h, w = scores.shape[:2]
    if (h, w) == (height, width):
        for y0 in range(0, height, rows):
            yield y0, min(height, y0 + rows), scores[y0:y0 + rows]
        return
    ya, yb, fy = _weights(h, height)
    xa, xb, fx = _weights(w, width)
    fx = fx[None, :, None]
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        top, bottom = scores[ya[y0:y1]], scores[yb[y0:y1]]
        r = top + (bottom - top) * fy[y0:y1, None, None]
        left = r[:, xa]
        yield y0, y1, left + (r[:, xb] - left) * fx


def _weights(n_in, n_out):
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    return lo, np.minimum(lo + 1, n_in - 1), (pos - lo).astype(np.float32)


def _resize_image(image, size):
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR), np.uint8)
