"""What a custom Keras 3 training step needs to be right under any `tf.distribute` strategy.

Used by every prior's train step. `prior` imports nothing from `vqgen`, so stage 1 keeps its own
copy of these two helpers in `vqgen/models/distribute.py`.
"""

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
