"""The `tf.distribute` helpers of the stage-1 models, by the names the `vqgen.models` modules import.

Each is defined once, in the top-level module `tf_distribute_helpers` that the priors share (it
imports neither `vqgen` nor `prior`).
"""

from tf_distribute_helpers import (
    broadcast_from_first_replica,
    logs_for_all_strategies,
    scale_loss_for_replicas,
    sum_across_replicas,
)

__all__ = [
    "broadcast_from_first_replica",
    "logs_for_all_strategies",
    "scale_loss_for_replicas",
    "sum_across_replicas",
]
