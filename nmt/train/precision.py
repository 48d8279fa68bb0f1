"""train.precision: auto picks mixed_bfloat16 where bfloat16 is fast, float32 elsewhere.

bfloat16 matmuls are fast on GPUs and on CPUs with bfloat16 instructions (AVX512_BF16, AMX-BF16);
on other CPUs TensorFlow emulates them, converting to float32 around every product, and mixed_bfloat16
is slower than float32 (bench/bench_gru.py prints the bound for a machine). `auto` reads the CPU's
flags (/proc/cpuinfo) and the visible GPUs and says what it chose and why.
"""

from __future__ import annotations

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str] | None:
    """The CPU's bfloat16 instruction sets among BF16_CPU_FLAGS ([] if none), or None if unknown."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return None
    if flags is None:
        return None
    return [name for name in BF16_CPU_FLAGS if name in flags]


def resolve(precision: str, gpus: int | None = None, cpu_flags: list[str] | None | str = "detect") -> tuple[str, str]:
    """(Keras policy name, reason) for a train.precision value; anything but 'auto' is returned as is."""
    if precision != "auto":
        return precision, "as configured"
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return "mixed_bfloat16", f"{gpus} GPU(s)"
    flags = cpu_bf16_flags() if cpu_flags == "detect" else cpu_flags
    if flags:
        return "mixed_bfloat16", f"the CPU has {', '.join(flags)}"
    if flags is None:
        return "float32", "the CPU's bfloat16 support is unknown"
    return "float32", "the CPU has no bfloat16 instructions (bfloat16 would be emulated, slower than float32)"
