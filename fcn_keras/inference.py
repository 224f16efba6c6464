"""A Keras FCN called on images through a compiled function: what `Predictor` computes with.

    call = CompiledCall(model)                 # model: a built keras.Model taking (N, H, W, 3)
    logits = call(images)                      # uint8 (N, H, W, 3) -> float32 (N, H, W, C)
    call.compiles                              # shapes compiled so far (XLA / jax.jit traces)

Per backend (measured in `benchmarks/default_predict.py`, figures in `benchmarks/README.md`):

* TensorFlow: an input shape's first call runs a `tf.function` graph traced once for every
  size (no compilation wait); from the shape's second call (`xla_after`) a `tf.function` with
  `jit_compile=True`, which XLA compiles once per input shape (seconds for a full-width net)
  and which then runs faster than the graph. Images of one size, and the tiles of
  `fcn_keras.tiling.plan` (at most four window shapes per image, the same for every image of
  the same size modulo 32), so pay for one compilation per shape. A bfloat16 model always
  runs as the graph: TensorFlow's graph computes bfloat16 with oneDNN's native kernels, XLA's
  CPU backend does not (over twice the graph's time on an AVX-512 BF16 CPU). `Predictor`
  with tiles also runs the graph only: each compiled shape keeps its own buffers, which at
  4 MP in tiles raised the peak from 2.7 to 3.6 GB (`docs/full-resolution.md`).
* JAX: `jax.jit` of the model's `stateless_call`, compiled once per input shape (JAX has no
  uncompiled path worth taking).
* PyTorch: the model called eagerly under `torch.no_grad()` (torch.compile is not used).

Exact: the compiled function computes the same network as `model(x)`, on the image as it
is; only the order of floating-point operations may differ (logits within about 1e-6 of the
largest, `tests/test_inference.py`). Images are never padded to a common size: the zero
padding and ceil-mode pooling of an FCN at the image's bottom and right edges would change
the logits there.
"""

import collections

import numpy as np

XLA_AFTER = 2  # TensorFlow: compile a shape with XLA on its second call


class CompiledCall:
    """Calls a Keras FCN through a compiled function (see the module docstring).

    Args:
        model: a built `keras.Model` with one image input (N, H, W, 3) and logits (N, H, W, C).
        xla_after: TensorFlow only: a shape runs through XLA from its `xla_after`-th call (1:
            always; None: never, the graph only); a model that computes in bfloat16 always
            runs as the graph. Other backends ignore it.

    Attributes:
        backend: the Keras backend ("tensorflow", "jax", "torch").
        compiles: how many input shapes have been compiled (XLA on TensorFlow, jax.jit on
            JAX; 0 on PyTorch): a new shape adds one, a shape seen before adds none.
        fixed_size: the model's (height, width) when its input has a fixed size, else None.
    """

    def __init__(self, model, xla_after=XLA_AFTER):
        import keras

        from fcn_keras.models.layers import input_preprocess

        self.backend = keras.backend.backend()
        self.compiles = 0
        bfloat16 = "bfloat16" in str(getattr(model.dtype_policy, "compute_dtype", ""))
        self.xla_after = None if bfloat16 else xla_after
        self._seen = collections.Counter()
        shape = model.inputs[0].shape
        self.fixed_size = (int(shape[1]), int(shape[2])) if shape[1] and shape[2] else None
        pre = input_preprocess(model)
        if self.backend == "jax":
            self._run = self._jax(model, pre)
            return
        self._run = (self._tensorflow if self.backend == "tensorflow" else self._eager)(self._forward(model, pre))

    @staticmethod
    def _forward(model, pre):
        def forward(images):
            return model(images if pre is None else pre(images), training=False)

        return forward

    def __call__(self, images):
        """float32 logits (N, H, W, C) of uint8 images (N, H, W, 3)."""
        import keras

        images = np.asarray(images)
        self._seen[images.shape] += 1
        return np.asarray(keras.ops.convert_to_numpy(self._run(images)), np.float32)

    def _counted(self, forward):
        def fn(*args):
            self.compiles += 1  # runs when traced: once per compiled shape
            return forward(*args)

        return fn

    def _tensorflow(self, forward):
        import tensorflow as tf

        graph = tf.function(forward, input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8)],
                            autograph=False)
        xla = tf.function(self._counted(forward), jit_compile=True, reduce_retracing=False, autograph=False)

        def run(images):
            use_xla = self.xla_after is not None and self._seen[images.shape] >= self.xla_after
            return (xla if use_xla else graph)(tf.constant(images, tf.uint8))

        return run

    def _jax(self, model, pre):
        import jax

        def stateless(trainable, non_trainable, images):
            x = images if pre is None else pre(images)
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        jitted = jax.jit(self._counted(stateless))
        return lambda images: jitted([v.value for v in model.trainable_variables],
                                     [v.value for v in model.non_trainable_variables], images)

    @staticmethod
    def _eager(forward):
        import torch

        def run(images):
            with torch.no_grad():
                return forward(images)

        return run
