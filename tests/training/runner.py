"""Training runs the tests start in fresh processes (logical devices, TF_CONFIG and
os._exit need a process of their own). Usage: python runner.py MODE OUT_JSON [args...]

MODE mirrored:    the same training on 1 device and on 2 logical CPUs (MirroredStrategy).
MODE multiworker: one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG set).
MODE resume:      train() into OUT_DIR, optionally os._exit() at (epoch, batch).
"""

import json
import os
import sys

MODE = sys.argv[1]
OUT = sys.argv[2]

import tensorflow as tf  # noqa: E402

if MODE == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
if MODE == "multiworker":
    # must exist before any other TensorFlow op runs: the library's route, called first thing
    from fcn_keras.training import get_strategy  # noqa: E402

    STRATEGY = get_strategy("multiworker")

import keras  # noqa: E402
keras.config.disable_traceback_filtering()

import fcn_keras  # noqa: E402
from fcn_keras import data, metrics, training  # noqa: E402


def tiny_data(n, size, no_void):
    src = data.shapes("train", num_examples=n, image_size=size)
    ds = src.dataset()
    if no_void:
        # Keras averages the loss per replica and then over replicas; with the same number
        # of scored pixels on every replica that equals the single-device mean exactly.
        ds = ds.map(lambda i, m: (i, tf.where(m == 255, tf.constant(0, tf.uint8), m)))
    return ds


def no_dropout(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0  # dropout masks differ per replica by design


def build_compiled(init=None):
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.0625)
    no_dropout(model)
    if init is not None:
        model.set_weights(init)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9),
                  metrics=metrics.paper_metrics(4))
    return model


def mirrored():
    ds = data.pipeline(tiny_data(8, 32, True), batch_size=4)
    keras.utils.set_random_seed(0)
    results = {}
    init = None
    for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        with strategy.scope():
            model = build_compiled(init)
        if init is None:
            init = model.get_weights()
        hist = model.fit(ds, epochs=2, verbose=0, shuffle=False)
        scores = model.evaluate(ds, return_dict=True, verbose=0)
        results[name] = {"weights": [w.tolist() for w in model.get_weights()],
                         "loss": hist.history["loss"], "scores": scores,
                         "replicas": strategy.num_replicas_in_sync}
    results["init"] = [w.tolist() for w in init]
    return results


def multiworker():
    out_dir = sys.argv[3]
    with STRATEGY.scope():
        model = build_compiled()
    train_ds = data.pipeline(tiny_data(8, 32, False), batch_size=4, crop_size=32,
                             training=True, seed=0)
    hist = training.train(model, train_ds, epochs=1, out_dir=out_dir, verbose=0)
    _, index, n, chief = training.worker_info()
    return {"replicas": STRATEGY.num_replicas_in_sync, "epochs": len(hist.history["loss"]),
            "loss": hist.history["loss"], "index": index, "workers": n, "chief": chief}


class KillAt(keras.callbacks.Callback):
    """Simulate a crash: leave the process without any clean-up at (epoch, batch)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            sys.stdout.flush()
            os._exit(17)


class Record(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(f"{epoch}\n")


def resume():
    out_dir, epochs = sys.argv[3], int(sys.argv[4])
    kill = [int(v) for v in sys.argv[5].split(",")] if len(sys.argv) > 5 else None
    keras.utils.set_random_seed(0)
    model = build_compiled()
    train_ds = data.pipeline(tiny_data(8, 32, False), batch_size=2, crop_size=32,
                             training=True, seed=0)
    cbs = [Record(os.path.join(out_dir, "epochs_started.txt"))]
    if kill:
        cbs.append(KillAt(*kill))
    os.makedirs(out_dir, exist_ok=True)
    hist = training.train(model, train_ds, epochs=epochs, out_dir=out_dir, callbacks=cbs,
                          verbose=0)
    return {"epochs_run": len(hist.history["loss"]), "loss": hist.history["loss"]}


if __name__ == "__main__":
    result = {"mirrored": mirrored, "multiworker": multiworker, "resume": resume}[MODE]()
    with open(OUT, "w") as f:
        json.dump(result, f)
