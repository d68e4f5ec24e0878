"""Mask schedules of MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer").

A schedule `gamma(ratio)` maps the fraction `ratio` in `[0, 1]` of decoding done (or, in
training, a uniform draw) to the fraction of positions still masked: `gamma(0) = 1`,
`gamma(1) = 0`, decreasing. The paper's choice, and the default, is the cosine
`gamma(r) = cos(pi r / 2)`: few codes are committed in the first steps, when the grid holds
little to condition on, and many in the last ones.

- `mask_ratio`: `gamma` of a named schedule, on NumPy arrays or tensors (training draws it per grid).
- `masked_counts_tensor`: how many positions stay masked after each decoding step, as integers,
  for `steps` steps over `total` positions: the one plan every MaskGIT sampler follows, in
  TensorFlow ops, so that a graph (an exported sampler with a `steps` input) computes it too.
- `masked_counts`: the same plan for Python ints, checked, as a NumPy array.
"""

import functools
import math

import numpy as np
import tensorflow as tf
from keras import ops

from prior.arguments import is_int

# gamma(ratio) of each schedule, given the module `xp` to compute it with: keras.ops for the training
# ratios, TensorFlow for the decoding plan (in float64).
SCHEDULES = {
    "cosine": lambda ratio, xp: xp.cos(ratio * (math.pi / 2)),
    "linear": lambda ratio, xp: 1.0 - ratio,
    "square": lambda ratio, xp: 1.0 - ratio * ratio,
}


def check_schedule(schedule):
    """Validates a schedule name.

    Args:
        schedule: str, a key of `SCHEDULES`.

    Returns:
        The name.

    Raises:
        ValueError: for an unknown name.

    Example:

    >>> check_schedule("cosine")
    'cosine'
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}; received schedule={schedule!r}")
    return schedule


def mask_ratio(ratio, schedule="cosine"):
    """The fraction of positions masked at `ratio` of the way through decoding.

    Args:
        ratio: float, NumPy array or tensor with values in `[0, 1]`.
        schedule: str, a key of `SCHEDULES`. Defaults to `"cosine"`.

    Returns:
        `gamma(ratio)` in `[0, 1]`, with the shape of `ratio` (a tensor for tensor input).

    Raises:
        ValueError: for an unknown schedule.

    Example:

    >>> float(mask_ratio(0.5))  # cos(pi / 4)
    0.7071067811865476
    """
    return SCHEDULES[check_schedule(schedule)](ratio, ops)


def masked_counts(steps, total, schedule="cosine"):
    """How many of `total` masked positions stay masked after each of `steps` decoding steps.

    After step `t` (0-based) the schedule asks for `floor(total * gamma((t + 1) / steps))`
    masked positions; the count is then clipped so that every step commits at least one code
    (at most `before - 1` stay masked) and every later step still has one to commit (at least
    `steps - t - 1` stay masked). The last count is 0, so the grid is complete; with
    `steps == total` exactly one code is committed per step.

    Args:
        steps: int in `[1, total]` (any int >= 1 when `total` is 0: nothing is decoded).
        total: int >= 0, the positions masked before the first step.
        schedule: str, a key of `SCHEDULES`. Defaults to `"cosine"`.

    Returns:
        int32 NumPy array `(steps,)`, strictly decreasing to 0 (all zeros when `total` is 0).

    Raises:
        ValueError: for `steps` < 1, `total` < 0, `steps > total` (a step would commit
            nothing) or an unknown schedule.

    Example:

    >>> masked_counts(4, 16)  # cos(pi/8), cos(pi/4), cos(3 pi/8), cos(pi/2) times 16, floored
    array([14, 11,  6,  0], dtype=int32)
    """
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; received steps={steps!r}")
    if not is_int(total) or total < 0:
        raise ValueError(f"total must be an int >= 0; received total={total!r}")
    if total == 0:
        return np.zeros((steps,), np.int32)
    if steps > total:
        raise ValueError(
            f"steps={steps} is more than the {total} positions to decode (each step commits at least one "
            f"code); use steps <= {total}"
        )
    return _cached_counts(int(steps), int(total), check_schedule(schedule)).copy()


@functools.lru_cache(maxsize=256)
def _cached_counts(steps, total, schedule):
    # inpaint asks for one plan per grid: the few distinct ones are computed once
    return masked_counts_tensor(steps, total, schedule).numpy()


def masked_counts_tensor(steps, total, schedule="cosine"):
    """`masked_counts` in TensorFlow ops, unchecked: eagerly, or in a graph for a tensor `steps`.

    The clipping `before_t = min(max(wanted_t, steps - t - 1), before_{t-1} - 1)` (from
    `before_{-1} = total`) unrolls to `min(total - 1, min_{s <= t}(max(wanted_s, steps - s - 1)
    + s)) - t`: a running minimum, computed as a masked minimum over a `(steps, steps)` table.

    Args:
        steps: int or int32 scalar tensor in `[1, total]`; not checked here (`masked_counts`
            checks Python ints, an exported sampler asserts its input).
        total: int or int32 scalar tensor >= 1, the positions masked before the first step.
        schedule: str, a key of `SCHEDULES`. Defaults to `"cosine"`.

    Returns:
        int32 tensor `(steps,)`, strictly decreasing to 0.

    Raises:
        ValueError: for an unknown schedule.

    Example:

    >>> masked_counts_tensor(tf.constant(4), 16)  # in a graph as well
    <tf.Tensor: shape=(4,), dtype=int32, numpy=array([14, 11,  6,  0], dtype=int32)>
    """
    gamma = SCHEDULES[check_schedule(schedule)]
    steps = tf.cast(steps, tf.int64)
    total = tf.cast(total, tf.int64)
    step = tf.range(steps)  # t = 0 .. steps - 1
    ratios = tf.cast(step + 1, tf.float64) / tf.cast(steps, tf.float64)
    wanted = tf.cast(tf.floor(tf.cast(total, tf.float64) * gamma(ratios, tf)), tf.int64)
    bounds = tf.maximum(wanted, steps - step - 1) + step  # max(wanted_s, steps - s - 1) + s
    earlier = step[None, :] <= step[:, None]  # row t: the steps s <= t
    running = tf.reduce_min(tf.where(earlier, bounds[None, :], total), axis=1)
    return tf.cast(tf.minimum(running, total - 1) - step, tf.int32)
