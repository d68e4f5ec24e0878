"""Classifier-free guidance (Ho & Salimans, 2022): label dropout at training, mixed logits at sampling.

A conditional prior trained with `label_dropout > 0` sees, with that probability, the extra
"no label" class (index `num_classes`, one more row of its label embedding) instead of the
grid's label, so one network learns both `p(codes | label)` and `p(codes)`. At sampling the
conditional logits `c` and the "no label" logits `u` of the same partial grid are mixed as
`u + s * (c - u)`: `s = 1` is plain conditional sampling, `s = 0` unconditional, `s > 1`
pushes samples towards what distinguishes their class.

- `drop_labels`: the training-time replacement of labels by the "no label" class.
- `guided_logits`: the mix, in float32.
- `check_guidance`: the one check of a guidance scale against a prior's configuration.
"""

import numbers

import tensorflow as tf
from keras import ops

from prior.arguments import FLOAT32_MAX
from tf_distribute_helpers import replica_rows_uniform


def drop_labels(labels, rate, num_classes, seed_generator):
    """Replaces each label by the "no label" class `num_classes` with probability `rate`.

    Args:
        labels: int tensor `(batch,)` in `[0, num_classes)`.
        rate: Python float in `[0, 1]`; 0 returns `labels` itself (no random op is built).
        num_classes: int, the number of real classes (the "no label" index).
        seed_generator: `keras.random.SeedGenerator` the draws come from (under a `tf.distribute`
            strategy, each replica's rows of one draw for the global batch:
            `tf_distribute_helpers.replica_rows_uniform`).

    Returns:
        int tensor `(batch,)` with the dtype of `labels`.

    Example:

    >>> seeds = keras.random.SeedGenerator(0)
    >>> drop_labels(ops.convert_to_tensor([3, 1, 4]), 1.0, 10, seeds)  # all become 10
    """
    if rate == 0:
        return labels
    # in [0, 1); independent on each replica of a tf.distribute strategy (see `replica_rows_uniform`)
    uniform = replica_rows_uniform(tf.shape(labels), seed_generator)
    return ops.where(uniform < rate, ops.cast(num_classes, labels.dtype), labels)


def guided_logits(conditional_logits, unconditional_logits, guidance):
    """Classifier-free guidance: `u + guidance * (c - u)`, computed in float32.

    Args:
        conditional_logits: float tensor `c`, logits given the requested labels.
        unconditional_logits: float tensor `u` of the same shape, logits given the
            "no label" class.
        guidance: float scalar (or tensor) >= 0; 1 returns `c` up to rounding, 0 returns `u`.

    Returns:
        float32 tensor of the inputs' shape.

    Example:

    >>> guided_logits(ops.ones((2, 4)), ops.zeros((2, 4)), 3.0)  # all 3.0
    """
    conditional = ops.cast(conditional_logits, "float32")
    unconditional = ops.cast(unconditional_logits, "float32")
    return unconditional + ops.cast(guidance, "float32") * (conditional - unconditional)


def check_guidance(guidance, num_classes, label_dropout):
    """Validates a guidance scale for a prior of `num_classes` trained with `label_dropout`.

    Args:
        guidance: the scale asked for: a finite real number >= 0 (1 means no guidance).
        num_classes: int, or None for an unconditional prior.
        label_dropout: float, the prior's label dropout rate at training.

    Returns:
        The scale as a Python float.

    Raises:
        ValueError: for a scale that is not a finite number >= 0, a scale other than 1 on an
            unconditional prior, or on a prior trained without label dropout (it never learnt
            the "no label" class).

    Example:

    >>> check_guidance(2, num_classes=10, label_dropout=0.1)
    2.0
    """
    if (
        not isinstance(guidance, numbers.Real)
        or isinstance(guidance, bool)
        or not 0 <= guidance <= FLOAT32_MAX
    ):
        raise ValueError(f"guidance must be a finite number >= 0 (1: none); received guidance={guidance!r}")
    guidance = float(guidance)
    if guidance != 1.0 and num_classes is None:
        raise ValueError(
            f"guidance={guidance:g} needs a class-conditional prior; this one is unconditional "
            "(use guidance 1 or train with --conditional --label-dropout 0.1)"
        )
    if guidance != 1.0 and label_dropout == 0:
        raise ValueError(
            f"guidance={guidance:g} needs a prior trained with label dropout (it never saw the "
            '"no label" class); use guidance 1 or retrain with --label-dropout 0.1'
        )
    return guidance
