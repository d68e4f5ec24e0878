"""The `tf.distribute` helpers of the priors' train steps, by the names the `prior` modules import.

Each is defined once, in the top-level module `tf_distribute_helpers` that stage 1 shares (it
imports neither `vqgen` nor `prior`); `sum_over_replicas` is its `sum_across_replicas`.
"""

from tf_distribute_helpers import (
    ReplicaDropout,
    logs_for_all_strategies,
    replica_seed,
    scale_loss_for_replicas,
)
from tf_distribute_helpers import sum_across_replicas as sum_over_replicas

__all__ = [
    "ReplicaDropout",
    "logs_for_all_strategies",
    "replica_seed",
    "scale_loss_for_replicas",
    "sum_over_replicas",
]
