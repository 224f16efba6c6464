"""A patch of Keras internals for `MultiWorkerMirroredStrategy` (`prebuild_for_multiworker`),
applied by `fcn_keras.training.train` before `fit`; nothing changes elsewhere."""

from __future__ import annotations

import tensorflow as tf


def prebuild_for_multiworker(model, train_ds):
    """Works around Keras 3 + MultiWorkerMirroredStrategy incompatibilities (Keras 3.15,
    TF 2.21; tensorflow/tensorflow#72388), without changing what is computed:

    1. `fit` first reduces a whole input batch with `strategy.reduce` to build the
       model symbolically, which fails for nested per-replica values under collective ops
       ("Attempt to convert a value (PerReplica...)"): build from a local batch of zeros
       instead.
    2. Each step's logs are reduced with `strategy.reduce("MEAN", v, axis=0)`, which
       fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions"):
       the steps return their scalar logs as 1-element vectors, which that reduction
       averages over the workers back to scalars. Epoch logs are recomputed by Keras from
       the metric variables (summed over all workers), so they are exact.
    """
    strategy = getattr(model, "distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    if getattr(model, "_fcn_multiworker_patched", False):
        return
    if not hasattr(model, "_symbolic_build") or not hasattr(model, "_maybe_symbolic_build"):
        return  # a Keras without these internals: nothing to work around
    _build_from_zeros(model, strategy, train_ds.element_spec)
    model.train_step = _vector_logs(model.train_step)
    model.test_step = _vector_logs(model.test_step)
    model._fcn_multiworker_patched = True


def _build_from_zeros(model, strategy, element_spec):
    """Builds `model` symbolically from one local batch of zeros of the data's shapes
    (unknown sizes: 32), and makes `fit`'s own build a no-op (point 1 above).

    Zeros, not a batch of the data: reading a batch would start an iteration, and a seeded
    pipeline that reshuffles per iteration would then train on another order than the same
    run on one machine.
    """
    batch = tf.nest.map_structure(
        lambda spec: tf.zeros([d if d is not None else 32 for d in spec.shape], spec.dtype),
        element_spec)
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None


def _vector_logs(step):
    """`step` (a train or test step) returning its scalar logs as 1-element vectors (point 2)."""
    def wrapped(data):
        logs = step(data)
        if isinstance(logs, dict):
            logs = {k: (tf.reshape(v, [1]) if hasattr(v, "shape") and v.shape.rank == 0 else v)
                    for k, v in logs.items()}
        return logs

    return wrapped
