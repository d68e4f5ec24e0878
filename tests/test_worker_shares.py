"""`worker_rows`: each worker's rows of the global batches, against a NumPy construction of them."""

import numpy as np
import pytest
import tensorflow as tf

from vqgen.data.worker_shares import worker_rows


@pytest.mark.parametrize(
    ("count", "workers", "local", "per_replica"), [(16, 2, 1, 2), (11, 2, 1, 3), (7, 2, 2, 1), (30, 3, 2, 2)]
)
def test_workers_rows_put_together_step_by_step_are_the_single_process_batches(
    count, workers, local, per_replica
):
    replicas = workers * local
    global_batch = replicas * per_replica
    steps = -(-count // global_batch)
    order = np.random.default_rng(count).permutation(count)
    # The single process's global batches, the last one completed from the start of the order.
    filled = np.resize(order, steps * global_batch).reshape(steps, global_batch)
    shares = []
    for index in range(workers):
        context = tf.distribute.InputContext(num_input_pipelines=workers, input_pipeline_id=index)
        rows = worker_rows(tf.constant(order, tf.int64), steps, per_replica, context, replicas).numpy()
        shares.append(rows.reshape(steps, local * per_replica))
    np.testing.assert_array_equal(np.concatenate(shares, axis=1), filled)
    if count % global_batch == 0:  # no completion: no row read by two workers
        assert not set(shares[0].ravel()) & set(shares[1].ravel())
