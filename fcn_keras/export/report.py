"""What a verification measured: `Stats` per image size, the `Report`, and its text table."""

import dataclasses
import os

KERAS_CALL = "tf.function(lambda x: model(x, training=False)), float32 NHWC input"
MARGIN = 0.05
SCORED_PIXELS = "the image's own pixels (not padding) that its mask labels (all of them without a mask)"


@dataclasses.dataclass(frozen=True)
class Targets:
    """Parity targets of a verification; a None field is not checked.

    Attributes:
        min_label_agreement: least fraction of scored pixels whose label equals Keras' argmax,
            overall and at each image size.
        max_rel_error: largest max |export - Keras score| / max |Keras score|, at each size.
        max_miou_loss: most mean-IU points (0..100) the export may lose against Keras
            (needs masks).
        min_label_agreement_margin: least label agreement on pixels whose Keras top-1 / top-2
            margin exceeds 5% of the largest |Keras score|.
    """

    min_label_agreement: float = None
    max_rel_error: float = None
    max_miou_loss: float = None
    min_label_agreement_margin: float = None


@dataclasses.dataclass
class Stats:
    """Export against Keras over the scored pixels of some images (sums; ratios as properties).

    Attributes:
        images: images compared.
        pixels: scored pixels.
        agree: scored pixels whose exported label equals Keras' argmax.
        wide_pixels, wide_agree: the same over pixels with a wide Keras margin.
        self_agree: scored pixels whose exported label equals the argmax of the exported scores.
        values, sum_abs: score values compared and the sum of their |export - Keras|.
        max_abs: largest |export - Keras| score; max_abs_keras: largest |Keras score|.
    """

    images: int = 0
    pixels: int = 0
    agree: int = 0
    wide_pixels: int = 0
    wide_agree: int = 0
    self_agree: int = 0
    values: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    max_abs_keras: float = 0.0

    def __add__(self, other):
        return Stats(**{f.name: (max if f.name.startswith("max") else sum)((getattr(self, f.name),
                                                                           getattr(other, f.name)))
                        for f in dataclasses.fields(self)})

    @property
    def rel(self):
        """max_abs / max_abs_keras."""
        return self.max_abs / max(self.max_abs_keras, 1e-12)

    @property
    def mean_abs(self):
        return self.sum_abs / max(self.values, 1)

    @property
    def label_agreement(self):
        """Fraction of scored pixels with Keras' label (None without scored pixels)."""
        return self.agree / self.pixels if self.pixels else None

    @property
    def label_agreement_margin(self):
        """Label agreement where the Keras margin is wide (None without such pixels)."""
        return self.wide_agree / self.wide_pixels if self.wide_pixels else None

    @property
    def labels_equal_argmax_scores(self):
        return self.self_agree / self.pixels if self.pixels else None

    def to_dict(self):
        return {"images": self.images, "pixels": self.pixels, "max_abs": self.max_abs, "rel": self.rel,
                "mean_abs": self.mean_abs, "max_abs_keras_logit": self.max_abs_keras,
                "label_agreement": self.label_agreement,
                "label_agreement_margin": self.label_agreement_margin,
                "labels_equal_argmax_scores": self.labels_equal_argmax_scores}


@dataclasses.dataclass
class Latency:
    """One image through the Keras model and the export, interleaved, min over rounds (seconds)."""

    keras_s: float
    export_s: float
    size: tuple
    rounds: int
    threads: int

    @property
    def ratio(self):
        return self.export_s / self.keras_s

    def to_dict(self):
        return {**dataclasses.asdict(self), "ratio": self.ratio, "keras_call": KERAS_CALL,
                "method": "interleaved keras/export calls, min over rounds, batch 1"}


@dataclasses.dataclass
class Report:
    """The verification of one artefact.

    Attributes:
        path, format, quantize, runtime: the artefact and what ran it.
        data: where the images came from.
        overall: `Stats` over all images; per_size: {"native" | "HxW": Stats}.
        fixed_input_size: the artefact's fixed (h, w), or None.
        mean_iou: {"keras", "export", "loss_points"} in points (0..100), or None without masks.
        bytes, keras_weight_bytes: the artefact's size and the Keras float32 weights'.
        targets: the `Targets` checked; failures: one line per missed target (empty: passed).
        latency: a `Latency`, or None.
        tflite_ops: a .tflite file's operator names; builtin_only: whether all are builtins.
        notes: what was not checked and why.
    """

    path: str
    format: str
    quantize: str
    runtime: str
    data: str
    overall: Stats
    per_size: dict
    fixed_input_size: tuple
    mean_iou: dict
    bytes: int
    keras_weight_bytes: int
    targets: Targets = None
    failures: list = dataclasses.field(default_factory=list)
    latency: Latency = None
    tflite_ops: list = None
    builtin_only: bool = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def passed(self):
        return not self.failures

    @property
    def size_ratio(self):
        """Artefact bytes / Keras float32 weight bytes."""
        return self.bytes / self.keras_weight_bytes

    def to_dict(self):
        """The report as plain JSON-ready values (what `<path>.verify.json` holds)."""
        return {
            "path": self.path, "format": self.format, "quantize": self.quantize, "runtime": self.runtime,
            "data": self.data, "scored_pixels": SCORED_PIXELS,
            "margin_definition": f"Keras top-1 minus top-2 logit > {MARGIN} * max|Keras logit|",
            "fixed_input_size": None if self.fixed_input_size is None else list(self.fixed_input_size),
            "overall": self.overall.to_dict(),
            "per_size": {k: s.to_dict() for k, s in self.per_size.items()},
            "mean_iou": self.mean_iou,
            "size": {"bytes": self.bytes, "keras_weight_bytes": self.keras_weight_bytes, "ratio": self.size_ratio},
            "latency": None if self.latency is None else self.latency.to_dict(),
            "tflite_ops": self.tflite_ops, "builtin_only": self.builtin_only,
            "targets": None if self.targets is None else dataclasses.asdict(self.targets),
            "failures": list(self.failures), "notes": list(self.notes), "passed": self.passed,
        }


def _pct(v, width):
    return f"{'-':>{width}}" if v is None else f"{100 * v:>{width - 1}.3f}%"


def format_table(reports):
    """A plain-text table of one `Report` or a list of them (one row per artefact and size)."""
    if isinstance(reports, Report):
        reports = [reports]
    hdr = (f"{'artefact':<34} {'quant':<12} {'size':<16} {'max abs':>9} {'rel':>9} {'labels':>9} "
           f"{'lab>margin':>10} {'mIU diff':>9} {'latency':>16} {'ok':>4}")
    lines = [hdr, "-" * len(hdr)]
    for r in reports:
        o = r.overall
        size = f"{r.bytes / 1e6:.2f}MB ({r.size_ratio:.2f}x)"
        miou = "-" if not r.mean_iou else f"{-r.mean_iou['loss_points']:+.2f}"
        lat = "-" if not r.latency else f"{r.latency.export_s * 1e3:.1f}ms ({r.latency.ratio:.2f}x)"
        name = os.path.basename(r.path)
        lines.append(f"{name[-34:]:<34} {r.quantize:<12} {size:<16} {o.max_abs:>9.2e} {o.rel:>9.2e} "
                     f"{_pct(o.label_agreement, 9)} {_pct(o.label_agreement_margin, 10)} {miou:>9} {lat:>16} "
                     f"{'yes' if r.passed else 'NO':>4}")
        for key, s in r.per_size.items():
            lines.append(f"  {key:<32} {'':<12} {'':<16} {s.max_abs:>9.2e} {s.rel:>9.2e} "
                         f"{_pct(s.label_agreement, 9)}")
        lines += [f"  FAILED: {f}" for f in r.failures]
    if reports and reports[0].latency:
        lines.append(f"latency ratio = export / Keras {KERAS_CALL}, same process, interleaved")
    lines.append(f"scored pixels: {SCORED_PIXELS}")
    return "\n".join(lines)
