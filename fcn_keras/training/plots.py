"""Training curves: the loss and the paper's four metrics per epoch, as one PNG."""

from __future__ import annotations

import math
import os

from fcn_keras._io import atomic_write

PANELS = (("loss", "loss"), ("pixel_accuracy", "pixel accuracy"),
          ("mean_accuracy", "mean accuracy"), ("mean_iou", "mean IU"),
          ("frequency_weighted_iou", "frequency weighted IU"))


def _finite(values):
    return [math.nan if v is None else float(v) for v in values]


def _epoch_ticks(ax, n):
    """Whole-epoch ticks on the x axis: each epoch up to 10, else at most 10 integer ticks."""
    from matplotlib.ticker import MaxNLocator

    if n <= 10:
        ax.set_xticks(range(1, n + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    ax.set_xlim(0.5, n + 0.5)


def figure(history, stages=None, title=None):
    """The matplotlib Figure `plot_history` writes (arguments as there); close it when done.

    Raises:
        ValueError: `history` holds no `loss` values.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(history.get("loss") or [])
    if n == 0:
        raise ValueError(f"Expected a history with at least one `loss` value. "
                         f"Received: history keys={sorted(history)}")
    panels = [(key, label) for key, label in PANELS if history.get(key)]
    epochs = list(range(1, n + 1))
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.2), layout="constrained")
    axes = axes.ravel()
    for ax, (key, label) in zip(axes, panels):
        scale = 1.0 if key == "loss" else 100.0
        for name, style, legend in ((key, "-", "train"), (f"val_{key}", "--", "validation")):
            values = _finite(history.get(name) or [])[:n]
            if values:
                ax.plot(epochs[:len(values)], [v * scale for v in values], style, marker="o",
                        markersize=3, label=legend)
        ax.set_title(label if key == "loss" else f"{label} (%)", fontsize=10)
        ax.set_xlabel("epoch")
        if key == "loss":  # the metric panels' titles give their unit (%)
            ax.set_ylabel("cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.margins(y=0.18 if stages else 0.05)
        _epoch_ticks(ax, n)
        for stage_label, first in stages or ():
            ax.axvline(first + 0.5, color="grey", linewidth=0.8, linestyle=":")
            ax.text(first + 0.6, 0.97, stage_label, transform=ax.get_xaxis_transform(),
                    fontsize=8, color="dimgrey", va="top", ha="left")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(panels):]:
        ax.axis("off")
    axes[-1].legend(handles, labels, loc="center", fontsize=11, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_history(history, path, stages=None, title=None):
    """Writes a PNG of training curves: loss and the four metrics, train and validation.

    One panel per quantity (loss, pixel accuracy, mean accuracy, mean IU, frequency
    weighted IU), each with the training value (solid) and, where logged, the validation
    value (`val_` prefix, dashed) against the epoch (1-based). Quantities absent from
    `history` are left out. The file is written atomically.

    Args:
        history: the Keras `History.history` dict, {name: [one float per epoch]}; the
            metrics are fractions in [0, 1], drawn as percentages.
        path: where the PNG goes (e.g. `<out>/curves.png`).
        stages: for the staged schedule, [(label, first_epoch)] pairs with `first_epoch`
            0-based (e.g. [("FCN-32s", 0), ("FCN-16s", 4), ("FCN-8s", 8)]); each stage is
            marked by a vertical line and its label.
        title: text above the panels (default: none).

    Returns:
        `path`.

    Raises:
        ValueError: `history` holds no `loss` values.
    """
    from matplotlib import pyplot as plt

    fig = figure(history, stages, title)
    path = os.fspath(path)

    def write(tmp):
        fig.savefig(tmp, dpi=100, format="png")

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
    return path
