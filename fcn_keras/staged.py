"""Staged exact tiling of a Keras FCN: a front in tiles, a middle whole, a tail in row bands.

Only the high-resolution front of an FCN needs tiles. With a cut stride J (a quarter of the
output stride: 8 for every backbone here), the *front* is every layer computable
from the padded input P (the output of the net's first `ZeroPadding2D`, pad 100) through maps
of jump <= J; the *cut tensors* are the front maps that later layers read (VGG16 FCN-8s:
conv4_3 and score_pool3). The front runs on windows of P whose origins are
multiples of every front jump; a window's map cell k is the whole map's cell k + s/j (window
at P pixel s, map jump j), and it is exact where its receptive field (`tiling._walk`, in P
pixels) lies inside the window or reaches only the true border, which the window then holds:
the zero padding of P is filled in exactly (zeros outside the image), so windows waste no
padding at their inner edges. Windows overlap by the cut tensors' reach (112 px for VGG16
at J=8, against the whole net's 2 x 256 in `tiling.plan`), each gives the cells it computes
exactly, and each cut tensor is assembled whole (float32, e.g. 1/64 of the pixels x 512
channels). The *middle* (from the cut tensors to the input of the last
`Conv2DTranspose`) runs whole; the *tail* (that transposed convolution and the final
`CropToLike` "score") runs in bands of its input rows, full width, each giving the output
rows all of whose contributors lie in the band (or at the true edge).

    staged = Staged.of(model)              # None: not this structure (use tiling.plan)
    tile = staged.tile_for(*image.shape[:2], 1 << 30)
    for (y0, y1, x0, x1), rows in staged.run(image, tile):
        labels[y0:y1] = rows.argmax(-1)    # rows (y1 - y0, W, C) float32 logits, x0 = 0, x1 = W

Every piece runs through `fcn_keras.inference.CompiledCall` (as the graph: pieces bound memory).
"""

import math

import numpy as np

from fcn_keras import tiling

TAIL_BYTES = 64 << 20  # float32 logits of one band of the tail's output
# The cut stride J is the output stride / 4 (8 for every backbone here: the finest skip tap's
# stride), or twice that for a large image (`for_image`). J = 16 (conv5 tiled too, halos of
# conv5_3's 196 px reach against conv4_3's 92) took 16% longer at 4 MP; at 12 MP it took as long
# as J = 8 and peaked 0.64 GB lower, its cut maps being a quarter of the size
# (docs/full-resolution.md, "Measured"). The cut maps are taken out of the windows' budget by
# `Staged.tile_for`.
CUT_FRACTION = 4
# The middle holds about this many times the cut maps at once (the assembled maps, the
# runtime's copy of them, a layer's output): with more than the tile budget, cut coarser.
MIDDLE_COPIES = 3


class Staged:
    """The three stages of one FCN (use `Staged.of`).

    Attributes:
        spec: a `tiling.TileSpec`: `grid` the front windows' origin step (P pixels), `before`
            / `after` the halo (P pixels) around a window's core, `bytes_per_pixel` the
            activation estimate per window pixel.
        calls: the four `CompiledCall`s (stem, front, middle, tail), run as the graph.
        band_bytes: float32 bytes of the tail's output per band (default `TAIL_BYTES`).
        cut: the cut stride J; cuts: [(jump, lo, hi)] per cut tensor: cell i reads P pixels
            [i * jump + lo, i * jump + hi].
    """

    def __init__(self, model, cut=None, shrink=0):
        """Raises ValueError when `model` is not an FCN of this structure (see `of`).
        `shrink`: P pixels taken off each cut tensor's reach on both sides (tests only: a
        halo too small must give wrong logits)."""
        import keras

        from fcn_keras.inference import CompiledCall

        spans, bpp = tiling._walk(model)
        out = model.outputs[0]
        crop, crop_node = _producer(out)
        x, like = crop_node.input_tensors if type(crop).__name__ == "CropToLike" else (None, None)
        if x is None or like is not model.inputs[0]:
            raise ValueError("staged: the output is not a CropToLike of the input's size")
        up, up_node = _producer(x)
        if type(up).__name__ != "Conv2DTranspose":
            raise ValueError("staged: the final crop is not fed by a Conv2DTranspose")
        jumps = {sp[0] for sp in spans.values()}
        self.cut = int(cut or max(jumps) // CUT_FRACTION)
        pad, p_in, p, stem = _padding(model)
        p_lo = spans[id(p)][1]
        front, cuts = _front(model, spans, p, self.cut, {crop, up}, stem)
        if not cuts or any(t is p for t in cuts):
            raise ValueError("staged: no front to tile")
        self.cuts = [(int(spans[id(t)][0]), spans[id(t)][1] - p_lo + shrink, spans[id(t)][2] - p_lo - shrink)
                     for t in cuts]
        self.grid = math.lcm(*(int(spans[i][0]) for i in front))
        reach = max(hi - lo + j for j, lo, hi in self.cuts)  # the overlap two windows need
        half = max(self.grid, math.ceil(reach / 2 / self.grid) * self.grid)
        self.spec = tiling.TileSpec(self.grid, half, half, 3 * bpp, pad=0)
        self.pad = pad  # ((top, bottom), (left, right)) pixels of P around the image
        self.kernel, self.stride = int(up.kernel_size[0]), int(up.strides[0])
        self.offset = crop.offset
        stem_out = p_in if p_in is not model.inputs[0] else keras.layers.Identity()(p_in)
        self._stem = CompiledCall(keras.Model(model.inputs, stem_out), None, preprocess_like=model)
        one = cuts[0] if len(cuts) == 1 else list(cuts)
        self._front = CompiledCall(keras.Model(p, one), None, tensors=True)
        self._middle = CompiledCall(keras.Model(one, up_node.input_tensors[0]), None, tensors=True)
        self._tail = CompiledCall(keras.Model(up_node.input_tensors[0], x), None, tensors=True)
        self._channels = [int(t.shape[-1]) for t in cuts]
        self.calls = [self._stem, self._front, self._middle, self._tail]
        self.band_bytes = TAIL_BYTES
        self._model, self._coarser = model, None

    @classmethod
    def of(cls, model, cut=None):
        """The `Staged` of `model`, or None where a layer has no receptive-field rule or the
        structure differs (no first ZeroPadding2D after pointwise layers, no final CropToLike
        of the input's size fed by a Conv2DTranspose, no front): then window tiling applies."""
        try:
            return cls(model, cut)
        except ValueError:
            return None

    def maps_bytes(self, height, width):
        """float32 bytes of the assembled cut tensors for an image of (height, width) pixels."""
        (top, bottom), (left, right) = self.pad
        cells = (height + top + bottom) * (width + left + right)
        return sum(4.0 * c * cells / j ** 2 for (j, _, _), c in zip(self.cuts, self._channels))

    def for_image(self, height, width, budget_bytes):
        """This staging, or the one cut at twice the stride when the middle would hold more than
        `budget_bytes` (`MIDDLE_COPIES` times the cut maps): e.g. VGG16 FCN-8s at 1 GiB keeps
        J = 8 up to about 8 megapixels and takes J = 16 above."""
        if MIDDLE_COPIES * self.maps_bytes(height, width) <= budget_bytes:
            return self
        if self._coarser is None:
            self._coarser = Staged.of(self._model, cut=2 * self.cut) or self
        return self._coarser

    def tile_for(self, height, width, budget_bytes):
        """The core tile (P pixels) for an image of (height, width) pixels: the largest whose
        window fits `budget_bytes` less the assembled cut tensors (at least a quarter of it)."""
        maps = self.maps_bytes(height, width)
        return self.spec.tile_for_budget(max(budget_bytes - maps, budget_bytes / 4))

    def run(self, image, tile):
        """Yields ((y0, y1, 0, W), logits (y1 - y0, W, C) float32) band by band, top to bottom,
        equal to the whole image's logits; image: uint8 (H, W, 3); tile: the front windows'
        core in P pixels (a multiple of `spec.grid`)."""
        maps = self._assemble(image, tile)
        middle = self._middle(*maps)
        del maps
        yield from self._bands(middle, image.shape[0], image.shape[1])

    def _window(self, image, sy, ey, sx, ex):
        """P[sy:ey, sx:ex] (1, ey - sy, ex - sx, 3) float32: the preprocessed image, zeros
        where the window covers the net's padding."""
        (top, _), (left, _) = self.pad
        h, w = image.shape[:2]
        y0, y1, x0, x1 = max(0, sy - top), min(h, ey - top), max(0, sx - left), min(w, ex - left)
        p = np.zeros((1, ey - sy, ex - sx, 3), np.float32)
        if y1 > y0 and x1 > x0:
            p[0, y0 + top - sy:y1 + top - sy, x0 + left - sx:x1 + left - sx] = \
                self._stem(np.ascontiguousarray(image[None, y0:y1, x0:x1]))[0]
        return p

    def _assemble(self, image, tile):
        """The cut tensors of the whole image [(1, n_y, n_x, C_i) float32], from windows of P."""
        (top, bottom), (left, right) = self.pad
        size = (image.shape[0] + top + bottom, image.shape[1] + left + right)
        rows, cols = windows(size[0], tile, self.spec), windows(size[1], tile, self.spec)
        # the bottom-right window first: its maps end where the whole image's do, giving their sizes
        order = [(len(rows) - 1, len(cols) - 1)] + [(r, c) for r in range(len(rows)) for c in range(len(cols))][:-1]
        maps = gives = None
        for r, c in order:
            (sy, ey), (sx, ex) = rows[r], cols[c]
            outs = self._front(self._window(image, sy, ey, sx, ex))
            outs = outs if isinstance(outs, list) else [outs]
            if maps is None:
                maps = [np.empty((1, sy // j + o.shape[1], sx // j + o.shape[2], o.shape[3]), np.float32)
                        for (j, _, _), o in zip(self.cuts, outs)]
                gives = [(_gives(rows, size[0], cut, m.shape[1]), _gives(cols, size[1], cut, m.shape[2]))
                         for cut, m in zip(self.cuts, maps)]
            for (j, _, _), m, o, (gy, gx) in zip(self.cuts, maps, outs, gives):
                (a, z), (a2, z2) = gy[r], gx[c]
                m[0, a:z, a2:z2] = o[0, a - sy // j:z - sy // j, a2 - sx // j:z2 - sx // j]
        return maps

    def _bands(self, middle, height, width):
        """The tail on bands of the middle's rows (full width): the exact output rows of each."""
        k, s, o = self.kernel, self.stride, self.offset
        rows_in, cols_in, channels = middle.shape[1:]
        overlap = -(-(k - 1) // s)  # input rows two bands share
        out_width = (cols_in - 1) * s + k
        length = min(rows_in, overlap + max(1, self.band_bytes // (s * out_width * channels * 4)))
        q0, given = 0, 0
        while given < height:
            q1 = q0 + length
            if q1 >= rows_in:
                q0, q1 = rows_in - length, rows_in
            first = 0 if q0 == 0 else q0 * s + k - 1  # the band's first exact row of the upsampled map
            end = (rows_in - 1) * s + k if q1 == rows_in else q1 * s
            if first - o > given:
                raise RuntimeError(f"staged: tail bands leave rows {given}..{first - o} out")  # pragma: no cover
            y1 = min(height, end - o)
            if y1 > given:  # a band may end above the crop's first row
                up = self._tail(middle[:, q0:q1])[0]
                yield (given, y1, 0, width), up[given + o - q0 * s:y1 + o - q0 * s, o:o + width]
                given = y1
            q0 = q1 - overlap


def windows(size, tile, spec):
    """[(s, e)] the front's windows of P along one axis of `size` P pixels: as few as windows
    of at most `spec.before + tile + spec.after` pixels need, all of one length (a multiple of
    `spec.grid`, as short as covers the axis) but the last, which ends at the edge;
    consecutive ones overlap by `spec.before + spec.after` (the cut tensors' reach)."""
    overlap = spec.before + spec.after
    if size <= overlap + tile:
        return [(0, size)]
    n = -(-(size - overlap) // tile)  # n windows of the longest length cover n * tile + overlap
    length = -(-(size + (n - 1) * overlap) // (n * spec.grid)) * spec.grid
    step = length - overlap
    return [(t * step, min(size, t * step + length)) for t in range(n)]


def _producer(tensor):
    """(layer, node) that made a KerasTensor."""
    layer, node_index, _ = tensor._keras_history
    return layer, layer._inbound_nodes[node_index]


def _padding(model):
    """(((top, bottom), (left, right)), its input tensor, P, {the layers before it}): the first
    ZeroPadding2D, which must follow pointwise layers only."""
    stem = set()
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "ZeroPadding2D":
            node = layer._inbound_nodes[0]
            return tuple(tuple(p) for p in layer.padding), node.input_tensors[0], node.output_tensors[0], stem | {layer}
        if cls not in tiling._POINTWISE:
            break
        stem.add(layer)
    raise ValueError("staged: no ZeroPadding2D after pointwise layers at the input")


def _front(model, spans, p, cut, tail, stem):
    """(ids of the front's maps, [the cut tensors]): maps computable from P through jumps <= cut;
    cut tensors are those a later layer reads. The `tail` layers must read no front map (the
    final crop reads the input for its size only); no layer but the `stem` reads the input."""
    front, cuts = {id(p)}, {}
    for layer in model.layers:
        if layer in stem:
            continue
        for node in layer._inbound_nodes:
            ins, outs = list(node.input_tensors), list(node.output_tensors)
            if not ins or any(id(t) not in spans for t in ins) or id(outs[0]) in front:
                continue  # an input, a node of another graph, or P itself
            if layer not in tail and all(id(t) in front for t in ins) and all(spans[id(t)][0] <= cut for t in outs):
                front.update(id(t) for t in outs)
                continue
            for t in ins:
                if id(t) in front and layer not in tail:
                    cuts.setdefault(id(t), t)
                elif id(t) in front or (layer not in tail and spans[id(t)][0] == 1):
                    raise ValueError(f"staged: {layer.name} reads a map of the input's resolution")
    return front, list(cuts.values())


def _gives(windows, size, cut, n):
    """[(a, z)] per window along one axis: the whole map's cells [a, z) that window gives
    (consecutive, covering [0, n), each computed exactly by its window).

    windows: [(s, e)] P pixels; size: P's length; cut: (jump, lo, hi); n: the map's cells."""
    j, lo, hi = cut
    firsts = [0 if s == 0 else max(s // j, math.ceil((s - lo) / j)) for s, _ in windows]
    out = []
    for t, (s, e) in enumerate(windows):
        end = n if t == len(windows) - 1 else firsts[t + 1]
        last = n if e == size else math.floor((e - 1 - hi) / j) + 1
        if end > last or (out and out[-1][1] < firsts[t]):  # pragma: no cover - the halo covers the reach
            raise RuntimeError(f"staged: windows {windows} do not overlap enough for reach {cut}")
        out.append((out[-1][1] if out else 0, end))
    return out
