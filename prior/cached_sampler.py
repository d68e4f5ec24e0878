"""`sample_cached`: incremental sampling with per-layer caches."""

import tensorflow as tf

from prior.draw_codes import draw_codes
from prior.gated_block import gate


def sample_cached(model, num_samples, temperature, seed, labels=None, top_k=None):
    """Samples code grids computing only what each new code changes.

    A fast generation scheme for convolutional autoregressive models in the
    spirit of Ramachandran et al. (2017), "Fast Generation for Convolutional
    Autoregressive Models", specialised to the gated PixelCNN's two stacks:

    - Vertical stack, once per row. Each block keeps a cache of its last
      `k // 2 + 1` vertical input rows (zero padded like the full pass). When
      row `r - 1` is complete its codes are embedded and pushed through the
      blocks, each computing a single output row from its cache; the 1x1
      projection of that row is the block's vertical contribution to every
      column of row `r` (the full pass's down-shift).
    - Horizontal stack, once per position. Each block keeps its last `k // 2`
      horizontal inputs of the current row; drawing column `c` evaluates each
      block's masked `(1, k)` convolution on one window, adds the cached
      vertical contribution of column `c`, and turns the last horizontal
      output plus the summed skip outputs into the logits of position `(r, c)`.

    Every layer is the same Keras layer, with the same weights, that the full
    pass uses, and position `t = r * cols + c` is drawn with
    `draw_codes(..., seed, step=t)` exactly like `sample_full`, so both
    samplers return the same grids (up to float rounding of the logits, which
    can only flip a draw whose uniform lies within ~1e-6 of a boundary).
    Cost: `rows` single-row vertical passes plus `rows * cols` single-position
    horizontal passes, instead of `rows * cols` full-grid passes.

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
    >>> codes = sample_cached(model, tf.constant(2), tf.constant(1.0), tf.constant(0, tf.int64))
    """
    rows, cols = model.grid_shape
    blocks = model.gated_blocks
    pad = blocks[0].padding
    filters = model.filters
    dtype = model.code_embedding.compute_dtype
    column_padding = [[0, 0], [0, 0], [pad, pad], [0, 0]]
    empty_history = tf.zeros([num_samples, 1, pad, filters], dtype)
    masked_columns = tf.zeros([num_samples, 1, pad + 1, filters], dtype)

    def advance_vertical(caches, input_row):
        """Pushes one completed row through the vertical stack."""
        new_caches, contributions = [], []
        for block, cache in zip(blocks, caches):
            cache = tf.concat([cache[:, 1:], tf.pad(input_row, column_padding)], axis=1)
            preactivation = block.vertical_preactivation(cache, labels)
            contributions.append(block.vertical_to_horizontal(preactivation))
            input_row = gate(preactivation)
            new_caches.append(cache)
        return new_caches, contributions

    def draw_row(row, contributions):
        """Draws the `cols` codes of one row with the horizontal stack."""

        def draw_column(column, histories, row_codes):
            skip_sum = 0.0
            block_input = None
            new_histories = list(histories)
            for index, (block, history) in enumerate(zip(blocks, histories)):
                if index == 0:
                    window = tf.concat([history, masked_columns], axis=2)
                else:
                    window = tf.concat([history, block_input, masked_columns[:, :, 1:]], axis=2)
                    new_histories[index] = tf.concat([history[:, :, 1:], block_input], axis=2)
                block_output, skip = block.horizontal_outputs(
                    window, block_input, contributions[index][:, :, column, None], labels
                )
                skip_sum = skip_sum + skip
                block_input = block_output
            logits = tf.reshape(
                model.output_logits(block_input + skip_sum), [num_samples, -1]
            )
            drawn = draw_codes(logits, temperature, seed, row * cols + column, top_k)
            embedded = model.code_embedding(drawn)[:, None, None, :]
            new_histories[0] = tf.concat([histories[0][:, :, 1:], embedded], axis=2)
            return column + 1, new_histories, row_codes.write(column, drawn)

        _, _, row_codes = tf.while_loop(
            lambda column, *_: column < cols,
            draw_column,
            (
                tf.constant(0),
                [empty_history] * len(blocks),
                tf.TensorArray(tf.int32, size=cols, element_shape=[None]),
            ),
        )
        return tf.transpose(row_codes.stack())

    def draw_and_advance(row, caches, contributions, grid_rows):
        row_codes = draw_row(row, contributions)
        caches, contributions = advance_vertical(caches, model.code_embedding(row_codes)[:, None])
        return row + 1, caches, contributions, grid_rows.write(row, row_codes)

    empty_cache = tf.zeros([num_samples, pad + 1, cols + 2 * pad, filters], dtype)
    initial_caches = [empty_cache] * len(blocks)
    zero_row = tf.zeros([num_samples, 1, cols, 2 * filters], dtype)
    initial_contributions = [block.vertical_to_horizontal(zero_row) for block in blocks]
    _, _, _, grid_rows = tf.while_loop(
        lambda row, *_: row < rows,
        draw_and_advance,
        (
            tf.constant(0),
            initial_caches,
            initial_contributions,
            tf.TensorArray(tf.int32, size=rows, element_shape=[None, cols]),
        ),
    )
    return tf.transpose(grid_rows.stack(), [1, 0, 2])
