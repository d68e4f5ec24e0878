"""Choosing a `tf.distribute` strategy by name."""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: "default" (the current strategy, one device), "mirrored" (`MirroredStrategy` over
            this machine's devices) or "multiworker" (`MultiWorkerMirroredStrategy`, configured by
            the `TF_CONFIG` environment variable).

    Returns:
        A `tf.distribute.Strategy`; build and compile models inside its `scope()`.

    Raises:
        ValueError: an unknown name.

    Example:
    >>> with make_strategy("mirrored").scope():  # doctest: +SKIP
    ...     model = VQVAE(...)
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
