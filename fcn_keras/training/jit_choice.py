"""Graph or XLA for the training step: what `jit_compile="auto"` means in `run_recipe` and
`fcn-keras train`, and the one line that says what was picked.

    jit, reason = choose_jit("auto", train_ds)   # (False, "a TensorFlow graph: ...")

The rule, from measurement (`python benchmarks/speed.py --bf16`: full-width FCN-8s VGG16,
256x256 crops, batch 1, interleaved rounds on a quiet 2-core CPU; figures in
benchmarks/README.md):

* TensorFlow on a CPU: the graph. With AVX-512 BF16 the graph step took 3.44 s against XLA's
  4.14 s in float32 and 2.27 s against 3.92 s in mixed_bfloat16; on an AVX2-only CPU XLA was
  12% faster in float32, but it compiles again for every new batch shape.
* TensorFlow on a GPU: XLA when every batch has the same shape (crops), as Keras chooses
  there; the graph when shapes vary (the paper's whole images) or under a `tf.distribute`
  strategy.
* JAX: XLA always (`jax.jit`; its only compiled path). PyTorch: eager, as Keras runs it.
"""

import os

import keras


def fixed_shape(ds):
    """True when every batch of `ds` (a tf.data dataset of (images, masks)) has one spatial
    size, False when it varies, None when it cannot be told (not a tf.data dataset)."""
    spec = getattr(ds, "element_spec", None)
    if spec is None:
        return None
    images = spec[0] if isinstance(spec, (tuple, list)) else spec
    shape = getattr(images, "shape", None)
    if shape is None or shape.rank is None or shape.rank < 3:
        return None
    return all(d is not None for d in shape[1:3])


def _tensorflow_gpus():
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def choose_jit(requested, train_ds=None, distributed=False):
    """(jit_compile for `keras.Model.compile`, one line saying what and why).

    Args:
        requested: True / False (kept as asked) or "auto" (the rule above).
        train_ds: the training batches, to tell fixed from varying shapes.
        distributed: True under a `tf.distribute` strategy other than the default; "auto"
            for `get_strategy("auto")`, which mirrors over several GPUs or a TF_CONFIG cluster.
    """
    if requested is not True and requested is not False and requested != "auto":
        raise ValueError(f'`jit_compile` must be True, False or "auto". Received: jit_compile={requested!r}')
    backend = keras.backend.backend()
    if requested != "auto":
        return requested, f"training step: {'XLA' if requested else 'no XLA'} (as asked)"
    if backend == "jax":
        return True, "training step: XLA (jax.jit, JAX's compiled path)"
    if backend != "tensorflow":
        return False, f"training step: eager ({backend}, as Keras runs it)"
    gpus = _tensorflow_gpus()
    if not gpus:
        return False, ("training step: a TensorFlow graph (XLA measured slower for training on CPUs "
                       "with AVX-512 BF16, and it compiles each new batch shape; jit_compile=True forces it)")
    if distributed == "auto":
        distributed = gpus > 1 or bool(os.environ.get("TF_CONFIG"))
    if distributed:
        return False, "training step: a TensorFlow graph (XLA is off under a tf.distribute strategy)"
    if fixed_shape(train_ds) is False:
        return False, ("training step: a TensorFlow graph (the batches vary in size: XLA would "
                       "compile every new shape)")
    return True, "training step: XLA (a GPU and batches of one shape)"
