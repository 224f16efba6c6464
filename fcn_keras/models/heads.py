"""The FCN decoders (32s, 16s, 8s, 8s-atonce): score, upsample, crop, fuse.

Heads never know which backbone made the taps: they read the taps' coordinate maps
(scale a, shift b: tap cell y sits at input pixel a*y + b) and derive every crop offset
the way Caffe's `coord_map.crop` does. A deconvolution of kernel k and stride s turns
(a, b) into (a/s, b - (a/s)(k-1)/2); two maps at the same scale are aligned by cropping
the one that starts earlier by (b_late - b_early)/a cells.

Deconvolution kernels are 2s (the reference VGG16 nets) unless that leaves a half-pixel
misalignment, then 2s - 1 (the reference FCN-AlexNet's k63 s32): e.g. VGG16 gives the
reference offsets 19 (32s), 5 and 27 (16s), 5, 9 and 31 (8s); AlexNet 18 (32s). The
upsampling layers are Conv2DTranspose layers (same names and (k, k, C, C) kernels in files)
computed channel by channel (`layers.Conv2DTranspose` of this package).
"""

from keras import layers

from fcn_keras.models import registry
from fcn_keras.models.layers import BilinearInitializer, Conv2DTranspose, CropToLike


def plan(coords, head):
    """The decoder geometry as data.

    coords: {"pool3": (a, b), "pool4": (a, b), "fc7": (a, b)}; head: a name of
    `registry.HEADS` (its taps `skips` and upsampling layer names). Returns a list of steps:
    ("up", name, kernel, stride), ("fuse", tap, offset) with offset > 0 cropping the tap's
    score and <= 0 cropping the upsampled path by -offset, and finally ("crop", offset) to the input.
    """
    spec = registry.head(head)
    skips = spec["skips"]
    a, b = coords["fc7"]
    steps = []
    targets = [coords[t] for t in skips] + [(1, 0.0)]
    for i, (ta, tb) in enumerate(targets):
        stride = a // ta
        name = spec["upsample"][i]
        for kernel in (2 * stride, 2 * stride - 1):
            nb = b - ta * (kernel - 1) / 2
            offset = (nb - tb) / ta
            if offset == int(offset):
                break
        else:  # pragma: no cover - impossible for integer/half-integer shifts
            raise ValueError(f"no integer crop for {head} at stride {ta}")
        steps.append(("up", name, kernel, stride))
        a, b = ta, nb
        if i < len(skips):
            steps.append(("fuse", skips[i], int(offset)))
            b = max(b, tb)  # the crop keeps the later-starting map's alignment
        else:
            if offset > 0:
                raise ValueError(f"the {head} output starts inside the input (offset {offset})")
            steps.append(("crop", int(-offset)))
    return steps


def fcn_head(taps, coords, head, num_classes, reference):
    """taps: backbone outputs; reference: any (N, H, W, .) tensor of the input's size.

    Returns logits (N, H, W, num_classes), float32 (the final crop layer is float32 even
    under a mixed-precision policy).
    """
    def score(x, name):
        return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=name)(x)

    x = score(taps["fc7"], "score_fr")
    tap_scale = registry.head(head)["tap_scale"]
    up_name = None
    for step in plan(coords, head):
        if step[0] == "up":
            _, name, kernel, stride = step
            up_name = name
            x = Conv2DTranspose(
                num_classes, kernel, strides=stride, padding="valid", use_bias=False,
                kernel_initializer=BilinearInitializer(), trainable=False, name=name)(x)
        elif step[0] == "fuse":
            _, tap, offset = step
            t = taps[tap]
            if tap in tap_scale:
                t = layers.Rescaling(tap_scale[tap], name=f"scale_{tap}")(t)
            s = score(t, f"score_{tap}")
            if offset > 0:
                s = CropToLike(offset, name=f"score_{tap}c")([s, x])
            else:
                x = CropToLike(-offset, name=f"{up_name}c")([x, s])
            x = layers.Add(name=f"fuse_{tap}")([x, s])
        else:
            x = CropToLike(step[1], name="score", dtype="float32")([x, reference])
    return x
