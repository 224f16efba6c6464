"""One verifier for every exported format.

`verify(path, model, data)` runs the exported file in its own runtime (TensorFlow for a
SavedModel, the LiteRT interpreter for .tflite, onnxruntime for .onnx) and the Keras model on
the same uint8 images, and reports:

- max abs / relative score difference (relative = max abs / max |Keras logit|), mean abs,
  per size and overall;
- per-pixel label agreement (argmax), overall, per size, and on pixels whose Keras top-1/top-2
  margin exceeds 5% of the logit range;
- mean IU (paper's definition, `fcn_keras.metrics.scores_from_confusion`) of Keras and of the
  export against the masks, and the difference in points;
- file size (and ratio to the Keras weights) and latency relative to the Keras model called as
  `tf.function(lambda x: model(x, training=False))` on float32 input, interleaved in the same
  process (min over rounds, one image).

Targets depend on the quantisation (TARGETS); a miss raises ParityError (after the report is
written, marked `"passed": false`), so a bad export never yields a report that looks fine.
"""

import json
import os
import time

import numpy as np

from . import _common

TARGETS = {
    "float32": {"min_label_agreement": 0.999, "max_rel_error": 1e-4},
    "float16": {"min_label_agreement": 0.995},
    "dynamic-int8": {"min_label_agreement": 0.97, "max_miou_loss": 1.0},
    "int8": {"min_label_agreement": 0.97, "max_miou_loss": 1.0},
}
DEFAULT_SIZES = (None, (83, 117), (96, 96))   # None = the images' own sizes
KERAS_CALL = "tf.function(lambda x: model(x, training=False)), float32 NHWC input"
MARGIN = 0.05


# --------------------------------------------------------------------------- data

def verification_data(data="shapes", sizes=DEFAULT_SIZES, num_images=4, fixed_size=None):
    """[(size_key, image uint8 (H, W, 3), mask uint8/int (H, W) or None)].

    data: "shapes" (fcn_keras.data.shapes("val"), 64..128 px), a VOC/SBD directory
    (fcn_keras.data.from_directory(DIR, split="val")), a fcn_keras.data.Source or an
    unbatched tf.data.Dataset of (image, mask), or a list of uint8 images / (image, mask)
    pairs. Each image is taken at its own size and padded/centre-cropped (the data pipeline's
    eval crop) to each size in `sizes`. fixed_size=(h, w) (a fixed-input artefact) replaces
    `sizes` by that one size.
    """
    if isinstance(data, (list, tuple)):
        pairs = [(np.asarray(d[0]), None if d[1] is None else np.asarray(d[1]))
                 if isinstance(d, (tuple, list)) else (np.asarray(d), None) for d in data]
        pairs = pairs[:num_images] if num_images else pairs
        source = None
    else:
        source = resolve_source(data, split="val")
        pairs = None
    sizes = [tuple(fixed_size)] if fixed_size is not None else [None if s is None else tuple(s) for s in sizes]
    out = []
    for size in sizes:
        if source is not None:
            items = _pipeline_items(source, size, num_images)
        else:
            items = [_crop_pair(img, mask, size) for img, mask in pairs]
        for img, mask in items:
            key = "native" if size is None else f"{size[0]}x{size[1]}"
            out.append((key, img, mask))
    if not out:
        raise ValueError(f"no verification images from data={data!r}")
    return out


def resolve_source(data, split):
    """A fcn_keras.data Source / tf.data.Dataset from "shapes", a directory, or as given."""
    import fcn_keras.data as fd

    if isinstance(data, str) and data == "shapes":
        # val: 64..128 px, so the images' own sizes are odd and varied
        return fd.shapes(split, image_size=(64, 128) if split == "val" else (64, 96))
    if isinstance(data, (str, os.PathLike)):
        d = os.fspath(data)
        if not os.path.isdir(d):
            raise ValueError(f"data directory {d!r} does not exist (expected 'shapes' or a VOC/SBD root)")
        return fd.from_directory(d, split=split)
    return data


def _pipeline_items(source, size, num):
    import fcn_keras.data as fd

    ds = fd.pipeline(source, batch_size=1, crop_size=size, training=False, prefetch=False)
    items = []
    for images, masks in ds.take(num).as_numpy_iterator():
        items.append((np.clip(np.round(images[0]), 0, 255).astype(np.uint8), masks[0].astype(np.int32)))
    return items


def _crop_pair(img, mask, size):
    img = np.asarray(img, np.uint8)
    if size is None:
        return img, mask
    h, w = size
    H, W = img.shape[:2]
    if H < h or W < w:  # pad (edge) then crop
        ph, pw = max(0, h - H), max(0, w - W)
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        if mask is not None:
            mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=255)
        H, W = img.shape[:2]
    y, x = (H - h) // 2, (W - w) // 2
    return img[y:y + h, x:x + w], None if mask is None else np.asarray(mask)[y:y + h, x:x + w]


# --------------------------------------------------------------------------- runners

class SavedModelRunner:
    def __init__(self, path):
        import tensorflow as tf

        self.tf = tf
        self.loaded = tf.saved_model.load(os.fspath(path))
        self.fn = self.loaded.signatures["serving_default"]
        spec = self.fn.structured_input_signature[1]["image"]
        shape = spec.shape.as_list()
        self.fixed_size = tuple(shape[1:3]) if shape[1] and shape[2] else None

    def prepare(self, images):
        return self.tf.constant(np.asarray(images, np.uint8))

    def __call__(self, images, prepared=None):
        x = self.prepare(images) if prepared is None else prepared
        out = self.fn(image=x)
        return out["labels"].numpy(), out["scores"].numpy()


def detect_format(path):
    p = os.fspath(path)
    if os.path.isdir(p):
        if not os.path.exists(os.path.join(p, "saved_model.pb")):
            raise ValueError(f"{p!r} is a directory without saved_model.pb: not a SavedModel")
        return "saved_model"
    if not os.path.exists(p):
        raise FileNotFoundError(f"exported file {p!r} does not exist")
    if p.endswith(".tflite"):
        return "tflite"
    if p.endswith(".onnx"):
        return "onnx"
    raise ValueError(f"cannot tell the format of {p!r}: expected a SavedModel directory, .tflite or .onnx")


def runner(path, format=None, num_threads=None):
    fmt = format or detect_format(path)
    if fmt == "saved_model":
        return SavedModelRunner(path)
    if fmt == "tflite":
        from .tflite import Runner

        return Runner(path, num_threads)
    if fmt == "onnx":
        from .onnx import Runner

        return Runner(path, num_threads)
    raise ValueError(f"unknown format {fmt!r}")


def _read_metadata(path):
    p = os.fspath(path).rstrip("/\\") + _common.SIDECAR_SUFFIX
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


# --------------------------------------------------------------------------- verify

def verify(path, model, data="shapes", *, format=None, quantize=None, sizes=DEFAULT_SIZES,
           num_images=4, targets=None, latency=True, latency_size=None, latency_rounds=5,
           num_threads=None, report_path=None, write_report=True, raise_on_failure=True):
    """Verifies an exported artefact against the Keras model; returns the report (dict).

    path: SavedModel directory, .tflite or .onnx file. model: the keras model (or a .keras path).
    data: see `verification_data`. quantize: "float32" | "float16" | "dynamic-int8" | "int8"
    (default: from the metadata JSON next to the file, else float32), selects TARGETS unless
    `targets` is given (keys: min_label_agreement, max_rel_error, max_miou_loss,
    min_label_agreement_margin). latency_size: (h, w) for the latency measurement (default: the first
    verification image's size). report_path: default `<path>.verify.json`; write_report=False
    writes nothing. Raises ParityError when a target is missed (raise_on_failure=True).
    """
    import keras
    import tensorflow as tf

    path = os.fspath(path).rstrip("/\\")
    if isinstance(model, (str, os.PathLike)):
        import fcn_keras  # noqa: F401  (registers the custom layers)

        model = keras.models.load_model(os.fspath(model), compile=False)
    fmt = format or detect_format(path)
    meta = _read_metadata(path)
    quantize = quantize or meta.get("quantize") or "float32"
    if quantize not in TARGETS:
        raise ValueError(f"`quantize` must be one of {tuple(TARGETS)}. Received: quantize={quantize!r}")
    targets = dict(TARGETS[quantize] if targets is None else targets)
    num_classes = _common.model_num_classes(model)

    run = runner(path, fmt, num_threads)
    fixed = run.fixed_size
    items = verification_data(data, sizes=sizes, num_images=num_images, fixed_size=fixed)

    if getattr(model, "include_preprocessing", True) is False:
        # the export adds the preprocessing the model leaves to its caller: compare like with like
        from fcn_keras.models.layers import Preprocess

        pre = Preprocess()
        call = lambda x: model(pre(x), training=False)  # noqa: E731
    else:
        call = lambda x: model(x, training=False)  # noqa: E731
    kfn = tf.function(call, reduce_retracing=True,
                      input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    per_size = {}
    hist_k = np.zeros((num_classes, num_classes), np.int64)
    hist_e = np.zeros((num_classes, num_classes), np.int64)
    have_masks = all(m is not None for _, _, m in items)
    for key, img, mask in items:
        ref = kfn(tf.constant(img[None].astype(np.float32))).numpy()[0]
        labels, scores = run(img[None])
        labels, scores = np.asarray(labels)[0], np.asarray(scores, np.float32)[0]
        if scores.shape != ref.shape:
            raise _common.ParityError(
                f"{path}: scores shape {scores.shape} != Keras {ref.shape} for a {img.shape[:2]} image")
        diff = np.abs(scores - ref)
        klab = ref.argmax(-1)
        top2 = np.sort(ref, axis=-1)[..., -2:]
        margin = top2[..., 1] - top2[..., 0]
        s = per_size.setdefault(key, {"images": 0, "max_abs": 0.0, "max_ref": 0.0, "sum_abs": 0.0,
                                      "n": 0, "agree": 0, "pixels": 0, "m_agree": 0, "m_pixels": 0,
                                      "label_self": 0, "shape": list(img.shape[:2])})
        s["images"] += 1
        s["max_abs"] = max(s["max_abs"], float(diff.max()))
        s["max_ref"] = max(s["max_ref"], float(np.abs(ref).max()))
        s["sum_abs"] += float(diff.sum())
        s["n"] += diff.size
        s["agree"] += int((labels == klab).sum())
        s["pixels"] += klab.size
        s["label_self"] += int((labels == scores.argmax(-1)).sum())
        wide = margin > MARGIN * max(float(np.abs(ref).max()), 1e-12)
        s["m_agree"] += int((labels == klab)[wide].sum())
        s["m_pixels"] += int(wide.sum())
        if have_masks:
            valid = mask < num_classes
            t = mask[valid].astype(np.int64)
            hist_k += np.bincount(t * num_classes + klab[valid], minlength=num_classes ** 2).reshape(
                num_classes, num_classes)
            hist_e += np.bincount(t * num_classes + labels[valid].astype(np.int64),
                                  minlength=num_classes ** 2).reshape(num_classes, num_classes)

    def summarise(s):
        return {
            "images": s["images"],
            "max_abs": s["max_abs"],
            "rel": s["max_abs"] / max(s["max_ref"], 1e-12),
            "mean_abs": s["sum_abs"] / max(s["n"], 1),
            "max_abs_keras_logit": s["max_ref"],
            "label_agreement": s["agree"] / max(s["pixels"], 1),
            "label_agreement_margin": s["m_agree"] / s["m_pixels"] if s["m_pixels"] else None,
            "labels_equal_argmax_scores": s["label_self"] / max(s["pixels"], 1),
            "pixels": s["pixels"],
        }

    total = {k: 0 for k in ("images", "sum_abs", "n", "agree", "pixels", "m_agree", "m_pixels", "label_self")}
    total.update(max_abs=0.0, max_ref=0.0)
    for s in per_size.values():
        for k in total:
            total[k] = max(total[k], s[k]) if k in ("max_abs", "max_ref") else total[k] + s[k]
    overall = summarise(total)
    report = {
        "path": path,
        "format": fmt,
        "quantize": quantize,
        "runtime": _runtime_name(fmt),
        "overall": overall,
        "per_size": {k: summarise(s) for k, s in per_size.items()},
        "fixed_input_size": list(fixed) if fixed else None,
        "margin_definition": f"Keras top-1 minus top-2 logit > {MARGIN} * max|Keras logit|",
        "data": data if isinstance(data, str) else type(data).__name__,
    }
    if have_masks:
        from fcn_keras.metrics import scores_from_confusion

        mk = scores_from_confusion(hist_k)["mean_iou"] * 100
        me = scores_from_confusion(hist_e)["mean_iou"] * 100
        report["mean_iou"] = {"keras": mk, "export": me, "loss_points": mk - me}
    else:
        report["mean_iou"] = None

    size = _common.path_size(path)
    extra = path + ".data"
    if fmt == "onnx" and os.path.exists(extra):
        size += os.path.getsize(extra)
    kbytes = int(sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights))
    report["size"] = {"bytes": size, "keras_weight_bytes": kbytes, "ratio": size / kbytes}

    if latency:
        img = items[0][1]
        if latency_size is not None and fixed is None:
            img = np.clip(np.round(tf.image.resize(img, tuple(latency_size)).numpy()), 0, 255).astype(np.uint8)
        report["latency"] = _latency(kfn, run, img, latency_rounds)

    failures = []
    if "min_label_agreement" in targets and overall["label_agreement"] < targets["min_label_agreement"]:
        failures.append(f"label agreement {overall['label_agreement']:.5f} < {targets['min_label_agreement']}")
    for key, s in report["per_size"].items():
        if "min_label_agreement" in targets and s["label_agreement"] < targets["min_label_agreement"]:
            failures.append(f"[{key}] label agreement {s['label_agreement']:.5f} < {targets['min_label_agreement']}")
        if "max_rel_error" in targets and s["rel"] > targets["max_rel_error"]:
            failures.append(f"[{key}] relative score error {s['rel']:.3g} > {targets['max_rel_error']}")
    lm = overall["label_agreement_margin"]
    if "min_label_agreement_margin" in targets and lm is not None and lm < targets["min_label_agreement_margin"]:
        failures.append(f"label agreement where the Keras margin is wide {lm:.5f} < "
                        f"{targets['min_label_agreement_margin']}")
    if "max_miou_loss" in targets:
        if report["mean_iou"] is None:
            report["mean_iou_note"] = "not checked: the verification data has no masks"
        elif report["mean_iou"]["loss_points"] > targets["max_miou_loss"]:
            failures.append(f"mean-IU loss {report['mean_iou']['loss_points']:.3f} points > {targets['max_miou_loss']}")
    if overall["labels_equal_argmax_scores"] < 0.999 and quantize in ("float32", "float16"):
        failures.append("the exported labels output disagrees with argmax of its own scores")
    if fmt == "tflite":
        from .tflite import op_names

        ops = op_names(path)
        report["tflite_ops"] = sorted({o["name"] for o in ops})
        report["builtin_only"] = all(o["builtin"] for o in ops)
        if not report["builtin_only"]:
            failures.append(f"non-builtin (Flex/custom) ops: {sorted(o['name'] for o in ops if not o['builtin'])}")
    report["targets"] = targets
    report["failures"] = failures
    report["passed"] = not failures

    if write_report:
        _common.write_json_atomic(report_path or path + _common.REPORT_SUFFIX, report)
    if failures and raise_on_failure:
        raise _common.ParityError(
            f"{path} misses its parity targets:\n  " + "\n  ".join(failures) + "\n" + format_table(report),
            report)
    return report


def _runtime_name(fmt):
    if fmt == "saved_model":
        import tensorflow as tf

        return f"tensorflow {tf.__version__} (tf.saved_model.load, serving_default)"
    if fmt == "tflite":
        try:
            import ai_edge_litert

            return f"ai_edge_litert {getattr(ai_edge_litert, '__version__', '')} Interpreter (signature runner)".replace("  ", " ")
        except ImportError:  # pragma: no cover
            return "tf.lite.Interpreter"
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider"


def _latency(kfn, run, img, rounds):
    import tensorflow as tf

    xk = tf.constant(img[None].astype(np.float32))
    xe = run.prepare(img[None])
    kfn(xk).numpy()
    run(img[None], prepared=xe)  # warm up both
    tk, te = [], []
    for _ in range(max(1, rounds)):
        t = time.perf_counter()
        kfn(xk).numpy()
        tk.append(time.perf_counter() - t)
        t = time.perf_counter()
        run(img[None], prepared=xe)
        te.append(time.perf_counter() - t)
    k, e = min(tk), min(te)
    return {"keras_s": k, "export_s": e, "ratio": e / k, "size": list(img.shape[:2]),
            "rounds": rounds, "keras_call": KERAS_CALL, "threads": os.cpu_count(),
            "method": "interleaved keras/export calls, min over rounds, batch 1"}


# --------------------------------------------------------------------------- table

def format_table(reports):
    """A plain-text table of one report or a list of reports."""
    if isinstance(reports, dict):
        reports = [reports]
    lines = []
    hdr = f"{'artefact':<34} {'quant':<12} {'size':<16} {'max abs':>9} {'rel':>9} {'labels':>9} {'lab>margin':>10} {'mIU diff':>9} {'latency':>16} {'ok':>4}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in reports:
        o = r["overall"]
        sz = r["size"]
        size = f"{sz['bytes'] / 1e6:.2f}MB ({sz['ratio']:.2f}x)"
        miou = "-" if not r.get("mean_iou") else f"{-r['mean_iou']['loss_points']:+.2f}"
        lat = r.get("latency")
        lat = "-" if not lat else f"{lat['export_s'] * 1e3:.1f}ms ({lat['ratio']:.2f}x)"
        lm = "-" if o["label_agreement_margin"] is None else f"{100 * o['label_agreement_margin']:.2f}%"
        name = os.path.basename(r["path"])
        lines.append(f"{name[-34:]:<34} {r['quantize']:<12} {size:<16} {o['max_abs']:>9.2e} {o['rel']:>9.2e} "
                     f"{100 * o['label_agreement']:>8.3f}% {lm:>10} {miou:>9} {lat:>16} {'yes' if r['passed'] else 'NO':>4}")
        for key, s in r["per_size"].items():
            lines.append(f"  {key:<32} {'':<12} {'':<16} {s['max_abs']:>9.2e} {s['rel']:>9.2e} "
                         f"{100 * s['label_agreement']:>8.3f}%")
        for f in r.get("failures", []):
            lines.append(f"  FAILED: {f}")
    if reports and reports[0].get("latency"):
        lines.append(f"latency ratio = export / Keras {reports[0]['latency']['keras_call']}, same process, interleaved")
    return "\n".join(lines)
