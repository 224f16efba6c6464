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

Pieces of a model: `CompiledCall(piece, preprocess_like=model)` calls a sub-model taking the
FCN's images (e.g. its front, `fcn_keras.staged`); `CompiledCall(piece, tensors=True)` one
taking float32 feature maps, one array per input (`call(a, b)`); a piece with several outputs
returns a list of float32 arrays.

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

    Keyword args (for pieces of an FCN, `fcn_keras.staged`):
        preprocess_like: the FCN whose input convention the uint8 images follow (its
            `include_preprocessing`); default: `model` itself.
        tensors: True: `model` takes float32 maps (N, H, W, C_i), one array per input, not
            images; nothing is put in front of it.
    """

    def __init__(self, model, xla_after=XLA_AFTER, *, preprocess_like=None, tensors=False):
        import keras

        from fcn_keras.models.layers import input_preprocess

        self.backend = keras.backend.backend()
        self.compiles = 0
        bfloat16 = "bfloat16" in str(getattr(model.dtype_policy, "compute_dtype", ""))
        self.xla_after = None if bfloat16 else xla_after
        self._seen = collections.Counter()
        shape = model.inputs[0].shape
        self.fixed_size = (int(shape[1]), int(shape[2])) if shape[1] and shape[2] else None
        pre = None if tensors else input_preprocess(preprocess_like if preprocess_like is not None else model)
        self._tensors = tensors
        self._specs = ([(int(t.shape[-1]), "float32") for t in model.inputs] if tensors else [(3, "uint8")])
        if self.backend == "jax":
            self._run = self._jax(model, pre)
            return
        self._run = (self._tensorflow if self.backend == "tensorflow" else self._eager)(self._forward(model, pre))

    @staticmethod
    def _forward(model, pre):
        def forward(*inputs):
            x = inputs[0] if len(inputs) == 1 else list(inputs)
            return model(x if pre is None else pre(x), training=False)

        return forward

    def __call__(self, *inputs):
        """float32 logits (N, H, W, C) of uint8 images (N, H, W, 3); for a piece made with
        `tensors=True`, of its float32 inputs (one array each). A list for several outputs."""
        import keras

        inputs = [np.asarray(a, np.float32) if self._tensors else np.asarray(a) for a in inputs]
        if len(inputs) != len(self._specs):
            raise ValueError(f"CompiledCall: expected {len(self._specs)} input arrays. Received {len(inputs)}")
        self._seen[tuple(a.shape for a in inputs) if len(inputs) > 1 else inputs[0].shape] += 1
        out = self._run(*inputs)
        if isinstance(out, (list, tuple)):
            return [np.asarray(keras.ops.convert_to_numpy(o), np.float32) for o in out]
        return np.asarray(keras.ops.convert_to_numpy(out), np.float32)

    def _counted(self, forward):
        def fn(*args):
            self.compiles += 1  # runs when traced: once per compiled shape
            return forward(*args)

        return fn

    def _tensorflow(self, forward):
        import tensorflow as tf

        graph = tf.function(forward, input_signature=[tf.TensorSpec((None, None, None, c), dtype)
                                                      for c, dtype in self._specs], autograph=False)
        xla = tf.function(self._counted(forward), jit_compile=True, reduce_retracing=False, autograph=False)

        def run(*inputs):
            key = tuple(a.shape for a in inputs) if len(inputs) > 1 else inputs[0].shape
            use_xla = self.xla_after is not None and self._seen[key] >= self.xla_after
            return (xla if use_xla else graph)(*[tf.constant(a, dtype) for a, (_, dtype) in zip(inputs, self._specs)])

        return run

    def _jax(self, model, pre):
        import jax

        def stateless(trainable, non_trainable, inputs):
            x = inputs[0] if len(inputs) == 1 else list(inputs)
            x = x if pre is None else pre(x)
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        jitted = jax.jit(self._counted(stateless))
        return lambda *inputs: jitted([v.value for v in model.trainable_variables],
                                      [v.value for v in model.non_trainable_variables], list(inputs))

    @staticmethod
    def _eager(forward):
        import torch

        def run(*inputs):
            with torch.no_grad():
                return forward(*inputs)

        return run
