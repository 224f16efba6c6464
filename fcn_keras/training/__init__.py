"""Training FCNs: Keras-native loops, the paper's schedules, `tf.distribute` (TensorFlow) and
`keras.distribution` (JAX) scaling.

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
    # JAX: keras.distribution over every device (TensorFlow: strategy="mirrored" above)
    result = training.run_recipe("vgg16", train_ds, schedule="32s", distribution="data_parallel")

`train` writes `<out_dir>/history.json` and `<out_dir>/curves.png` (`plot_history`) every
epoch, saves a backup every `backup_every` steps and on Ctrl-C (`TrainingInterrupted`), and
resumes from it when run again with the same `out_dir`. `RunFiles` (what a run writes),
`StageBuild` and `StageCompile` (how `run_recipe` builds and compiles each stage) group their
keywords; each field is also accepted as a keyword of its own.

Modules: `fit` (`train`), `evaluation` (`evaluate`, `format_report`), `inference`
(`predict_labels`), `recipe` (`run_recipe`), `options` (the config objects), `defaults`,
`callbacks`, `saving`, `plots`, `distribute` and `cluster` (several devices or machines),
`keras_patches` (a Keras workaround for multi-worker training).
"""

from fcn_keras._progress import import_quietly

_NAMES = {  # public name -> the submodule that defines it
    "Backup": "fcn_keras.training.callbacks",
    "HistoryFile": "fcn_keras.training.callbacks",
    "Progress": "fcn_keras.training.callbacks",
    "TrainingInterrupted": "fcn_keras.training.callbacks",
    "default_callbacks": "fcn_keras.training.callbacks",
    "STRATEGIES": "fcn_keras.training.distribute",
    "DISTRIBUTIONS": "fcn_keras.training.distribute",
    "get_distribution": "fcn_keras.training.distribute",
    "get_strategy": "fcn_keras.training.distribute",
    "start_cluster": "fcn_keras.training.distribute",
    "WorkerLost": "fcn_keras.training.cluster",
    "tf_config": "fcn_keras.training.distribute",
    "worker_info": "fcn_keras.training.distribute",
    "WorkerInfo": "fcn_keras.training.distribute",
    "evaluate": "fcn_keras.training.evaluation",
    "format_report": "fcn_keras.training.evaluation",
    "predict_labels": "fcn_keras.training.inference",
    "train": "fcn_keras.training.fit",
    "RunFiles": "fcn_keras.training.options",
    "StageBuild": "fcn_keras.training.options",
    "StageCompile": "fcn_keras.training.options",
    "plot_history": "fcn_keras.training.plots",
    "SCHEDULES": "fcn_keras.models.registry",
    "RecipeResult": "fcn_keras.training.recipe",
    "make_optimizer": "fcn_keras.training.recipe",
    "precision": "fcn_keras.training.recipe",
    "run_recipe": "fcn_keras.training.recipe",
    "stages_for": "fcn_keras.training.recipe",
    "transfer_weights": "fcn_keras.training.recipe",
}

__all__ = [
    "train", "RunFiles", "evaluate", "format_report", "predict_labels", "default_callbacks",
    "Backup", "HistoryFile", "Progress", "TrainingInterrupted", "plot_history",
    "run_recipe", "StageBuild", "StageCompile", "RecipeResult", "stages_for",
    "transfer_weights", "make_optimizer", "precision", "get_strategy", "tf_config",
    "worker_info", "WorkerInfo", "STRATEGIES", "SCHEDULES",
    "get_distribution", "DISTRIBUTIONS", "start_cluster", "WorkerLost",
]


def __getattr__(name):
    # Names load on first use (PEP 562): importing a light submodule, or the command
    # line reading its choices, does not import TensorFlow.
    if name in _NAMES:
        return getattr(import_quietly(_NAMES[name]), name)
    raise AttributeError(f"module 'fcn_keras.training' has no attribute {name!r}")
