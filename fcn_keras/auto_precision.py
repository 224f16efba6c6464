"""`--precision auto` and `--mixed-precision auto`: bfloat16 where the hardware computes it natively.

    choice, reason = choose()                    # inference: ("bfloat16", "this CPU has avx512_bf16 ...")
    choice, reason = choose(mixed=True)          # training: "mixed_bfloat16", "mixed_float16" or None
    choose(cpu_flags="fpu avx2 fma", gpu=None)   # ("float32", "this CPU has none of ...")

The rule: bfloat16 on CPUs with AVX-512 BF16 or AMX (`cpu_flags.BF16_CPU_FLAGS`) and on GPUs
with bfloat16 (NVIDIA compute capability 8.0 or newer, or what the backend reports); float32
elsewhere, except that training on a GPU without bfloat16 takes float16 with loss scaling
(`mixed_float16`). A GPU, where the backend sees one, decides over the CPU. bfloat16 is not
exact: labels follow float32's except where its top two logits nearly tie
(`fcn_keras.models.precision`), which is why it is a choice and not the default.
"""

from fcn_keras.models.cpu_flags import BF16_CPU_FLAGS, native_bfloat16

AUTO = "auto"


def gpu_bfloat16():
    """The first GPU the Keras backend computes on: (name, has bfloat16), or None (no GPU)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        return details.get("device_name", gpus[0].name), major >= 8
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        capability = getattr(gpus[0], "compute_capability", None) or "0"
        return gpus[0].device_kind, int(str(capability).split(".")[0]) >= 8
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_name(0), bool(torch.cuda.is_bf16_supported())
    return None


def choose(mixed=False, cpu_flags=None, gpu=AUTO):
    """What `auto` means on this machine, and why.

    Args:
        mixed: False for inference (`--precision`), True for training (`--mixed-precision`).
        cpu_flags: the CPU's flags as one string (the `flags` line of /proc/cpuinfo); None
            reads /proc/cpuinfo.
        gpu: (name, has bfloat16) of the GPU, None for no GPU, or "auto" to ask the backend
            (`gpu_bfloat16`).

    Returns:
        (choice, reason): choice is "bfloat16" or "float32" for inference, "mixed_bfloat16",
        "mixed_float16" or None (float32) for training; reason is one line saying why.
    """
    if gpu == AUTO:
        gpu = gpu_bfloat16()
    fast, float16 = ("mixed_bfloat16", "mixed_float16") if mixed else ("bfloat16", None)
    if gpu is not None:
        name, bf16 = gpu
        if bf16:
            return fast, f"the GPU ({name}) computes bfloat16"
        if mixed:
            return float16, f"the GPU ({name}) has no bfloat16: float16 with loss scaling"
        return "float32", f"the GPU ({name}) has no bfloat16"
    flags = native_bfloat16(flags=cpu_flags.split() if cpu_flags is not None else None)
    if flags:
        return fast, f"this CPU computes bfloat16 natively ({', '.join(flags)})"
    if flags is None:
        return (None if mixed else "float32"), "this CPU's flags could not be read (no /proc/cpuinfo)"
    return (None if mixed else "float32"), (f"this CPU has none of {', '.join(BF16_CPU_FLAGS)}: "
                                            "bfloat16 would be emulated, no faster than float32")


def describe(choice, reason, flag="--precision"):
    """The line a command prints for `flag auto`: what it chose and why."""
    return f"{flag} auto: {choice or 'float32'}, because {reason}"


# bfloat16's speed-up over float32, measured (`benchmarks/speed.py --bf16`: full-width FCN-8s
# VGG16 on a quiet 2-core AMD EPYC with AVX-512 BF16, 2026-12-08; benchmarks/README.md):
# inference 500x500 1.01 s against 2.18 s, a training step 256x256 2.27 s against 3.44 s.
MEASURED_SPEEDUP = {"inference": 2.2, "training": 1.5}


def float32_hint(cpu_flags=None, flag="--precision bfloat16", task="inference"):
    """A one-line hint for a float32 run on a CPU with native bfloat16, else None.

    task: "inference" or "training": which measured speed-up (`MEASURED_SPEEDUP`) it quotes."""
    flags = native_bfloat16(flags=cpu_flags.split() if cpu_flags is not None else None)
    if not flags:
        return None
    return (f"hint: this CPU computes bfloat16 natively ({', '.join(flags)}); {flag} (or auto) ran "
            f"{MEASURED_SPEEDUP[task]}x faster for {task} of FCN-8s VGG16 on such a CPU, labels equal "
            "to float32's except near ties (benchmarks/README.md)")


def inference_precision(value, keras_model=True, cpu_flags=None, gpu=AUTO):
    """(precision to compute in, line to print or None) for `--precision value`.

    "auto" becomes `choose()`'s choice for a Keras model, and None (its own, fixed at export)
    for an exported artefact; any other value is returned as it is, with no line.
    """
    if value != AUTO:
        return value, None
    if not keras_model:
        return None, "--precision auto: the exported file's own (its precision is fixed at export)"
    choice, reason = choose(cpu_flags=cpu_flags, gpu=gpu)
    return choice, describe(choice, reason)
