"""Exact tiled inference: an image's logits computed in tiles equal the whole image's.

An FCN is translation-equivariant on the lattice of its largest stride: shift the input by a
multiple of the output stride (32 for every backbone of the registry) and every feature map
shifts by whole cells. So a tile whose origin sits on that grid, carrying enough of the image
around it (the *margin*: how far an output pixel's receptive field reaches), computes its
central pixels exactly as the whole image does; the tile's own zero padding and ceil-mode
pooling at its cut edges only touch the margin. At the image's true borders a tile holds the
true border, so those pixels are exact too.

    spec = tile_spec(model)                      # or tile_spec_for("vgg16", "8s")
    for (y0, y1, x0, x1), (iy0, iy1, ix0, ix1) in plan(h, w, 512, spec):
        scores = call(image[iy0:iy1, ix0:ix1])   # (iy1 - iy0, ix1 - ix0, C)
        core = scores[y0 - iy0 : y1 - iy0, x0 - ix0 : x1 - ix0]

The grid comes from the registry's coordinate maps (the coarsest tap's scale); the margin
from walking the model's layers (kernel sizes, strides, paddings, crops, upsampling), never
typed per net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Layers that do not look at neighbouring pixels (per pixel or per channel only).
_POINTWISE = {"InputLayer", "Preprocess", "LRN", "Activation", "ReLU", "Dropout", "Rescaling",
              "Add", "Multiply", "Concatenate", "Cast", "Identity", "BatchNormalization"}


@dataclass(frozen=True)
class TileSpec:
    """Where tiles may start and how much image they must carry.

    Attributes:
        grid: tile origins are multiples of this many pixels (the output stride, 32).
        before: pixels of image a tile needs above / left of its core (a multiple of `grid`).
        after: pixels of image a tile needs below / right of its core (a multiple of `grid`).
        bytes_per_pixel: an estimate of the activation memory per input pixel (float32), for
            choosing a tile from a memory budget.
        pad: pixels of the net's own zero padding a window computes besides (both sides
            together: 200 for the reference nets' pad 100; 0 for `fcn_keras.staged`'s windows,
            which are cut from the padded input).
    """

    grid: int
    before: int
    after: int
    bytes_per_pixel: float = 0.0
    pad: int = 200

    def tile_for_budget(self, budget_bytes):
        """The largest core tile size (a multiple of `grid`, at least `grid`) whose tile, margins
        and the net's own zero padding included, fits `budget_bytes` of activations."""
        side = math.sqrt(max(budget_bytes, 1) / max(self.bytes_per_pixel, 1e-9))
        core = int(side - self.before - self.after - self.pad) // self.grid * self.grid
        return max(self.grid, core)


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    return tuple(int(a) for a in v)


def _square(layer, name, v):
    a, b = _pair(v)
    if a != b:
        raise ValueError(f"tiling: layer {layer.name!r} has a non-square {name} {v}: not supported")
    return a


def _same_left(kernel):
    """Left padding of a stride-1 'same' window (TensorFlow and Keras: total // 2)."""
    return (kernel - 1) // 2


def _window(layer, cls, span, channels):
    """(jump, lo, hi) after a convolution or pooling layer."""
    j, lo, hi = span
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        k = _square(layer, "pool size", layer.pool_size)
        s = _square(layer, "strides", layer.strides)
    else:
        k = _square(layer, "kernel", layer.kernel_size)
        s = _square(layer, "strides", layer.strides)
        if tuple(_pair(getattr(layer, "dilation_rate", 1))) != (1, 1):
            raise ValueError(f"tiling: layer {layer.name!r} is dilated: not supported")
    if layer.padding == "valid":
        p = 0
    elif s == 1 or k <= s:
        # 'same' with stride 1 pads (k - 1) // 2 before; with k <= s it pads nothing before
        p = _same_left(k) if s == 1 else 0
    else:
        raise ValueError(f"tiling: layer {layer.name!r} uses padding='same' with stride {s} and "
                         f"kernel {k}, whose padding depends on the input size: not supported")
    return (j * s, lo - p * j, hi + (k - 1 - p) * j)


def _walk(model):
    """{tensor id: (jump, lo, hi, channels)}: element i of a tensor depends on the input pixels
    [i * jump + lo, i * jump + hi] (one axis; every layer of these nets is square)."""
    spans = {}
    bytes_per_pixel = 0.0
    for layer in model.layers:
        cls = type(layer).__name__
        for node in layer._inbound_nodes:
            ins = [t for t in node.input_tensors]
            outs = list(node.output_tensors)
            if cls == "InputLayer" or not ins:
                for t in outs:
                    spans[id(t)] = (1.0, 0.0, 0.0)
                continue
            known = [spans[id(t)] for t in ins if id(t) in spans]
            if len(known) != len(ins):
                continue  # a node of another graph
            if cls == "CropToLike":
                j, lo, hi = known[0]
                o = layer.offset * j
                new = (j, lo + o, hi + o)
            elif cls == "ZeroPadding2D":
                (top, _), (left, _) = layer.padding
                if top != left:
                    raise ValueError(f"tiling: layer {layer.name!r} pads the two axes differently")
                j, lo, hi = known[0]
                new = (j, lo - top * j, hi - top * j)
            elif cls in ("Conv2D", "GroupConv2D", "MaxPooling2D", "AveragePooling2D",
                         "DepthwiseConv2D"):
                new = _window(layer, cls, known[0], None)
            elif cls == "Conv2DTranspose":
                k = _square(layer, "kernel", layer.kernel_size)
                s = _square(layer, "strides", layer.strides)
                if layer.padding != "valid":
                    raise ValueError(f"tiling: layer {layer.name!r}: only padding='valid' is supported")
                j, lo, hi = known[0]
                # output i = q * s + t (t < k): from inputs q in [(i - k + 1) / s, i / s]
                new = (j / s, lo - (k - 1) * j / s, hi)
            elif cls in _POINTWISE:
                jumps = {round(sp[0], 9) for sp in known}
                if len(jumps) != 1:
                    raise ValueError(f"tiling: layer {layer.name!r} joins maps of different strides {sorted(jumps)}")
                new = (known[0][0], min(sp[1] for sp in known), max(sp[2] for sp in known))
            else:
                raise ValueError(f"tiling: no receptive-field rule for layer {layer.name!r} ({cls}); "
                                 "add one to fcn_keras.tiling before tiling this model")
            for t in outs:
                spans[id(t)] = new
                shape = getattr(t, "shape", None)
                if shape is not None and shape[-1]:
                    bytes_per_pixel = max(bytes_per_pixel, 4.0 * int(shape[-1]) / new[0] ** 2)
    return spans, bytes_per_pixel


def tile_spec(model, grid=None):
    """The `TileSpec` of an FCN (a functional `keras.Model` with one image input and logits of
    the input's size).

    Args:
        model: the model (any width: the margin depends only on kernels, strides and crops).
        grid: tile origins' spacing in pixels; default: from the registry's coordinate maps of
            `model.backbone_name` (the coarsest tap's scale), else the model's largest stride.

    Raises:
        ValueError: a layer whose receptive field this module has no rule for, or a model whose
            output does not sit on the input's pixel lattice.
    """
    spans, bpp = _walk(model)
    j, lo, hi = spans[id(model.outputs[0])]
    if abs(j - 1.0) > 1e-9:
        raise ValueError(f"tiling: {model.name}'s output is on a lattice of stride {j}, not the input's pixels")
    if grid is None:
        backbone = getattr(model, "backbone_name", None)
        if backbone:
            from fcn_keras.models import registry

            grid = int(max(scale for scale, _ in registry.coords(backbone).values()))
        else:
            grid = int(max(sp[0] for sp in spans.values()))
    up = lambda v: int(math.ceil(max(v, 0.0) / grid)) * grid  # noqa: E731
    # three live maps of the largest per-pixel size at a time (a layer's input and output, and a skip)
    return TileSpec(grid=grid, before=up(-math.floor(lo)), after=up(math.ceil(hi)), bytes_per_pixel=3 * bpp)


def tile_spec_for(backbone, head):
    """The `TileSpec` of a registry architecture, from a thin stand-in (width 1/16: the margin
    does not depend on channel counts); `bytes_per_pixel` is scaled to full width."""
    from fcn_keras.models.fcn import FCN

    width = 0.0625
    model = FCN(backbone, head, num_classes=21, width=width)
    spec = tile_spec(model)
    return TileSpec(spec.grid, spec.before, spec.after, spec.bytes_per_pixel / width)


def plan(height, width, tile, spec):
    """The tiles that cover an image, in row-major order, their input windows of few shapes.

    Along each axis every window is `spec.before + tile + spec.after` pixels long (the
    *window*), except where the axis is no longer than that (one window: the whole axis) and
    for the last one, which ends at the image's edge and starts on the grid, so its length is
    the window's less `grid` plus `size % grid` (the window's own when `size % grid` is 0).
    Every image of the same `size % grid` on both axes, larger than a window, is then computed
    with the same (at most four) window shapes, so a compiled call (`fcn_keras.inference`)
    is compiled for those shapes once. Cores (the pixels a tile gives) do not overlap; the
    first core of an axis is `before` pixels longer than `tile`, the last may be shorter.

    Args:
        height, width: the image's size in pixels.
        tile: the core size in pixels (a positive multiple of `spec.grid`).
        spec: a `TileSpec`.

    Yields:
        ((y0, y1, x0, x1) the core: the output pixels this tile gives,
         (iy0, iy1, ix0, ix1) the input window: the image pixels it is computed from).
    """
    if not isinstance(tile, int) or tile <= 0 or tile % spec.grid:
        raise ValueError(f"`tile` must be a positive multiple of {spec.grid} pixels (the net's output "
                         f"stride). Received: tile={tile!r}")
    rows, cols = _axis(height, tile, spec), _axis(width, tile, spec)
    for (y0, y1), (iy0, iy1) in rows:
        for (x0, x1), (ix0, ix1) in cols:
            yield (y0, y1, x0, x1), (iy0, iy1, ix0, ix1)


def _axis(size, tile, spec):
    """[((core start, end), (window start, end))] along one axis of `size` pixels (`plan`).

    A core [a, b) is exact in a window [s, e) when s is on the grid and s <= a - before (or
    s = 0) and e >= b + after (or e = size). An interior window starts `before` above its core;
    the edge window [size - last, size) takes over as soon as it reaches back that far, which
    it always does before an interior window would cross the edge (`last` > window - grid and
    the cores' ends are on the grid)."""
    window = spec.before + tile + spec.after
    if size <= window:
        return [((0, size), (0, size))]
    last = window - spec.grid + size % spec.grid if size % spec.grid else window
    end = spec.before + tile
    out = [((0, end), (0, window))]
    while end < size:
        if size - last <= end - spec.before:
            out.append(((end, size), (size - last, size)))
            break
        out.append(((end, end + tile), (end - spec.before, end - spec.before + window)))
        end += tile
    return out
