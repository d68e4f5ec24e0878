"""Sampling code grids from a prior (`PixelCNN`, `Transformer`): the draw, the loops and the choice.

- `draw_codes`: the stateless per-position draw that every sampler shares, so all of them (in
  process or inside an exported SavedModel) draw the same codes for the same seed.
- `sample_full`: the reference loop of PixelCNN (van den Oord et al., 2016), one full network
  pass per position; `sample_full_from_noise`, the same loop with the Gumbel noise as an input
  (no random op: the portable exports' sampler).
- `sample_cached`: the incremental loop in the spirit of Ramachandran et al. (2017), "Fast
  Generation for Convolutional Autoregressive Models", over the `GatedBlock` step methods.
- `sample_with_cache`: the key/value-cached loop of a `Transformer`, one position per step
  through its `call_with_cache`.
- `resolve_sampling_method` and `JIT_COMPILE`: which loop `"auto"` means and how each is compiled.

Every loop also takes `guidance` (classifier-free guidance, `prior.guidance`) and `codes`/`mask`
(inpainting). With a `guidance` tensor the model runs on a doubled batch, the grids with their
labels and the same grids with the "no label" class (caches doubled too), and position `t` is
drawn from `guided_logits` of the two halves; `guidance=None` (what `sample` passes for a scale of
1) builds exactly the plain loop. With `codes` and `mask`, a position whose mask is False takes
the given code instead of the drawn one, so later positions see it: raster-order inpainting (a
re-sampled position sees every earlier code, kept or drawn, but not the kept codes after it).
"""

import tensorflow as tf

from prior.guidance import guided_logits

SAMPLING_METHODS = ("auto", "cached", "full")
# Measured with scripts/bench_cached_sampler.py (batch 16, K=512, default
# depth/width, 2 CPU cores shared with other jobs), seconds per batch after
# the first call (which adds ~1-4 s of tracing/XLA compilation):
#   grid   full   full+XLA  cached  cached+XLA
#   1x1    0.006     -        -       0.003
#   2x2    0.033     -        -       0.012
#   4x4    0.105   0.108    0.055     0.017
#   7x7    0.806   0.857    0.166     0.043
#   16x16  19.8    20.5     0.817     0.205
#   32x32  197      -       3.11      0.785
# so "auto" always means "cached", XLA is kept for the cached sampler (2.5x
# to 4x) and dropped for the full one (a tie at best; 1.5x slower at 16x16
# in one busier run).
JIT_COMPILE = {"cached": True, "full": False}


def resolve_sampling_method(method):
    """Maps `"auto"` to the faster sampler: `"cached"` on every grid measured.

    `scripts/bench_cached_sampler.py` measured the cached sampler faster per
    batch than the full one from 1x1 to 32x32 grids (2x to 251x); see the
    table above `JIT_COMPILE`.

    Args:
        method: `"auto"`, `"cached"` or `"full"`.

    Returns:
        `"cached"` or `"full"`.

    Raises:
        ValueError: for any other method.

    Example:

    >>> resolve_sampling_method("auto")
    'cached'
    """
    if method not in SAMPLING_METHODS:
        raise ValueError(f"method must be one of {SAMPLING_METHODS}; received method={method!r}")
    return "cached" if method == "auto" else method


# ---------------------------------------------------------------------- the draw


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


def gumbel_noise(shape, seed, step):
    """Standard Gumbel noise `-log(-log(u))` of `shape`, keyed by `(seed, step)`.

    The noise of every draw in this package: `u` comes from the stateless Philox stream keyed
    by `[seed, step]` through `_open_unit_uniform`, so it is the same in plain TF graphs and
    XLA-compiled ones, in-process and exported.

    Args:
        shape: int32 shape tensor or list.
        seed: int64 scalar tensor.
        step: int scalar tensor, the second half of the key.

    Returns:
        float32 tensor of `shape`.

    Example:

    >>> gumbel_noise([2, 5], tf.constant(0, tf.int64), 3)
    """
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    return -tf.math.log(-tf.math.log(_open_unit_uniform(shape, key)))


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
    gumbel = gumbel_noise(tf.shape(logits), seed, step)
    return tf.argmax(logits + temperature * gumbel, axis=-1, output_type=tf.int32)


# ---------------------------------------------------------------------- guidance and inpainting


def _model_labels(labels, guidance, no_label):
    """The labels of the batch the model runs on: `labels`, then as many "no label" ones with guidance."""
    if guidance is None:
        return labels
    return tf.concat([labels, tf.fill(tf.shape(labels), tf.constant(no_label, labels.dtype))], axis=0)


def _model_rows(tensor, guidance):
    """`tensor` repeated along the batch with guidance: both halves run on the same codes."""
    return tensor if guidance is None else tf.concat([tensor, tensor], axis=0)


def _logits_to_draw(logits, guidance):
    """The model's logits, or with guidance `guided_logits` of its conditional and "no label" halves."""
    if guidance is None:
        return logits
    conditional, unconditional = tf.split(logits, 2, axis=0)
    return guided_logits(conditional, unconditional, guidance)


def _flat_given(codes, mask, positions):
    """`(codes, mask)` flattened to `(B, positions)` for `_kept_or_drawn`, or None when not inpainting."""
    if codes is None:
        return None
    num = tf.shape(codes)[0]
    return tf.reshape(tf.cast(codes, tf.int32), [num, positions]), tf.reshape(mask, [num, positions])


def _kept_or_drawn(drawn, step, given):
    """The codes of raster position `step`: the drawn ones, except where inpainting keeps a given code."""
    if given is None:
        return drawn
    codes, mask = given
    return tf.where(tf.gather(mask, step, axis=1), drawn, tf.gather(codes, step, axis=1))


# ---------------------------------------------------------------------- the full-pass loop


def sample_full(
    model, num_samples, temperature, seed, labels=None, top_k=None, guidance=None, codes=None, mask=None
):
    """Samples code grids with one full forward pass per raster position.

    The plain autoregressive loop of PixelCNN (van den Oord et al., 2016): a
    `tf.while_loop` over the `rows * cols` positions; step `t` runs the whole
    network on the partially filled grid and draws position `t` with
    `draw_codes(..., seed, step=t)`. Unfilled positions hold code 0, which
    the causal network never reads for the position being drawn. Its cost is
    `rows * cols` full passes; it is the exact reference for `sample_cached`.

    Args:
        model: a `prior.PixelCNN`.
        num_samples: int32 scalar tensor, >= 1.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop (see the module docstring).
        codes: optional int32 `(num_samples, rows, cols)` tensor, the grids to inpaint.
        mask: bool tensor like `codes` (with `codes` only): True draws a position, False keeps
            the code of `codes` there.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> model = prior.PixelCNN(16, (4, 4))
    >>> codes = sample_full(model, tf.constant(2), tf.constant(1.0), tf.constant(0, tf.int64))
    """
    rows, cols = model.grid_shape
    positions = rows * cols
    batch = num_samples if guidance is None else 2 * num_samples
    model_labels = _model_labels(labels, guidance, model.num_classes)
    given = _flat_given(codes, mask, positions)

    def draw_position(step, flat_codes):
        grid = tf.reshape(_model_rows(flat_codes, guidance), [batch, rows, cols])
        inputs = grid if labels is None else {"codes": grid, "labels": model_labels}
        logits = tf.reshape(model(inputs), [batch, positions, model.num_embeddings])
        logits = _logits_to_draw(tf.gather(logits, step, axis=1), guidance)
        drawn = _kept_or_drawn(draw_codes(logits, temperature, seed, step, top_k), step, given)
        placed = tf.one_hot(step, positions, dtype=tf.int32)[None, :] * drawn[:, None]
        return step + 1, flat_codes + placed

    _, flat_codes = tf.while_loop(
        lambda step, _: step < positions,
        draw_position,
        (tf.constant(0), tf.zeros([num_samples, positions], tf.int32)),
    )
    return tf.reshape(flat_codes, [num_samples, rows, cols])


def sample_full_from_noise(model, gumbel, temperature, labels=None, guidance=None):
    """Samples code grids like `sample_full`, with the caller's Gumbel noise instead of a seed.

    Position `t` (raster order) is `argmax(logits[:, t] + temperature * gumbel[:, t])`, so the
    graph holds no random op: this is the loop of the exported `sample_from_noise` signature, and
    `vqgen.noise_sampler.sample_with_noise` computes the same draws in NumPy around any runtime's
    one-pass logits (LiteRT, ONNX), giving the same grids for the same noise.

    Args:
        model: a prior (`PixelCNN` or `Transformer`): any model called on codes (and labels)
            returning logits `(batch, rows, cols, K)`.
        gumbel: float32 `(num_samples, rows, cols, K)` tensor of standard Gumbel noise.
        temperature: float32 scalar tensor, > 0.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop (see the module docstring).

    Returns:
        int32 `(num_samples, rows, cols)` tensor.
    """
    rows, cols = model.grid_shape
    positions = rows * cols
    num_samples = tf.shape(gumbel)[0]
    batch = num_samples if guidance is None else 2 * num_samples
    model_labels = _model_labels(labels, guidance, model.num_classes)
    flat_gumbel = tf.reshape(gumbel, [num_samples, positions, model.num_embeddings])

    def draw_position(step, flat_codes):
        grid = tf.reshape(_model_rows(flat_codes, guidance), [batch, rows, cols])
        inputs = grid if labels is None else {"codes": grid, "labels": model_labels}
        logits = tf.cast(model(inputs), tf.float32)  # (B, rows, cols, K), 2B with guidance
        logits = tf.reshape(logits, [batch, positions, model.num_embeddings])
        scores = _logits_to_draw(tf.gather(logits, step, axis=1), guidance) + temperature * tf.gather(
            flat_gumbel, step, axis=1
        )
        drawn = tf.argmax(scores, axis=-1, output_type=tf.int32)
        placed = tf.one_hot(step, positions, dtype=tf.int32)[None, :] * drawn[:, None]
        return step + 1, flat_codes + placed

    _, flat_codes = tf.while_loop(
        lambda step, _: step < positions,
        draw_position,
        (tf.constant(0), tf.zeros([num_samples, positions], tf.int32)),
    )
    return tf.reshape(flat_codes, [num_samples, rows, cols])


# ---------------------------------------------------------------------- the cached loop


def sample_cached(
    model, num_samples, temperature, seed, labels=None, top_k=None, guidance=None, codes=None, mask=None
):
    """Samples code grids computing only what each new code changes.

    A fast generation scheme for convolutional autoregressive models in the
    spirit of Ramachandran et al. (2017), specialised to the gated PixelCNN's
    two stacks. Each `GatedBlock` keeps its own state and computes its own
    steps; this loop only threads them together:

    - Vertical stack, once per row: when row `r` is complete its codes are
      embedded and pushed through every block's `vertical_step`, which
      returns the block's vertical contribution to every column of row
      `r + 1` (the full pass's down-shift).
    - Horizontal stack, once per position: drawing column `c` runs every
      block's `horizontal_step` on one position, with the cached vertical
      contribution of column `c`; the last horizontal output plus the summed
      skip outputs go through the model's output head to the logits of
      `(r, c)`. The first block consumes the code drawn at `c - 1`.

    Every layer is the same Keras layer, with the same weights, that the full
    pass uses, and position `t = r * cols + c` is drawn with
    `draw_codes(..., seed, step=t)` exactly like `sample_full`, so both
    samplers return the same grids (up to float rounding of the logits, which
    can only flip a draw whose uniform lies within ~1e-6 of a boundary).
    Cost: `rows` single-row vertical passes plus `rows * cols` single-position
    horizontal passes, instead of `rows * cols` full-grid passes.

    Args:
        model: a `prior.PixelCNN`.
        num_samples: int32 scalar tensor, >= 1.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop (see the module docstring).
        codes: optional int32 `(num_samples, rows, cols)` tensor, the grids to inpaint.
        mask: bool tensor like `codes` (with `codes` only): True draws a position, False keeps
            the code of `codes` there.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> model = prior.PixelCNN(16, (4, 4))
    >>> codes = sample_cached(model, tf.constant(2), tf.constant(1.0), tf.constant(0, tf.int64))
    """
    rows, cols = model.grid_shape
    blocks = model.gated_blocks
    batch = num_samples if guidance is None else 2 * num_samples
    model_labels = _model_labels(labels, guidance, model.num_classes)
    given = _flat_given(codes, mask, rows * cols)
    # The first block's input at column 0 of a row: the zero left of the row.
    row_start = tf.zeros([batch, 1, 1, model.filters], model.code_embedding.compute_dtype)

    def draw_row(row, contribution_rows):
        """Draws the `cols` codes of one row with the blocks' horizontal steps."""

        def draw_column(column, histories, previous_code, row_codes):
            block_input, skip_sum, new_histories = previous_code, 0.0, []
            for block, history, contribution_row in zip(blocks, histories, contribution_rows):
                history, block_input, skip = block.horizontal_step(
                    history, block_input, contribution_row[:, :, column, None], model_labels
                )
                new_histories.append(history)
                skip_sum = skip_sum + skip
            logits = tf.reshape(model.output_logits(block_input + skip_sum), [batch, -1])
            step = row * cols + column
            drawn = draw_codes(_logits_to_draw(logits, guidance), temperature, seed, step, top_k)
            drawn = _kept_or_drawn(drawn, step, given)
            embedded = model.code_embedding(_model_rows(drawn, guidance))[:, None, None, :]  # (B, 1, 1, F)
            return column + 1, new_histories, embedded, row_codes.write(column, drawn)

        _, _, _, row_codes = tf.while_loop(
            lambda column, *_: column < cols,
            draw_column,
            (
                tf.constant(0),
                [block.initial_horizontal_history(batch) for block in blocks],
                row_start,
                tf.TensorArray(tf.int32, size=cols, element_shape=[None]),
            ),
        )
        return tf.transpose(row_codes.stack())  # (B, cols)

    def draw_and_advance(row, caches, contribution_rows, grid_rows):
        row_codes = draw_row(row, contribution_rows)
        input_row = model.code_embedding(_model_rows(row_codes, guidance))[:, None]  # (B, 1, cols, F)
        new_caches, new_contribution_rows = [], []
        for block, cache in zip(blocks, caches):
            cache, contribution_row, input_row = block.vertical_step(cache, input_row, model_labels)
            new_caches.append(cache)
            new_contribution_rows.append(contribution_row)
        return row + 1, new_caches, new_contribution_rows, grid_rows.write(row, row_codes)

    initial_states = [block.initial_vertical_cache(batch, cols) for block in blocks]
    _, _, _, grid_rows = tf.while_loop(
        lambda row, *_: row < rows,
        draw_and_advance,
        (
            tf.constant(0),
            [cache for cache, _ in initial_states],
            [contribution_row for _, contribution_row in initial_states],
            tf.TensorArray(tf.int32, size=rows, element_shape=[None, cols]),
        ),
    )
    return tf.transpose(grid_rows.stack(), [1, 0, 2])  # (B, rows, cols)


# ---------------------------------------------------------------------- the key/value-cached loop


def sample_with_cache(
    model, num_samples, temperature, seed, labels=None, top_k=None, guidance=None, codes=None, mask=None
):
    """Samples code grids one position per step through the model's `call_with_cache`.

    The incremental decoding of a Transformer with key/value caches (as in
    KerasHub's samplers): one `tf.while_loop` over the `rows * cols` raster
    positions; step `t` feeds the code drawn at `t - 1` to
    `model.call_with_cache`, which computes position `t` only (attending over
    every block's cached keys and values of positions `< t` and storing those
    of `t`), and draws position `t` with `draw_codes(..., seed, step=t)`
    exactly like `sample_full`. Both therefore return the same grids (up to
    float rounding of the logits, which can only flip a draw whose uniform
    lies within ~1e-6 of a boundary). Cost: `rows * cols` one-position passes,
    each attending over `rows * cols` cache slots, instead of `rows * cols`
    full-sequence passes.

    Args:
        model: a `prior.Transformer` (any model with `initial_cache(batch)`,
            `call_with_cache(previous_codes, cache, index, labels)` and `grid_shape`).
        num_samples: int32 scalar tensor, >= 1.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop (see the module docstring).
        codes: optional int32 `(num_samples, rows, cols)` tensor, the grids to inpaint.
        mask: bool tensor like `codes` (with `codes` only): True draws a position, False keeps
            the code of `codes` there.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> model = prior.Transformer(16, (4, 4))
    >>> codes = sample_with_cache(model, tf.constant(2), tf.constant(1.0), tf.constant(0, tf.int64))
    """
    rows, cols = model.grid_shape
    batch = num_samples if guidance is None else 2 * num_samples
    model_labels = _model_labels(labels, guidance, model.num_classes)
    given = _flat_given(codes, mask, rows * cols)

    def draw_position(step, cache, previous_codes, drawn_codes):
        logits, cache = model.call_with_cache(previous_codes, cache, step, model_labels)
        drawn = draw_codes(_logits_to_draw(logits, guidance), temperature, seed, step, top_k)
        drawn = _kept_or_drawn(drawn, step, given)
        return step + 1, cache, _model_rows(drawn, guidance), drawn_codes.write(step, drawn)

    _, _, _, drawn_codes = tf.while_loop(
        lambda step, *_: step < rows * cols,
        draw_position,
        (
            tf.constant(0),
            model.initial_cache(batch),
            tf.zeros([batch], tf.int32),
            tf.TensorArray(tf.int32, size=rows * cols, element_shape=[None]),
        ),
    )
    return tf.reshape(tf.transpose(drawn_codes.stack()), [num_samples, rows, cols])
