"""Training FCNs: Keras-native loops, the paper's schedules, `tf.distribute` scaling.

    import fcn_keras
    from fcn_keras import data, training

    model = fcn_keras.build("vgg16", "8s", num_classes=4, width=0.125)
    model.compile(optimizer="adam")                       # or model.compile(): the paper's SGD
    history = training.train(model, data.pipeline(data.shapes("train"), 8, 64, training=True),
                             data.pipeline(data.shapes("val")), epochs=5, out_dir="runs/x")
    scores = training.evaluate(model, data.pipeline(data.shapes("test")), 4,
                               data.SHAPES_CLASSES)
    print(training.format_report(scores))

    # the paper's staged schedule 32s -> 16s -> 8s, each stage from the coarser net
    result = training.run_recipe("vgg16", train_ds, val_ds, schedule="staged",
                                 num_classes=21, epochs=[..], out_dir="runs/voc",
                                 weights="imagenet", strategy="mirrored")

`train` writes `<out_dir>/history.json` and `<out_dir>/curves.png` (`plot_history`) every
epoch, saves a backup every `backup_every` steps and on Ctrl-C (`TrainingInterrupted`), and
resumes from it when run again with the same `out_dir`.
"""

from .callbacks import Backup, HistoryFile, Progress, TrainingInterrupted, default_callbacks
from .distribute import (DISTRIBUTIONS, STRATEGIES, get_distribution, get_strategy, tf_config,
                         worker_info)
from .loop import evaluate, format_report, predict_labels, train
from .plots import plot_history
from .recipe import (SCHEDULES, RecipeResult, make_optimizer, precision, run_recipe,
                     stages_for, transfer_weights)

__all__ = [
    "train", "evaluate", "format_report", "predict_labels", "default_callbacks",
    "Backup", "HistoryFile", "Progress", "TrainingInterrupted", "plot_history",
    "run_recipe", "RecipeResult", "stages_for", "transfer_weights", "make_optimizer",
    "precision", "get_strategy", "tf_config", "worker_info", "STRATEGIES", "SCHEDULES",
    "get_distribution", "DISTRIBUTIONS",
]
