"""One verifier for every exported format.

`verify(path, model)` runs the exported file in its own runtime (TensorFlow for a SavedModel,
the LiteRT interpreter for .tflite, onnxruntime for .onnx) and the Keras model on the same
uint8 images, at the images' own sizes and padded / cropped to fixed sizes (83x117 and 96x96
by default, like the data pipeline's evaluation crop), and reports (`Report`):

- max abs / relative score difference (relative = max abs / max |Keras logit|), mean abs,
  per size and overall;
- per-pixel label agreement (argmax), overall, per size, and on pixels whose Keras top-1 / top-2
  margin exceeds 5% of the logit range;
- mean IU (`fcn_keras.metrics`) of Keras and of the export against the masks, and the
  difference in points;
- file size (and ratio to the Keras weights) and latency relative to the Keras model called as
  `tf.function(lambda x: model(x, training=False))` on float32 input, interleaved in the same
  process (min over rounds, one image).

Only the image's own pixels are scored, and of those, where a mask exists, the labelled ones
(mask != 255): padding added to reach a fixed size is never scored. Targets depend on the
quantisation (TARGETS); a miss raises ParityError, after the report is written with
`"passed": false`, so a bad export never yields a report that looks fine.

It runs in three steps: `compare` (both models on every image -> `Stats` per size and the two
confusion matrices), `summarise` (-> `Report`) and `check` (report against `Targets`).
"""

import dataclasses
import os
import time

import numpy as np

from fcn_keras import _io
from fcn_keras.conventions import IGNORE_LABEL

from . import _common
from .formats import TABLE, normalize_quantize
from .images import fit_to_size, sample_images
from .report import MARGIN, Latency, Report, Stats, Targets, format_table
from .runtime import detect_format, read_metadata, runner

TARGETS = {
    "float32": Targets(min_label_agreement=0.999, max_rel_error=1e-4),
    "float16": Targets(min_label_agreement=0.995),
    # bfloat16 rounds every activation to 8 significant bits (~0.4%): labels move only where the
    # float32 top two scores nearly tie (trained FCN-8s AlexNet on shapes: 99.89% of all pixels,
    # 100% of the wide-margin ones)
    "bfloat16": Targets(min_label_agreement=0.99, min_label_agreement_margin=0.999),
    "dynamic-int8": Targets(min_label_agreement=0.97, max_miou_loss=1.0),
    "int8": Targets(min_label_agreement=0.97, max_miou_loss=1.0),
}
DEFAULT_SIZES = (None, (83, 117), (96, 96))   # None = the images' own sizes


@dataclasses.dataclass(frozen=True)
class Verification:
    """How an artefact is verified (`export(..., verify=Verification(...))`, `verify`).

    Attributes:
        data: the images, as `fcn_keras.export.sample_images` takes them (val split): "shapes",
            a VOC / SBD folder or data spec, a Source, a tf.data.Dataset or a list of images /
            (image, mask) pairs. Masks give the mean-IU comparison.
        sizes: image sizes compared: None (the images' own) and (h, w) sizes the images are
            padded (mean colour) and centre-cropped to. A fixed-size artefact uses its own size.
        num_images: images taken from `data`.
        targets: a `Targets` (or a dict of its fields); None: TARGETS[quantize].
        latency: measure latency against Keras.
        latency_size: (h, w) of the latency image (None: the first verification image's size).
        latency_rounds: rounds of the latency measurement (the minimum is reported).
        num_threads: threads of the LiteRT interpreter / onnxruntime (None: all CPUs).
    """

    data: object = "shapes"
    sizes: tuple = DEFAULT_SIZES
    num_images: int = 4
    targets: Targets = None
    latency: bool = True
    latency_size: tuple = None
    latency_rounds: int = 5
    num_threads: int = None

    def __post_init__(self):
        def set_(name, value):  # the dataclass is frozen: normalise once, here
            object.__setattr__(self, name, value)

        set_("sizes", tuple(_common.normalize_size(s, "sizes") for s in self.sizes))
        set_("latency_size", _common.normalize_size(self.latency_size, "latency_size"))
        for name in ("num_images", "latency_rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise _common.ExportError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if isinstance(self.targets, dict):
            names = {f.name for f in dataclasses.fields(Targets)}
            if set(self.targets) - names:
                raise _common.ExportError(f"`targets` keys must be among {sorted(names)}. "
                                          f"Received: targets={self.targets!r}")
            set_("targets", Targets(**self.targets))
        elif self.targets is not None and not isinstance(self.targets, Targets):
            raise _common.ExportError(f"`targets` must be None, a Targets or a dict. "
                                      f"Received: targets={self.targets!r}")


def as_verification(verify):
    """The `Verification` for export's `verify` argument (None for False)."""
    if verify is True:
        return Verification()
    if verify is False:
        return None
    if isinstance(verify, Verification):
        return verify
    raise _common.ExportError(f"`verify` must be True, False or a fcn_keras.export.Verification. "
                              f"Received: verify={verify!r}")


def verify(path, model, verification=None, *, quantize=None, report_path=None):
    """Verifies an exported artefact against the Keras model and writes the report.

    Args:
        path: a SavedModel folder, a .tflite or a .onnx file.
        model: the keras model (or a .keras path) it was exported from.
        verification: a `Verification` (None: the defaults).
        quantize: "float32" | "bfloat16" | "float16" | "dynamic-int8" | "int8": selects TARGETS unless
            the verification gives targets (default: from the artefact's metadata, else float32).
        report_path: where the JSON report goes (default `<path>.verify.json`).

    Returns:
        The `Report`.

    Raises:
        ParityError: a target is missed (the report, `"passed": false`, is written first).
    """
    report = parity_report(path, model, verification, quantize=quantize)
    _io.save_json(report_path or report.path + _common.REPORT_SUFFIX, report.to_dict())
    raise_on_failure(report)
    return report


def raise_on_failure(report, written=True):
    """Raises ParityError when `report` missed a target."""
    if report.failures:
        note = "" if written else " (nothing was written)"
        raise _common.ParityError(
            f"{report.path!r} misses its parity targets{note}:\n  " + "\n  ".join(report.failures)
            + "\n" + format_table(report), report)


def parity_report(path, model, verification=None, *, quantize=None):
    """`verify` without writing or raising: compare, summarise, check. Returns the `Report`."""
    opts = Verification() if verification is None else verification
    if not isinstance(opts, Verification):
        raise _common.ExportError(f"`verification` must be None or a fcn_keras.export.Verification. "
                                  f"Received: verification={verification!r}")
    path = os.fspath(path).rstrip("/\\")
    model = _common.keras_model(model)
    fmt = detect_format(path)
    if quantize is None:  # an artefact without metadata is float32
        quantize = read_metadata(path).get("quantize", "float32")
    quantize = normalize_quantize(fmt, quantize)
    run = runner(path, opts.num_threads)
    num_classes = _common.model_num_classes(model)
    items = verification_items(opts, run.fixed_size, num_classes)
    kfn = keras_function(model)
    per_size, confusion = compare(run, kfn, items, num_classes)
    report = summarise(path, fmt, quantize, model, per_size, confusion, run.fixed_size, opts)
    if opts.latency:
        report.latency = measure_latency(kfn, run, _latency_image(items, opts, run.fixed_size),
                                         opts.latency_rounds, opts.num_threads or os.cpu_count())
    report.targets = opts.targets or TARGETS[quantize]
    report.failures = check(report, report.targets)
    return report


def verification_items(opts, fixed_size, num_classes):
    """[(size key, image uint8 (h, w, 3), mask or None, scored bool (h, w))] for `opts`."""
    pairs = sample_images(opts.data, "val", opts.num_images, arg="data")
    for i, (_, mask) in enumerate(pairs):
        if mask is not None and np.any((mask >= num_classes) & (mask != IGNORE_LABEL)):
            bad = int(mask[(mask >= num_classes) & (mask != IGNORE_LABEL)].max())
            raise _common.ExportError(f"the verification masks must hold labels 0..{num_classes - 1} "
                                      f"or {IGNORE_LABEL}. Received: label {bad} in image {i}")
    sizes = [tuple(fixed_size)] if fixed_size is not None else opts.sizes
    items = []
    for size in sizes:
        for image, mask in pairs:
            image, mask, own = fit_to_size(image, mask, size)
            scored = own if mask is None else own & (mask != IGNORE_LABEL)
            items.append(("native" if size is None else f"{size[0]}x{size[1]}", image, mask, scored))
    return items


def keras_function(model):
    """`tf.function` float32 images (N, H, W, 3) -> Keras logits, with the export's preprocessing."""
    import tensorflow as tf

    from fcn_keras.models.layers import input_preprocess

    # the export adds the preprocessing the model leaves to its caller: compare like with like
    pre = input_preprocess(model)

    def call(x):
        return model(x if pre is None else pre(x), training=False)
    return tf.function(call, reduce_retracing=True,
                       input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])


def compare(run, kfn, items, num_classes):
    """Runs the artefact and the Keras model on every item of `verification_items`.

    Returns:
        ({size key: Stats}, (Keras confusion matrix, export confusion matrix) or None when an
        item has no mask), the matrices as `fcn_keras.metrics.ConfusionMatrix` counts.
    """
    from fcn_keras.metrics import ConfusionMatrix

    per_size = {}
    matrices = None
    if all(mask is not None for _, _, mask, _ in items):
        matrices = (ConfusionMatrix(num_classes), ConfusionMatrix(num_classes))
    for key, image, mask, scored in items:
        ref = kfn(image[None].astype(np.float32)).numpy()[0]
        labels, scores = run(image[None])
        labels, scores = np.asarray(labels)[0], np.asarray(scores, np.float32)[0]
        if scores.shape != ref.shape:
            raise _common.ParityError(f"the export's scores have shape {scores.shape} where Keras' have "
                                      f"{ref.shape} (image {image.shape[:2]})")
        per_size[key] = per_size.get(key, Stats()) + _stats(ref, labels, scores, scored)
        if matrices is not None:
            matrices[0].update_state(mask[None], ref.argmax(-1)[None])
            matrices[1].update_state(mask[None], labels[None])
    return per_size, None if matrices is None else tuple(m.confusion_matrix() for m in matrices)


def _stats(ref, labels, scores, scored):
    klab = ref.argmax(-1)
    top2 = np.sort(ref, axis=-1)[..., -2:]
    wide = scored & (top2[..., 1] - top2[..., 0] > MARGIN * max(float(np.abs(ref).max()), 1e-12))
    same = labels == klab
    diff = np.abs(scores - ref)[scored]
    return Stats(images=1, pixels=int(scored.sum()), agree=int(same[scored].sum()),
                 wide_pixels=int(wide.sum()), wide_agree=int(same[wide].sum()),
                 self_agree=int((labels == scores.argmax(-1))[scored].sum()),
                 values=diff.size, sum_abs=float(diff.sum()), max_abs=float(diff.max(initial=0.0)),
                 max_abs_keras=float(np.abs(ref[scored]).max(initial=0.0)))


def summarise(path, fmt, quantize, model, per_size, confusion, fixed_size, opts):
    """The `Report` of a comparison (failures still empty)."""
    from fcn_keras.metrics import scores_from_confusion

    mean_iou = None
    if confusion is not None:
        keras_miou, export_miou = (scores_from_confusion(c)["mean_iou"] * 100 for c in confusion)
        mean_iou = {"keras": keras_miou, "export": export_miou, "loss_points": keras_miou - export_miou}
    size = _common.path_size(path) + sum(os.path.getsize(path + s) for s in TABLE[fmt].EXTRA_SUFFIXES
                                         if os.path.exists(path + s))
    report = Report(
        path=path, format=fmt, quantize=quantize, runtime=TABLE[fmt].runtime_name(), data=describe(opts.data),
        overall=sum(per_size.values(), Stats()), per_size=per_size, fixed_input_size=fixed_size,
        mean_iou=mean_iou, bytes=size,
        keras_weight_bytes=int(sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)))
    if fmt == "tflite":
        from .tflite import op_names

        ops = op_names(path)
        report.tflite_ops = sorted({o["name"] for o in ops})
        report.builtin_only = all(o["builtin"] for o in ops)
    return report


def check(report, targets):
    """The targets `report` misses, one line each (empty: passed); notes what was not checked."""
    failures = []
    sized = [(None, report.overall), *report.per_size.items()]
    if report.overall.pixels == 0:
        failures.append("no scored pixels: every verification pixel is padding or unlabelled")
    for key, s in sized:
        where = "" if key is None else f"[{key}] "
        t = targets.min_label_agreement
        if t is not None and s.label_agreement is not None and s.label_agreement < t:
            failures.append(f"{where}label agreement {s.label_agreement:.5f} < {t}")
        t = targets.max_rel_error
        if t is not None and key is not None and s.rel > t:
            failures.append(f"{where}relative score error {s.rel:.3g} > {t}")
    lm, t = report.overall.label_agreement_margin, targets.min_label_agreement_margin
    if t is not None and lm is not None and lm < t:
        failures.append(f"label agreement where the Keras margin is wide {lm:.5f} < {t}")
    if targets.max_miou_loss is not None:
        if report.mean_iou is None:
            report.notes.append("mean-IU loss not checked: the verification data has no masks")
        elif report.mean_iou["loss_points"] > targets.max_miou_loss:
            failures.append(f"mean-IU loss {report.mean_iou['loss_points']:.3f} points > {targets.max_miou_loss}")
    self_agree = report.overall.labels_equal_argmax_scores
    if report.quantize in ("float32", "float16", "bfloat16") and self_agree is not None and self_agree < 0.999:
        failures.append("the exported labels output disagrees with argmax of its own scores")
    if report.builtin_only is False:
        failures.append(f"the file holds non-builtin (Flex / custom) ops; its ops: {report.tflite_ops}")
    return failures


def measure_latency(kfn, run, image, rounds, threads):
    """`Latency` of one image: Keras and the export called alternately, min over `rounds`."""
    import tensorflow as tf

    xk = tf.constant(image[None].astype(np.float32))
    xe = run.prepare(image[None])
    kfn(xk).numpy()
    run.run(xe)  # warm up both
    tk, te = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        kfn(xk).numpy()
        tk.append(time.perf_counter() - t)
        t = time.perf_counter()
        run.run(xe)
        te.append(time.perf_counter() - t)
    return Latency(keras_s=min(tk), export_s=min(te), size=tuple(image.shape[:2]), rounds=rounds,
                   threads=threads)


def _latency_image(items, opts, fixed_size):
    image = items[0][1]
    if opts.latency_size is None or fixed_size is not None:
        return image
    import tensorflow as tf

    return np.clip(np.round(tf.image.resize(image, opts.latency_size).numpy()), 0, 255).astype(np.uint8)


def describe(data):
    """A short text for where images came from (a spec or path as given, else a type or a count)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if isinstance(data, (list, tuple)):
        return f"{len(data)} images given"
    return type(data).__name__
