"""The project's training path on one Keras backend, in a process of its own (the backend is
fixed when Keras is imported). Usage: KERAS_BACKEND=jax|torch python battery.py MODE OUT_DIR

MODE train:     fit on fcn_keras.data.pipeline through training.train (checkpoints, history,
                curves), training.evaluate against numpy counts of the model's own labels,
                .keras save / load, run_recipe staged (and its rerun loading finished stages),
                a tf.distribute strategy refused by name; writes OUT_DIR/model.keras for the
                export test.
MODE counts:    the metrics count more than 2**24 pixels of one class exactly.
MODE mixed:     mixed_float16 (loss scaling) and mixed_bfloat16: float32 logits, loss finite
                and falling.
MODE parallel:  (JAX, 2 devices) run_recipe with distribution="data_parallel" against the same
                run on one device: same weights, metrics over every device's pixels.
MODE may list several, comma-separated (one process, one import). Prints "OK <mode>" after
each. The functions also run in a process already on its backend (`MODES[mode](out_dir)`).
"""

import json
import os
import sys

import keras
import numpy as np

import fcn_keras
from fcn_keras import data, metrics, training

BACKEND = keras.backend.backend()


def shapes(split, n, size=32, batch=4, training_=False):
    return data.pipeline(data.shapes(split, num_examples=n, image_size=size), batch_size=batch,
                         crop_size=size, training=training_, seed=0)


def numpy_scores(model, ds):
    """score.py's fast_hist of the model's own labels, batch by batch."""
    hist = np.zeros((4, 4), np.int64)
    for x, y in ds.as_numpy_iterator():
        pred = np.argmax(keras.ops.convert_to_numpy(model.predict_on_batch(x)), -1)
        k = y != 255
        hist += np.bincount(4 * y[k].astype(int) + pred[k], minlength=16).reshape(4, 4)
    return hist


def train_mode(OUT):
    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.0625)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    tr, va = shapes("train", 8, training_=True), shapes("val", 4)
    run = os.path.join(OUT, "run")
    hist = training.train(model, tr, va, epochs=2, out_dir=run, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.all(np.isfinite(hist.history["val_mean_iou"]))
    for name in ("model.keras", "history.json", "curves.png", "log.csv",
                 "checkpoints/last.weights.h5"):
        assert os.path.exists(os.path.join(run, name)), name
    with open(os.path.join(run, "history.json")) as f:
        assert len(json.load(f)["val_mean_iou"]) == 2
    scores = training.evaluate(model, va, progress=False)
    hist_np = numpy_scores(model, va)
    assert scores["confusion_matrix"] == hist_np.tolist(), (scores["confusion_matrix"], hist_np)
    want = metrics.scores_from_confusion(hist_np)
    assert abs(scores["mean_iou"] - want["mean_iou"]) < 1e-12
    # Keras' own metric (inside the compiled step) agrees with the host count
    logs = model.evaluate(va, return_dict=True, verbose=0)
    for name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert abs(logs[name] - want[name]) < 1e-5, (name, logs[name], want[name])
    loaded = keras.models.load_model(os.path.join(run, "model.keras"))
    x, _ = next(iter(va.as_numpy_iterator()))
    np.testing.assert_array_equal(training.predict_labels(loaded, x, batch_size=4),
                                  training.predict_labels(model, x, batch_size=4))
    loaded.save(os.path.join(OUT, "model.keras"))  # for the export test (TensorFlow)

    # the paper's staged schedule; the rerun loads the finished stages
    kw = dict(schedule="staged", num_classes=4, width=0.0625, epochs=1, steps_per_epoch=2,
              optimizer="adam", learning_rate=1e-3, out_dir=os.path.join(OUT, "staged"),
              verbose=0)
    first = training.run_recipe("alexnet", tr, va, **kw)
    assert list(first.histories) == ["32s", "16s", "8s"]
    assert all(h is not None and len(h.history["loss"]) == 1 for h in first.histories.values())
    again = training.run_recipe("alexnet", tr, va, **kw)
    assert all(h is None for h in again.histories.values())
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)

    try:
        training.run_recipe("alexnet", tr, schedule="32s", num_classes=4, width=0.0625,
                            strategy="mirrored")
    except ValueError as e:
        assert "TensorFlow backend" in str(e) and repr(BACKEND) in str(e), e
    else:
        raise AssertionError("strategy='mirrored' accepted on " + BACKEND)


def counts_mode(OUT):
    # 5 batches of 2**22 + 1 pixels of class 0 predicted 0: 5 * 2**22 + 5 > 2**24, a count
    # one float32 cannot hold; plus a weighted batch of 2**24 and one pixel
    n = 2 ** 22 + 1
    cm = metrics.ConfusionMatrix(3)
    zeros = np.zeros((1, n), "int32")
    if BACKEND == "jax":
        import jax

        update = jax.jit(cm.stateless_update_state)  # as inside fit / evaluate
        values = [v.value for v in cm.variables]
        for _ in range(5):
            values = update(values, zeros, zeros)
        for v, value in zip(cm.variables, values):
            v.assign(value)
    else:
        for _ in range(5):
            cm.update_state(zeros, zeros)
    cm.update_state(np.array([[0, 1]]), np.array([[0, 2]]),
                    sample_weight=np.array([[2.0 ** 24, 3.0]], "float32"))
    hist = cm.confusion_matrix()
    assert hist[0, 0] == 5 * n + 2 ** 24 and hist[1, 2] == 3 and hist.sum() == 5 * n + 2 ** 24 + 3, hist
    # the four scores equal score.py's on that matrix
    yt = np.concatenate([np.zeros(n, int), np.ones(7, int), np.full(5, 2)])
    yp = np.concatenate([np.zeros(n, int), np.array([1, 1, 2, 2, 2, 0, 1]), np.full(5, 2)])
    want = metrics.scores_from_confusion(np.bincount(3 * yt + yp, minlength=9).reshape(3, 3) * 5)
    for m in metrics.paper_metrics(3):
        for _ in range(5):
            m.update_state(yt[None], yp[None])
        assert abs(float(m.result()) - want[m.name]) < 1e-6, (m.name, float(m.result()), want)


def mixed_mode(OUT):
    tr = shapes("train", 12, training_=True)
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        result = training.run_recipe("alexnet", tr, schedule="32s", num_classes=4, width=0.0625,
                                     epochs=4, optimizer="adam", learning_rate=3e-3,
                                     mixed_precision=policy, verbose=0)
        model = result.model
        assert model.dtype_policy.name == policy
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16"), (policy, type(model.optimizer))
        logits = model.predict_on_batch(np.zeros((1, 32, 32, 3), "float32"))
        assert keras.ops.convert_to_numpy(logits).dtype == np.float32
        loss = result.histories["32s"].history["loss"]
        assert np.all(np.isfinite(loss)) and loss[-1] < loss[0] - 0.05, (policy, loss)
        print(policy, [round(v, 4) for v in loss])


def parallel_mode(OUT):
    import jax

    assert len(jax.devices()) == 2, jax.devices()
    ds = data.pipeline(data.shapes("train", num_examples=8, image_size=32), batch_size=4)
    runs = {}
    for name, distribution in (("one", None), ("two", "data_parallel")):
        keras.utils.set_random_seed(0)
        r = training.run_recipe("alexnet", ds, schedule="32s", num_classes=4, width=0.0625,
                                epochs=2, optimizer=keras.optimizers.SGD(0.02, momentum=0.9),
                                distribution=distribution, verbose=0,
                                out_dir=os.path.join(OUT, name))
        model = r.model
        if distribution:
            devices = {d for v in model.trainable_weights for d in v.value.sharding.device_set}
            assert len(devices) == 2, devices
            with keras.distribution.DataParallel().scope():
                logs = model.evaluate(ds, return_dict=True, verbose=0)
        else:
            logs = model.evaluate(ds, return_dict=True, verbose=0)
        runs[name] = (model.get_weights(), r.histories["32s"].history, logs,
                      training.evaluate(model, ds, progress=False))
    (w1, h1, l1, s1), (w2, h2, l2, s2) = runs["one"], runs["two"]
    worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)) for a, b in zip(w1, w2))
    assert worst < 1e-4, worst
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-4)
    # Keras' metrics in the sharded step count every device's pixels: they equal the host count
    want = metrics.scores_from_confusion(np.array(s2["confusion_matrix"]))
    assert s2["pixels"] == 8 * 32 * 32 - int(np.sum([(y == 255).sum() for _, y in ds.as_numpy_iterator()]))
    for name in ("pixel_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert abs(l2[name] - want[name]) < 1e-5, (name, l2[name], want[name])
        assert abs(l1[name] - l2[name]) < 1e-4
    print("max relative weight difference", worst)


MODES = {"train": train_mode, "counts": counts_mode, "mixed": mixed_mode,
         "parallel": parallel_mode}

if __name__ == "__main__":
    assert BACKEND == os.environ["KERAS_BACKEND"], BACKEND
    for mode in sys.argv[1].split(","):
        MODES[mode](sys.argv[2])
        print("OK", mode, flush=True)
