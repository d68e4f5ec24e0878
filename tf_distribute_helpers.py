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


def gather_global_rows(values, rows):
    """Rows of the global batch, by their index in it, on every replica.

    Each replica holds `n` rows of the global batch, replica `r` rows `r*n .. (r+1)*n - 1` (equal
    shares); a global row is taken from the replica that holds it and summed across replicas, so
    every replica gets the same rows, and the same ones one device gets from the whole batch.

    Args:
        values: tensor `[n, ...]`, this replica's rows.
        rows: int32 tensor `[m]` of indices in `[0, n * replicas)`, the same on every replica.

    Returns:
        tensor `[m, ...]`: `tf.gather` of the global batch (of `values` itself with one replica).

    Example:
    >>> rows = tf.random.stateless_uniform([K], seed, 0, n * replicas, dtype="int32")  # doctest: +SKIP
    >>> samples = gather_global_rows(flat_z, rows)  # doctest: +SKIP
    """
    context = replica_context_with_peers()
    if context is None:
        return tf.gather(values, rows)
    local = rows - context.replica_id_in_sync_group * tf.shape(values)[0]
    held = tf.logical_and(local >= 0, local < tf.shape(values)[0])
    picked = tf.gather(values, tf.clip_by_value(local, 0, tf.shape(values)[0] - 1))
    shape = tf.concat([tf.shape(held), tf.ones([tf.rank(values) - 1], tf.int32)], 0)
    return sum_across_replicas(picked * tf.cast(tf.reshape(held, shape), values.dtype))


def replicas_in_sync():
    """Replicas of the current strategy in sync (1 outside a multi-replica step)."""
    context = replica_context_with_peers()
    return 1 if context is None else context.num_replicas_in_sync


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


def keras_seed(seed_generator):
    """The next stateless seed of `seed_generator`: the int32 seed Keras' own random ops would draw with.

    Args:
        seed_generator: `keras.random.SeedGenerator`; it advances by one.

    Returns:
        int32 tensor `(2,)` (what Keras' TensorFlow backend makes of the int64 state, its
        `random._cast_seed`).
    """
    state = seed_generator.next()
    return tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)


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
    seed = keras_seed(seed_generator)
    context = replica_context_with_peers()
    if context is None:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


def replica_rows_uniform(shape, seed_generator):
    """Uniform draws in [0, 1) for this replica's rows: its slice of one draw for the whole global batch.

    Every replica draws `[replicas * shape[0], *shape[1:]]` numbers with the same seed (the one
    Keras' own random ops would use) and keeps rows `replica * shape[0] .. (replica + 1) * shape[0]
    - 1`. So the replicas' draws are independent of each other, and when each holds an equal slice
    of a global batch, together they are exactly the draws one device makes for that batch: a
    distributed step masks (or drops) the same rows as a single-process step.

    Args:
        shape: the per-replica shape, rows first (a list of ints or an int32 tensor).
        seed_generator: `keras.random.SeedGenerator`; it advances by one.

    Returns:
        float32 tensor of `shape`.

    Example:
    >>> ratios = replica_rows_uniform(tf.shape(codes)[:1], self.masking_seeds)  # doctest: +SKIP
    """
    seed = keras_seed(seed_generator)
    context = replica_context_with_peers()
    if context is None:
        return tf.random.stateless_uniform(shape, seed=seed)
    shape = tf.convert_to_tensor(shape, tf.int32)
    replicas = context.num_replicas_in_sync
    every_row = tf.random.stateless_uniform(tf.concat([shape[:1] * replicas, shape[1:]], 0), seed=seed)
    return tf.reshape(every_row, tf.concat([[replicas], shape], 0))[context.replica_id_in_sync_group]


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
