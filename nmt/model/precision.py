"""Precision on this machine: train.precision auto picks mixed_bfloat16 where bfloat16 is fast, float32
elsewhere; a trained model is decoded with bfloat16 variables where bfloat16 is fast (`decoding_policy`).

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


# ------------------------------------------------------------------------------------------ decoding


def decoding_policy(model, cpu_flags: list[str] | None | str = "detect", gpus: int | None = None) -> str | None:
    """The Keras policy a trained model is best decoded in on this machine, or None for the one it has.

    A model trained with mixed_bfloat16 computes its products in bfloat16 from float32 variables, casting
    every kernel at every use, at every decoding step. Where bfloat16 is fast (`resolve("auto")`), a copy
    with bfloat16 variables ("bfloat16") computes the same products without those casts; where it is not,
    bfloat16 is emulated and float32 ("float32") is faster. A float32 model is decoded as it is."""
    if str(model.dtype_policy.compute_dtype) != "bfloat16":
        return None
    fast, _ = resolve("auto", gpus=gpus, cpu_flags=cpu_flags)
    return "bfloat16" if fast == "mixed_bfloat16" else "float32"


def with_policy(model, policy: str):
    """A copy of an nmt model (`nmt.model.seq2seq.build_model`) with every layer under the Keras policy
    `policy` and the model's weights cast to its variable dtype."""
    import keras
    import tensorflow as tf

    from nmt.model.seq2seq import build_model

    saved = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        copy = build_model(model.model_config, model.src_vocab_size, model.tgt_vocab_size)
    finally:
        keras.mixed_precision.set_global_policy(saved)
    if [w.path for w in copy.weights] != [w.path for w in model.weights]:
        raise ValueError(f"{policy} copy of {model.name}: its weights differ from the model's")
    for mine, theirs in zip(copy.weights, model.weights):
        mine.assign(tf.cast(theirs.value, mine.dtype))
    return copy
