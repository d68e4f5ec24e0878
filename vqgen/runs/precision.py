"""`precision_policy`: build a stage's model under a Keras mixed-precision policy."""

import contextlib

import keras

from vqgen.settings import PRECISIONS


@contextlib.contextmanager
def precision_policy(name):
    """Makes `name` Keras' global dtype policy inside the block, then restores the previous one.

    A layer takes its dtype policy when it is constructed, so a model built inside the block
    computes in the policy's compute dtype (bfloat16 or float16) and keeps float32 variables;
    under `mixed_float16`, `compile` wraps the optimizer in a `LossScaleOptimizer`. The
    quantizer's distances and both models' losses stay float32. A model saved after training
    loads under the policy in force when it is loaded (float32 by default), so sampling and
    export compute in float32.

    Args:
        name: str, one of `PRECISIONS`.

    Raises:
        ValueError: if `name` is not one of `PRECISIONS`.

    Example:
    >>> with precision_policy("mixed_bfloat16"):  # doctest: +SKIP
    ...     model = VQVAE(input_shape=(128, 128, 3), num_embeddings=512)
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={name!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
