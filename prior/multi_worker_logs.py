"""Step logs that Keras 3 can reduce across workers under MultiWorkerMirroredStrategy."""

import tensorflow as tf


def logs_for_all_strategies(logs):
    """Returns a train/test step's logs in a form every tf.distribute strategy can reduce.

    Keras 3 (up to at least 3.15) reduces step outputs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar metric results every model
    returns. Under `MultiWorkerMirroredStrategy` each scalar gets a length-1 axis; elsewhere the
    logs are returned unchanged.

    Args:
        logs: dict of scalar tensors, as returned by `train_step` / `compute_metrics`.

    Returns:
        The same dict, with `[1]`-shaped values under a multi-worker strategy.

    Example:
    >>> return logs_for_all_strategies({m.name: m.result() for m in self.metrics})  # doctest: +SKIP
    """
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
