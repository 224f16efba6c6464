"""`FCN` (a functional keras.Model), `build()` and `build_backbone()`."""

import keras

from fcn_keras.conventions import IGNORE_LABEL

from fcn_keras.models import registry
from fcn_keras.models.heads import fcn_head
from fcn_keras.models.layers import PACKAGE, Preprocess

# The paper trains with Caffe's unnormalised SoftmaxWithLoss (a sum over pixels) at these
# fixed rates (voc-fcn*/solver.prototxt); 16s starts from the trained 32s, 8s from 16s.
PAPER_SUM_LOSS_LR = {"32s": 1e-10, "16s": 1e-12, "8s": 1e-14, "8s-atonce": 1e-10}
# Our loss is the Keras mean over labelled pixels, so the same step needs the rate times the
# pixels of a typical PASCAL VOC image (500 x 375).
REFERENCE_PIXELS = 500 * 375
MOMENTUM = 0.99
WEIGHT_DECAY = 5e-4


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


def _features(backbone, inputs, include_preprocessing, width, first_pad=None):
    spec = registry.BACKBONES[backbone]
    x = Preprocess(name="preprocess")(inputs) if include_preprocessing else inputs
    kwargs = {} if first_pad is None else {"first_pad": first_pad}
    return spec["builder"](x, width=width, **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FCN(keras.Model):
    """A Fully Convolutional Network (functional keras.Model).

    Input: (N, H, W, 3) RGB pixel values 0..255 (float32, or uint8 cast inside) of any
    H and W (or the fixed `input_shape`). Output: float32 logits (N, H, W, num_classes).
    Use `build()` to make one (it also loads weights); the constructor makes the graph only.
    """

    def __init__(self, backbone="vgg16", head="8s", num_classes=21, input_shape=(None, None, 3),
                 include_preprocessing=True, width=1.0, **kwargs):
        registry.check(backbone, head)
        shape = _validate(num_classes, input_shape, width)
        inputs = keras.Input(shape=shape, name="image")
        taps = _features(backbone, inputs, include_preprocessing, width)
        outputs = fcn_head(taps, registry.BACKBONES[backbone]["coords"], head, num_classes, inputs)
        kwargs.setdefault("name", f"fcn{head.replace('-atonce', '_atonce')}_{backbone}")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone_name = backbone
        self.head_name = head
        self.num_classes = num_classes
        self.width = width
        self.include_preprocessing = include_preprocessing
        self.fcn_input_shape = shape

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
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", learning_rate=None, **kwargs):
        """Compiles with the paper's recipe; any argument given overrides its default.

        - loss: `SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)`, the mean
          over labelled pixels (Caffe's SoftmaxWithLoss summed them);
        - optimizer: SGD, momentum 0.99, weight decay 5e-4 (Keras applies it decoupled,
          lr * wd * w per step; biases excluded), learning rate = the paper's fixed rate for
          this head (1e-10 for 32s and 8s-atonce, 1e-12 for 16s, 1e-14 for 8s, which assume
          staged training 32s -> 16s -> 8s) times 500*375 pixels to undo the loss
          normalisation: 1.875e-5, 1.875e-7, 1.875e-9. `learning_rate=` changes only the rate;
        - metrics: the paper's pixel accuracy, mean accuracy, mean IU, frequency-weighted IU.
        """
        if optimizer == "auto":
            if learning_rate is None:
                learning_rate = PAPER_SUM_LOSS_LR[self.head_name] * REFERENCE_PIXELS
            optimizer = keras.optimizers.SGD(
                learning_rate=learning_rate, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
            optimizer.exclude_from_weight_decay(var_names=["bias"])
        elif learning_rate is not None:
            raise ValueError("Pass `learning_rate` only with the default optimizer "
                             f"(set it on your optimizer instead). Received: optimizer={optimizer!r}")
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL)
        if metrics == "auto":
            from fcn_keras import metrics as fcn_metrics

            metrics = fcn_metrics.paper_metrics(self.num_classes)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)


def build(backbone, head, num_classes=21, weights=None, input_shape=(None, None, 3),
          include_preprocessing=True, *, width=1.0, name=None):
    """Builds an FCN and loads `weights`.

    Args:
        backbone: "alexnet" | "vgg16" | "googlenet".
        head: "32s" | "16s" | "8s" | "8s-atonce" (VGG16 only).
        num_classes: output channels (1..255; 255 is the ignore label).
        weights: None (random backbone, zero score layers, bilinear deconvs), "imagenet"
            (backbone only), a zoo name (see `fcn_keras.list_models()`), or a path to a
            `.keras`, `.weights.h5` or `.caffemodel` file.
        input_shape: (H, W, 3); None for any size.
        include_preprocessing: when True the model takes RGB 0..255 and does RGB->BGR and
            mean subtraction itself; when False it takes preprocessed BGR.
        width: channel multiplier for the backbone (like MobileNet's alpha); pretrained
            weights need 1.0. Small widths give fast models for tests and demos.
    Returns:
        `FCN`: (N, H, W, 3) -> float32 logits (N, H, W, num_classes).
    """
    registry.check(backbone, head)
    kwargs = {"name": name} if name else {}
    model = FCN(backbone, head, num_classes, input_shape, include_preprocessing, width, **kwargs)
    if weights is not None:
        from fcn_keras import weights as weight_sources

        weight_sources.load(model, weights)
    return model


def build_backbone(backbone, input_shape=(None, None, 3), include_preprocessing=True, width=1.0,
                   first_pad=None):
    """The backbone alone: a keras.Model with outputs {"pool3", "pool4", "fc7"} (strides 8/16/32).

    Layer names are the FCN's, so weights transfer by name. `first_pad=None` pads the first
    conv by 100 as the FCNs do; the classifier's own pad (see registry `classifier_pad`:
    VGG16 1, AlexNet 0, GoogLeNet 3) gives the ImageNet classifier's feature maps.
    """
    registry.check(backbone)
    shape = _validate(1, input_shape, width)
    inputs = keras.Input(shape=shape, name="image")
    taps = _features(backbone, inputs, include_preprocessing, width, first_pad)
    return keras.Model(inputs, taps, name=f"{backbone}_backbone")
