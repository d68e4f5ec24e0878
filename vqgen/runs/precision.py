"""`precision_policy`: build a stage's model under a Keras mixed-precision policy."""

import contextlib

import keras
import tensorflow as tf

from vqgen.settings import PRECISIONS

# /proc/cpuinfo flags of CPUs that multiply bfloat16 matrices natively.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(path="/proc/cpuinfo"):
    """The set of CPU feature flags Linux reports (empty where /proc/cpuinfo is unavailable)."""
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(name, flags=None):
    """The Keras policy name `name` stands for: `"auto"` is resolved, any other is returned as is.

    `"auto"` is `"mixed_bfloat16"` when no GPU is visible and the CPU has one of
    `BFLOAT16_CPU_FLAGS` (where it was measured faster at equal quality), else `"float32"`
    (bfloat16 emulated on older CPUs is slower; on GPUs choose a mixed policy explicitly).

    Args:
        name: str, one of `PRECISIONS`.
        flags: optional set of CPU flags; defaults to `cpu_flags()`.

    Returns:
        str, a Keras dtype policy name.

    Raises:
        ValueError: if `name` is not one of `PRECISIONS`.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={name!r}")
    if name != "auto":
        return name
    flags = cpu_flags() if flags is None else flags
    native = any(flag in flags for flag in BFLOAT16_CPU_FLAGS)
    return "mixed_bfloat16" if native and not tf.config.list_physical_devices("GPU") else "float32"


@contextlib.contextmanager
def precision_policy(name):
    """Makes `name` (after `resolve_precision`) Keras' global dtype policy inside the block.

    The previous policy is restored when the block ends, also on an error.

    A layer takes its dtype policy when it is constructed, so a model built inside the block
    computes in the policy's compute dtype (bfloat16 or float16) and keeps float32 variables;
    under `mixed_float16`, `compile` wraps the optimizer in a `LossScaleOptimizer`. The
    quantizer's distances and both models' losses stay float32. A model saved after training
    loads under the policy in force when it is loaded (float32 by default), so sampling and
    export compute in float32.

    Args:
        name: str, one of `PRECISIONS` (`"auto"` included).

    Raises:
        ValueError: if `name` is not one of `PRECISIONS`.

    Example:
    >>> with precision_policy("mixed_bfloat16"):  # doctest: +SKIP
    ...     model = VQVAE(input_shape=(128, 128, 3), num_embeddings=512)
    """
    policy = resolve_precision(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
