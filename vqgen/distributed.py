"""Cross-replica reductions that are no-ops outside a multi-replica `tf.distribute` strategy."""

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

