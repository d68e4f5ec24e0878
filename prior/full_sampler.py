"""`sample_full`: the reference sampler, one full network pass per position."""

import tensorflow as tf

from prior.draw_codes import draw_codes


def sample_full(model, num_samples, temperature, seed, labels=None, top_k=None):
    """Samples code grids with one full forward pass per raster position.

    The plain autoregressive loop of PixelCNN (van den Oord et al., 2016): a
    `tf.while_loop` over the `rows * cols` positions; step `t` runs the whole
    network on the partially filled grid and draws position `t` with
    `draw_codes(..., seed, step=t)`. Unfilled positions hold code 0, which
    the causal network never reads for the position being drawn. Its cost is
    `rows * cols` full passes; it is the exact reference for `sample_cached`.

    Args:
        model: a built `prior.PixelCNN`.
        num_samples: int32 scalar tensor, >= 1.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> model = prior.PixelCNN(16, (4, 4))
    >>> codes = sample_full(model, tf.constant(2), tf.constant(1.0), tf.constant(0, tf.int64))
    """
    rows, cols = model.grid_shape
    positions = rows * cols

    def draw_position(step, flat_codes):
        grid = tf.reshape(flat_codes, [num_samples, rows, cols])
        inputs = grid if labels is None else {"codes": grid, "labels": labels}
        logits = tf.reshape(model(inputs), [num_samples, positions, model.num_embeddings])
        drawn = draw_codes(tf.gather(logits, step, axis=1), temperature, seed, step, top_k)
        placed = tf.one_hot(step, positions, dtype=tf.int32)[None, :] * drawn[:, None]
        return step + 1, flat_codes + placed

    _, flat_codes = tf.while_loop(
        lambda step, _: step < positions,
        draw_position,
        (tf.constant(0), tf.zeros([num_samples, positions], tf.int32)),
    )
    return tf.reshape(flat_codes, [num_samples, rows, cols])
