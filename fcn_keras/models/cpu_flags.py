"""What this CPU offers for bfloat16: its flags in /proc/cpuinfo (plain Python, no Keras).

`native_bfloat16()` lists the bfloat16 instruction flags (AVX-512 BF16, AMX) the CPU has;
`slow_bfloat16_note()` is the line predict prints where it has none.
"""

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bfloat16(cpuinfo="/proc/cpuinfo", flags=None):
    """The CPU's bfloat16 instruction flags (avx512_bf16, amx_bf16) found in `cpuinfo`.

    Args:
        cpuinfo: the file whose first `flags` line is read.
        flags: the CPU's flags (a list of names) to use instead of reading `cpuinfo`.

    Returns:
        A list of the flags present (empty: bfloat16 is emulated, slower than float32), or
        None when `cpuinfo` cannot be read (not Linux).
    """
    if flags is None:
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
