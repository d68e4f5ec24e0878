"""What a custom Keras 3 model needs to be right under any `tf.distribute` strategy.

Cross-replica reductions (no-ops outside a multi-replica strategy), the loss scaling and log
shaping a custom train step needs, and per-replica random seeds. Both stages use them: the stage-1
quantizers and `VQVAE` (`vqgen.models`) and every prior's train step (`prior`). They live here,
outside both packages and importing neither, because `prior` imports nothing from `vqgen` and the
stage-1 models nothing from `prior`.
"""

import keras
import tensorflow as tf


def replica_context_with_peers():
    """The current replica context when there is more than one replica in sync, else None.

    Returns:
        `tf.distribute.ReplicaContext` or None (no strategy, one device, or a cross-replica context).

    Example:
    >>> context = replica_context_with_peers()  # doctest: +SKIP
    >>> replica = 0 if context is None else context.replica_id_in_sync_group  # doctest: +SKIP
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def sum_across_replicas(value):
    """Sums `value` over all replicas of the current strategy: its global total inside a replicated step.

    The quantizers' codebook statistics, and a loss that is a mean over a data-dependent count
    (MaskGIT's masked codes, divided by the count of the whole global batch, which no replica has
    alone), need it.

    Args:
        value: a tensor computed on each replica.

    Returns:
        The element-wise sum over replicas (the value itself with a single replica).

    Example:
    >>> counts = sum_across_replicas(tf.math.bincount(indices, minlength=K))
    """
    context = replica_context_with_peers()
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
    context = replica_context_with_peers()
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
    >>> with tf.GradientTape() as tape:  # doctest: +SKIP
    ...     scaled = scale_loss_for_replicas(model.compute_loss(x, y, model(x)))  # inside the tape
    >>> gradients = tape.gradient(scaled, model.trainable_weights)  # doctest: +SKIP
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / tf.cast(replicas, loss.dtype)


def replica_seed(seed_generator):
    """The next stateless seed of `seed_generator`, made distinct on each replica in sync.

    Every replica reads the same `keras.random.SeedGenerator` state, so `keras.random.uniform(...,
    seed=seed_generator)` draws the same numbers on all of them: the replicas' random choices are
    copies. Here the replica's id is folded into the seed (`tf.random.experimental.stateless_fold_in`)
    when there is more than one replica; with one (no strategy, or one device) the seed is exactly
    the one Keras' own random ops use, so single-device draws are unchanged.

    Args:
        seed_generator: `keras.random.SeedGenerator`; it advances by one, as with a Keras random op.

    Returns:
        int32 tensor `(2,)`, a seed for `tf.random.stateless_*` ops.

    Example:
    >>> seed = replica_seed(self.masking_seeds)  # doctest: +SKIP
    >>> noise = tf.random.stateless_uniform([batch, 16], seed=seed)  # doctest: +SKIP
    """
    state = seed_generator.next()
    # The int32 seed Keras' TensorFlow backend makes of the int64 state (its random._cast_seed)
    seed = tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)
    context = replica_context_with_peers()
    if context is None:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


class ReplicaDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose masks differ between the replicas of a `tf.distribute` strategy.

    Keras' own layer draws with its `seed_generator` directly, so every replica drops the same
    positions of its share of the batch. This one draws with `replica_seed`: the same masks as
    Keras' layer on one device, independent ones on each replica.

    Args:
        rate: float in `[0, 1)`, the fraction of the inputs dropped when training.
        **kwargs: `keras.layers.Dropout` arguments (`name`, ...).

    Example:
    >>> dropout = ReplicaDropout(0.1, name="dropout")
    >>> hidden = dropout(hidden, training=True)  # doctest: +SKIP
    """

    def call(self, inputs, training=False):
        """Drops `rate` of `inputs` (scaling the rest by `1 / (1 - rate)`) when `training`, else returns them.

        Args:
            inputs: float tensor.
            training: bool; False (the default) returns `inputs`.

        Returns:
            A tensor of the shape and dtype of `inputs`.
        """
        if not training or self.rate == 0:
            return inputs
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=self.rate, noise_shape=self.noise_shape, seed=replica_seed(self.seed_generator)
        )
