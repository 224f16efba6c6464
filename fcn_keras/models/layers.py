"""The few custom layers of the FCN nets: all keras.ops, all serialisable.

Every class is registered under the stable package name "fcn_keras" (it is stored in
`.keras` files), so `keras.models.load_model` needs no `custom_objects` once
`fcn_keras` is imported. Each layer is written to survive export to SavedModel, TFLite
(float and int8) and ONNX: static pads only, Python slicing for crops,
`ops.take` for the channel swap (never `ops.flip`), zero padding for pooling
(never -inf), grouped convolutions as one convolution per group.
"""

import contextlib

import keras
from keras import layers, ops

from fcn_keras.conventions import CAFFE_BGR_MEAN

PACKAGE = "fcn_keras"


def bilinear_kernel(size, channels):
    """The reference's `surgery.interp` filter as a NumPy array.

    Returns (size, size, channels, channels) float32, channel c -> c bilinear, zero elsewhere
    (Keras Conv2DTranspose kernel layout: kh, kw, out, in).
    """
    import numpy as np

    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    grid = np.arange(size, dtype=np.float64)
    profile = 1.0 - np.abs(grid - center) / factor
    filt = np.outer(profile, profile).astype("float32")
    kernel = np.zeros((size, size, channels, channels), dtype="float32")
    for c in range(channels):
        kernel[:, :, c, c] = filt
    return kernel


@keras.saving.register_keras_serializable(package=PACKAGE)
class BilinearInitializer(keras.initializers.Initializer):
    """Initialises a Conv2DTranspose kernel (k, k, C, C) to bilinear interpolation, c -> c."""

    def __call__(self, shape, dtype=None):
        kh, kw, c_out, c_in = shape
        if kh != kw or c_out != c_in:
            raise ValueError(
                "BilinearInitializer needs a square kernel with as many output as input "
                f"channels, shape (k, k, C, C). Received: shape={tuple(shape)}"
            )
        return ops.convert_to_tensor(bilinear_kernel(kh, c_out), dtype=dtype or "float32")

    def get_config(self):
        return {}


def is_channelwise(kernel):
    """True if a (k, k, C, C) transposed-convolution kernel maps channel c only to c."""
    import numpy as np

    kernel = np.asarray(kernel)
    off = kernel * (1 - np.eye(kernel.shape[2], kernel.shape[3], dtype=kernel.dtype))
    return kernel.shape[2] == kernel.shape[3] and not off.any()


@keras.saving.register_keras_serializable(package=PACKAGE)
class Conv2DTranspose(layers.Conv2DTranspose):
    """A Conv2DTranspose (stride s, 'valid', kernel (k, k, C, C)) computed channel by channel.

    It keeps Keras' class name on purpose: Keras names a layer's entry in `.weights.h5` /
    `.keras` files after its class, so files are the same as with `keras.layers.Conv2DTranspose`
    (which files written before this layer existed load into, unchanged).

    The FCN's upsampling layers are transposed convolutions whose kernel is diagonal (the
    fixed bilinear filter, channel c -> c). The kernel is stored in Conv2DTranspose's dense
    (k, k, C, C) layout, so files and weight names are those of a plain Conv2DTranspose, but
    the work is per channel: output phase (r, t) of every s x s output cell is a J x J
    correlation of the input (J = ceil(k / s)), computed as one depthwise convolution with
    s * s filters per channel and interleaved by a reshape (a "depth to space"). Same sums
    as the dense op, about C * k * k / (J * J * s * s) ~ C times less work.

    The path is chosen from the kernel's values when they are set, never while tracing: a
    diagonal kernel (the reference nets' bilinear one, always) is computed per channel, any
    other kernel (e.g. random Caffe weights) as the dense transposed convolution. It is
    decided at build (from the initializer: `BilinearInitializer` is diagonal), by
    `set_weights` and Keras' loaders, and by `kernel_is_channelwise()`, which code that
    assigns `kernel` directly calls afterwards (the package's weight converters do, through
    `refresh_upsampling`). A function traced before the path changed keeps its old path:
    load weights before the first call. `force_dense = True` always takes the dense path
    (for comparisons).

    Input (N, H, W, C) -> output (N, (H - 1) s + k, (W - 1) s + k, C).
    """

    def __init__(self, filters, kernel_size, strides=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if (kh != kw or sh != sw or self.padding != "valid" or self.data_format != "channels_last"
                or tuple(self.dilation_rate) != (1, 1) or kh < sh):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' supports square kernels k >= stride, equal "
                "strides, padding='valid', channels_last, no dilation. Received: "
                f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}")
        self.force_dense = False

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' maps each channel to itself: expected "
                f"{self.filters} input channels. Received: input_shape={tuple(input_shape)}")
        super().build(input_shape)
        self.channelwise = isinstance(self.kernel_initializer, BilinearInitializer)

    def kernel_is_channelwise(self):
        """Reads the kernel's current values, chooses the path, and returns True when diagonal.

        Call it eagerly (not inside a traced function) after assigning `kernel` directly.
        """
        self.channelwise = is_channelwise(ops.convert_to_numpy(self.kernel))
        return self.channelwise

    def set_weights(self, weights):
        super().set_weights(weights)
        self.kernel_is_channelwise()

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.kernel_is_channelwise()

    def call(self, x):
        if self.force_dense or not self.channelwise:
            return super().call(x)
        k, s, c = self.kernel_size[0], self.strides[0], self.filters
        j = -(-k // s)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        diag = ops.sum(kernel * ops.eye(c, dtype=self.compute_dtype), axis=-1)  # (k, k, C)
        diag = ops.pad(diag, [[0, j * s - k], [0, j * s - k], [0, 0]])
        # taps[q1, q2, c, r1 * s + r2] = w[r1 + s (J-1-q1), r2 + s (J-1-q2), c]
        taps = ops.reshape(diag, (j, s, j, s, c))
        back = list(range(j - 1, -1, -1))
        taps = ops.take(ops.take(taps, back, axis=0), back, axis=2)
        taps = ops.reshape(ops.transpose(taps, (0, 2, 4, 1, 3)), (j, j, c, s * s))
        y = ops.pad(x, [[0, 0], [j - 1, j - 1], [j - 1, j - 1], [0, 0]])
        y = ops.depthwise_conv(y, taps, strides=1, padding="valid")  # (N, H', W', C s s)
        shape = ops.shape(y)
        h, w = shape[1], shape[2]
        # (N H', W', C, s, s) -> (N H', s, W', s, C): 5-D at most, for the exporters
        y = ops.reshape(y, (-1, w, c, s, s))
        y = ops.transpose(y, (0, 3, 1, 4, 2))
        y = ops.reshape(y, (-1, h * s, w * s, c))
        if j * s > k:  # k = 2s - 1: the last row and column of phases fall outside
            y = y[:, : k - j * s, : k - j * s, :]
        if self.use_bias:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return self.activation(y) if self.activation is not None else y


@contextlib.contextmanager
def dense_upsampling(model):
    """Within the block, every `Conv2DTranspose` of `model` takes the dense path.

    For graphs traced for other runtimes: exporters trace the dense transposed convolution
    (one TRANSPOSE_CONV / ConvTranspose op), since TFLite runs the per-channel form's depthwise
    convolution with s * s filters per channel (1024 for a stride-32 layer) slowly, also while
    calibrating int8. Outputs are the same numbers either way.
    """
    layers_ = [layer for layer in model.layers if isinstance(layer, Conv2DTranspose)]
    before = [layer.force_dense for layer in layers_]
    for layer in layers_:
        layer.force_dense = True
    try:
        yield model
    finally:
        for layer, value in zip(layers_, before):
            layer.force_dense = value


def refresh_upsampling(model):
    """Re-chooses the path of every `Conv2DTranspose` of `model` from its current kernel.

    For code that assigns variables directly instead of through `set_weights`.
    """
    for layer in model.layers:
        if isinstance(layer, Conv2DTranspose):
            layer.kernel_is_channelwise()


@keras.saving.register_keras_serializable(package=PACKAGE)
class Preprocess(layers.Layer):
    """Caffe-style input normalisation inside the model.

    Input: (N, H, W, 3) RGB pixel values 0..255, uint8 or float.
    Output: (N, H, W, 3) BGR minus `mean` (BGR order, 0..255 units), in the compute dtype.
    """

    def __init__(self, mean=CAFFE_BGR_MEAN, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        x = ops.take(x, [2, 1, 0], axis=-1)  # RGB -> BGR (GATHER: int8-safe, unlike flip)
        return x - ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": list(self.mean)}


def input_preprocess(model, **kwargs):
    """The `Preprocess` a caller of `model` puts in front of it to feed RGB pixels 0..255.

    None for a model that preprocesses inside (`include_preprocessing=True`, the default; a
    model without the attribute counts as one); a new `Preprocess(**kwargs)` for one built with
    `include_preprocessing=False`, which takes BGR minus the mean.
    """
    if getattr(model, "include_preprocessing", True) is False:
        return Preprocess(**kwargs)
    return None


@keras.saving.register_keras_serializable(package=PACKAGE)
class CropToLike(layers.Layer):
    """Caffe's Crop layer on axes 1 and 2: `x[:, o:o+h, o:o+w, :]`, (h, w) from `like`.

    Inputs: [x (N, Hx, Wx, C), like (N, h, w, ...)], with Hx >= o + h and Wx >= o + w.
    Output: (N, h, w, C).
    """

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = int(offset)

    def call(self, inputs):
        x, like = inputs
        shape = ops.shape(like)
        o = self.offset
        return ops.cast(x[:, o : o + shape[1], o : o + shape[2], :], self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        x_shape, like_shape = input_shapes
        return (x_shape[0], like_shape[1], like_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupConv2D(layers.Layer):
    """Caffe's grouped convolution (AlexNet's conv2, conv4, conv5), export-safe.

    One kernel (kh, kw, Cin / groups, Cout) and bias (Cout,): the layout of Keras
    `Conv2D(groups=...)`. Computed as one convolution per group and a concatenation,
    because the TensorFlow backend's grouped conv does not convert to ONNX.
    Input (N, H, W, Cin) -> output (N, H', W', Cout), H' as for Conv2D.
    """

    def __init__(self, filters, kernel_size, groups=2, strides=1, padding="same",
                 activation=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (int(kernel_size),) * 2
        self.groups = int(groups)
        self.strides = int(strides)
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if self.filters % self.groups:
            raise ValueError(f"GroupConv2D '{self.name}': filters={filters} is not divisible by groups={groups}")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"GroupConv2D '{self.name}': input channels {channels} not divisible by groups={self.groups}"
            )
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        cin = self.kernel.shape[2]
        cout = self.filters // self.groups
        outs = []
        for g in range(self.groups):
            xg = x[..., g * cin : (g + 1) * cin]
            kg = self.kernel[..., g * cout : (g + 1) * cout]
            outs.append(ops.conv(xg, kg, strides=self.strides, padding=self.padding))
        y = ops.concatenate(outs, axis=-1) + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        conv = layers.Conv2D(self.filters, self.kernel_size, strides=self.strides, padding=self.padding)
        return conv.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "groups": self.groups,
            "strides": self.strides,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class LRN(layers.Layer):
    """Caffe's local response normalisation across channels, written to survive full-int8 TFLite.

    y = x / (k + alpha / n * sum_{n neighbouring channels} x^2) ** beta (Caffe divides alpha
    by local_size n). Input and output (N, H, W, C); C must be known when built.

    Computed as s = k + alpha / n * windowed_sum(x * x), q = exp(-beta / 2 * log(s)),
    y = (x * q) * q: in float32 this is Caffe's formula (max relative error ~5e-7 against a
    float64 reference, measured), and every op (MUL, PAD, STRIDED_SLICE, ADD, LOG, EXP) has
    an int8 TFLite kernel, so a full-int8 export has no float island. The factor is applied as
    two multiplications by q on purpose: TFLite's int8 calibration records the min/max of an
    op's inputs after the op ran, and an elementwise op may overwrite a single-use input in
    place, so a factor s ** -beta (range ~0.3..1) consumed once by `x * factor` was calibrated
    with the range of x (0..hundreds) and quantised to 2-3 levels (AlexNet FCN-32s, width 0.5,
    random weights, int8: 86% label agreement on wide-margin pixels, measured). q has two
    consumers and is never overwritten; x * q may be, by y, whose range it bounds (k >= 1).
    """

    def __init__(self, local_size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if local_size % 2 != 1:
            raise ValueError(f"LRN '{self.name}': local_size must be odd. Received: local_size={local_size}")
        self.local_size = int(local_size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def call(self, x):
        channels = x.shape[-1]
        half = self.local_size // 2
        padded = ops.pad(x * x, [[0, 0], [0, 0], [0, 0], [half, half]])
        total = padded[..., 0:channels]
        for i in range(1, self.local_size):
            total = total + padded[..., i : i + channels]
        scale = self.k + (self.alpha / self.local_size) * total
        q = ops.exp((-0.5 * self.beta) * ops.log(scale))  # scale ** (-beta / 2)
        return (x * q) * q

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "local_size": self.local_size, "alpha": self.alpha,
                "beta": self.beta, "k": self.k}


def caffe_max_pool(x, size, stride, name):
    """Caffe's ceil-mode max pooling (no pad): out = ceil((n - size) / stride) + 1.

    2x2/2 is exactly Keras 'same'. Otherwise the input is zero-padded by stride - 1 at the
    bottom/right and pooled 'valid' (layers "<name>_pad", "<name>"): exact for the
    non-negative (post-ReLU/LRN) inputs every reference net pools, and int8-safe.
    """
    if size == stride:
        return layers.MaxPooling2D(size, stride, padding="same", name=name)(x)
    x = layers.ZeroPadding2D(((0, stride - 1), (0, stride - 1)), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(size, stride, padding="valid", name=name)(x)
