"""Numeric precision of an FCN: the Keras dtype policy it is built under, and bfloat16 copies.

    fast = with_precision(model, "bfloat16")   # same net, bfloat16 weights and compute
    fcn_keras.build(weights="voc-fcn8s", dtype="bfloat16")

A bfloat16 FCN stores its weights in bfloat16 (half the memory of float32) and computes in
bfloat16; its logits are float32 (the last layer casts), so code that takes the argmax or a
softmax is unchanged. bfloat16 keeps float32's range with 8 significant bits (relative
rounding up to 2^-8 ~ 0.4%): labels follow the float32 net's where its top two logits are not
nearly tied. It can be fast only where the CPU computes in bfloat16 natively (AVX-512 BF16 or
AMX, `native_bfloat16()`); elsewhere the arithmetic runs in float32 after conversions, and it
is no faster than float32 (full-width FCN-8s VGG16 on an AVX2 CPU: 1.05x float32's time).
"""

import contextlib

import keras

from fcn_keras.conventions import PRECISIONS
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@contextlib.contextmanager
def precision(mixed):
    """Sets the Keras dtype policy inside the block and restores the previous one after.

    Args:
        mixed: False or None (no change), True ("mixed_float16") or a policy name
            ("bfloat16", "mixed_bfloat16", ...).
    """
    old = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy(mixed if isinstance(mixed, str) else "mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def policy_name(dtype, arg="dtype"):
    """The name of the Keras dtype policy `dtype` ("float32", "bfloat16", "mixed_bfloat16", ...).

    Raises:
        ValueError: not a float policy Keras knows, naming `arg`.
    """
    try:
        policy = None if dtype is None else keras.dtype_policies.get(dtype)
    except (ValueError, TypeError):
        policy = None
    if policy is None or policy.quantization_mode is not None or "float" not in policy.compute_dtype:
        raise ValueError(f"`{arg}` must be a Keras float dtype policy name such as {PRECISIONS} or "
                         f"'mixed_bfloat16'. Received: {arg}={dtype!r}")
    return policy.name


def model_precision(model):
    """The dtype policy name an FCN computes in (a model's own: "float32", "bfloat16", ...)."""
    return model.dtype_policy.name


def with_precision(model, dtype):
    """The same FCN rebuilt under the dtype policy `dtype`, with `model`'s weights (cast).

    The copy has the architecture, names and weights of `model` (weights rounded to the new
    dtype); it is not compiled. The logits stay float32 (N, H, W, num_classes).

    Args:
        model: an `fcn_keras.FCN`.
        dtype: "bfloat16" (bfloat16 weights and compute: inference), "float32", or another
            Keras policy name ("mixed_bfloat16": float32 weights, bfloat16 compute).

    Returns:
        `model` itself when it already has that policy, else a new `fcn_keras.FCN`.

    Raises:
        ValueError: `model` is not an FCN, or `dtype` is not a float policy.
    """
    from fcn_keras.models.fcn import FCN
    from fcn_keras.models.layers import refresh_upsampling

    name = policy_name(dtype)
    if not isinstance(model, FCN):
        raise ValueError(f"`model` must be an fcn_keras FCN (its config rebuilds it). "
                         f"Received: model of type {type(model).__name__}")
    if model_precision(model) == name:
        return model
    copy = FCN.from_config({**model.get_config(), "dtype": name})
    copy.set_weights(model.get_weights())
    refresh_upsampling(copy)  # Model.set_weights assigns the variables directly
    return copy


def native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """The CPU's bfloat16 instruction flags (avx512_bf16, amx_bf16) found in `cpuinfo`.

    Returns:
        A list of the flags present (empty: bfloat16 is emulated, slower than float32), or
        None when `cpuinfo` cannot be read (not Linux).
    """
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def slow_bfloat16_note():
    """A line saying bfloat16 is emulated on this CPU (no faster than float32), or None.

    None where the CPU has AVX-512 BF16 or AMX, or where /proc/cpuinfo cannot be read.
    """
    if native_bfloat16() == []:
        return (f"this CPU has none of {', '.join(BF16_CPU_FLAGS)}: bfloat16 is emulated here and no "
                "faster than float32 (it saves memory; it can be fast on CPUs with AVX-512 BF16 or AMX)")
    return None
