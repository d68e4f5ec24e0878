"""Choosing a `tf.distribute` strategy by name."""

import functools

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: "default" (the current strategy, one device), "mirrored" (`MirroredStrategy` over
            this machine's devices) or "multiworker" (`MultiWorkerMirroredStrategy`, configured by
            the `TF_CONFIG` environment variable; made once per process, since TensorFlow configures
            its collective ops only once: `vqgen run` trains both stages under the same one).

    Returns:
        A `tf.distribute.Strategy`; build and compile models inside its `scope()`.

    Raises:
        ValueError: an unknown name, or "multiworker" asked for after TensorFlow ran an operation in
            this process (its collective ops can only be set up before).

    Example:
    >>> with make_strategy("mirrored").scope():  # doctest: +SKIP
    ...     model = VQVAE(...)
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return _multi_worker_strategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


@functools.cache
def _multi_worker_strategy():
    """The process's one `MultiWorkerMirroredStrategy` (collective ops are set up once per process)."""
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "at program startup" not in str(error):
            raise
        raise ValueError(
            "--strategy multiworker must be set up before TensorFlow runs anything in the process; "
            "start a fresh process (from Python: call make_strategy('multiworker') first)"
        ) from None
