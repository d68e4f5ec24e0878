"""Which rows of each global batch a worker of a multi-worker strategy reads.

One rule serves every random-access source (image folders, `.npy` files, a run's code shards): all
workers compute the same global order of an epoch (the order a single process would read), cut it
into global batches, and worker `i` reads only the per-replica slices of its own replicas. So the
global batches of a multi-worker run are those of a single-process run, and within an epoch no two
workers read the same row. In-order sources (TFDS) are split by `ImageStream.shard` instead.
"""

import tensorflow as tf


def worker_count(strategy):
    """Workers of a `MultiWorkerMirroredStrategy` (1 for any other strategy, or None).

    Args:
        strategy: a `tf.distribute.Strategy` or None.

    Returns:
        int >= 1.

    Example:
    >>> worker_count(None)
    1
    """
    if strategy is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return int(strategy.extended._num_workers)  # noqa: SLF001  (no public accessor in TF 2.21)


def per_replica_size(batch_size, strategy):
    """The batch each replica gets: `batch_size` over the strategy's replicas, rounded up.

    Args:
        batch_size: int >= 1. The global batch size.
        strategy: a `tf.distribute.Strategy`.

    Returns:
        int >= 1. The global batch is this times `strategy.num_replicas_in_sync` (equal to
        `batch_size` when the replicas divide it).
    """
    return -(-int(batch_size) // strategy.num_replicas_in_sync)


def worker_rows(order, steps, per_replica, context, replicas):
    """This worker's rows of `steps` global batches cut from `order`, in the order it reads them.

    `order` is repeated from its start as needed to fill `steps` whole global batches of
    `replicas * per_replica` rows (so a last, partial global batch is completed with the first rows
    of the order). Global batch `s` holds rows `s*G .. (s+1)*G - 1` of the filled order (`G`, the
    global batch); replica `r` gets its `r`-th slice of `per_replica` rows; worker `i` of `n` has
    replicas `i*R/n .. (i+1)*R/n - 1` and reads their slices, step by step.

    Args:
        order: int64 tensor `[count]`, count >= 1: the rows of one pass in global order.
        steps: int >= 1. Global batches to serve.
        per_replica: int >= 1. Rows per replica and step.
        context: `tf.distribute.InputContext` of this worker's input pipeline.
        replicas: int. Replicas in sync over all workers.

    Returns:
        int64 tensor `[steps * per_replica * replicas / n]`; batching it by `per_replica` gives this
        worker's per-replica batches in the order `distribute_datasets_from_function` hands them out.

    Example:
    >>> second = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    >>> worker_rows(tf.range(8, dtype=tf.int64), 2, 2, second, 2).numpy().tolist()
    [2, 3, 6, 7]
    """
    local = replicas // context.num_input_pipelines
    needed = steps * replicas * per_replica
    repeats = -(-needed // tf.size(order, out_type=tf.int64))
    filled = tf.tile(order, tf.reshape(repeats, [1]))[:needed]
    grid = tf.reshape(filled, [steps, replicas, per_replica])
    first = context.input_pipeline_id * local
    return tf.reshape(grid[:, first : first + local, :], [-1])


def global_steps(count, batch_size, strategy):
    """Global batches in one pass over `count` rows under `strategy` (the last one completed).

    Args:
        count: int. Rows of one pass.
        batch_size: int >= 1. The global batch size.
        strategy: a `tf.distribute.Strategy`.

    Returns:
        int.
    """
    return -(-int(count) // (per_replica_size(batch_size, strategy) * strategy.num_replicas_in_sync))


def distribute_per_worker(strategy, dataset_fn):
    """`strategy.distribute_datasets_from_function(dataset_fn)`, each worker's data taken as it is.

    Args:
        strategy: a `tf.distribute.Strategy`.
        dataset_fn: function `tf.distribute.InputContext -> tf.data.Dataset` of per-replica batches
            of this worker's share (already sharded: `tf.data`'s auto-sharding is turned off).

    Returns:
        A distributed dataset, for `fit` / `evaluate`.
    """

    def unsharded(context):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset_fn(context).with_options(options)

    return strategy.distribute_datasets_from_function(unsharded)
