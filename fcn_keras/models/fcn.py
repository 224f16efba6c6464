"""`FCN` (a functional keras.Model with the paper's compile defaults), `build_backbone()`, and
`with_precision()` (an FCN's copies under another dtype policy; its own is `model.dtype_policy.name`)."""

import contextlib

import keras

from fcn_keras.conventions import DEFAULT_NUM_CLASSES, IGNORE_LABEL, class_metadata
from fcn_keras.losses import CrossEntropy
from fcn_keras.metrics import paper_metrics
from fcn_keras.models import fit_checks, registry
from fcn_keras.models.deferred_init import restore, weights_follow
from fcn_keras.models.heads import fcn_head
from fcn_keras.models.layers import PACKAGE, Preprocess, refresh_upsampling
from fcn_keras.models.precision import policy_name, precision

# The paper trains with Caffe's unnormalised SoftmaxWithLoss (a sum over pixels) at fixed rates
# per head (`registry.HEADS[head]["paper_lr"]`, voc-fcn*/solver.prototxt). Our loss is the Keras
# mean over labelled pixels, so the same step needs the rate times the pixels of a typical
# PASCAL VOC image (500 x 375).
REFERENCE_PIXELS = 500 * 375
MOMENTUM = 0.99
WEIGHT_DECAY = 5e-4
NO_WEIGHT_DECAY = ("bias",)


def _validate(num_classes, input_shape, width):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    if num_classes > IGNORE_LABEL:
        raise ValueError(
            f"`num_classes` must be at most {IGNORE_LABEL} (label {IGNORE_LABEL} means 'ignore'). "
            f"Received: num_classes={num_classes}")
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if (shape is None or len(shape) != 3 or shape[2] != 3
            or any(d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1) for d in shape[:2])):
        raise ValueError(
            "`input_shape` must be (height, width, 3) with height and width None (any size) or "
            f"positive integers. Received: input_shape={input_shape!r}")
    if not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ValueError(f"`width` must be a number in (0, 4]. Received: width={width!r}")
    return shape


def _class_info(num_classes, class_names, palette):
    """(class_names list or None, palette list of [r, g, b] or None), checked against num_classes."""
    names, pal = class_metadata(num_classes, class_names, palette)  # raises ValueError on a misfit
    return (None if class_names is None else names,
            None if palette is None else pal.astype(int).tolist())


def _features(backbone, inputs, include_preprocessing, width, first_pad=None):
    x = Preprocess(name="preprocess")(inputs) if include_preprocessing else inputs
    kwargs = {} if first_pad is None else {"first_pad": first_pad}
    return registry.builder(backbone)(x, width=width, **kwargs)


def paper_optimizer(head, learning_rate=None):
    """The paper's SGD for `head`: momentum 0.99, weight decay 5e-4 (biases excluded).

    Args:
        head: a head name; it picks the paper's fixed rate (see `FCN.compile`).
        learning_rate: replaces that rate when given.

    Returns:
        A `keras.optimizers.SGD`.
    """
    if learning_rate is None:
        learning_rate = registry.head(head)["paper_lr"] * REFERENCE_PIXELS
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


BACKEND_MODULE = "keras.src.backend."


def _backend_neutral(config):
    """`config` with every "module" naming a backend's optimizer as "keras.optimizers" (public class)."""
    if isinstance(config, dict):
        config = {k: _backend_neutral(v) for k, v in config.items()}
        module = config.get("module")
        if isinstance(module, str) and module.startswith(BACKEND_MODULE) and ".optimizers" in module:
            config["module"] = "keras.optimizers"
        return config
    if isinstance(config, list):
        return [_backend_neutral(v) for v in config]
    return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class FCN(keras.Model):
    """A Fully Convolutional Network (functional keras.Model).

    Input: (N, H, W, 3) RGB pixel values 0..255 (float32, or uint8 cast inside) of any
    H and W (or the fixed `input_shape`). Output: float32 logits (N, H, W, num_classes).
    `fcn_keras.build()` makes one and loads weights; the constructor makes the graph only.

    Args:
        backbone: a backbone name of the registry (`fcn_keras.models.BACKBONES`).
        head: one of that backbone's heads ("32s", "16s", "8s", and "8s-atonce" on VGG16).
        num_classes: output channels, 1..255 (label 255 means "ignore").
        input_shape: (H, W, 3); None for any size.
        include_preprocessing: True: the model takes RGB 0..255 and does RGB->BGR and mean
            subtraction itself; False: it takes preprocessed BGR.
        width: channel multiplier of the backbone, in (0, 4].
        dtype: the Keras dtype policy of every layer: "float32", "bfloat16" (bfloat16 weights
            and compute, for inference; see `fcn_keras.models.with_precision`),
            "mixed_bfloat16" or "mixed_float16" (training); None: the global policy
            (`keras.config.dtype_policy()`). The config (and so a `.keras` file) keeps the
            variables' dtype: a bfloat16 net reloads in bfloat16, a mixed one in float32. The
            logits are float32 under every policy.
        class_names: None or `num_classes` names (label id -> name); palette: None or
            (num_classes, 3) RGB values 0..255. Both are kept in the config, so a `.keras` file
            carries them to `fcn-keras predict --legend`, `export()` and the reports;
            `fcn_keras.training.train(..., class_names=...)` sets them from the training data.
            Settable later as attributes (`model.class_names = [...]`).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Raises:
        ValueError: an unknown name or a bad argument, naming it and the value received.
    """

    def __init__(self, backbone="vgg16", head="8s", num_classes=DEFAULT_NUM_CLASSES, input_shape=(None, None, 3),
                 include_preprocessing=True, width=1.0, dtype=None, class_names=None, palette=None,
                 **kwargs):
        registry.check(backbone, head)
        shape = _validate(num_classes, input_shape, width)
        class_info = _class_info(num_classes, class_names, palette)
        policy = None if dtype is None else policy_name(dtype)
        kwargs.setdefault("name", f"fcn{registry.HEADS[head]['model_id']}_{backbone}")
        with precision(policy):
            inputs = keras.Input(shape=shape, name="image")
            taps = _features(backbone, inputs, include_preprocessing, width)
            outputs = fcn_head(taps, registry.coords(backbone), head, num_classes, inputs)
            super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        restore(self)  # the declared initializers, where `weights_follow()` built zeros
        self.backbone_name = backbone
        self.head_name = head
        self.num_classes = num_classes
        self.width = width
        self.include_preprocessing = include_preprocessing
        self.fcn_input_shape = shape
        self.class_names, self.palette = class_info

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": self.backbone_name,
            "head": self.head_name,
            "num_classes": self.num_classes,
            "input_shape": list(self.fcn_input_shape),
            "include_preprocessing": self.include_preprocessing,
            "width": self.width,
            # a mixed (training) policy is saved as its variables' dtype: reloaded for inference or
            # export, the net computes in float32, as it was trained to
            "dtype": self.dtype_policy.variable_dtype,
            "class_names": self.class_names,
            "palette": self.palette,
        }

    def __setattr__(self, name, value):
        if name in ("class_names", "palette") and hasattr(self, "num_classes"):
            names = value if name == "class_names" else getattr(self, "class_names", None)
            pal = value if name == "palette" else getattr(self, "palette", None)
            checked = _class_info(self.num_classes, names, pal)
            value = checked[0] if name == "class_names" else checked[1]
        super().__setattr__(name, value)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", learning_rate=None,
                class_weights=None, source=None, **kwargs):
        """Compiles with the paper's recipe; any argument given overrides its default.

        Args:
            optimizer: "auto" for SGD with momentum 0.99 and weight decay 5e-4 (Keras applies
                it decoupled, lr * wd * w per step; biases excluded) at the paper's fixed
                rate for this head (1e-10 for 32s and 8s-atonce, 1e-12 for 16s, 1e-14 for
                8s, which assume staged training 32s -> 16s -> 8s) times 500 * 375 pixels
                to undo the loss normalisation: 1.875e-5, 1.875e-7, 1.875e-9 per step;
                or any Keras optimizer.
            loss: "auto" for `SparseCategoricalCrossentropy(from_logits=True,
                ignore_class=255)`, the mean over labelled pixels (Caffe's SoftmaxWithLoss
                summed them); or any Keras loss.
            metrics: "auto" for the paper's pixel accuracy, mean accuracy, mean IU and
                frequency-weighted IU; or any Keras metrics.
            learning_rate: with the default optimizer only: replaces its rate.
            class_weights: with the default loss only: one weight per class (an array, or a
                dict {class: weight}, missing classes 1), e.g.
                `fcn_keras.data.class_weights(fcn_keras.data.class_frequencies(source))`;
                each labelled pixel's loss is multiplied by its class's weight and the sum
                still divided by the labelled pixels (`fcn_keras.losses.CrossEntropy`). Or a
                method, "median_frequency" or "inverse_sqrt", computed from `source`.
            source: the training data (a `fcn_keras.data.Source`) when `class_weights` names a
                method: its pixels are counted once (`Source.class_weights`).
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).

        Raises:
            ValueError: `learning_rate` given with an optimizer of your own, `class_weights`
                with a loss of your own or of the wrong length.
        """
        self._paper_optimizer = optimizer == "auto"
        if self._paper_optimizer:
            optimizer = paper_optimizer(self.head_name, learning_rate)
        elif learning_rate is not None:
            raise ValueError("`learning_rate` can be passed only with the default optimizer (set it on "
                             f"your optimizer instead). Received: optimizer={optimizer!r}")
        if class_weights is not None and loss != "auto":
            raise ValueError("`class_weights` can be passed only with the default loss (give them to "
                             f"your loss instead). Received: loss={loss!r}")
        if isinstance(class_weights, str):
            if not hasattr(source, "class_weights"):
                raise ValueError(f"`class_weights={class_weights!r}` is computed from the training data: "
                                 "pass it as source= (a fcn_keras.data source). Received: "
                                 f"source={source!r}")
            class_weights = source.class_weights(class_weights)
        elif source is not None:
            raise ValueError("`source` is only read when `class_weights` names a method "
                             f"(\"median_frequency\", \"inverse_sqrt\"). Received: class_weights={class_weights!r}")
        if class_weights is not None:
            loss = CrossEntropy(class_weights=self._class_weight_list(class_weights))
        elif loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL)
        if metrics == "auto":
            metrics = paper_metrics(self.num_classes)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def _class_weight_list(self, class_weights):
        """One float per class from an array or a {class: weight} dict (missing classes: 1)."""
        n = self.num_classes
        if isinstance(class_weights, dict):
            bad = [k for k in class_weights if not (isinstance(k, int) and 0 <= k < n)]
            if bad:
                raise ValueError(f"`class_weights` keys must be classes 0..{n - 1}. Received: {bad[0]!r}")
            return [float(class_weights.get(c, 1.0)) for c in range(n)]
        weights = [float(w) for w in keras.ops.convert_to_numpy(class_weights).reshape(-1)]
        if len(weights) != n or not all(0 <= w < float("inf") for w in weights):
            raise ValueError(f"`class_weights` must hold {n} finite non-negative weights, one per "
                             f"class. Received: {weights[:8]}")
        return weights

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, its inputs checked first (`fit_checks.check_inputs`: a data source
        not wrapped in a pipeline, NumPy masks of another size or with labels the model has
        no class for) and TensorFlow's data errors raised as one line (`DataError` naming
        the file, or a ValueError naming the label and the class count)."""
        fit_checks.check_inputs(self, x, y, kwargs.get("validation_data"))
        y = fit_checks.squeeze_masks(y)
        if "shuffle" not in kwargs and type(x).__module__.startswith("tensorflow"):
            kwargs["shuffle"] = False  # a tf.data pipeline shuffles itself (Keras warns otherwise)
        with _clear_errors(self):
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate` with `fit`'s checks and errors."""
        fit_checks.check_inputs(self, x, y)
        with _clear_errors(self):
            return super().evaluate(x, fit_checks.squeeze_masks(y), *args, **kwargs)

    def get_compile_config(self):
        """Keras' compile config, plus the paper optimizer's weight-decay exclusions (saved in `.keras`).

        The optimizer is recorded by its public class (`keras.optimizers.SGD`), not by the
        backend's (`keras.src.backend.torch.optimizers.torch_sgd`), so loading the file on
        another backend does not import this one's framework."""
        config = _backend_neutral(super().get_compile_config())
        if config and getattr(self, "_paper_optimizer", False):
            config["exclude_from_weight_decay"] = list(NO_WEIGHT_DECAY)
        return config

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved: optimizer (its state is restored after), loss, metrics.
        A backend's optimizer module (files saved before `get_compile_config` was neutral) is
        read as the public `keras.optimizers` class."""
        config = _backend_neutral(dict(config))
        excluded = config.pop("exclude_from_weight_decay", None)
        config = keras.saving.deserialize_keras_object(config)
        if excluded:
            config["optimizer"].exclude_from_weight_decay(var_names=excluded)
        self.compile(**config)
        self._paper_optimizer = bool(excluded)
        if self.built:
            self.optimizer.build(self.trainable_variables)


def build_backbone(backbone, input_shape=(None, None, 3), include_preprocessing=True, width=1.0,
                   first_pad=None):
    """The backbone alone, with the FCN's layer names (weights transfer by name).

    Args:
        backbone: a backbone name of the registry.
        input_shape: (H, W, 3); None for any size.
        include_preprocessing: as in `FCN`.
        width: channel multiplier, in (0, 4].
        first_pad: zero padding of the first convolution; None pads by 100 as the FCNs do,
            the registry's `classifier_pad` (VGG16 1, AlexNet 0, GoogLeNet 3) gives the
            ImageNet classifier's feature maps.

    Returns:
        A keras.Model from (N, H, W, 3) to {"pool3", "pool4", "fc7"} at strides 8, 16, 32.
    """
    registry.check(backbone)
    shape = _validate(1, input_shape, width)
    inputs = keras.Input(shape=shape, name="image")
    taps = _features(backbone, inputs, include_preprocessing, width, first_pad)
    return restore(keras.Model(inputs, taps, name=f"{backbone}_backbone"))


def with_precision(model, dtype):
    """The same FCN rebuilt under the dtype policy `dtype`, with `model`'s weights (cast).

    The copy has the architecture, names and weights of `model` (weights rounded to the new
    dtype); it is not compiled. The logits stay float32 (N, H, W, num_classes).

    Args:
        model: an `fcn_keras.FCN`.
        dtype: "bfloat16" (bfloat16 weights and compute: inference), "float32", or another
            Keras policy name ("mixed_bfloat16": float32 weights, bfloat16 compute).

    Returns:
        `model` itself when it already has that policy, else a new `fcn_keras.FCN`.

    Raises:
        ValueError: `model` is not an FCN, or `dtype` is not a float policy.
    """
    name = policy_name(dtype)
    if not isinstance(model, FCN):
        raise ValueError(f"`model` must be an fcn_keras FCN (its config rebuilds it). "
                         f"Received: model of type {type(model).__name__}")
    if model.dtype_policy.name == name:
        return model
    with weights_follow():  # no random draw: every weight is set right after
        copy = FCN.from_config({**model.get_config(), "dtype": name})
    copy.set_weights(model.get_weights())
    refresh_upsampling(copy)  # Model.set_weights assigns the variables directly
    return copy


@contextlib.contextmanager
def _clear_errors(model):
    """Raises `fit_checks.clear_error`'s one line instead of a TensorFlow error about the data."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - only the errors clear_error knows are replaced
        clear = fit_checks.clear_error(model, err)
        if clear is None:
            raise
        raise clear from None
