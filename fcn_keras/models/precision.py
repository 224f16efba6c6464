"""Numeric precision policy: the Keras dtype policy a model is built under (a leaf: Keras only).

    with precision("mixed_float16"): ...       # build under a policy, restored after
    policy_name("bfloat16")                    # "bfloat16"; not a float policy: ValueError

The bfloat16 copy of a built FCN is `fcn_keras.models.with_precision` (`fcn.py`, beside `FCN`);
whether this CPU computes bfloat16 natively is `fcn_keras.models.cpu_flags.native_bfloat16`.

A bfloat16 FCN stores its weights in bfloat16 (half the memory of float32) and computes in
bfloat16; its logits are float32 (the last layer casts), so code that takes the argmax or a
softmax is unchanged. bfloat16 keeps float32's range with 8 significant bits (relative
rounding up to 2^-8 ~ 0.4%): labels follow the float32 net's where its top two logits are not
nearly tied. It can be fast only where the CPU computes in bfloat16 natively (AVX-512 BF16 or
AMX, `cpu_flags.native_bfloat16()`); elsewhere the arithmetic runs in float32 after conversions, and it
is no faster than float32 (full-width FCN-8s VGG16 on an AVX2 CPU: 1.05x float32's time).
"""

import contextlib

import keras

from fcn_keras.conventions import PRECISIONS  # noqa: F401  (re-exported: fcn_keras.models.PRECISIONS)


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
