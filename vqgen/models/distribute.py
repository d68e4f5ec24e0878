"""What stage-1 models need to be right under any `tf.distribute` strategy.

Cross-replica reductions (no-ops outside a multi-replica strategy) for the quantizer's codebook
statistics, and the loss scaling and log shaping a custom Keras 3 train step needs. The design keeps
`prior` independent of `vqgen` and the stage-1 models independent of `prior`, so `prior/distribute.py`
holds its own two step helpers.
"""

import tensorflow as tf


def _replica_context_with_peers():
    """The current replica context when there is more than one replica, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def sum_across_replicas(value):
    """Sums `value` over all replicas of the current strategy.

    Args:
        value: a tensor computed on each replica.

    Returns:
        The element-wise sum over replicas (the value itself with a single replica).

    Example:
    >>> counts = sum_across_replicas(tf.math.bincount(indices, minlength=K))
    """
    context = _replica_context_with_peers()
    if context is None:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def broadcast_from_first_replica(value):
    """Returns the first replica's `value` on every replica.

    Args:
        value: a tensor of the same shape on each replica.

    Returns:
        The first replica's tensor (the value itself with a single replica).

    Example:
    >>> samples = broadcast_from_first_replica(tf.gather(vectors, random_rows))
    """
    context = _replica_context_with_peers()
    if context is None:
        return value
    is_first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), value.dtype)
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value * is_first)


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


def scale_loss_for_replicas(loss):
    """Divides a per-replica loss by the number of replicas, so summed gradients match the global batch.

    Keras scales its own compiled losses this way; a step that computes its loss itself must too.

    Args:
        loss: scalar loss computed on one replica's share of the global batch.

    Returns:
        `loss / num_replicas_in_sync` (the loss itself with one replica).

    Example:
    >>> gradients = tape.gradient(scale_loss_for_replicas(loss), model.trainable_weights)  # doctest: +SKIP
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)
