"""`draw_codes`: the stateless per-position draw shared by every sampler."""

import tensorflow as tf


def _open_unit_uniform(shape, key):
    """Uniform floats in (0, 1), bit-identical with and without XLA.

    `tf.random.stateless_uniform` returns the same random bits on the TF
    kernels and under XLA but converts them to floats differently, so the
    conversion is done here with exact operations: the top 24 bits `n` give
    `(n + 0.5) / 2**24`.
    """
    bits = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint32)
    top_bits = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32)
    return (top_bits + 0.5) * (2.0**-24)


def draw_codes(logits, temperature, seed, step, top_k=None):
    """Draws one code per row of `logits`, keyed by `(seed, step)`.

    Uses the Gumbel-max trick: `argmax(logits + temperature * g)` with
    `g = -log(-log(u))` and `u ~ Uniform(0, 1)` drawn from the stateless
    Philox stream keyed by `[seed, step]`. This is an exact draw from
    `softmax(logits / temperature)` (restricted to the `top_k` largest
    logits when `top_k` is set; ties with the k-th largest are kept), it is
    a pure function of its inputs, with the same uniforms in plain TF graphs
    and XLA-compiled ones (so every sampler, in-process or exported, draws
    the same codes for the same seed), and it tends to the argmax as
    `temperature -> 0` without overflowing.

    Args:
        logits: float `(batch, num_embeddings)` tensor.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        step: int scalar tensor, the raster position being drawn.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        int32 `(batch,)` tensor of drawn codes.

    Example:

    >>> logits = tf.math.log([[0.1, 0.9], [0.5, 0.5]])
    >>> draw_codes(logits, tf.constant(1.0), tf.constant(7, tf.int64), 0)
    """
    logits = tf.cast(logits, tf.float32)
    if top_k is not None:
        kth_largest = tf.math.top_k(logits, top_k).values[:, -1:]
        logits = tf.where(logits < kth_largest, tf.constant(-float("inf")), logits)
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    gumbel = -tf.math.log(-tf.math.log(_open_unit_uniform(tf.shape(logits), key)))
    return tf.argmax(logits + temperature * gumbel, axis=-1, output_type=tf.int32)
